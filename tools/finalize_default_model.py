"""Turn a trained model file into the shipped default: record the inference settings chosen on
the validation images, the per-source scores of the images it never trained on, and the recipe,
in the file's metadata.

    python benchmarks/source_accuracy.py --model runs/default_clicks.safetensors --sets all \
        --json runs/accuracy.json
    python tools/finalize_default_model.py runs/default_clicks.safetensors \
        --accuracy runs/accuracy.json --tta 2 --threshold 0.5 [--second-look 0.1,1.5] --selection-note "..."

The scores are the ones ``benchmarks/source_accuracy.py`` measured with the final settings (it
must have run with the same ``--tta``): per source the mean and bootstrap 95% interval of Dice,
Jaccard and thresholded Jaccard, stored as ``metrics.by_source``; the PH2 test split's are also
stored as ``metrics.test_*`` with its Dice per diagnosis, as the PH2-only default did.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from napari_nevseg.core.checkpoint import load_model, save_model
from napari_nevseg.core.data import read_strata
from napari_nevseg.core.second_look import SecondLookSettings
from napari_nevseg.core.session import default_model_path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the repository
NAMES = {"ph2-test": "PH2 test", "isic-test": "ISIC 2017 test split", "dermquest": "DermQuest clinical photos"}


def by_source(summary: dict) -> dict[str, dict]:
    """The reported sets, named for people, each with its means and intervals."""
    out = {}
    for key, name in NAMES.items():
        if key in summary:
            row = summary[key]
            out[name] = {"n": row["n"], **{m: row[m]["mean"] for m in ("dice", "jaccard", "thresholded_jaccard")},
                         "intervals": {m: [row[m]["low"], row[m]["high"]]
                                       for m in ("dice", "jaccard", "thresholded_jaccard")}}
    return out


def ph2_metrics(per_image: dict[str, dict[str, float]], strata: dict[str, str]) -> dict:
    groups = defaultdict(list)
    for stem, s in per_image.items():
        groups[strata[stem]].append(s["dice"])
    return {
        "test_images": len(per_image),
        "test_dice": float(np.mean([s["dice"] for s in per_image.values()])),
        "test_jaccard": float(np.mean([s["jaccard"] for s in per_image.values()])),
        "test_thresholded_jaccard": float(np.mean([s["thresholded_jaccard"] for s in per_image.values()])),
        "test_dice_by_diagnosis": {g: float(np.mean(v)) for g, v in sorted(groups.items())},
        "test_dice_min": float(min(s["dice"] for s in per_image.values())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="the trained model file")
    parser.add_argument("--accuracy", type=Path, required=True, help="benchmarks/source_accuracy.py --json output")
    parser.add_argument("--selection-note", default="", help="what the validation images chose, in words")
    parser.add_argument("--tta", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--second-look", default="none", metavar="MARGIN,MIN_GAIN",
                        help="the automatic masks' second look (core/second_look.py), or 'none'")
    parser.add_argument("--data", type=Path, default=DATA, help="the folder holding ph2/ (for classes.csv)")
    parser.add_argument("--out", type=Path, default=default_model_path())
    args = parser.parse_args()

    model, meta = load_model(args.model, "cpu")
    accuracy = json.loads(args.accuracy.read_text())
    if Path(accuracy["model"]).resolve() != args.model.resolve():
        parser.error(f"{args.accuracy} measured {accuracy['model']}, not {args.model}")
    settings = accuracy.get("settings") or {}
    settings_look = SecondLookSettings.parse(args.second_look)
    look = settings_look.to_meta() if settings_look else None
    if (settings.get("box") or settings.get("tta") != args.tta or settings.get("threshold") != args.threshold
            or settings.get("second_look") != look):
        parser.error(f"{args.accuracy} was measured with {settings}; measure with --tta {args.tta}, "
                     f"threshold {args.threshold}, --second-look {args.second_look} and no --box")
    if "ph2-test" not in accuracy["summary"]:
        parser.error(f"{args.accuracy} lacks the PH2 test split: measure with --sets all")
    meta = {**meta, "version": "default", "tta": args.tta, "threshold": args.threshold}
    meta.pop("second_look", None)
    if look:
        meta["second_look"] = look
    meta.pop("weights_sha256", None)
    training = meta.get("training") or {}
    meta["selection"] = {
        "val_images": training.get("val_images"),
        "val_dice_working_size": (meta.get("metrics") or {}).get("val_dice"),
        "best_epoch": training.get("best_epoch"),
        "epochs": (training.get("config") or {}).get("epochs"),
        "note": args.selection_note,
    }
    summary = accuracy["summary"]
    meta["metrics"] = {
        **meta.get("metrics", {}),
        "val_dice_before": None,  # trained from scratch: the random start's score says nothing
        "by_source": by_source(summary),
        **ph2_metrics(accuracy["per_image"]["model"]["ph2-test"], read_strata(args.data / "ph2" / "classes.csv")),
    }
    save_model(args.out, model, meta)
    print(json.dumps(meta["metrics"], indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
