"""Training and fine-tuning as a generator: one small frozen record per step, stop at any yield.

    gen = train(train_set, val_set, TrainConfig(epochs=20))
    for progress in gen: ...           # or gen.close() to cancel: nothing is returned
    # the return value (StopIteration.value) is a TrainResult

The model being trained is a copy: the caller's model is never modified, so cancelling keeps it.
The steps of a run are named functions over one :class:`~.steps.Run` (``steps.py``).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from napari_nevseg.core.device import select_device
from napari_nevseg.core.training import resume, steps
from napari_nevseg.core.training.guidance import ClickTraining
from napari_nevseg.core.training.records import (
    TrainConfig,
    TrainingSet,
    TrainProgress,
    TrainResult,
    load_training_set,
    make_training_set,
)
from napari_nevseg.core.training.resume import Checkpointing
from napari_nevseg.core.training.scoring import channel_stats as _channel_stats
from napari_nevseg.core.training.scoring import evaluate_dice
from napari_nevseg.core.training.steps import Run, inherited_tta, warm_up

__all__ = [
    "TrainConfig",
    "Checkpointing",
    "ClickTraining",
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

_ = _channel_stats  # kept importable here for the accuracy benchmark


def train(
    train_set: TrainingSet,
    val_set: TrainingSet | None,
    config: TrainConfig = TrainConfig(),
    init: tuple[nn.Module, dict[str, Any]] | None = None,
    checkpoint: Checkpointing | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Train from scratch (``init=None``) or fine-tune a copy of ``init = (model, metadata)``.

    Early stopping: with ``config.patience`` and a validation set, stops after that many epochs
    without a better validation Dice; the best epoch's weights are returned.

    With ``config.ema_decay``, the weights validated and returned are an exponential moving
    average of the trained ones (updated after every step), which is steadier than the last
    step's on a few images.

    With ``checkpoint``, the run's whole state is written to ``checkpoint.path`` every
    ``checkpoint.every`` epochs; with ``checkpoint.resume`` the run continues from that file and
    ends with the weights an uninterrupted run would have (same settings, data and thread count).
    """
    work_hw = steps.check_inputs(train_set, config, init)
    device = select_device(config.device)
    has_val = val_set is not None and len(val_set) > 0
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    run: Run | None = None
    try:
        run = steps.prepare(train_set, config, init, work_hw, device, has_val)
        saver = _checkpointer(run, checkpoint, train_set, val_set, init)
        if checkpoint is not None and checkpoint.resume:
            resume.restore_run(checkpoint.path, run, saver.identity)
            if steps.should_stop_early(run):
                run.stopped_by = "early stopping"
        elif has_val:
            run.before = evaluate_dice(run.model, val_set, run.mean, run.std, device,
                                       guidance_channels=run.guidance_channels)
            run.best_dice = run.before
        while run.epoch < config.epochs and run.stopped_by == "epochs":
            yield from _epoch(run, train_set, val_set, saver)
        steps.final_weights(run, init)
        seconds = time.perf_counter() - run.started
        metadata = steps.result_metadata(run, train_set, val_set, seconds)
        return TrainResult(run.model, metadata, run.history, run.best_epoch, run.before,
                           metadata["metrics"]["val_dice"], seconds, run.stopped_by)
    finally:
        steps.release(run, device, previous_threads)


@dataclass(frozen=True)
class _Saver:
    """Writes the checkpoint at the end of every ``every``-th epoch but the last."""

    checkpoint: Checkpointing | None
    identity: dict[str, Any]

    def after_epoch(self, run: Run) -> None:
        if self.checkpoint is not None and run.epoch % self.checkpoint.every == 0 and run.epoch < run.config.epochs:
            resume.save_run(self.checkpoint.path, run, self.identity)


def _checkpointer(run: Run, checkpoint, train_set: TrainingSet, val_set: TrainingSet | None, init) -> _Saver:
    if checkpoint is None:
        return _Saver(None, {})
    stems = (list(train_set.stems), list(val_set.stems) if run.has_val and val_set is not None else [])
    return _Saver(checkpoint, resume.run_identity(run, stems, init[0].state_dict() if init else None))


def _epoch(run: Run, train_set: TrainingSet, val_set: TrainingSet | None, saver: _Saver
           ) -> Generator[TrainProgress, None, None]:
    """One epoch of steps; sets ``run.stopped_by`` when the time limit or early stopping ends the run."""
    epoch = run.epoch + 1
    order = steps.start_epoch(run, len(train_set))
    losses: list[float] = []
    for b in range(run.steps_per_epoch):
        lr, loss = steps.train_step(run, train_set, order[b * run.batch : (b + 1) * run.batch])
        losses.append(loss)
        last = b == run.steps_per_epoch - 1
        val = steps.validate(run, val_set, epoch) if last and run.has_val and val_set is not None else None
        if last:
            steps.end_epoch(run, epoch, losses, val)
            saver.after_epoch(run)
        yield steps.progress(run, epoch, lr, losses, val, last)
        if run.deadline and time.perf_counter() > run.deadline:
            run.stopped_by = "time limit"
            return
    if steps.should_stop_early(run):
        run.stopped_by = "early stopping"
