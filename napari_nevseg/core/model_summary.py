"""A model version's metadata as a few sentences a person reads, not a JSON dump.

The Models tab shows what a reviewer needs to choose or roll back a version: where it comes
from, what it learned from, how good it measured, and when. Everything else in the metadata
(normalisation, the loss history, the exact training configuration) stays in the file for tools
and for ``nevseg``; it is not hidden, only not shown here.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from pathlib import PureWindowsPath
from typing import Any

__all__ = ["summarize_version", "describe_network", "describe_duration"]

_ARCH_NAMES = {"resunet": "ResUNet", "unet": "U-Net", "segnet": "SegNet"}


def describe_duration(seconds: float) -> str:
    """``41 s``, ``9 min 29 s``, ``2 h 05 min``."""
    total = int(round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _describe_date(stamp: str | None) -> str | None:
    if not stamp:
        return None
    try:
        when = _dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if when.tzinfo is not None:
        when = when.astimezone(_dt.timezone.utc)
    return f"{when.day} {when:%b %Y, %H:%M} UTC"


def _describe_params(params: Mapping[str, Any]) -> list[str]:
    parts = []
    for key, value in params.items():
        if key == "channels" and isinstance(value, list | tuple) and value:
            parts.append(f"channels {value[0]}–{value[-1]}")
        elif key == "norm":
            parts.append(f"{value} norm")
        elif key == "top":
            parts.append(f"{value} top")
        else:
            parts.append(f"{key.replace('_', ' ')} {value}")
    return parts


def describe_network(meta: Mapping[str, Any]) -> str:
    """``ResUNet (channels 16–256, instance norm, direct top), 1.6 million parameters;
    works at 256 × 192 px`` (the size joined by non-breaking spaces)."""
    arch = str(meta.get("arch", "unknown network"))
    text = _ARCH_NAMES.get(arch, arch)
    params = _describe_params(meta.get("arch_params") or {})
    if params:
        text += f" ({', '.join(params)})"
    count = meta.get("parameters")
    if isinstance(count, int | float) and count > 0:
        text += f", {count / 1e6:.1f} million parameters" if count >= 1e5 else f", {int(count):,} parameters"
    size = meta.get("work_size")
    if isinstance(size, list | tuple) and len(size) == 2:
        text += f"; works at {size[1]}\u00a0×\u00a0{size[0]}\u00a0px"  # no line break inside a size
    return text


def _origin(version: str, meta: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    imported = entry.get("imported_from") or meta.get("imported_from")
    parent = entry.get("parent") or meta.get("parent")
    if imported:
        return f"{version}: imported from {PureWindowsPath(str(imported)).name}"  # either separator
    if version == "default" and not parent:
        return "default: the model shipped with napari-nevseg"
    return f"{version}: fine-tuned from {parent}" if parent else f"{version}: trained from scratch"


def _training_line(training: Mapping[str, Any]) -> str | None:
    if not training:
        return None
    sources = training.get("train_sources") or []
    n_replayed = sum(source == "replay" for source in sources)
    n_train = len(training.get("train_images") or []) - n_replayed
    n_val = len(training.get("val_images") or [])
    text = f"learned from {n_train:,} image{'s' if n_train != 1 else ''}"
    text += f" (and {n_replayed} replayed dermoscopy images)" if n_replayed else ""
    text += f", validated on {n_val:,}" if n_val else " (no validation images)"
    epochs_run = training.get("epochs_run")
    planned = (training.get("config") or {}).get("epochs")
    if epochs_run is not None:
        text += f"; {epochs_run} of {planned} epochs" if planned and planned != epochs_run else f"; {epochs_run} epochs"
    stopped = training.get("stopped_by")
    if stopped and stopped != "epochs":
        text += f" ({stopped})"
    if training.get("seconds") is not None:
        text += f" in {describe_duration(float(training['seconds']))}"
    device = str(training.get("device") or "")
    if device:
        text += f" on {device.upper() if device in ('cpu', 'cuda', 'mps') else device}"
    return text


def _metric_lines(metrics: Mapping[str, Any]) -> list[str]:
    lines = []
    after, before = metrics.get("val_dice"), metrics.get("val_dice_before")
    if after is not None:
        lines.append(f"validation Dice {before:.3f} → {after:.3f}" if before is not None else f"validation Dice {after:.3f}")
    if after is None and metrics.get("train_dice_after") is not None:
        lines.append(f"untested yet (no validation pool); on the images it learned from, Dice "
                     f"{metrics['train_dice_before']:.3f} → {metrics['train_dice_after']:.3f}")
    by_source = metrics.get("by_source") or {}
    for name, row in by_source.items():
        lines.append(f"{name} ({row['n']} images, never trained on): Dice {row['dice']:.3f}, "
                     f"Jaccard {row['jaccard']:.3f}")
    if metrics.get("test_dice") is not None and not by_source:
        text = f"held-out test Dice {metrics['test_dice']:.3f}"
        if metrics.get("test_jaccard") is not None:
            text += f", Jaccard {metrics['test_jaccard']:.3f}"
        if metrics.get("test_images"):
            text += f" on {metrics['test_images']} images"
        if metrics.get("test_dice_min") is not None:
            text += f" (worst image {metrics['test_dice_min']:.3f})"
        lines.append(text)
    by_diagnosis = metrics.get("test_dice_by_diagnosis") or {}
    if by_diagnosis:
        lines.append("Dice by diagnosis: " + " · ".join(
            f"{name.replace('_', ' ')} {value:.3f}" for name, value in sorted(by_diagnosis.items())))
    return lines


def summarize_version(version: str, meta: Mapping[str, Any], entry: Mapping[str, Any] | None = None) -> list[str]:
    """Lines describing one model version, most important first (the first is its title).

    ``meta`` is the model file's metadata, ``entry`` the registry's record of the version
    (parent, import source, creation date), which wins where both say something.
    """
    entry = entry or {}
    lines = [_origin(version, meta, entry)]
    created = _describe_date(entry.get("created") or meta.get("created"))
    if created:
        lines.append(f"created {created}")
    lines.append(describe_network(meta))
    training = meta.get("training") or {}
    training_line = _training_line(training)
    if training_line:
        lines.append(training_line)
    augment = (training.get("config") or {}).get("augment") or {}
    if augment.get("rotate") is False:
        lines.append("upright: trained without rotations, predicts without upside-down flips")
    plan = training.get("plan") or {}
    if plan:
        lines.append(_plan_line(plan))
    if meta.get("clicks"):
        lines.append("takes clicks (positive, negative, box) as well as predicting on its own")
    lines += _metric_lines(meta.get("metrics") or {})
    return lines


def _plan_line(plan: Mapping[str, Any]) -> str:
    """The fine-tune recipe the data chose (``core.training.plan``), in one line."""
    judged = (f"{plan.get('pool', 0)} held out to judge it" if plan.get("regime") == "validation pool"
              else "none held out: judged by the next reviews")
    extras = [x for x, on in (("dermoscopy replayed", plan.get("replay")),
                              (f"blended {plan.get('blend', 1.0):.0%} toward the tuned weights",
                               plan.get("blend", 1.0) < 1.0)) if on]
    return f"fine-tune recipe: {plan.get('regime')}, {plan.get('images')} images, {judged}" + (
        f"; {', '.join(extras)}" if extras else "")
