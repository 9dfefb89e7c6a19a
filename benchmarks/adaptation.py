"""Fine-tuning with the defaults, measured: a seeded draw of 10 corrected images, fine-tuned with
the plan the widget and ``nevseg train --init`` choose (``core.training.plan``, run by
``core.adapt.finetune``), then Dice on the draw's other images and on the dermoscopy the model
knew, before and after, with paired bootstrap 95% intervals.

    python benchmarks/adaptation.py dermquest --draws 0              # a new camera + forgetting (test sets)
    python benchmarks/adaptation.py person --upright --draws 0-4     # the body-segmentation lab
    python benchmarks/adaptation.py dermquest --draws 1 --forgetting val --anchor 0.01   # choosing

``--forgetting test`` scores the PH2 test split (32) and the ISIC test split (200): report with
it; ``val`` scores PH2 validation (25) and ISIC 2017 val (150): choose with it. Training runs
with the widget's thread count (all cores but one) unless ``--threads`` says otherwise; scoring
uses every core. ``--data`` holds clinical_dermquest/, human_seg/, ph2/ and isic2017/ (default:
../shared/data beside the repository). Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from napari_nevseg.core.adapt import dice_per_image, finetune, run_to_end
from napari_nevseg.core.data import find_pairs, load_pair
from napari_nevseg.core.intervals import bootstrap_mean, paired_difference
from napari_nevseg.core.postprocess import Cleanup
from napari_nevseg.core.session import ModelSession
from napari_nevseg.core.sources import default_sources
from napari_nevseg.core.training.blend import blend_weights
from napari_nevseg.core.training.plan import (
    FIXED_STEPS,
    REPLAY_SHARE,
    plan_finetune,
    pool_size,
    with_overrides,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the repository
FOLDERS = {"dermquest": "clinical_dermquest", "person": "human_seg"}


def parse_draws(text: str) -> list[int]:
    """``"0-4"`` or ``"0,3"``: the seeds of the draws."""
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(x) for x in text.split(",")]


def load_samples(folder: Path) -> list[tuple]:
    return [(p.stem, *load_pair(p)) for p in find_pairs(folder / "images", folder / "masks")]


def forgetting_sets(data: Path, which: str) -> dict[str, list[tuple]]:
    """The dermoscopy the model knew: validation sets to choose with, test sets to report."""
    if which == "none":
        return {}
    splits = default_sources(data)
    ph2, isic = splits["ph2"], splits["isic2017"]
    chosen = {"ph2-test": ph2.test, "isic-test": isic.test} if which == "test" else {"ph2-val": ph2.val, "isic-val": isic.val}
    return {name: [(p.stem, *load_pair(p)) for p in pairs] for name, pairs in chosen.items()}


def run_training(session: ModelSession, train_samples: list, pool_samples: list, plan) -> tuple:
    """Fine-tune as the widget does; the tuned session and the run's result."""
    result = run_to_end(finetune(session.cpu_copy(), train_samples, pool_samples, plan))
    return ModelSession(result.model, result.metadata, session.device, "fine-tuned"), result


def _row(before: np.ndarray, after: np.ndarray) -> dict:
    diff = paired_difference(after, before)
    return {"n": len(before), "before": float(before.mean()), "after": bootstrap_mean(after).__dict__,
            "difference": diff.__dict__}


