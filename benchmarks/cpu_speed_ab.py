"""Before/after comparison of the CPU inference speed-ups, measured in one run (interleaved).

    python benchmarks/cpu_speed_ab.py [--model default] [--images DIR] [--limit 8] [--threads 2]

Variants, each through a Predictor on the same PH2 files (file -> mask file):
  before     float32, NCHW, clean-up on the whole image (the old pipeline)
  +crop      ... clean-up on the lesion's bounding box (exact; the Predictor's own clean-up)
  +cl        ... channels-last layout
  +bf16      ... bfloat16 autocast (only where the CPU has native bf16)
  bf16 nchw  +bf16 without channels-last (is the layout still worth it for this network?)
BatchNorm is always folded into the convolutions (exact, and a no-op for the instance-normalised
ResUNet). Prints the median ms per image of the whole file-to-file path and of the network alone,
the ratio to 'before', and the masks' agreement with 'before' (min Dice, share of pixels that
differ). Runs each variant once per image in turn, so background load hits all of them alike.
``--images`` defaults to ../shared/data/ph2/images beside the repository. Results:
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_nevseg.core.checkpoint import load_model
from napari_nevseg.core.image_io import list_images, read_image, write_mask_png
from napari_nevseg.core.inference import Predictor, cpu_has_bf16
from napari_nevseg.core.metrics import dice
from napari_nevseg.core.postprocess import Cleanup, keep_largest_region, smooth_border
from napari_nevseg.core.session import resolve_model_path

PH2_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "ph2" / "images"  # beside the repository


def whole_image_clean(mask, cleanup):
    """The clean-up before the speed-up: every step on the whole image."""
    from scipy import ndimage

    out = mask > 0
    if cleanup.smooth:
        out = smooth_border(out, cleanup.smooth_sigma)
    if cleanup.keep_largest:
        out = keep_largest_region(out)
    if cleanup.fill_holes:
        out = ndimage.binary_fill_holes(out)
    return out


def variants(model, meta) -> dict[str, tuple[Predictor, bool]]:
    """``{name: (predictor, whole-image clean-up?)}``."""

    def make(channels_last: bool, precision: str) -> Predictor:
        p = Predictor(model, meta, torch.device("cpu"), precision=precision)
        p.channels_last = channels_last
        p.model = model  # setting the model rebuilds the inference copy in the chosen layout
        return p

    return {
        "before": (make(False, "fp32"), True),
        "+crop": (make(False, "fp32"), False),
        "+cl": (make(True, "fp32"), False),
        "+bf16": (make(True, "bf16"), False),
        "bf16 nchw": (make(False, "bf16"), False),
    }


def predict_mask(p: Predictor, image: np.ndarray, whole_image: bool) -> np.ndarray:
    if whole_image:
        return whole_image_clean(p.predict(image, cleanup=Cleanup.none()).mask, Cleanup())
    return p.predict(image).mask


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="'default' (shipped) or a .safetensors file")
    ap.add_argument("--images", type=Path, default=PH2_IMAGES, help="folder of images (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3, help="passes over the images")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, meta = load_model(resolve_model_path(args.model), "cpu")
    files = list_images(args.images)[: args.limit]
    if not files:
        raise SystemExit(f"cpu_speed_ab: error: {args.images} holds no images (pass --images DIR)")
    table = variants(model, meta)
    total: dict[str, list[float]] = {k: [] for k in table}
    net: dict[str, list[float]] = {k: [] for k in table}
    masks: dict[str, dict[str, np.ndarray]] = {k: {} for k in table}
    with tempfile.TemporaryDirectory() as tmp:
        for p, whole in table.values():  # warm-up
            predict_mask(p, read_image(files[0]), whole)
        for _ in range(args.rounds):
            for f in files:
                for k, (p, whole) in table.items():
                    t = time.perf_counter()
                    mask = predict_mask(p, read_image(f), whole)
                    write_mask_png(Path(tmp) / f"{k}.png", mask)
                    total[k].append(time.perf_counter() - t)
                    masks[k][f.stem] = mask
                    x = p.batch([read_image(f)])
                    t = time.perf_counter()
                    p.forward(x)
                    net[k].append(time.perf_counter() - t)
    base_t, base_n = statistics.median(total["before"]), statistics.median(net["before"])
    print(f"{len(files)} images x {args.rounds} rounds, {torch.get_num_threads()} threads, "
          f"cpu native bf16: {cpu_has_bf16()}")
    print(f"{'variant':<10}{'file->file ms':>14}{'ratio':>7}{'network ms':>12}{'ratio':>7}{'min Dice vs before':>20}{'pixels differing':>18}")
    for k in table:
        dices = [dice(masks[k][s], masks["before"][s]) for s in masks[k]]
        differ = sum(int((masks[k][s] != masks["before"][s]).sum()) for s in masks[k])
        pixels = sum(m.size for m in masks[k].values())
        tk, nk = statistics.median(total[k]), statistics.median(net[k])
        print(f"{k:<10}{1000 * tk:>14.1f}{base_t / tk:>7.2f}{1000 * nk:>12.1f}{base_n / nk:>7.2f}"
              f"{min(dices):>20.5f}{differ / pixels:>17.5%}")


if __name__ == "__main__":
    main()
