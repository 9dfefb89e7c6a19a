"""Adopting a fine-tune result: a new model version in the registry and a round in the project,
or a plain refusal that keeps the starting model active.

A run that changed no weight (every epoch scored below the start, so training handed back the
starting weights) is not a new model: adding it would announce an improvement that does not
exist. ``min_gain`` lets a caller also refuse a run that does not beat its starting model on the
validation pool by that much.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from napari_nevseg.core.checkpoint import read_metadata, weights_digest
from napari_nevseg.core.errors import NevsegError

if TYPE_CHECKING:
    from napari_nevseg.core.project import Project
    from napari_nevseg.core.registry import ModelRegistry
    from napari_nevseg.core.training import TrainResult

__all__ = ["Adoption", "AdoptOutcome", "adopt_finetune", "adopted_message", "round_summary"]


class Adoption(str, Enum):
    ADOPTED = "adopted"  # a new version, now active
    UNCHANGED = "unchanged"  # the weights equal the starting model's, bit for bit
    NOT_BETTER = "not_better"  # validation Dice did not beat the start by ``min_gain``


@dataclass(frozen=True)
class AdoptOutcome:
    """What became of a fine-tune result; ``message`` is one line for the person."""

    kind: Adoption
    active: str  # the version active afterwards
    parent: str | None
    version: str | None = None  # the new version (only when adopted)
    weights_sha256: str | None = None  # of the result's weights
    metadata: dict[str, Any] | None = None  # the new version's metadata (to load it in a session)
    message: str = ""

    @property
    def adopted(self) -> bool:
        return self.kind is Adoption.ADOPTED


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def round_summary(result: TrainResult) -> dict[str, Any]:
    """The facts about a run that the registry and the project's rounds keep."""
    training = result.metadata["training"]
    sources = training.get("train_sources") or ["project"] * len(training["train_images"])
    replayed = [s for s, source in zip(training["train_images"], sources, strict=True) if source == "replay"]
    return {
        "train_images": [s for s in training["train_images"] if s not in replayed],
        **({"replayed": replayed} if replayed else {}),
        "val_images": training["val_images"],
        "val_dice_before": result.val_dice_before,
        "val_dice_after": result.val_dice_best,
        "seconds": round(result.seconds, 1),
        "best_epoch": result.best_epoch,
        "stopped_by": result.stopped_by,
    }


def adopted_message(version: str, parent: str | None, summary: dict[str, Any], seconds: float) -> str:
    """What a new version is, in words: better on the validation pool by how much, or untested
    yet when there was no pool to judge it by (a handful of images: the next reviews tell)."""
    before, after = summary["val_dice_before"], summary["val_dice_after"]
    n_train = len(summary["train_images"])
    if before is not None and after is not None:
        return (f"{version} needs fewer corrections on the {len(summary['val_images'])} validation images: "
                f"Dice {_fmt(before)} → {_fmt(after)} (learned from {n_train} images in {seconds:.0f} s)")
    return (f"{version} learned from all {n_train} reviewed images in {seconds:.0f} s and is active, "
            f"but it is untested yet: too few images to hold some out, so the next images you review "
            f"will tell whether it needs fewer corrections than {parent}")


def _parent_digest(registry: ModelRegistry, parent: str | None) -> str | None:
    if parent is None or parent not in registry.versions():
        return None
    return read_metadata(registry.path(parent)).get("weights_sha256")


def adopt_finetune(
    result: TrainResult,
    registry: ModelRegistry,
    project: Project,
    *,
    parent_weights_sha256: str | None = None,
    min_gain: float | None = None,
) -> AdoptOutcome:
    """Store ``result`` as a new active version and record the round, unless it changed nothing
    (or, with ``min_gain``, did not beat its start on validation by that much).

    ``parent_weights_sha256``: the starting model's weights digest when the caller knows it
    (the session's metadata); otherwise it is read from the parent's file in the registry.
    A refusal changes neither the registry nor the rounds; it is noted in the audit trail.
    """
    meta = result.metadata
    parent = meta.get("parent")
    digest = weights_digest(result.model.state_dict())
    start = parent_weights_sha256 or _parent_digest(registry, parent)
    summary = round_summary(result)
    before, after = result.val_dice_before, result.val_dice_best
    if start is not None and digest == start:
        message = (f"the fine-tuned model did not beat {parent} on the {len(summary['val_images'])} validation "
                   f"images (Dice {_fmt(before)}), so fine-tuning changed no weights: no new version, "
                   f"{registry.active} stays active") if before is not None else (
                   f"fine-tuning changed no weights (the result equals {parent} bit for bit): "
                   f"no new version, {registry.active} stays active")
        project.log("fine-tune not adopted", {"reason": Adoption.UNCHANGED.value, "parent": parent, **summary})
        return AdoptOutcome(Adoption.UNCHANGED, registry.active, parent, weights_sha256=digest, message=message)
    if min_gain is not None and before is not None and after is not None and after - before < min_gain:
        needs = f", needs +{min_gain:.3f}" if min_gain > 0 else ""
        message = (f"the fine-tuned model did not beat {parent} on the {len(summary['val_images'])} validation "
                   f"images (Dice {_fmt(before)} → {_fmt(after)}{needs}): no new version, "
                   f"{registry.active} stays active")
        project.log("fine-tune not adopted", {"reason": Adoption.NOT_BETTER.value, "parent": parent, **summary})
        return AdoptOutcome(Adoption.NOT_BETTER, registry.active, parent, weights_sha256=digest, message=message)
    previous = registry.active
    version = registry.add(result.model, meta, summary)
    try:
        project.add_round({"version": version, "parent": parent, **summary})
    except NevsegError:
        registry.set_active(previous)  # the version file stays; the project did not take it up
        raise
    message = adopted_message(version, parent, summary, result.seconds)
    return AdoptOutcome(Adoption.ADOPTED, version, parent, version, digest, {**meta, "version": version}, message)
