"""One click to a new full-size mask, in the core (``ModelSession.predict(image, clicks=...,
prior=...)``), at the three sizes issue 13 names: 768x576 (a PH2 dermoscope), 1640x1043 (a
clinical photo) and 4288x2848 (an ISIC original). PH2 test images and their expert masks are
resized to each size; the simulated annotator of ``nevseg evaluate --clicks`` places the clicks
(deepest point of the deeper error), so the windows are the ones real corrections make.

    .venv/bin/python benchmarks/click_core_latency.py --model default --threads 2 --images 4 --clicks 8

Prints, per size, the median and 95th percentile of the whole call and of its network step
(the focus crop's forward pass), over every click of every image. Take it with nothing else
running. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from napari_nevseg.core.click_eval import click_curve, model_corrector
from napari_nevseg.core.data import resize_rgb
from napari_nevseg.core.image_io import read_image, read_mask
from napari_nevseg.core.session import ModelSession
from napari_nevseg.core.sources import split_ph2

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SIZES = {"768x576": (576, 768), "1640x1043": (1043, 1640), "4288x2848": (2848, 4288)}


def resized_pair(pair, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    image = read_image(pair.image)
    mask = read_mask(pair.mask, image.shape[:2])
    big = resize_rgb(np.ascontiguousarray(image[..., :3]), hw)
    big_mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((hw[1], hw[0]), Image.NEAREST)) > 0
    return big, big_mask


def timed_network(session: ModelSession) -> list[float]:
    """Wrap the predictor's guided forward pass so its time is recorded per call."""
    predictor = session.predictor
    inner, seconds = predictor.guided_probability, []

    def wrapped(*args, **kwargs):
        started = time.perf_counter()
        out = inner(*args, **kwargs)
        seconds.append(time.perf_counter() - started)
        return out

    predictor.guided_probability = wrapped
    return seconds


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=4, help="PH2 test images per size")
    parser.add_argument("--clicks", type=int, default=8, help="clicks per image (the annotator's)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    session = ModelSession.load(args.model, "cpu")
    if not session.supports_clicks:
        parser.error(f"{args.model} takes no clicks")
    pairs = split_ph2(args.data / "ph2").test[: args.images]
    network = timed_network(session)
    print(f"model {args.model} ({session.content_hash[:12]}), {args.threads} threads, "
          f"{len(pairs)} PH2 test images x {args.clicks} clicks per size")
    print(f"{'size':<11}{'clicks':>7}{'median ms':>11}{'p95 ms':>9}{'network median':>16}{'network p95':>13}")
    for name, hw in SIZES.items():
        calls: list[float] = []
        forward: list[float] = []
        for pair in pairs:
            image, truth = resized_pair(pair, hw)
            automatic = session.predict(image).mask
            session.predict(image, clicks=[(hw[0] // 2, hw[1] // 2, True)], prior=automatic)  # warm
            network.clear()
            curve = click_curve(pair.stem, truth, automatic, model_corrector(session, image), args.clicks)
            calls += curve.seconds_per_click
            forward += network
        print(f"{name:<11}{len(calls):>7}{1e3 * statistics.median(calls):>11.1f}{1e3 * percentile(calls, 95):>9.1f}"
              f"{1e3 * statistics.median(forward):>16.1f}{1e3 * percentile(forward, 95):>13.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
