"""The experiment that chose core/second_look.py: an automatic mask, then one more pass of the
network in a window around it, as a click's "focus" step does (FocalClick, nnInteractive), but
with no click (through the box path; the model's own second look, if it has one, is turned off).

A lesion that is a few percent of a large photo is a few dozen pixels wide at the working
resolution; the window around the first mask gives the second pass several times more of its
pixels. The second pass is the box path of ``ModelSession.predict`` (the automatic mask's
bounding box, widened by ``margin`` of its size on each side, the automatic mask as the prior).
Prints mean Dice per set (and on lesions under 10% of the image): automatic, refined
everywhere, and refined only where the window gives the lesion at least ``--gain`` times the
first pass's linear resolution (images at the working size, such as the shared ISIC copies,
gain nothing from a second look).

    python benchmarks/focus_probe.py [--margins 0.1,0.25] [--gains 1.5,2] [--sets dermquest,val]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adaptation import DATA, forgetting_sets, load_samples  # noqa: E402

from napari_nevseg.core.metrics import dice  # noqa: E402
from napari_nevseg.core.session import ModelSession  # noqa: E402
from napari_nevseg.core.window import focus_window, resolution_gain  # noqa: E402


def widened_box(mask: np.ndarray, margin: float) -> tuple[int, int, int, int] | None:
    """The mask's bounding box widened by ``margin`` of its size on each side (None: empty)."""
    rows, cols = np.nonzero(mask)
    if not len(rows):
        return None
    h, w = mask.shape
    dr, dc = (rows.max() - rows.min() + 1) * margin, (cols.max() - cols.min() + 1) * margin
    return (max(0, int(rows.min() - dr)), max(0, int(cols.min() - dc)),
            min(h - 1, int(rows.max() + dr)), min(w - 1, int(cols.max() + dc)))


def _mean(values: np.ndarray, small: np.ndarray) -> str:
    return f"{values.mean():.3f} (small {values[small].mean() if small.any() else float('nan'):.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--margins", default="0.1,0.25")
    parser.add_argument("--gains", default="1.5,2")
    parser.add_argument("--sets", default="dermquest,val", help="dermquest and val (PH2 val, ISIC val) or test")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    session = ModelSession.load(args.model, "cpu")
    session.predictor.second_look = None  # the first pass alone; the probe takes the second look itself
    margins, gains = [float(m) for m in args.margins.split(",")], [float(g) for g in args.gains.split(",")]
    sets: dict[str, list] = {}
    for name in args.sets.split(","):
        sets.update({"dermquest": load_samples(args.data / "clinical_dermquest")} if name == "dermquest"
                    else forgetting_sets(args.data, name))
    for name, samples in sets.items():
        auto, small, refined, gain_of = [], [], {m: [] for m in margins}, {m: [] for m in margins}
        for _, image, mask in samples:
            first = session.predict(image).mask
            auto.append(dice(first, mask))
            small.append(mask.mean() < 0.1)
            for m in margins:
                box = widened_box(first, m)
                if box is None:
                    refined[m].append(auto[-1])
                    gain_of[m].append(1.0)
                    continue
                window = focus_window(first.shape, session.predictor.work_hw, first, [], box)
                gain_of[m].append(resolution_gain(first.shape, session.predictor.work_hw, window))
                refined[m].append(dice(session.predict(image, box=box, prior=first).mask, mask))
        auto_a, small_a = np.array(auto), np.array(small)
        print(f"{name} ({len(samples)} images, {small_a.sum()} lesions under 10%): automatic {_mean(auto_a, small_a)}")
        for m in margins:
            ref, gain = np.array(refined[m]), np.array(gain_of[m])
            parts = [f"margin {m}: refined everywhere {_mean(ref, small_a)}"]
            for g in gains:
                parts.append(f"where gain >= {g} ({(gain >= g).mean():.0%}): {_mean(np.where(gain >= g, ref, auto_a), small_a)}")
            print("  " + "; ".join(parts), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