def _say(name: str, row: dict) -> None:
    a, d = row["after"], row["difference"]
    print(f"  {name:10s} ({row['n']:3d}): {row['before']:.3f} -> {a['mean']:.3f} [{a['low']:.3f}, {a['high']:.3f}]"
          f"   difference {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=tuple(FOLDERS))
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", default="default")
    parser.add_argument("--n-train", type=int, default=10)
    parser.add_argument("--draws", default="0", help="seeds of the draws: 0-4 or 0,2")
    parser.add_argument("--upright", action="store_true", help="objects have an up (people)")
    parser.add_argument("--forgetting", choices=("test", "val", "none"), default="test")
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="training threads (default: the widget's, all cores but one)")
    parser.add_argument("--pool", type=int, default=None,
                        help="experiments: hold out this many of the corrected images to early-stop on "
                        "(default: the plan's, none below 20)")
    parser.add_argument("--steps", type=int, default=FIXED_STEPS, help="experiments: the fixed schedule's steps")
    parser.add_argument("--replay-share", type=float, default=REPLAY_SHARE, help="experiments: 0 turns replay off")
    parser.add_argument("--anchor", type=float, default=None, help="experiments: L2-SP weight toward the start")
    parser.add_argument("--lr", type=float, default=None, help="experiments: learning rate")
    parser.add_argument("--copy-paste", type=float, default=None,
                        help="experiments: probability of pasting another training image's object in")
    parser.add_argument("--blends", default=None,
                        help="experiments: score these blends toward the start (e.g. 1,0.75,0.5) of one run "
                        "instead of the plan's")
    parser.add_argument("--trainable", default=None, help="experiments: all | norms | early | late")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    session = ModelSession.load(args.model, "cpu")
    samples = load_samples(args.data / FOLDERS[args.experiment])
    cleanup = Cleanup()  # the widget's default clean-up (largest region, holes filled, smoothed)
    known = forgetting_sets(args.data, args.forgetting)
    known_before = {name: dice_per_image(session, s, cleanup) for name, s in known.items()}
    report: dict = {"settings": {k: str(v) for k, v in vars(args).items()}, "draws": []}
    for seed in parse_draws(args.draws):
        order = list(samples)
        random.Random(seed).shuffle(order)
        labelled, evaluation = order[: args.n_train], order[args.n_train :]
        n_pool = pool_size(len(labelled)) if args.pool is None else args.pool
        train_s, pool_s = labelled[n_pool:], labelled[:n_pool]
        plan = plan_finetune(len(labelled), upright=args.upright, device="cpu", threads=args.threads, seed=seed,
                             pool=n_pool, steps=args.steps, replay_share=args.replay_share)
        overrides = {k: v for k, v in (("anchor", args.anchor), ("lr", args.lr), ("trainable", args.trainable))
                     if v is not None}
        if args.copy_paste is not None:
            overrides["augment"] = replace(plan.config.augment, copy_paste=args.copy_paste)
        plan = with_overrides(plan, **overrides)
        blends = [float(a) for a in args.blends.split(",")] if args.blends else [plan.blend]
        plan = replace(plan, blend=1.0) if args.blends else plan
        before = dice_per_image(session, evaluation, cleanup)
        started = time.perf_counter()
        tuned, result = run_training(session, train_s, pool_s, plan)
        seconds = time.perf_counter() - started
        val = (f", pool of {len(pool_s)}: Dice {result.val_dice_before:.3f} -> {result.val_dice_best:.3f} "
               f"(best epoch {result.best_epoch})" if pool_s else "")
        print(f"draw {seed}: trained on {[s for s, _, _ in train_s]} in {seconds:.0f} s "
              f"({len(result.history)} epochs, {result.stopped_by}){val}", flush=True)
        for alpha in blends:
            model = tuned if not args.blends or alpha == 1.0 else ModelSession(
                blend_weights(session.model, tuned.model, alpha), result.metadata, session.device, "blended")
            if args.blends:
                print(f" blend {alpha}:")
            rows = {args.experiment: _row(before, dice_per_image(model, evaluation, cleanup))}
            for name, s in known.items():
                rows[name] = _row(known_before[name], dice_per_image(model, s, cleanup))
            for name, row in rows.items():
                _say(name, row)
            report["draws"].append({"seed": seed, "blend": alpha, "train": [s for s, _, _ in train_s],
                                    "pool": [s for s, _, _ in pool_s], "seconds": round(seconds, 1), "epochs": len(result.history),
                                    "stopped_by": result.stopped_by, "rows": rows})
    if len(report["draws"]) > 1:
        means = [d["rows"][args.experiment]["after"]["mean"] for d in report["draws"]]
        print(f"{args.experiment}: mean over {len(means)} draws {np.mean(means):.3f} "
              f"(each: {', '.join(f'{m:.3f}' for m in means)})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
