"""Turn a trained model file into the shipped default: record the inference settings chosen on
the validation split, the held-out test scores, and the recipe, in the file's metadata.

    python tools/finalize_default_model.py runs/default_final.safetensors \
        --selection runs/default_split.safetensors --tta 4 --threshold 0.5

The held-out test images are the ones recorded in the trained file (never trained or tuned on);
the scores are computed here with the final settings and stored as metrics.test_*.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from napari_nevseg.core.checkpoint import load_model, read_metadata, save_model
from napari_nevseg.core.data import find_pairs, load_pair, read_strata
from napari_nevseg.core.metrics import mean_scores, score
from napari_nevseg.core.session import ModelSession, default_model_path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ph2"  # ../shared/data beside the repository


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="the trained model file")
    parser.add_argument("--selection", type=Path, help="the run whose validation split chose the settings")
    parser.add_argument("--selection-note", default="")
    parser.add_argument("--tta", type=int, default=4)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--data", type=Path, default=DATA, help="the PH2 folder (images/, masks/, classes.csv)")
    parser.add_argument("--out", type=Path, default=default_model_path())
    args = parser.parse_args()

    model, meta = load_model(args.model, "cpu")
    meta = {**meta, "version": "default", "tta": args.tta, "threshold": args.threshold}
    meta.pop("weights_sha256", None)
    if args.selection:
        sel = read_metadata(args.selection)
        meta["selection"] = {
            "run": args.selection.name,
            "val_images": sel["training"]["val_images"],
            "val_dice_working_size": sel["metrics"].get("val_dice"),
            "best_epoch": sel["training"].get("best_epoch"),
            "epochs": sel["training"]["config"]["epochs"],
            "note": args.selection_note,
        }
    session = ModelSession(model, meta, torch.device("cpu"), "default")
    test = set(meta["training"].get("test_images") or [])
    strata = read_strata(args.data / "classes.csv")
    per_image, groups = {}, defaultdict(list)
    for pair in find_pairs(args.data / "images", args.data / "masks"):
        if pair.stem in test:
            image, mask = load_pair(pair)
            per_image[pair.stem] = score(session.predict(image).mask, mask)
            groups[strata[pair.stem]].append(per_image[pair.stem])
    summary = mean_scores(per_image)
    meta["metrics"] = {
        **meta.get("metrics", {}),
        "test_images": len(per_image),
        "test_dice": summary["dice"],
        "test_jaccard": summary["jaccard"],
        "test_thresholded_jaccard": summary["thresholded_jaccard"],
        "test_dice_by_diagnosis": {g: float(np.mean([s.dice for s in v])) for g, v in sorted(groups.items())},
        "test_dice_min": float(min(s.dice for s in per_image.values())),
    }
    save_model(args.out, model, meta)
    print(json.dumps(meta["metrics"], indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
