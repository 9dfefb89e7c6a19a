"""What goes into a training run and what comes out: the configuration, the data at working
size, the progress record of one step and the result."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from napari_nevseg.core.augment import AugmentConfig
from napari_nevseg.core.convert import to_bool_mask, to_rgb_uint8
from napari_nevseg.core.data import Pair, load_pair, resize_mask, resize_rgb
from napari_nevseg.core.training.guidance import ClickTraining

__all__ = ["TrainConfig", "TrainingSet", "TrainProgress", "TrainResult", "make_training_set", "load_training_set"]


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
    #: train a click model (RGB + positive, negative and previous-mask channels) with simulated
    #: clicks; a fine-tune of a click model always simulates clicks (with its parent's radius)
    clicks: ClickTraining | None = None
    #: mixed-source epochs: each epoch draws ``epoch_size`` samples (default: the training set's
    #: size) in which each source of :attr:`TrainingSet.sources` has this share
    #: (:func:`napari_nevseg.core.sources.epoch_indices`); None: every image once per epoch
    source_shares: dict[str, float] | None = None
    epoch_size: int | None = None
    #: fine-tuning: weight of a penalty on the squared distance of the weights from the starting
    #: model's (L2-SP, Li et al. 2018), which holds the model near what it knew; None: off
    anchor: float | None = None
    #: with ``max_minutes``: a run that falls behind the pace the time limit allows anneals its
    #: learning rate by the clock instead of by the step count, so the schedule still ends at
    #: its floor when the limit stops it (a slower machine trains fewer steps, not a cut-off
    #: schedule); a run on pace is unchanged
    anneal_by_time: bool = False
    #: which weights a run changes: ``"all"``; ``"norms"``, only the normalisation layers'
    #: scales and shifts; ``"early"``, those and the first two encoder stages (surgical
    #: fine-tuning for a shift at the input, Lee et al. 2023); ``"late"``, those and the decoder
    trainable: str = "all"


@dataclass
class TrainingSet:
    """Images ``(N, 3, H, W) uint8`` and masks ``(N, 1, H, W) float32`` at working size."""

    images: torch.Tensor
    masks: torch.Tensor
    stems: list[str]
    #: the source of each image (``"ph2"``, ``"isic2017"``, ...); empty: one source
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.stems)

    def source_indices(self) -> dict[str, np.ndarray]:
        """The images of each source, by first appearance of the source."""
        names = self.sources or ["all"] * len(self)
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            groups.setdefault(name, []).append(i)
        return {name: np.asarray(idx, dtype=np.int64) for name, idx in groups.items()}

    @classmethod
    def concat(cls, parts: dict[str, TrainingSet]) -> TrainingSet:
        """One set of several sources, each image labelled with its part's name."""
        chosen = [(name, part) for name, part in parts.items() if len(part)]
        if not chosen:
            raise ValueError("no images in any source")
        return cls(
            torch.cat([part.images for _, part in chosen]),
            torch.cat([part.masks for _, part in chosen]),
            [stem for _, part in chosen for stem in part.stems],
            [name for name, part in chosen for _ in part.stems],
        )


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
