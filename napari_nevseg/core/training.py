"""Training and fine-tuning as a generator: one small frozen record per step, stop at any yield.

    gen = train(train_set, val_set, TrainConfig(epochs=20))
    for progress in gen: ...           # or gen.close() to cancel: nothing is returned
    # the return value (StopIteration.value) is a TrainResult

The model being trained is a copy: the caller's model is never modified, so cancelling keeps it.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Generator, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from napari_nevseg.core.augment import AugmentConfig, augment_batch
from napari_nevseg.core.convert import to_bool_mask, to_rgb_uint8
from napari_nevseg.core.data import Pair, load_pair, resize_mask, resize_rgb
from napari_nevseg.core.device import select_device
from napari_nevseg.core.inference import UPRIGHT_TTA
from napari_nevseg.core.losses import bce_dice_loss
from napari_nevseg.core.model import build_model, count_parameters, freeze_batchnorm

__all__ = [
    "TrainConfig",
    "TrainingSet",
    "TrainProgress",
    "TrainResult",
    "make_training_set",
    "load_training_set",
    "train",
    "inherited_tta",
    "warm_up",
    "evaluate_dice",
]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (recorded in the model's metadata)."""

    arch: str = "resunet"
    arch_params: dict[str, Any] = field(
        default_factory=lambda: {"channels": [16, 32, 64, 128, 256], "norm": "instance", "top": "direct"}
    )
    work_size: tuple[int, int] = (192, 256)
    epochs: int = 60
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    seed: int = 0
    max_minutes: float | None = None
    patience: int | None = None
    freeze_bn: bool = False
    device: str = "auto"
    threads: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    #: keep (and validate) an exponential moving average of the weights, with this decay per
    #: optimizer step (None: off). It remembers about 1 / (1 - decay) steps, so it suits runs of
    #: many more steps than that: 0.99 over a 50-step run would still keep 60% of the start.
    ema_decay: float | None = None


@dataclass
class TrainingSet:
    """Images ``(N, 3, H, W) uint8`` and masks ``(N, 1, H, W) float32`` at working size."""

    images: torch.Tensor
    masks: torch.Tensor
    stems: list[str]

    def __len__(self) -> int:
        return len(self.stems)


@dataclass(frozen=True)
class TrainProgress:
    """One training step; ``val_dice`` is set on the last step of an epoch that validated."""

    step: int
    total_steps: int
    epoch: int
    epochs: int
    loss: float
    lr: float
    elapsed_s: float
    remaining_s: float
    val_dice: float | None = None
    best_val_dice: float | None = None
    epoch_loss: float | None = None


@dataclass
class TrainResult:
    """The trained model (CPU, eval mode, best epoch) and its metadata."""

    model: nn.Module
    metadata: dict[str, Any]
    history: list[dict[str, float]]
    best_epoch: int
    val_dice_before: float | None
    val_dice_best: float | None
    seconds: float
    stopped_by: str


def make_training_set(samples: Iterable[tuple[str, np.ndarray, np.ndarray]], work_hw: tuple[int, int]) -> TrainingSet:
    """Resize ``(stem, image, mask)`` samples (any size, pixel type, mask values) to ``work_hw``."""
    stems, images, masks = [], [], []
    for stem, image, mask in samples:
        rgb = to_rgb_uint8(image)
        binary = to_bool_mask(mask)
        if binary.shape != rgb.shape[:2]:
            raise ValueError(f"{stem}: mask {binary.shape} and image {rgb.shape[:2]} differ in size")
        stems.append(stem)
        images.append(resize_rgb(rgb, work_hw))
        masks.append(resize_mask(binary, work_hw))
    if not stems:
        return TrainingSet(torch.zeros((0, 3, *work_hw), dtype=torch.uint8), torch.zeros((0, 1, *work_hw)), [])
    return TrainingSet(
        torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(np.stack(masks))[:, None].contiguous(),
        stems,
    )


def load_training_set(pairs: Iterable[Pair], work_hw: tuple[int, int]) -> TrainingSet:
    """Read and resize pairs from disk."""
    return make_training_set(((p.stem, *load_pair(p)) for p in pairs), work_hw)


