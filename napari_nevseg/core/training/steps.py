"""The named steps of a training run, over one mutable :class:`Run` (the state a checkpoint
saves): prepare, one optimizer step, validate, end of epoch (history, early stopping), final
weights, metadata, release."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from napari_nevseg.core.augment import AugmentConfig, augment_batch
from napari_nevseg.core.clicks import GUIDANCE_CHANNELS, ClickSettings
from napari_nevseg.core.inference import UPRIGHT_TTA
from napari_nevseg.core.losses import bce_dice_loss, click_disk_loss
from napari_nevseg.core.model import build_model, count_parameters, freeze_batchnorm
from napari_nevseg.core.sources import epoch_indices
from napari_nevseg.core.training.distributed import Ranks
from napari_nevseg.core.training.guidance import ClickTraining, focus_on_objects, simulate_guidance
from napari_nevseg.core.training.records import TrainConfig, TrainingSet, TrainProgress
from napari_nevseg.core.training.scoring import channel_stats, dice_scores, stats_tensors

__all__ = [
    "Run", "check_inputs", "prepare", "train_step", "validate", "validation_dice", "end_epoch", "should_stop_early",
    "final_weights", "result_metadata", "release", "lr_at", "scheduled_step", "inherited_tta", "warm_up", "click_training",
]


@dataclass
class Run:
    """Everything that changes while a run trains, plus what was fixed when it was prepared."""

    config: TrainConfig
    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer | None
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype
    averaged: AveragedModel | None
    gen: torch.Generator
    arch: str
    arch_params: dict[str, Any]
    parent_meta: dict[str, Any] | None
    work_hw: tuple[int, int]
    mean: list[float]
    std: list[float]
    batch: int
    steps_per_epoch: int
    total: int
    warmup: int
    has_val: bool
    started: float
    deadline: float | None
    before: float | None = None
    best_dice: float = -1.0
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    step: int = 0
    epoch: int = 0  # epochs completed
    epochs_without_gain: int = 0
    stopped_by: str = "epochs"
    clicks: ClickTraining | None = None
    #: this process among the training processes, and the module steps go through (DDP around
    #: ``model`` when distributed; ``model`` itself otherwise): see ``distributed.py``
    ranks: Ranks = field(default_factory=Ranks)
    net: nn.Module | None = None
    #: the starting weights that ``config.anchor`` pulls toward (fine-tuning only)
    anchor_weights: list[torch.Tensor] | None = None

    @property
    def guidance_channels(self) -> int:
        return len(GUIDANCE_CHANNELS) if self.clicks is not None else 0

    @property
    def scored(self) -> nn.Module:
        """The weights validated and kept: the moving average when there is one."""
        return self.averaged.module if self.averaged is not None else self.model

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        return stats_tensors(self.mean, self.std, self.device)


def check_inputs(train_set: TrainingSet, config: TrainConfig, init: tuple[nn.Module, dict] | None) -> tuple[int, int]:
    """Refuse a run that cannot start (before anything global is touched); the working size."""
    if len(train_set) == 0:
        raise ValueError("no training images: accept or correct some masks first")
    if config.ema_decay is not None and not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), not {config.ema_decay}")
    work_hw = tuple(init[1]["work_size"]) if init is not None else tuple(config.work_size)
    if tuple(train_set.images.shape[-2:]) != work_hw:
        raise ValueError(f"training images are {tuple(train_set.images.shape[-2:])}, the model works at {work_hw}")
    return work_hw  # type: ignore[return-value]


def click_training(config: TrainConfig, init) -> ClickTraining | None:
    """Clicks to simulate: the config's from scratch; a click model's fine-tune always simulates
    them, with the disk radius its file records, so every fine-tuned version takes clicks."""
    if init is None:
        return config.clicks
    settings = ClickSettings.from_meta(init[1])
    if settings is None:
        if config.clicks is not None:
            raise ValueError("the starting model takes no clicks: train a click model from scratch instead")
        return None
    return replace(config.clicks or ClickTraining(), radius=settings.radius)


def _starting_model(train_set: TrainingSet, config: TrainConfig, init):
    if init is not None:
        parent_meta = init[1]
        norm = parent_meta["normalization"]
        return (copy.deepcopy(init[0]).to("cpu"), parent_meta["arch"], parent_meta["arch_params"],
                parent_meta, norm["mean"], norm["std"])
    mean, std = channel_stats(train_set)
    params = dict(config.arch_params)
    if config.clicks is not None:
        params["in_channels"] = 3 + len(GUIDANCE_CHANNELS)
    return build_model(config.arch, params), config.arch, params, None, mean, std


def prepare(
    train_set: TrainingSet, config: TrainConfig, init, work_hw: tuple[int, int], device: torch.device, has_val: bool
) -> Run:
    """Seed, build or copy the model, and set up the optimizer, the moving average and the schedule."""
    clicks = click_training(config, init)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model, arch, arch_params, parent_meta, mean, std = _starting_model(train_set, config, init)
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    # buffers are averaged too (BatchNorm statistics, when not frozen); the integer step count
    # of BatchNorm does not survive averaging, which is harmless: its momentum is fixed
    averaged = None
    if config.ema_decay is not None:
        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
        averaged.update_parameters(model)  # the average starts at the starting weights
    optimizer = torch.optim.AdamW(trainable_parameters(model, config.trainable), lr=config.lr,
                                  weight_decay=config.weight_decay)
    amp_dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and amp_dtype == torch.float16)
    n = samples_per_epoch(train_set, config)
    batch = min(config.batch_size, n)
    steps_per_epoch = math.ceil(n / batch)
    total = steps_per_epoch * config.epochs
    anchor = [p.detach().clone() for p in model.parameters()] if config.anchor and init is not None else None
    started = time.perf_counter()
    return Run(
        config, device, model, optimizer, scaler, amp_dtype, averaged, gen, arch, arch_params, parent_meta,
        work_hw, list(mean), list(std), batch, steps_per_epoch, total,
        warmup=max(1, int(total * config.warmup_fraction)), has_val=has_val, started=started,
        deadline=started + config.max_minutes * 60 if config.max_minutes else None, clicks=clicks,
        anchor_weights=anchor,
    )


def anchor_penalty(run: Run) -> torch.Tensor | float:
    """``config.anchor`` times the squared distance of the weights from the starting ones."""
    if run.anchor_weights is None or not run.config.anchor:
        return 0.0
    distance = sum(((p - p0) ** 2).sum() for p, p0 in zip(run.model.parameters(), run.anchor_weights, strict=True))
    return run.config.anchor * distance


TRAINABLE = ("all", "norms", "early", "late")
_NORMS = (nn.GroupNorm, nn.InstanceNorm2d, nn.BatchNorm2d)


def trainable_parameters(model: nn.Module, which: str) -> list[nn.Parameter]:
    """The parameters a run of ``TrainConfig.trainable == which`` trains; the others stop
    asking for gradients (so they cost nothing in the backward pass)."""
    if which not in TRAINABLE:
        raise ValueError(f"trainable must be one of {', '.join(TRAINABLE)}, not {which!r}")
    if which == "all":
        return [p for p in model.parameters() if p.requires_grad]
    chosen: set[int] = set()
    for name, module in model.named_modules():
        in_part = (which == "early" and name.split(".")[:2] in (["encoder", "0"], ["encoder", "1"])) or (
            which == "late" and name.startswith("decoder"))
        if isinstance(module, _NORMS) or in_part:
            chosen.update(id(p) for p in module.parameters(recurse=in_part))
    params = []
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
        if id(p) in chosen:
            params.append(p)
    return params


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then a cosine down to 2% of ``base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def scheduled_step(run: Run, now: float | None = None) -> int:
    """The step the learning-rate schedule is at: the step count, or, with
    ``config.anneal_by_time`` and a time limit, the share of the time used if that is ahead."""
    if not (run.config.anneal_by_time and run.deadline):
        return run.step
    now = time.perf_counter() if now is None else now
    share = (now - run.started) / max(1e-9, run.deadline - run.started)
    return max(run.step, min(run.total - 1, int(share * run.total)))


def samples_per_epoch(train_set: TrainingSet, config: TrainConfig) -> int:
    """Every image once, or the mixed-source draw's size."""
    if config.source_shares is None:
        return len(train_set)
    if config.epoch_size is not None and config.epoch_size < 1:
        raise ValueError(f"epoch_size must be at least 1, not {config.epoch_size}")
    return config.epoch_size or len(train_set)


