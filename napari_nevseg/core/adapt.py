"""Adapting a model to a new camera: fine-tune on a few corrected masks, then score the images
it did not see, before and after.

This is the question every fine-tune in the loop answers ("did the corrections help on the rest
of the project?"), so the widget's adaptation, its tests and the benchmarks share one
implementation built on ``training.train``, the code the fine-tune widget runs.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from napari_nevseg.core.metrics import dice
from napari_nevseg.core.postprocess import Cleanup
from napari_nevseg.core.replay import REPLAY_SOURCE, replay_samples
from napari_nevseg.core.session import ModelSession
from napari_nevseg.core.training import (
    Checkpointing,
    TrainingSet,
    TrainProgress,
    TrainResult,
    evaluate_dice,
    make_training_set,
    train,
)
from napari_nevseg.core.training.blend import blend_weights
from napari_nevseg.core.training.plan import PROJECT_SOURCE, FinetunePlan

__all__ = ["Sample", "AdaptReport", "dice_per_image", "mean_dice", "run_to_end", "finetune", "finetune_and_score", "colour_shift"]

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


def dice_per_image(session: ModelSession, samples: Sequence[Sample], cleanup: Cleanup = Cleanup()) -> np.ndarray:
    """Full-resolution Dice of ``session``'s automatic mask against each sample's mask."""
    return np.array([dice(session.predict(image, cleanup=cleanup).mask, mask) for _, image, mask in samples])


def mean_dice(session: ModelSession, samples: Sequence[Sample], cleanup: Cleanup = Cleanup()) -> float:
    """Mean full-resolution Dice of ``session``'s masks against the samples' masks."""
    return float(np.mean(dice_per_image(session, samples, cleanup)))


def run_to_end(gen: Generator[TrainProgress, None, TrainResult], on_progress: Callable | None = None) -> TrainResult:
    """Run a training generator to its end without a GUI; its result (``on_progress`` sees each step)."""
    while True:
        try:
            progress = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_progress:
            on_progress(progress)


def finetune(
    init: tuple[Any, dict[str, Any]],
    train_samples: Iterable[Sample],
    pool_samples: Iterable[Sample],
    plan: FinetunePlan,
    checkpoint: Checkpointing | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Fine-tune a copy of ``init = (model, metadata)`` as ``plan`` says: the corrected samples,
    the shipped replay images mixed in when the plan replays, early stopping on the pool's
    samples when it has any. The result's metadata records the plan. The one implementation
    behind the widget's *Fine-tune*, ``nevseg train --init`` and the adaptation benchmarks."""
    work_hw = tuple(init[1]["work_size"])
    train_set = make_training_set(train_samples, work_hw)
    own = train_set  # the project's images, without the replayed ones
    if plan.replay:
        replayed = make_training_set(replay_samples(), work_hw)
        if len(replayed):
            train_set = TrainingSet.concat({PROJECT_SOURCE: train_set, REPLAY_SOURCE: replayed})
    val_set = make_training_set(pool_samples, work_hw)  # read one image at a time: nothing full-size is kept
    val_set = val_set if len(val_set) else None
    config = plan.config
    if config.source_shares is not None and not train_set.sources:  # the replay folder is missing
        config = replace(config, source_shares=None, epoch_size=None)
    learned_before = _working_dice(init[0], init[1], own)
    result = yield from train(train_set, val_set, config, init, checkpoint)
    if plan.blend < 1.0:
        result = _blended(result, init[0], plan.blend, val_set)
    result.metadata["training"]["plan"] = plan.to_meta()
    # without a pool there is no unseen image to score; the images learned from at least show
    # that it learned (not a test: the next reviews are)
    result.metadata["metrics"].update({"train_dice_before": learned_before,
                                       "train_dice_after": _working_dice(result.model, result.metadata, own)})
    return result


def _working_dice(model, meta: dict[str, Any], data: TrainingSet) -> float:
    """Mean Dice at working size, in automatic mode, on ``data`` (the validation score)."""
    norm = meta["normalization"]
    return evaluate_dice(model, data, norm["mean"], norm["std"], torch.device("cpu"),
                         guidance_channels=meta.get("in_channels", 3) - 3)


def _blended(result: TrainResult, start, alpha: float, val_set: TrainingSet | None) -> TrainResult:
    """The result with its weights blended toward the start (and rescored on the pool)."""
    model = blend_weights(start, result.model, alpha)
    after = result.val_dice_best
    if val_set is not None and after is not None:
        after = _working_dice(model, result.metadata, val_set)
        result.metadata["metrics"]["val_dice"] = after
    return replace(result, model=model, val_dice_best=after)


def finetune_and_score(
    session: ModelSession,
    train_samples: Sequence[Sample],
    val_samples: Sequence[Sample],
    eval_samples: Sequence[Sample],
    plan: FinetunePlan,
    cleanup: Cleanup = Cleanup(),
    on_progress: Callable | None = None,
) -> tuple[AdaptReport, TrainResult]:
    """Fine-tune a copy of the session's model with :func:`finetune` (the session itself is left
    as it was) and report Dice on ``eval_samples`` before and after."""
    before = mean_dice(session, eval_samples, cleanup)
    gen = finetune(session.cpu_copy(), train_samples, val_samples, plan)
    result = run_to_end(gen, on_progress)
    tuned = ModelSession(result.model, result.metadata, session.device, "fine-tuned")
    after = mean_dice(tuned, eval_samples, cleanup)
    report = AdaptReport(before, after, len(train_samples), len(val_samples), len(eval_samples), result.seconds,
                         len(result.history), result.stopped_by)
    return report, result


def colour_shift(image: np.ndarray) -> np.ndarray:
    """A strong, fixed colour and contrast shift that stands in for another camera's look:
    badly underexposed (gamma 5), a cold white balance and flatter contrast.

    It is strong on purpose: the shipped model, trained on many dermoscopes, absorbs milder
    shifts (gamma 3 cost the sample images 0.05 Dice on average, gamma 5 costs 0.13), so only a
    shift that hurts it shows whether fine-tuning adapts. Deterministic, so a test or benchmark
    sees the same camera every time.
    """
    x = image.astype(np.float32) / 255.0
    x = x**5.0
    x = x * np.array([0.6, 0.9, 1.4], np.float32)
    x = (x - 0.5) * 0.65 + 0.45
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)