def _normalise(images_u8: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (images_u8.float() / 255.0 - mean) / std


@torch.inference_mode()
def evaluate_dice(model: nn.Module, data: TrainingSet, mean, std, device: torch.device, batch_size: int = 8) -> float:
    """Mean per-image Dice at working size, threshold 0.5 (the validation score)."""
    was_training = model.training
    model.eval()
    scores = []
    m, s = _stats(mean, std, device)
    for start in range(0, len(data), batch_size):
        x = _normalise(data.images[start : start + batch_size].to(device), m, s)
        pred = model(x) > 0
        ref = data.masks[start : start + batch_size].to(device) > 0.5
        inter = (pred & ref).flatten(1).sum(1).float()
        total = (pred.flatten(1).sum(1) + ref.flatten(1).sum(1)).float()
        scores += torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.ones_like(total)).tolist()
    model.train(was_training)
    return float(np.mean(scores)) if scores else float("nan")


def _stats(mean, std, device) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return m, s


def _channel_stats(data: TrainingSet) -> tuple[list[float], list[float]]:
    x = data.images.float() / 255.0
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).clamp(min=1e-3).tolist()


def _lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def warm_up() -> None:
    """Import and initialise everything the first training step needs, ahead of time.

    The first ``AdamW.step`` imports ``torch._dynamo`` and with it sympy and mpmath: about 800
    modules and a second of work. Unmarshalling a module holds the GIL, so doing it in the
    fine-tune worker stalled the viewer's event loop by about 0.2 s right after *Fine-tune* was
    pressed (scripts/measure_gui_stalls.py). The widget runs this once in a worker when the
    model has loaded.
    """
    weight = nn.Parameter(torch.zeros(1, 1, 2, 2))
    optimizer = torch.optim.AdamW([weight], lr=1e-3)
    loss = bce_dice_loss(weight, torch.ones(1, 1, 2, 2))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def inherited_tta(parent_meta: dict[str, Any] | None, augment: AugmentConfig) -> int:
    """Test-time flips a trained model keeps from its parent: all of them, except that a model
    trained without rotations (objects with an up, such as people) is not asked to see its
    images upside down, so it keeps at most the identity and the left-right flip."""
    tta = int((parent_meta or {}).get("tta", 1))
    return tta if augment.rotate else min(tta, UPRIGHT_TTA)