def start_epoch(run: Run, train_set: TrainingSet) -> torch.Tensor:
    """Training mode (BatchNorm frozen if asked) and this epoch's order of the images: a
    shuffle of all of them, or the mixed-source draw of epoch ``run.epoch + 1``, which depends
    only on the seed and the epoch (so a resumed or distributed run draws the same)."""
    run.model.train()
    if run.config.freeze_bn:
        freeze_batchnorm(run.model)
    shares = run.config.source_shares
    if shares is None:
        return torch.randperm(len(train_set), generator=run.gen)
    groups = train_set.source_indices()
    plan = epoch_indices({name: len(idx) for name, idx in groups.items()}, shares,
                         samples_per_epoch(train_set, run.config), run.config.seed, run.epoch + 1)
    return torch.from_numpy(np.concatenate(list(groups.values()))[plan])


def train_step(run: Run, train_set: TrainingSet, idx: torch.Tensor) -> tuple[float, float]:
    """One optimizer step on the images ``idx`` (augmented; this rank's share of them when
    distributed); returns ``(lr, loss)``, the loss of the whole of ``idx``."""
    device, m_s = run.device, run.stats()
    idx, weight = run.ranks.share(idx)
    images = train_set.images[idx].to(device, non_blocking=True).float() / 255.0
    masks = train_set.masks[idx].to(device, non_blocking=True)
    images, masks = augment_batch(images, masks, run.config.augment, run.gen)
    if run.clicks is not None:
        chosen = torch.rand(images.shape[0], generator=run.gen) < run.clicks.focus_fraction
        images, masks = focus_on_objects(images, masks, chosen, run.gen)
    x = (images - m_s[0]) / m_s[1]
    if run.clicks is not None:
        x = torch.cat([x, simulate_guidance(run.model, x, masks, run.clicks, run.gen, run.config.freeze_bn)], dim=1)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    lr = lr_at(scheduled_step(run), run.total, run.config.lr, run.warmup)
    assert run.optimizer is not None
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    with torch.autocast(device.type, dtype=run.amp_dtype, enabled=device.type == "cuda"):
        logits = (run.net or run.model)(x)
    loss = bce_dice_loss(logits, masks)
    if run.clicks is not None and run.clicks.click_weight > 0:
        loss = loss + click_disk_loss(logits, masks, x[:, 3:5], run.clicks.click_weight)
    objective = (loss if weight == 1.0 else loss * weight) + anchor_penalty(run)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(objective).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    if run.averaged is not None:
        run.averaged.update_parameters(run.model)
    run.step += 1
    return lr, run.ranks.batch_loss(loss.item(), weight)


