"""Adopt a fine-tune result: store it as a new model version and record the round.

A domain step, so it lives here (tested without Qt), not in the widget's slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from napari_nevseg.core.project import Project
    from napari_nevseg.core.registry import ModelRegistry
    from napari_nevseg.core.training import TrainResult

__all__ = ["Adoption", "adopt_finetune", "round_summary"]


@dataclass(frozen=True)
class Adoption:
    """What became of a fine-tune: ``version`` is the new active version, or None when the
    previous model stays active (``message`` says why, in one line)."""

    version: str | None
    message: str


def round_summary(result: TrainResult) -> dict[str, Any]:
    """The registry and project entry of one fine-tune round."""
    training = result.metadata["training"]
    return {
        "train_images": training["train_images"],
        "val_images": training["val_images"],
        "val_dice_before": result.val_dice_before,
        "val_dice_after": result.val_dice_best,
        "seconds": round(result.seconds, 1),
        "best_epoch": result.best_epoch,
        "stopped_by": result.stopped_by,
    }


def adopt_finetune(project: Project, registry: ModelRegistry, result: TrainResult) -> Adoption:
    """Store ``result`` as the next version (active) and add the round to the project.

    Raises NevsegError when the version cannot be written; nothing is recorded then.
    """
    summary = round_summary(result)
    version = registry.add(result.model, result.metadata, summary)
    project.add_round({"version": version, "parent": result.metadata.get("parent"), **summary})
    before = "n/a" if result.val_dice_before is None else f"{result.val_dice_before:.3f}"
    after = "n/a" if result.val_dice_best is None else f"{result.val_dice_best:.3f}"
    return Adoption(version, f"new model {version}: validation Dice {before} → {after} "
                             f"(best epoch {result.best_epoch}, {result.seconds:.0f} s, {result.stopped_by})")
