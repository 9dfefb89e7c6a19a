"""Rounds of annotation, as an annotator lives them, on a camera the model never saw (DermQuest).

Images come in a fixed, seeded order, in rounds of 10. Each image costs the clicks a simulated
annotator needs to reach IoU 0.90 from the active model's automatic mask (the protocol of
``nevseg evaluate --clicks``, ``core/click_eval.py``); its expert mask is then accepted. After
each round the active model is fine-tuned with the defaults (``core.training.plan`` through
``core.adapt.finetune``, the widget's code) on everything accepted so far, holding out a fixed
validation pool once there are enough images (chosen and grown as ``Project.ensure_validation``
does); a run that does not beat its start on the pool is not adopted, as in the widget.

    python benchmarks/annotation_rounds.py [--rounds 5] [--per-round 10] [--seed 0] [--json F]

Prints per round: the model, the automatic Dice of the round's images, the model's clicks per
image to IoU 0.90, the shipped model's on the same images (the rounds differ in difficulty), the
brush's (painting dabs), and the fine-tune that followed. The target:
clicks per image in rounds 2 to 5 at most 3.0 on average. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch

from napari_nevseg.core.adapt import finetune, run_to_end
from napari_nevseg.core.click_eval import evaluate_clicks
from napari_nevseg.core.data import find_pairs, load_pair
from napari_nevseg.core.metrics import dice
from napari_nevseg.core.project import grow_validation_pool
from napari_nevseg.core.session import ModelSession
from napari_nevseg.core.training.plan import POOL_MIN, count_new, plan_finetune, pool_size

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data beside the repository
MAX_CLICKS = 20


def grow_pool(pool: list[str], accepted: list[str], trained: set[str], seed: int) -> list[str]:
    """The fixed validation pool as the widget keeps it: none below the plan's threshold, then
    ``Project.ensure_validation``'s rule (a fifth, at least POOL_MIN, only grown, never from
    images trained on)."""
    if not pool_size(len(accepted)):
        return pool
    return grow_validation_pool(pool, accepted, trained, 0.2, POOL_MIN, seed)


def fine_tune(session: ModelSession, samples: dict, accepted: list[str], pool: list[str], threads: int):
    """One round's fine-tune with the default plan; the new session, or None if not adopted."""
    train_stems = [s for s in accepted if s not in pool]
    plan = plan_finetune(len(accepted), n_new=count_new(session.meta, accepted), pool=len(pool),
                         device="cpu", threads=threads)
    result = run_to_end(finetune(session.cpu_copy(), [samples[s] for s in train_stems], [samples[s] for s in pool], plan))
    before, after = result.val_dice_before, result.val_dice_best
    # as the widget adopts (core.adopt.adopt_finetune with min_gain 0 when there is a pool)
    adopted = not plan.validated or (result.best_epoch > 0 and after is not None and after >= before)
    info = {"regime": plan.to_meta()["regime"], "train": len(train_stems), "pool": len(pool),
            "seconds": round(result.seconds, 1), "val_before": before, "val_after": after, "adopted": adopted}
    return (ModelSession(result.model, result.metadata, session.device, "tuned") if adopted else None), info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--model", default="default")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="the order of the images")
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="training threads (default: the widget's, all cores but one)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    folder = args.data / "clinical_dermquest"
    pairs = find_pairs(folder / "images", folder / "masks")
    random.Random(args.seed).shuffle(pairs)
    pairs = pairs[: args.rounds * args.per_round]
    samples = {p.stem: (p.stem, *load_pair(p)) for p in pairs}
    shipped = ModelSession.load(args.model, "cpu")
    session, version = shipped, "default"
    accepted: list[str] = []
    pool: list[str] = []
    trained: set[str] = set()
    rows = []
    print(f"{'round':>5} {'model':>7} {'auto Dice':>9} {'clicks/img':>10} {'shipped':>8} {'brush/img':>9}   "
          "fine-tune after the round")
    for r in range(args.rounds):
        stems = [p.stem for p in pairs[r * args.per_round : (r + 1) * args.per_round]]
        batch = [samples[s] for s in stems]
        curves = evaluate_clicks(batch, session, MAX_CLICKS, modes=("model", "brush"))
        clicks = [c.clicks_to(0.90, MAX_CLICKS) for c in curves["model"]]
        brush = [c.clicks_to(0.90, MAX_CLICKS) for c in curves["brush"]]
        # the same images with the shipped model: the rounds differ in difficulty, this does not
        base = clicks if session is shipped else [
            c.clicks_to(0.90, MAX_CLICKS) for c in evaluate_clicks(batch, shipped, MAX_CLICKS)["model"]]
        auto = [dice(session.predict(image).mask, truth) for _, image, truth in batch]
        accepted += stems
        row = {"round": r + 1, "model": version, "auto_dice": float(np.mean(auto)), "clicks": float(np.mean(clicks)),
               "shipped_clicks": float(np.mean(base)), "brush": float(np.mean(brush)), "per_image_clicks": clicks,
               "images": stems}
        note = ""
        if r + 1 < args.rounds:
            pool = grow_pool(pool, accepted, trained, args.seed)
            started = time.perf_counter()
            tuned, info = fine_tune(session, samples, accepted, pool, args.threads)
            info["wall_s"] = round(time.perf_counter() - started, 1)
            if tuned is not None:
                session, version = tuned, f"v{r + 1}"
                trained |= {s for s in accepted if s not in pool}
            row["finetune"] = info
            val = (f", pool Dice {info['val_before']:.3f} -> {info['val_after']:.3f}"
                   if info["val_before"] is not None else "")
            note = (f"{info['regime']}: {info['train']} train + {info['pool']} pool, {info['seconds']:.0f} s{val}"
                    f"{'' if info['adopted'] else ', not adopted'}")
        rows.append(row)
        print(f"{r + 1:>5} {row['model']:>7} {row['auto_dice']:>9.3f} {row['clicks']:>10.2f} "
              f"{row['shipped_clicks']:>8.2f} {row['brush']:>9.2f}   {note}", flush=True)
    later = [row["clicks"] for row in rows[1:]]
    if later:
        shipped_later = np.mean([row["shipped_clicks"] for row in rows[1:]])
        print(f"clicks per image, rounds 2-{args.rounds}: {np.mean(later):.2f} (the shipped model on the same "
              f"images: {shipped_later:.2f}; brush {np.mean([row['brush'] for row in rows[1:]]):.2f})")
    if args.json:
        args.json.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "rounds": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