def validate(run: Run, val_set: TrainingSet, epoch: int) -> float:
    """Score the kept weights on the validation set; remember them if they are the best yet."""
    val = validation_dice(run, run.scored, val_set)
    if val > run.best_dice:
        run.best_dice, run.best_epoch = val, epoch
        run.best_state = {k: v.detach().to("cpu", copy=True) for k, v in run.scored.state_dict().items()}
    return val


def validation_dice(run: Run, model: nn.Module, val_set: TrainingSet) -> float:
    """Mean validation Dice of ``model``; when distributed, each rank scores its own share of
    the images and the sums are all-reduced, so every image counts exactly once."""
    part = run.ranks.shard(len(val_set))
    share = TrainingSet(val_set.images[part], val_set.masks[part], val_set.stems[part])
    scores = dice_scores(model, share, run.mean, run.std, run.device, guidance_channels=run.guidance_channels)
    return run.ranks.mean(scores)


def end_epoch(run: Run, epoch: int, losses: list[float], val: float | None) -> None:
    """Record the epoch and count epochs without a better validation score."""
    run.history.append({"epoch": epoch, "loss": float(np.mean(losses)), **({"val_dice": val} if val is not None else {})})
    run.epoch = epoch
    if run.has_val and run.config.patience is not None:
        run.epochs_without_gain = 0 if run.best_epoch == epoch else run.epochs_without_gain + 1


def should_stop_early(run: Run) -> bool:
    return run.has_val and run.config.patience is not None and run.epochs_without_gain >= run.config.patience


def progress(run: Run, epoch: int, lr: float, losses: list[float], val: float | None, last: bool) -> TrainProgress:
    elapsed = time.perf_counter() - run.started
    remaining = elapsed / run.step * (run.total - run.step)
    if run.deadline:
        remaining = min(remaining, max(0.0, run.deadline - time.perf_counter()))
    best = run.best_dice if run.has_val and run.best_dice >= 0 else None
    return TrainProgress(run.step, run.total, epoch, run.config.epochs, losses[-1], lr, elapsed, remaining,
                         val, best, float(np.mean(losses)) if last else None)


