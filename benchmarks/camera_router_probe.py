"""Experiment (not the product): would routing each image to the weights that know its camera
beat blending?

A fine-tune on a new camera's few photos forgets dermoscopy unless its weights are blended back
toward the start, and the blend gives back part of the gain (docs/experiments.md). A project's
images mostly come from one camera, so another way is to keep both weight sets and send each
image to the one whose training images it looks like. This probe measures that on a *choosing*
draw: it fine-tunes without a blend (the plan otherwise as the widget runs it), describes each
image by the per-channel mean and spread of the start model's first encoder stages (the look of
a camera: colour, light, texture), and routes an image to the tuned weights when it lies nearer
the new photos than dermoscopy (training images of PH2 and ISIC, never a reported split), by a
standardised nearest-centroid distance. It prints how images were routed and the Dice of the
routed pair beside the start, the tuned and the plan's blend.

    python benchmarks/camera_router_probe.py --draw 1
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adaptation import DATA, forgetting_sets, load_samples, run_training  # noqa: E402

from napari_nevseg.core.adapt import dice_per_image  # noqa: E402
from napari_nevseg.core.data import load_pair  # noqa: E402
from napari_nevseg.core.postprocess import Cleanup  # noqa: E402
from napari_nevseg.core.session import ModelSession  # noqa: E402
from napari_nevseg.core.sources import default_sources  # noqa: E402
from napari_nevseg.core.training.blend import blend_weights  # noqa: E402
from napari_nevseg.core.training.plan import plan_finetune, pool_size  # noqa: E402


def look(session: ModelSession, image: np.ndarray) -> np.ndarray:
    """Per-channel mean and standard deviation of the first two encoder stages' outputs."""
    seen: list[torch.Tensor] = []
    hooks = [stage.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
             for stage in list(session.predictor._net.encoder)[:2]]  # the copy inference runs
    try:
        session.predict(image)
    finally:
        for hook in hooks:
            hook.remove()
    if not seen or len(seen) % 2:
        raise RuntimeError(f"the automatic path ran the hooked stages {len(seen)} times")
    # test-time flips run the stages once per pass; spatial means and spreads do not see a flip
    return torch.cat([torch.cat([t.mean((2, 3))[0], t.std((2, 3))[0]]) for t in seen]).numpy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draw", type=int, default=1)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--reference", type=int, default=120, help="dermoscopy training images to describe")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    session = ModelSession.load("default", "cpu")
    order = load_samples(args.data / "clinical_dermquest")
    random.Random(args.draw).shuffle(order)
    labelled, evaluation = order[:10], order[10:]
    plan = plan_finetune(10, device="cpu", threads=max(1, (os.cpu_count() or 2) - 1), seed=args.draw,
                         pool=pool_size(10))
    splits = default_sources(args.data)
    train_pairs = list(splits["isic2017"].train) + list(splits["ph2"].train)
    random.Random(0).shuffle(train_pairs)
    derm = np.stack([look(session, load_pair(p)[0]) for p in train_pairs[: args.reference]])
    new = np.stack([look(session, image) for _, image, _ in labelled])
    scale = np.sqrt((derm.var(0) + new.var(0)) / 2) + 1e-6
    tuned, _ = run_training(session, labelled, [], replace(plan, blend=1.0))
    blended = ModelSession(blend_weights(session.model, tuned.model, plan.blend), tuned.meta, session.device, "blend")

    def to_new_camera(image: np.ndarray) -> bool:
        f = look(session, image)
        return np.linalg.norm((f - new.mean(0)) / scale) < np.linalg.norm((f - derm.mean(0)) / scale)

    sets = {"dermquest": evaluation, **forgetting_sets(args.data, "val")}
    for name, samples in sets.items():
        routes = np.array([to_new_camera(image) for _, image, _ in samples])
        start, tune, blend = (dice_per_image(s, samples, Cleanup()) for s in (session, tuned, blended))
        routed = np.where(routes, tune, start)
        print(f"{name:10s} ({len(samples):3d}): to the tuned weights {routes.mean():5.1%};  Dice start {start.mean():.3f}"
              f"  tuned {tune.mean():.3f}  blend {plan.blend} {blend.mean():.3f}  routed {routed.mean():.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
