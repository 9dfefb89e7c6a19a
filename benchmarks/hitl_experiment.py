"""Human in the loop, measured: fine-tune the default lesion model on 10 corrected masks and
score the images it did not see, before and after, with the code the fine-tune widget runs
(``core.adapt.finetune_and_score``).

    python benchmarks/hitl_experiment.py person      # 10 person photos -> Dice on the other 82
    python benchmarks/hitl_experiment.py person --n-val 0 --epochs 150 --lr 2e-3 --upright --keep-largest \
        --copy-paste 0.5 --colour-strength 2 --ema 0.99        # the person recipe (docs/experiments.md)
    python benchmarks/hitl_experiment.py ph2-shift   # 10 colour-shifted PH2 test images -> the rest

``--data`` holds human_seg/ and ph2/ (default: ../shared/data beside the repository; never
shipped). Prints one line per epoch and a summary; --json writes it. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

from napari_nevseg.core.adapt import colour_shift, finetune_and_score
from napari_nevseg.core.augment import AugmentConfig
from napari_nevseg.core.data import find_pairs, load_pair
from napari_nevseg.core.postprocess import Cleanup
from napari_nevseg.core.session import ModelSession
from napari_nevseg.core.training import TrainConfig

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the repository


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", choices=("person", "ph2-shift"))
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding human_seg/ and ph2/ (default: %(default)s)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--n-train", type=int, default=10, help="corrected masks to fine-tune on")
    parser.add_argument("--n-val", type=int, default=2, help="of those, kept for early stopping")
    parser.add_argument("--minutes", type=float, default=1.7, help="training time budget")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--unfreeze-bn", action="store_true", help="let BatchNorm statistics adapt")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--upright", action="store_true",
                        help="augment without rotations (people stand up; lesions have no up or down)")
    parser.add_argument("--copy-paste", type=float, default=0.0,
                        help="probability of pasting another training image's object into each image")
    parser.add_argument("--colour-strength", type=float, default=1.0,
                        help="widen every colour jitter this many times (photographs vary more than dermoscopes)")
    parser.add_argument("--ema", type=float, default=None, help="keep a moving average of the weights with this decay per step")
    parser.add_argument("--keep-largest", action="store_true", help="person masks: keep only the largest region")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    session = ModelSession.load(args.model, "cpu")
    if args.experiment == "person":
        pairs = find_pairs(args.data / "human_seg" / "images", args.data / "human_seg" / "masks")
        samples = [(p.stem, *load_pair(p)) for p in pairs]
        cleanup = Cleanup(keep_largest=args.keep_largest, fill_holes=True, smooth=True)
    else:
        held_out = set(session.meta.get("training", {}).get("test_images") or [])
        pairs = [p for p in find_pairs(args.data / "ph2" / "images", args.data / "ph2" / "masks") if p.stem in held_out]
        if not pairs:
            print("the model records no held-out PH2 images", file=sys.stderr)
            return 2
        samples = [(p.stem, colour_shift(img), mask) for p in pairs for img, mask in [load_pair(p)]]
        cleanup = Cleanup()
    random.Random(args.seed).shuffle(samples)
    labelled, evaluation = samples[: args.n_train], samples[args.n_train :]
    train_s, val_s = labelled[args.n_val :], labelled[: args.n_val]
    augment = AugmentConfig(rotate=not args.upright, copy_paste=args.copy_paste).with_colour_strength(args.colour_strength)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                         freeze_bn=not args.unfreeze_bn, max_minutes=args.minutes, threads=args.threads,
                         device="cpu", seed=args.seed, ema_decay=args.ema, augment=augment)
    started = time.perf_counter()

    def show(p):
        if p.val_dice is not None:
            print(f"  epoch {p.epoch}: loss {p.epoch_loss:.3f} val Dice {p.val_dice:.3f} ({p.elapsed_s:.0f} s)", flush=True)

    report, _ = finetune_and_score(session, train_s, val_s, evaluation, config, cleanup, show)
    total = time.perf_counter() - started
    print(f"{args.experiment}: fine-tuned on {report.n_train} (+{report.n_val} for early stopping) in "
          f"{report.seconds:.0f} s training ({report.epochs_run} epochs, {report.stopped_by}); "
          f"Dice on the other {report.n_eval}: {report.dice_before:.3f} -> {report.dice_after:.3f} "
          f"({total:.0f} s with evaluation)")
    if args.json:
        args.json.write_text(json.dumps({**vars(report), "experiment": args.experiment, "config": vars(args) | {"data": str(args.data), "json": str(args.json)}}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