def final_weights(run: Run, init: tuple[nn.Module, dict] | None) -> None:
    """Load the weights to keep into ``run.model``: the best validated epoch's; without one,
    the moving average (from scratch, or with nothing to validate on); when fine-tuning and no
    epoch beat the starting model on validation, the starting weights (best epoch 0)."""
    if run.best_state is not None:
        run.model.load_state_dict(run.best_state)
    elif run.averaged is not None and (not run.has_val or init is None):
        run.model.load_state_dict(run.scored.state_dict())
    elif run.has_val and init is not None:
        run.model.load_state_dict(init[0].state_dict())
        run.best_epoch = 0
    if not run.has_val:
        run.best_epoch = len(run.history)
    run.model = run.model.to("cpu", memory_format=torch.contiguous_format).eval()


def inherited_tta(parent_meta: dict[str, Any] | None, augment: AugmentConfig) -> int:
    """Test-time flips a trained model keeps from its parent: all of them, except that a model
    trained without rotations (objects with an up, such as people) is not asked to see its
    images upside down, so it keeps at most the identity and the left-right flip."""
    tta = int((parent_meta or {}).get("tta", 1))
    return tta if augment.rotate else min(tta, UPRIGHT_TTA)


def result_metadata(run: Run, train_set: TrainingSet, val_set: TrainingSet | None, seconds: float) -> dict[str, Any]:
    """The model file's metadata: architecture, normalisation, the run's record and scores."""
    parent, config = run.parent_meta or {}, run.config
    val_dice = run.best_dice if run.has_val and run.best_dice >= 0 else None
    clicks = {} if run.clicks is None else {
        "in_channels": 3 + run.guidance_channels,
        "clicks": {**ClickSettings(radius=run.clicks.radius).to_meta(), "simulation": asdict(run.clicks)},
    }
    return {
        **clicks,
        "arch": run.arch,
        "arch_params": run.arch_params,
        "work_size": list(run.work_hw),
        "normalization": {"mean": list(run.mean), "std": list(run.std)},
        "threshold": parent.get("threshold", 0.5),
        "tta": inherited_tta(run.parent_meta, config.augment),
        # how automatic masks take their second look is the parent's (core/second_look.py)
        **({"second_look": parent["second_look"]} if parent.get("second_look") else {}),
        "parameters": count_parameters(run.model),
        "parent": parent.get("version"),
        "training": {
            "config": {**asdict(config), "work_size": list(run.work_hw)},
            "train_images": list(train_set.stems),
            **({"train_sources": list(train_set.sources)} if train_set.sources and run.parent_meta else {}),
            "val_images": list(val_set.stems) if run.has_val and val_set is not None else [],
            "sources": {name: len(idx) for name, idx in train_set.source_indices().items()} if train_set.sources else {},
            "epochs_run": len(run.history),
            "best_epoch": run.best_epoch,
            "stopped_by": run.stopped_by,
            "seconds": round(seconds, 1),
            "device": run.device.type,
            "world_size": run.ranks.world_size,
            "history": run.history,
        },
        "metrics": {"val_dice_before": run.before, "val_dice": val_dice},
    }


def release(run: Run | None, device: torch.device, previous_threads: int) -> None:
    """Drop the optimizer and the average (GPU memory back), restore the thread count."""
    if run is not None:
        run.optimizer, run.averaged = None, None
    torch.set_num_threads(previous_threads)
    if device.type == "cuda":
        torch.cuda.empty_cache()


def warm_up() -> None:
    """Import and initialise everything the first training step needs, ahead of time.

    The first ``AdamW.step`` imports ``torch._dynamo`` and with it sympy and mpmath: about 800
    modules and a second of work. Unmarshalling a module holds the GIL, so doing it in the
    fine-tune worker stalls the viewer's event loop right after *Fine-tune* is pressed. The
    widget runs this once in a worker when the model has loaded.
    """
    weight = nn.Parameter(torch.zeros(1, 1, 2, 2))
    optimizer = torch.optim.AdamW([weight], lr=1e-3)
    loss = bce_dice_loss(weight, torch.ones(1, 1, 2, 2))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
