"""The ``nevseg`` command line: predict, train, evaluate and bench over the core.

Errors the user can act on print one line (``nevseg: error: ...``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from napari_nevseg import __version__
from napari_nevseg.core.errors import NevsegError

DEVICES = ("auto", "cpu", "cuda", "mps")


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict lesion masks for image files and folders",
                       description="Write OUT/<stem>.png (0/255, the size of each input) for every input image. "
                       "Resumable: images whose masks are already in OUT are skipped; OUT/nevseg-run.json records "
                       "the model and settings. Exit status 0: every image done; 1: some images could not be read "
                       "(listed in OUT/nevseg-failures.jsonl, the others done); 2: an error stopped the run.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    p.add_argument("--out", required=True, type=Path, help="output folder for the masks")
    p.add_argument("--model", default="default", help="'default' (shipped) or a .safetensors model file")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--threshold", type=float, default=None, help="probability threshold (default: the model's)")
    p.add_argument("--no-cleanup", action="store_true", help="skip keep-largest, fill-holes and smoothing")
    p.add_argument("--probabilities", action="store_true", help="also write <stem>_prob.png (0-255)")
    p.add_argument("--overlays", action="store_true", help="also write <stem>_overlay.png with the outline")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.add_argument("--overwrite", action="store_true",
                   help="redo every mask, also those already in OUT, whatever model or settings made them")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="network arithmetic (auto: bfloat16 where the hardware has it); fp32 gives the same "
                   "masks bit for bit however the images are split into batches, chunks and workers")
    p.add_argument("--tta", type=int, default=None, choices=(1, 2, 4), help="flips averaged (default: the model's)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (per Dask worker, where 1 is the default)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="only the I-th of N interleaved parts of the sorted inputs (I from 0 to N-1), for job arrays")
    p.add_argument("--scheduler", default=None, metavar="local:N|ADDRESS",
                   help="predict on Dask: N local worker processes, or a running scheduler such as "
                   "tcp://HOST:8786 (needs: pip install 'napari-nevseg[distributed]')")
    p.add_argument("--chunk-size", type=int, default=32, help="with --scheduler: images per Dask task")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model from scratch or fine-tune one",
                       description="Train on images/masks pairs (same stems) and write one model file.")
    p.add_argument("--images", type=Path,
                   help="folder of images, or the original PH2 tree (IMDxxx/IMDxxx_Dermoscopic_Image/...)")
    p.add_argument("--recipe", choices=("default",), default=None,
                   help="'default': the default model's data (PH2 + ISIC 2017 under --data, fixed splits, "
                   "mixed-source epochs) instead of --images/--masks")
    p.add_argument("--data", type=Path, default=None, help="with --recipe: the folder holding ph2/ and isic2017/")
    p.add_argument("--ph2-share", type=float, default=0.2,
                   help="with --recipe: PH2's share of each epoch's samples (7%% of the images)")
    p.add_argument("--epoch-size", type=int, default=None,
                   help="with --recipe: samples per epoch (default: the number of training images)")
    p.add_argument("--masks", type=Path, help="folder of masks with the images' names (omit for a PH2 tree)")
    p.add_argument("--out", required=True, type=Path, help="model file to write (.safetensors)")
    p.add_argument("--init", default="default", help="'default', a model file, or 'none' (from scratch)")
    p.add_argument("--arch", default="resunet", choices=("resunet", "unet", "segnet"),
                   help="network when training from scratch (default: resunet, the default model's)")
    p.add_argument("--channels", default="16,32,64,128,256",
                   help="resunet: widths of the stride-2 stages, the last is the bottleneck")
    p.add_argument("--top", default="direct", choices=("direct", "refine"),
                   help="resunet: last stage straight to the logit (default) or through a refined full-resolution map")
    p.add_argument("--width", type=int, default=16, help="unet: channels at full resolution")
    p.add_argument("--depth", type=int, default=4, help="unet: downsamplings")
    p.add_argument("--norm", default=None, choices=("batch", "group", "instance"),
                   help="normalisation (default: instance for resunet, batch otherwise)")
    p.add_argument("--work-size", default="256x192", help="working resolution WxH (from scratch)")
    p.add_argument("--upright", action="store_true",
                   help="objects that are never upside down (people, not lesions): no rotations in training, "
                   "no upside-down flips when predicting")
    p.add_argument("--epochs", type=int, default=None,
                   help="default: 60 from scratch; fine-tuning, the plan the data chooses (set by hand with this "
                   "and the flags below)")
    p.add_argument("--batch-size", type=int, default=None, help="default 8 from scratch; fine-tuning, the plan's")
    p.add_argument("--lr", type=float, default=None, help="default 2e-3 from scratch; fine-tuning, the plan's")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes")
    p.add_argument("--patience", type=int, default=None, help="early stopping: epochs without gain")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="default 0.2 from scratch; fine-tuning, the plan's pool (none below 30 images)")
    p.add_argument("--holdout-fraction", type=float, default=0.0,
                   help="also hold out this fraction as a test set (never trained on, recorded in the model)")
    p.add_argument("--strata", type=Path, default=None, help="CSV (id, diagnosis, ...) to stratify the splits")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--hairs", type=int, default=0, help="hair-like strokes drawn per training image")
    p.add_argument("--clicks", action="store_true",
                   help="train a click model (simulated clicks; from scratch). Fine-tuning a click model always does")
    p.add_argument("--click-radius", type=float, default=5.0, help="with --clicks: disk radius in working pixels")
    p.add_argument("--click-weight", type=float, default=None,
                   help="with --clicks: extra loss on the pixels under the click disks (default 0: none)")
    p.add_argument("--click-rounds", type=int, default=None,
                   help="with --clicks: most rounds of clicks on the network's own errors per sample (default 3)")
    p.add_argument("--checkpoint-every", type=int, default=5, metavar="N",
                   help="write the run's state to OUT.resume every N epochs (removed when the model is written)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run stopped at its last checkpoint (OUT.resume); same command otherwise")


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="score predicted masks against reference masks",
                       description="Dice, Jaccard and thresholded Jaccard per image and on average. "
                       "Give --pred DIR (masks already predicted) or --model M --images DIR "
                       "(predict, then score).")
    p.add_argument("--pred", type=Path, help="folder of predicted masks")
    p.add_argument("--masks", required=True, type=Path, help="folder of reference masks")
    p.add_argument("--model", default=None, help="predict with this model ('default' or a file) instead of --pred")
    p.add_argument("--images", type=Path, help="images to predict with --model")
    p.add_argument("--subset", choices=("all", "test", "val", "train"), default="all",
                   help="with --model: only the images of this split recorded in the model file")
    p.add_argument("--strata", type=Path, default=None, help="CSV (id, diagnosis): also report per group")
    p.add_argument("--tta", type=int, default=None, choices=(1, 2, 4), help="flip test-time augmentation")
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--no-cleanup", action="store_true")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--clicks", type=int, default=None, metavar="N",
                   help="click protocol: a simulated annotator corrects each automatic mask with up to N clicks "
                   "(NoC@85, NoC@90, failure rate, IoU after 1/3/5 clicks, ms per click, by lesion size); "
                   "needs --images, --model defaults to 'default'")
    p.add_argument("--brush", action="store_true",
                   help="with --clicks: also the painting baseline (a disk of radius diag/64 per click), side by side")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nevseg", description="Skin-lesion segmentation with a U-Net.")
    parser.add_argument("--version", action="version", version=f"napari-nevseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_predict(sub)
    _add_train(sub)
    _add_evaluate(sub)
    from napari_nevseg.bench import add_parser as add_bench

    add_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "predict":
            from napari_nevseg.cli_commands import run_predict as run
        elif args.command == "train":
            from napari_nevseg.cli_commands import run_train as run
        elif args.command == "evaluate":
            from napari_nevseg.cli_commands import run_evaluate as run
        else:
            from napari_nevseg.bench import run
        return run(args)
    except NevsegError as exc:
        print(f"nevseg: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"nevseg: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"nevseg: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"nevseg: interrupted{'; ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return 130
