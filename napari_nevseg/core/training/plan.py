"""How to fine-tune, chosen from the data: the recipe that ``nevseg train --init MODEL`` and the
widget's *Fine-tune* follow when no setting is touched.

Two regimes, by the number of corrected images (the measurements behind every number here are
in docs/experiments.md, "Fine-tuning that adapts out of the box"):

- **A handful** (fewer than :data:`POOL_FROM` images): train on all of them with a fixed
  schedule of :data:`FIXED_STEPS` steps. Holding one or two back to early-stop on would choose
  the epoch by noise and take a fifth of the little there is to learn from; the version is
  judged instead by the next images reviewed, whose Dice(prediction, corrected) the project
  records anyway.
- **Enough** (:data:`POOL_FROM` or more): hold out the project's fixed validation pool (a fifth,
  at least :data:`POOL_MIN`), early-stop on it, and adopt the result only if it beats the
  starting model there.

The threshold between them was measured (DermQuest, one draw): with 20 images, training on all
beat holding 4 out (Dice on the other 117: 0.881 against 0.870); with 40, holding 8 out beat
training on all (0.866 against 0.860 on the other 97). Lesion fine-tunes mix in the shipped
replay images (:mod:`napari_nevseg.core.replay`) at :data:`REPLAY_SHARE` of every epoch and
keep weights :data:`BLEND` of the way from the start to the tuned ones, so that the model does
not forget dermoscopy while it learns a new camera. ``upright`` (objects that are never upside
down, such as people) is the one switch left to the user.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from napari_nevseg.core.augment import AugmentConfig
from napari_nevseg.core.replay import REPLAY_SOURCE
from napari_nevseg.core.training.records import TrainConfig

__all__ = [
    "PROJECT_SOURCE", "POOL_FROM", "POOL_MIN", "FIXED_STEPS", "REPLAY_SHARE", "BLEND", "FinetunePlan", "plan_finetune",
    "pool_size", "with_overrides", "count_new",
]

#: from this many corrected images on, a fixed validation pool is held out and early-stopped on
#: (measured: training on all is better at 20, the pool at 40)
POOL_FROM = 30
#: the smallest pool worth judging a version on
POOL_MIN = 4
#: optimizer steps of the fixed schedule (batch :data:`BATCH`): about 2 minutes on 2 CPU cores
FIXED_STEPS = 150
BATCH = 4
LEARNING_RATE = 1e-3
#: the kept weights: this far along the line from the starting weights to the tuned ones
#: (WiSE-FT, ``blend.py``); keeps most of the gain on the new camera, little of the forgetting.
#: Chosen for the shipped model on DermQuest draws 1 and 2 with ISIC val (docs/experiments.md):
#: 0.5 kept 0.878 but lost 0.013 on ISIC, 0.35 kept 0.873 and lost 0.004
BLEND = 0.35
#: objects with an up (people): a new kind of object to learn outright, so a higher learning
#: rate and copy-paste (another training image's object pasted in, Ghiasi et al. 2021)
UPRIGHT_LEARNING_RATE = 2e-3
UPRIGHT_COPY_PASTE = 0.5
#: the source name of the project's own images beside the replayed ones
PROJECT_SOURCE = "project"
#: the replayed images' share of each epoch's samples (0: no replay)
REPLAY_SHARE = 0.5
#: with a pool: epochs without a better validation Dice before stopping, and the longest run
PATIENCE = 5
MAX_EPOCHS = 40
#: time limits: the few-image run must fit the 2-minute promise; with a pool, 2 minutes plus 3
#: seconds per image (30 images: 3.5 minutes, 200: 12), at most MANY_MINUTES
FEW_MINUTES = 2.0
MANY_MINUTES = 15.0


@dataclass(frozen=True)
class FinetunePlan:
    """What the data chose: the training configuration, whether a pool judges the result, and
    the reasons in words (recorded in the model file's metadata)."""

    config: TrainConfig
    n_images: int
    n_new: int
    pool: int  # images held out to validate on (0: the next reviews judge the version)
    replay: bool
    reasons: tuple[str, ...]
    #: the kept weights are ``(1 - blend) * start + blend * tuned`` (1: the tuned ones)
    blend: float = 1.0

    @property
    def validated(self) -> bool:
        return self.pool > 0

    def to_meta(self) -> dict[str, Any]:
        return {"regime": "validation pool" if self.validated else "fixed schedule", "images": self.n_images,
                "new_images": self.n_new, "pool": self.pool, "replay": self.replay, "blend": self.blend,
                "reasons": list(self.reasons),
                "epochs": self.config.epochs, "batch_size": self.config.batch_size, "lr": self.config.lr,
                "upright": not self.config.augment.rotate}


def pool_size(n_images: int) -> int:
    """Images of a project of ``n_images`` reviewed ones held out for validation (0: none)."""
    if n_images < POOL_FROM:
        return 0
    return max(POOL_MIN, round(0.2 * n_images))


def _epochs_for(n_train: int, replay_share: float, steps: int) -> tuple[int, int]:
    """Epochs that make about ``steps`` optimizer steps, and the samples per epoch (every
    project image once, plus the replayed share)."""
    per_epoch = math.ceil(n_train / (1.0 - replay_share))
    steps_per_epoch = math.ceil(per_epoch / min(BATCH, per_epoch))
    return max(1, round(steps / steps_per_epoch)), per_epoch


def plan_finetune(
    n_images: int,
    *,
    n_new: int | None = None,
    upright: bool = False,
    replay_available: bool = True,
    device: str = "auto",
    threads: int | None = None,
    seed: int = 0,
    pool: int | None = None,
    steps: int = FIXED_STEPS,
    replay_share: float = REPLAY_SHARE,
) -> FinetunePlan:
    """The fine-tune recipe for ``n_images`` corrected images, ``n_new`` of them not yet
    learned by the starting model (default: all). ``pool``: the validation images the caller
    can hold out (the project's fixed pool; default :func:`pool_size`), 0 for none.
    ``steps`` and ``replay_share`` are there for the experiments that chose their defaults.

    Raises ``ValueError`` when there is nothing to learn: no images, or none new.
    """
    n_new = n_images if n_new is None else n_new
    if n_images < 1:
        raise ValueError("no corrected images to learn from: accept or correct some masks first")
    if n_new < 1:
        raise ValueError(f"the starting model has already learned all {n_images} reviewed images: "
                         "review or correct more images first")
    if not 0.0 <= replay_share < 1.0:
        raise ValueError(f"replay_share must be in [0, 1), not {replay_share}")
    pool = pool_size(n_images) if pool is None else pool
    if not 0 <= pool < n_images:
        raise ValueError(f"a validation pool of {pool} leaves none of the {n_images} images to train on")
    # objects with an up are not lesions: there is no dermoscopy to keep, so neither replay nor blend
    replay = replay_available and replay_share > 0 and not upright
    share = replay_share if replay else 0.0
    blend = 1.0 if upright else BLEND
    reasons = []
    if pool:
        epochs, per_epoch = MAX_EPOCHS, _epochs_for(n_images - pool, share, steps)[1]
        reasons.append(f"{n_images} images: {pool} held out as the fixed validation pool, early stopping on it "
                       f"(patience {PATIENCE} epochs); adopted only if it beats the starting model there")
    else:
        epochs, per_epoch = _epochs_for(n_images, share, steps)
        reasons.append(f"{n_images} images (fewer than {POOL_FROM}): all trained on, fixed schedule of about "
                       f"{steps} steps; the next images reviewed will tell how good it is")
    if replay:
        reasons.append(f"{round(share * 100)}% of each epoch replays the shipped dermoscopy images, "
                       "so the model keeps what it knew")
    if blend < 1.0:
        reasons.append(f"the weights kept are {blend:.0%} of the way from the starting model to the tuned one, "
                       "which keeps most of the gain and little of the forgetting")
    if upright:
        reasons.append("objects with an up (not lesions): no rotations, a higher learning rate and copy-paste; "
                       "no replay of dermoscopy, all of the tuning kept")
    if n_new < n_images:
        reasons.append(f"{n_new} of the {n_images} images are new to the starting model")
    augment = AugmentConfig(rotate=not upright, copy_paste=UPRIGHT_COPY_PASTE if upright else 0.0)
    config = TrainConfig(
        epochs=epochs, batch_size=BATCH, lr=UPRIGHT_LEARNING_RATE if upright else LEARNING_RATE, patience=PATIENCE if pool else None, freeze_bn=True,
        device=device, threads=threads, seed=seed, augment=augment,
        max_minutes=min(MANY_MINUTES, FEW_MINUTES + n_images / 20) if pool else FEW_MINUTES, anneal_by_time=True,
        source_shares={PROJECT_SOURCE: 1.0 - share, REPLAY_SOURCE: share} if replay else None,
        epoch_size=per_epoch if replay else None,
    )
    return FinetunePlan(config, n_images, n_new, pool, replay, tuple(reasons), blend)


def with_overrides(plan: FinetunePlan, **changes: Any) -> FinetunePlan:
    """The plan with some training settings changed by hand (the advanced options); the change
    is said in the reasons, so the model file records it."""
    if not changes:
        return plan
    said = ", ".join(f"{k} {v}" for k, v in changes.items())
    return replace(plan, config=replace(plan.config, **changes), reasons=(*plan.reasons, f"set by hand: {said}"))


def count_new(meta: dict[str, Any], stems: Iterable[str]) -> int:
    """How many of ``stems`` the model of ``meta`` has not trained on (its recorded training
    images): the ``n_new`` of :func:`plan_finetune`."""
    learned = set((meta.get("training") or {}).get("train_images") or [])
    return sum(1 for stem in stems if stem not in learned)
