"""Adapting a model to a new camera: fine-tune on a few corrected masks, then score the images
it did not see, before and after.

This is the question every fine-tune in the loop answers ("did the corrections help on the rest
of the project?"), so the widget's adaptation, its tests and the benchmarks share one
implementation built on ``training.train``, the code the fine-tune widget runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from napari_nevseg.core.metrics import dice
from napari_nevseg.core.postprocess import Cleanup
from napari_nevseg.core.session import ModelSession
from napari_nevseg.core.training import TrainConfig, TrainResult, make_training_set, train

__all__ = ["Sample", "AdaptReport", "mean_dice", "finetune_and_score", "colour_shift"]

Sample = tuple[str, np.ndarray, np.ndarray]  # (name, RGB uint8 image, bool mask)


@dataclass(frozen=True)
class AdaptReport:
    """Mean full-resolution Dice on the unseen images before and after one fine-tune."""

    dice_before: float
    dice_after: float
    n_train: int
    n_val: int
    n_eval: int
    seconds: float
    epochs_run: int
    stopped_by: str


def mean_dice(session: ModelSession, samples: Sequence[Sample], cleanup: Cleanup = Cleanup()) -> float:
    """Mean full-resolution Dice of ``session``'s masks against the samples' masks."""
    return float(np.mean([dice(session.predict(image, cleanup=cleanup).mask, mask) for _, image, mask in samples]))


def finetune_and_score(
    session: ModelSession,
    train_samples: Sequence[Sample],
    val_samples: Sequence[Sample],
    eval_samples: Sequence[Sample],
    config: TrainConfig,
    cleanup: Cleanup = Cleanup(),
    on_progress: Callable | None = None,
) -> tuple[AdaptReport, TrainResult]:
    """Fine-tune a copy of the session's model (the session itself is left as it was) and
    report Dice on ``eval_samples`` before and after."""
    work_hw = tuple(session.meta["work_size"])
    before = mean_dice(session, eval_samples, cleanup)
    val_set = make_training_set(val_samples, work_hw) if val_samples else None
    gen = train(make_training_set(train_samples, work_hw), val_set, config, session.cpu_copy())
    while True:
        try:
            progress = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        if on_progress:
            on_progress(progress)
    tuned = ModelSession(result.model, result.metadata, session.device, "fine-tuned")
    after = mean_dice(tuned, eval_samples, cleanup)
    report = AdaptReport(before, after, len(train_samples), len(val_samples), len(eval_samples), result.seconds,
                         len(result.history), result.stopped_by)
    return report, result


def colour_shift(image: np.ndarray) -> np.ndarray:
    """A strong, fixed colour and contrast shift that stands in for another dermoscope's look:
    underexposed (gamma 3), a cold white balance and flatter contrast.

    It is strong on purpose: the shipped model's instance normalisation absorbs milder shifts,
    so only a shift that hurts it shows whether fine-tuning adapts (the measured cost is in
    docs/benchmarks.md). Deterministic, so a test or benchmark sees the same camera every time.
    """
    x = image.astype(np.float32) / 255.0
    x = x**3.0
    x = x * np.array([0.6, 0.9, 1.4], np.float32)
    x = (x - 0.5) * 0.65 + 0.45
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)
