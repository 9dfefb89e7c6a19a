"""Accuracy of a model per source, with bootstrap 95% intervals, and paired against another.

The default model's sets (``napari_nevseg/core/sources.py``): PH2 test (32) and validation (25),
ISIC 2017 validation (150) and this project's ISIC test split (200 of isic2017/train, seed
2017), and the 137 DermQuest clinical photos (never trained on). Each image is predicted at its
full resolution with the model's own settings (flips, threshold, clean-up) and scored against
its expert mask: Dice, Jaccard, thresholded Jaccard (0 below 0.65).

    .venv/bin/python benchmarks/source_accuracy.py --model runs/default_clicks.safetensors \
        --reference napari_nevseg/models/default.safetensors --sets all --json runs/acc.json

``--box``: each image is predicted from a box prompt instead, the expert mask's bounding box
widened by 5% of its size on each side, with an empty prior (the box is all that is known:
``ModelSession.predict(image, box=..., prior=empty)``, so the mask is what the network draws
inside the box).
``--reference``: a second model scored on the same images; its scores and the paired
difference (model minus reference, images resampled together) are printed too. ``--sets``:
``all``, ``validation`` (PH2 val + ISIC val: the sets that choose settings) or a comma list of
``ph2-test,ph2-val,isic-val,isic-test,dermquest``. Results: docs/model.md, docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from napari_nevseg.core.data import Pair, find_pairs
from napari_nevseg.core.image_io import read_image, read_mask
from napari_nevseg.core.intervals import bootstrap_mean, paired_difference
from napari_nevseg.core.metrics import score
from napari_nevseg.core.second_look import SecondLookSettings
from napari_nevseg.core.session import ModelSession
from napari_nevseg.core.sources import default_sources

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ("ph2-test", "ph2-val", "isic-val", "isic-test", "dermquest")
GROUPS = {"all": SETS, "validation": ("ph2-val", "isic-val"), "test": ("ph2-test", "isic-test", "dermquest")}
METRICS = ("dice", "jaccard", "thresholded_jaccard")


def set_pairs(data: Path, names: tuple[str, ...]) -> dict[str, tuple[Pair, ...]]:
    """The pairs of each named set, from the fixed splits."""
    splits = default_sources(data)
    ph2, isic = splits["ph2"], splits["isic2017"]
    table = {"ph2-test": lambda: ph2.test, "ph2-val": lambda: ph2.val, "isic-val": lambda: isic.val,
             "isic-test": lambda: isic.test,
             "dermquest": lambda: tuple(find_pairs(data / "clinical_dermquest" / "images",
                                                   data / "clinical_dermquest" / "masks"))}
    return {name: table[name]() for name in names}


def expert_box(mask: np.ndarray, margin: float = 0.05) -> tuple[int, int, int, int]:
    """The mask's bounding box widened by ``margin`` of its height and width on each side."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    dr, dc = margin * (rows[-1] - rows[0] + 1), margin * (cols[-1] - cols[0] + 1)
    h, w = mask.shape
    return (max(0, round(rows[0] - dr)), max(0, round(cols[0] - dc)),
            min(h - 1, round(rows[-1] + dr)), min(w - 1, round(cols[-1] + dc)))


def per_image_scores(session: ModelSession, pairs: tuple[Pair, ...], box: bool = False) -> dict[str, dict[str, float]]:
    """``{stem: {dice, jaccard, thresholded_jaccard}}`` at full resolution, automatic or from
    the expert box (``box``; an image without lesion is then skipped)."""
    out = {}
    for pair in pairs:
        image = read_image(pair.image)
        mask = read_mask(pair.mask, image.shape[:2])
        if box and not mask.any():
            continue
        if box:  # the box alone: nothing else is known, so the prior is empty
            predicted = session.predict(image, box=expert_box(mask), prior=np.zeros(mask.shape, bool))
        else:
            predicted = session.predict(image)
        s = score(predicted.mask, mask)
        out[pair.stem] = {"dice": s.dice, "jaccard": s.jaccard, "thresholded_jaccard": s.thresholded_jaccard}
    return out


def summary(scores: dict[str, dict[str, float]], reference: dict[str, dict[str, float]] | None) -> dict:
    stems = sorted(scores)
    row: dict = {"n": len(stems)}
    for metric in METRICS:
        values = [scores[s][metric] for s in stems]
        row[metric] = _as_dict(bootstrap_mean(values))
        if reference is not None:
            ref = [reference[s][metric] for s in stems]
            row[f"reference_{metric}"] = _as_dict(bootstrap_mean(ref))
            row[f"difference_{metric}"] = _as_dict(paired_difference(values, ref))
    return row


def _as_dict(interval) -> dict[str, float]:
    return {"mean": interval.mean, "low": interval.low, "high": interval.high}


def _fmt(cell: dict[str, float]) -> str:
    return f"{cell['mean']:.4f} [{cell['low']:.4f}, {cell['high']:.4f}]"


def print_table(rows: dict[str, dict], with_reference: bool) -> None:
    for name, row in rows.items():
        print(f"{name} ({row['n']} images)")
        for metric in METRICS:
            line = f"  {metric:<20} model {_fmt(row[metric])}"
            if with_reference:
                line += f"  reference {_fmt(row[f'reference_{metric}'])}  difference {_fmt(row[f'difference_{metric}'])}"
            print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' or a model file")
    parser.add_argument("--reference", default=None, help="a second model, scored on the same images")
    parser.add_argument("--sets", default="all", help="all, validation, test or a comma list of " + ",".join(SETS))
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tta", type=int, choices=(1, 2, 4), default=None,
                        help="test-time flips of --model instead of its own setting (the reference keeps its own)")
    parser.add_argument("--box", action="store_true", help="predict from the expert box (+5%% margin) instead")
    parser.add_argument("--second-look", default=None, metavar="MARGIN,MIN_GAIN",
                        help="the second look of --model instead of its own setting ('none': without)")
    parser.add_argument("--json", type=Path, default=None, help="also write per-image scores and the summary")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    names = GROUPS.get(args.sets) or tuple(s.strip() for s in args.sets.split(","))
    unknown = sorted(set(names) - set(SETS))
    if unknown:
        parser.error(f"unknown sets {unknown}; choose from {', '.join(SETS)}")
    pairs = set_pairs(args.data, names)
    sessions = {"model": ModelSession.load(args.model, "cpu")}
    if args.reference:
        sessions["reference"] = ModelSession.load(args.reference, "cpu")
    if args.tta is not None:
        sessions["model"].predictor.tta = args.tta
    if args.second_look is not None:
        sessions["model"].predictor.second_look = SecondLookSettings.parse(args.second_look)
    started = time.perf_counter()
    scores = {role: {name: per_image_scores(s, pairs[name], args.box) for name in names}
              for role, s in sessions.items()}
    rows = {name: summary(scores["model"][name], scores.get("reference", {}).get(name)) for name in names}
    print(f"model {args.model}" + (f", reference {args.reference}" if args.reference else "")
          + (", from the expert box + 5%" if args.box else "")
          + f"; {time.perf_counter() - started:.0f} s; mean [bootstrap 95% interval], 10000 resamples")
    print_table(rows, args.reference is not None)
    if args.json:
        predictor = sessions["model"].predictor
        look = predictor.second_look.to_meta() if predictor.second_look else None
        settings = {"tta": predictor.tta, "threshold": predictor.threshold, "box": args.box, "second_look": look,
                    "sets": list(names)}
        args.json.write_text(json.dumps({"model": args.model, "reference": args.reference, "settings": settings,
                                         "summary": rows, "per_image": scores}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
