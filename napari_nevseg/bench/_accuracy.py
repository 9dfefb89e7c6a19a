"""Accuracy at equal cost: each architecture trained from scratch with the same recipe and time."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from napari_nevseg.bench._common import (
    LABELS,
    drain,
    final_result,
    free_memory,
)


def channel_stats(data) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of a training set's images in [0, 1]: the
    normalisation ``training.train`` gives a model it builds from scratch. MONAI's networks are
    handed to ``train`` already built, so the bench gives them the same statistics itself."""
    x = data.images.float() / 255.0
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).clamp(min=1e-3).tolist()


def full_res_dice(model, meta, device, pairs) -> float | None:
    """Mean Dice at each image's own size, through the Predictor (threshold and clean-up as
    shipped), which is what a user gets; ``None`` without images."""
    from napari_nevseg.core.data import load_pair
    from napari_nevseg.core.inference import Predictor
    from napari_nevseg.core.metrics import dice

    if not pairs:
        return None
    predictor = Predictor(model, meta, device)
    scores = []
    for pair in pairs:
        image, ref = load_pair(pair)
        scores.append(dice(predictor.predict(image).mask, ref))
    return float(sum(scores) / len(scores))


def accuracy_at_equal_cost(args, device, meta_template, builders: dict[str, Callable[[], Any]], pairs) -> dict[str, Any]:
    """Each architecture from scratch, same recipe, split, seed and time budget; full-res Dice."""
    import torch

    from napari_nevseg.core.data import read_strata, stratified_split
    from napari_nevseg.core.training import TrainConfig, load_training_set, train

    strata_path = args.strata or (args.images.parent / "classes.csv")
    strata = read_strata(strata_path) if strata_path.is_file() else None
    stems = [p.stem for p in pairs]
    rest, test = stratified_split(stems, 0.2, args.seed, strata)
    train_stems, val_stems = stratified_split(rest, 0.2, args.seed + 1, strata)
    by_stem = {p.stem: p for p in pairs}
    work_hw = (192, 256)
    train_set = load_training_set([by_stem[s] for s in train_stems], work_hw)
    val_set = load_training_set([by_stem[s] for s in val_stems], work_hw)
    mean, std = channel_stats(train_set)
    out: dict[str, Any] = {
        "budget_minutes_per_model": args.train_minutes,
        "recipe": "core.training.train: AdamW lr 2e-3, weight decay 1e-4, batch 8, cosine schedule sized to the "
                  "budget (epochs from a timed calibration), augmentation as nevseg train, seed "
                  f"{args.seed}, working size 256x192, best validation epoch kept",
        "split": {"train": len(train_stems), "val": len(val_stems), "test": len(test),
                  "stratified_by": str(strata_path) if strata else None, "seed": args.seed},
        "models": {},
    }
    budget_s = args.train_minutes * 60
    for name, build in builders.items():
        torch.manual_seed(args.seed)
        net = build()
        meta = {**meta_template, "arch": name, "arch_params": {}, "work_size": list(work_hw),
                "normalization": {"mean": mean, "std": std}, "threshold": 0.5, "tta": 1}
        epoch_s = _epoch_seconds(net, meta, train_set, val_set, args.device)
        epochs = max(1, int(0.95 * budget_s / epoch_s))
        cfg = TrainConfig(epochs=epochs, batch_size=8, lr=2e-3, seed=args.seed, max_minutes=args.train_minutes,
                          device=args.device, work_size=work_hw)
        print(f"bench: training {LABELS.get(name, name)} from scratch: {epochs} epochs planned "
              f"({epoch_s:.1f} s each), stop at {args.train_minutes:g} min", flush=True)
        result = final_result(train(train_set, val_set, cfg, (net, meta)))
        out["models"][name] = {
            "parameters": sum(p.numel() for p in net.parameters()),
            "minutes": result.seconds / 60, "epochs": len(result.history), "epochs_planned": epochs,
            "stopped_by": result.stopped_by, "best_epoch": result.best_epoch,
            "val_dice_work_res": result.val_dice_best,
            "val_dice": full_res_dice(result.model, meta, device, [by_stem[s] for s in val_stems]),
            "test_dice": full_res_dice(result.model, meta, device, [by_stem[s] for s in test]),
        }
        del net, result
        free_memory(device)
    return out


def _epoch_seconds(net, meta, train_set, val_set, device_name: str) -> float:
    """Seconds one epoch (training steps plus validation) takes, from three timed steps."""
    import math

    from napari_nevseg.core.training import TrainConfig, train

    n_steps = 4
    small = type(train_set)(train_set.images[: 8 * n_steps], train_set.masks[: 8 * n_steps], train_set.stems[: 8 * n_steps])
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-4, device=device_name)
    started = time.perf_counter()
    stamps = [p.elapsed_s for p in drain(train(small, None, cfg, (net, meta)))]
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)] or [time.perf_counter() - started]
    step_s = statistics.median(steps)
    val_s = step_s * len(val_set) / 8 / 3 if val_set is not None else 0.0  # forward only: about a third
    return max(1e-3, step_s * math.ceil(len(train_set) / 8) + val_s)