def train(
    train_set: TrainingSet,
    val_set: TrainingSet | None,
    config: TrainConfig = TrainConfig(),
    init: tuple[nn.Module, dict[str, Any]] | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Train from scratch (``init=None``) or fine-tune a copy of ``init = (model, metadata)``.

    Early stopping: with ``config.patience`` and a validation set, stops after that many epochs
    without a better validation Dice; the best epoch's weights are returned.

    With ``config.ema_decay``, the weights validated and returned are an exponential moving
    average of the trained ones (updated after every step), which is steadier than the last
    step's on a few images.
    """
    if len(train_set) == 0:
        raise ValueError("no training images: accept or correct some masks first")
    if config.ema_decay is not None and not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), not {config.ema_decay}")
    work_hw = tuple(init[1]["work_size"]) if init is not None else tuple(config.work_size)
    if tuple(train_set.images.shape[-2:]) != work_hw:
        raise ValueError(f"training images are {tuple(train_set.images.shape[-2:])}, the model works at {work_hw}")
    device = select_device(config.device)
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    if init is not None:
        model = copy.deepcopy(init[0]).to("cpu")
        parent_meta = init[1]
        arch, arch_params = parent_meta["arch"], parent_meta["arch_params"]
        mean, std = parent_meta["normalization"]["mean"], parent_meta["normalization"]["std"]
    else:
        arch, arch_params, parent_meta = config.arch, dict(config.arch_params), None
        model = build_model(arch, arch_params)
        mean, std = _channel_stats(train_set)
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    m, s = _stats(mean, std, device)
    # buffers are averaged too (BatchNorm statistics, when not frozen); the integer step count
    # of BatchNorm does not survive averaging, which is harmless: its momentum is fixed
    averaged, scored = None, model  # scored: the weights validated and kept
    if config.ema_decay is not None:
        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
        averaged.update_parameters(model)  # the average starts at the starting weights
        scored = averaged.module
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    amp_dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and amp_dtype == torch.float16)

    n = len(train_set)
    batch = min(config.batch_size, n)
    steps_per_epoch = math.ceil(n / batch)
    total = steps_per_epoch * config.epochs
    warmup = max(1, int(total * config.warmup_fraction))
    started = time.perf_counter()
    deadline = started + config.max_minutes * 60 if config.max_minutes else None
    has_val = val_set is not None and len(val_set) > 0
    before = evaluate_dice(model, val_set, mean, std, device) if has_val else None
    best_dice, best_epoch, best_state = before if before is not None else -1.0, 0, None
    history: list[dict[str, float]] = []
    step, stopped_by, epochs_without_gain = 0, "epochs", 0
    try:
        for epoch in range(1, config.epochs + 1):
            model.train()
            if config.freeze_bn:
                freeze_batchnorm(model)
            order = torch.randperm(n, generator=gen)
            losses = []
            for b in range(steps_per_epoch):
                idx = order[b * batch : (b + 1) * batch]
                images = train_set.images[idx].to(device, non_blocking=True).float() / 255.0
                masks = train_set.masks[idx].to(device, non_blocking=True)
                images, masks = augment_batch(images, masks, config.augment, gen)
                x = (images - m) / s
                if device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                lr = _lr_at(step, total, config.lr, warmup)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(device.type, dtype=amp_dtype, enabled=device.type == "cuda"):
                    logits = model(x)
                loss = bce_dice_loss(logits, masks)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if averaged is not None:
                    averaged.update_parameters(model)
                step += 1
                losses.append(loss.item())
                elapsed = time.perf_counter() - started
                remaining = elapsed / step * (total - step)
                if deadline:
                    remaining = min(remaining, max(0.0, deadline - time.perf_counter()))
                last = b == steps_per_epoch - 1
                val = evaluate_dice(scored, val_set, mean, std, device) if (last and has_val) else None
                improved = val is not None and val > best_dice
                if improved:
                    best_dice, best_epoch = val, epoch
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in scored.state_dict().items()}
                if last:
                    history.append({"epoch": epoch, "loss": float(np.mean(losses)), **({"val_dice": val} if val is not None else {})})
                yield TrainProgress(
                    step, total, epoch, config.epochs, losses[-1], lr, elapsed, remaining,
                    val, best_dice if has_val and best_dice >= 0 else None,
                    float(np.mean(losses)) if last else None,
                )
                if deadline and time.perf_counter() > deadline:
                    stopped_by = "time limit"
                    break
            if stopped_by == "time limit":
                break
            if has_val and config.patience is not None:
                epochs_without_gain = 0 if best_epoch == epoch else epochs_without_gain + 1
                if epochs_without_gain >= config.patience:
                    stopped_by = "early stopping"
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        elif averaged is not None and (not has_val or init is None):
            model.load_state_dict(scored.state_dict())
        elif has_val and init is not None:
            # no epoch beat the starting model on validation: keep the starting weights
            model.load_state_dict(init[0].state_dict())
            best_epoch = 0
        if not has_val:
            best_epoch = len(history)
        seconds = time.perf_counter() - started
        model = model.to("cpu", memory_format=torch.contiguous_format).eval()
        metadata = {
            "arch": arch,
            "arch_params": arch_params,
            "work_size": list(work_hw),
            "normalization": {"mean": list(mean), "std": list(std)},
            "threshold": (parent_meta or {}).get("threshold", 0.5),
            "tta": inherited_tta(parent_meta, config.augment),
            "parameters": count_parameters(model),
            "parent": (parent_meta or {}).get("version"),
            "training": {
                "config": {**asdict(config), "work_size": list(work_hw)},
                "train_images": list(train_set.stems),
                "val_images": list(val_set.stems) if has_val else [],
                "epochs_run": len(history),
                "best_epoch": best_epoch,
                "stopped_by": stopped_by,
                "seconds": round(seconds, 1),
                "device": device.type,
                "history": history,
            },
            "metrics": {
                "val_dice_before": before,
                "val_dice": best_dice if has_val and best_dice >= 0 else None,
            },
        }
        return TrainResult(model, metadata, history, best_epoch, before, metadata["metrics"]["val_dice"], seconds, stopped_by)
    finally:
        del optimizer, averaged, scored
        torch.set_num_threads(previous_threads)
        if device.type == "cuda":
            torch.cuda.empty_cache()
