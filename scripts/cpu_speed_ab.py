"""Before/after comparison of the CPU inference speed-ups, measured in one run (interleaved).

    python scripts/cpu_speed_ab.py --model M.safetensors --images DIR [--limit 8] [--threads 2]

Variants, each through the same Predictor on the same PH2 files (file -> mask file):
  before     float32, NCHW, BatchNorm unfolded, clean-up on the whole image (the old pipeline)
  +crop      ... clean-up on the lesion's bounding box (exact)
  +fold+cl   ... BatchNorm folded into the convolutions, channels-last layout
  +bf16      ... bfloat16 autocast (only where the CPU has native bf16)
  bf16 nchw  +bf16 without channels-last (is the layout still worth it for this network?)
(folding does nothing for a network without BatchNorm, such as the InstanceNorm ResUNet)
Prints the median ms per image of the whole file-to-file path and of the network alone, the
ratio to 'before', and the masks' agreement with 'before' (Dice, disagreeing pixels).
Runs each variant once per image in turn, so background load hits all of them alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_nevseg.core import inference
from napari_nevseg.core.checkpoint import load_model
from napari_nevseg.core.image_io import list_images, read_image, write_mask_png
from napari_nevseg.core.inference import Predictor
from napari_nevseg.core.metrics import dice
from napari_nevseg.core.postprocess import keep_largest_region, smooth_border


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


def variants(model, meta):
    def make(fold, cl, precision):
        p = Predictor(model, meta, torch.device("cpu"), precision=precision)
        p.fold_batchnorm, p.channels_last = fold, cl
        p.rebuild()
        return p

    return {
        "before": (make(False, False, "fp32"), whole_image_clean),
        "+crop": (make(False, False, "fp32"), inference.clean_mask),
        "+fold+cl": (make(True, True, "fp32"), inference.clean_mask),
        "+bf16": (make(True, True, "bf16"), inference.clean_mask),
        "bf16 nchw": (make(True, False, "bf16"), inference.clean_mask),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--images", required=True, type=Path)
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=3, help="passes over the images")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, meta = load_model(args.model, "cpu")
    files = list_images(args.images)[: args.limit]
    table = variants(model, meta)
    original = inference.clean_mask
    total = {k: [] for k in table}
    net = {k: [] for k in table}
    masks: dict[str, dict[str, np.ndarray]] = {k: {} for k in table}
    with tempfile.TemporaryDirectory() as tmp:
        for p, clean in table.values():  # warm-up
            inference.clean_mask = clean
            p.predict(read_image(files[0]))
        for _ in range(args.rounds):
            for f in files:
                for k, (p, clean) in table.items():
                    inference.clean_mask = clean
                    t = time.perf_counter()
                    mask = p.predict(read_image(f)).mask
                    write_mask_png(Path(tmp) / f"{k}.png", mask)
                    total[k].append(time.perf_counter() - t)
                    masks[k][f.stem] = mask
                    x = p._batch([read_image(f)])
                    t = time.perf_counter()
                    p.forward(x)
                    net[k].append(time.perf_counter() - t)
    inference.clean_mask = original
    base_t, base_n = statistics.median(total["before"]), statistics.median(net["before"])
    print(f"{len(files)} images x {args.rounds} rounds, {torch.get_num_threads()} threads, "
          f"cpu native bf16: {inference.cpu_has_bf16()}")
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
