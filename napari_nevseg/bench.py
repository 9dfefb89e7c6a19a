"""``nevseg bench``: speed and accuracy of our model against MONAI's UNet and BasicUNet, in one run.

Every network runs through the very same pipeline (our :class:`~napari_nevseg.core.inference.Predictor`
with our model's working size, normalisation, threshold and clean-up), so only the network
differs. What is measured, per model (DESIGN.md §5):

- per PH2 image, median over the images after a warm-up: file to mask file on disk (decode,
  predict, clean-up, PNG write), in-process (decoded RGB array to full-size cleaned mask), the
  network alone at working size, the post-processing alone;
- at batch 8: the network, in-process ``predict_many``, and the whole pipeline from files to
  files with decoding in a thread pool (``core.pipeline.predict_files``), in images per second;
- one fine-tune step at batch 4, and a fine-tune on 10 images to early stopping, in seconds;
- peak memory (process RSS; CUDA allocated and reserved);
- with ``--train-minutes M``: each architecture trained from scratch with the same recipe, split
  and time budget, then its full-resolution Dice on the validation and held-out images;
- ``import napari_nevseg`` and opening the NevSeg widget, each in a fresh process.

MONAI is optional (``pip install napari-nevseg[bench]``): without it its columns are skipped.
Heavy imports happen inside the functions, so ``nevseg --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OURS = "nevseg"
MONAI_UNET = "monai_unet"
MONAI_BASIC = "monai_basicunet"
LABELS = {OURS: "ours (nevseg)", MONAI_UNET: "MONAI UNet", MONAI_BASIC: "MONAI BasicUNet"}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark speed and accuracy against MONAI (see README)",
        description="Time our model and MONAI's UNet and BasicUNet through the same pipeline, on the "
        "same images, in one run; optionally train each from scratch for the same time and compare Dice.",
    )
    p.add_argument("--images", required=True, type=Path, help="folder of images (PH2: data/ph2/images)")
    p.add_argument("--masks", type=Path, default=None,
                   help="folder of reference masks (needed for the fine-tune and accuracy rows)")
    p.add_argument("--strata", type=Path, default=None,
                   help="CSV (id, diagnosis) to stratify the split (default: classes.csv beside --images)")
    p.add_argument("--model", default="default", help="'default' (shipped) or a .safetensors model file")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--limit", type=int, default=None, help="time on the first N images only")
    p.add_argument("--train-minutes", type=float, default=10.0,
                   help="minutes of from-scratch training per architecture for the accuracy rows (0 skips)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding threads of the whole-pipeline row (default: 2 on the CPU, up to 8 on a GPU)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="network precision in the Predictor (auto: bf16 on CUDA and on CPUs with native bf16)")
    p.add_argument("--no-monai", action="store_true", help="skip the MONAI columns")
    p.add_argument("--models", default=None,
                   help=f"comma-separated subset of {OURS},{MONAI_UNET},{MONAI_BASIC} (default: all)")
    p.add_argument("--no-startup", action="store_true", help="skip the import and widget timings")
    p.add_argument("--no-widget", action="store_true", help="time the import but not the widget")
    p.add_argument("--no-finetune", action="store_true", help="skip the fine-tune rows")
    p.add_argument("--json-out", type=Path, default=None, help="also write the results as JSON here")


# -- small helpers ---------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _timed(fn: Callable[[], Any], device) -> tuple[float, Any]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def _repeat(fn: Callable[[], Any], device, reps: int, warmup: int = 2) -> float:
    """Median seconds of ``fn`` over ``reps`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    return float(statistics.median(_timed(fn, device)[0] for _ in range(reps)))


def _peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MiB."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    except ImportError:  # Windows
        try:
            import psutil

            info = psutil.Process().memory_info()
            return getattr(info, "peak_wset", info.rss) / (1024 * 1024)
        except ImportError:
            return None


def _rss_mb() -> float | None:
    try:
        import psutil

        return psutil.Process().memory_info().rss / (1024 * 1024)
    except ImportError:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
        except (OSError, ValueError, AttributeError):
            return None


def _monai() -> tuple[Any, str | None]:
    """The ``monai`` module, or ``None`` and why not."""
    try:
        import monai  # noqa: F401
        from monai.networks import nets  # noqa: F401

        return monai, None
    except Exception as exc:  # ImportError, or a MONAI that fails on import with this torch
        return None, f"MONAI is not importable ({type(exc).__name__}: {exc}); its columns are skipped"


def _monai_networks() -> dict[str, Callable[[], Any]]:
    from monai.networks.nets import BasicUNet, UNet

    return {
        MONAI_UNET: lambda: UNet(spatial_dims=2, in_channels=3, out_channels=1, channels=(16, 32, 64, 128, 256),
                                 strides=(2, 2, 2, 2), num_res_units=2),
        MONAI_BASIC: lambda: BasicUNet(spatial_dims=2, in_channels=3, out_channels=1),
    }


def _environment(device, args) -> dict[str, Any]:
    import numpy as np
    import torch

    from napari_nevseg import __version__
    from napari_nevseg.core.inference import cpu_has_bf16

    monai, _ = (None, None) if args.no_monai else _monai()
    env: dict[str, Any] = {
        "package_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "monai": getattr(monai, "__version__", None),
        "device": device.type,
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_native_bf16": cpu_has_bf16(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": "nevseg " + " ".join(sys.argv[1:]) if sys.argv and "nevseg" in sys.argv[0] else None,
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            env["cpu"] = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), None)
    except OSError:
        env["cpu"] = platform.processor() or None
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


# -- the pieces of the run -------------------------------------------------------------------


def _startup(model_spec: str, widget: bool = True) -> dict[str, Any]:
    """``import napari_nevseg`` and opening the widget, each in a fresh Python process."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    code = (
        "import sys, time, json; t = time.perf_counter(); import napari_nevseg; "
        "print(json.dumps({'s': time.perf_counter() - t, 'torch': 'torch' in sys.modules}))"
    )
    times, walls, pulls_torch = [], [], False
    for _ in range(3):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        walls.append(time.perf_counter() - started)
        if out.returncode == 0:
            row = json.loads(out.stdout.strip().splitlines()[-1])
            times.append(row["s"])
            pulls_torch |= row["torch"]
    result: dict[str, Any] = {"import_s": _median(times), "import_pulls_torch": pulls_torch,
                              "python_start_and_import_s": _median(walls)}
    result.update(_widget_open(model_spec, env) if widget else {"widget_open_s": None, "widget_note": "n/a (--no-widget)"})
    return result


_WIDGET_SCRIPT = r"""
import json, os, sys, time
t0 = time.perf_counter()
import napari
from qtpy.QtWidgets import QApplication
t1 = time.perf_counter()
viewer = napari.Viewer(show=False)
t2 = time.perf_counter()
from napari_nevseg.widgets.main_widget import NevsegWidget
widget = NevsegWidget(viewer, model=sys.argv[1], device="cpu")
viewer.window.add_dock_widget(widget, name="NevSeg")
QApplication.processEvents()
t3 = time.perf_counter()
deadline = t3 + 60
while widget.state.session is None and widget.state.is_busy("load") and time.perf_counter() < deadline:
    QApplication.processEvents()
    time.sleep(0.005)
t4 = time.perf_counter()
print(json.dumps({"napari_import_s": t1 - t0, "viewer_s": t2 - t1, "widget_open_s": t3 - t2,
                  "model_ready_s": (t4 - t2) if widget.state.session is not None else None}), flush=True)
os._exit(0)
"""


def _widget_open(model_spec: str, env: dict[str, str]) -> dict[str, Any]:
    import importlib.util

    if importlib.util.find_spec("napari") is None:
        return {"widget_open_s": None, "widget_note": "n/a (napari not installed)"}
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY") and sys.platform.startswith("linux"):
        env = dict(env, QT_QPA_PLATFORM="offscreen")
    try:
        out = subprocess.run([sys.executable, "-c", _WIDGET_SCRIPT, model_spec], capture_output=True, text=True,
                             env=env, timeout=180)
    except subprocess.TimeoutExpired:
        return {"widget_open_s": None, "widget_note": "n/a (opening the widget took over 180 s)"}
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"widget_open_s": None, "widget_note": f"n/a (the widget did not open: {last[:200]})"}
    return {**json.loads(lines[-1]), "widget_note": None}


def _decode_and_write(files: list[Path], out_dir: Path) -> dict[str, Any]:
    """Model-independent parts of the file pipeline: PNG decode, mask encode, atomic write."""
    import numpy as np

    from napari_nevseg.core.image_io import encode_png, read_image, write_mask_png

    decode, encode, write = [], [], []
    read_image(files[0])
    for f in files:
        t = time.perf_counter()
        rgb = read_image(f)
        decode.append(time.perf_counter() - t)
        mask = np.zeros(rgb.shape[:2], bool)
        mask[rgb.shape[0] // 4 : rgb.shape[0] * 3 // 4, rgb.shape[1] // 4 : rgb.shape[1] * 3 // 4] = True
        t = time.perf_counter()
        encode_png(mask.astype(np.uint8) * 255)
        encode.append(time.perf_counter() - t)
        t = time.perf_counter()
        write_mask_png(out_dir / f"_io_{f.stem}.png", mask)
        write.append(time.perf_counter() - t)
    ms = lambda v: 1000 * _median(v)  # noqa: E731
    return {"decode_ms": ms(decode), "encode_png_ms": ms(encode), "write_mask_png_ms": ms(write)}


def _speed(session, files: list[Path], rgbs: list, out_dir: Path, workers: int) -> dict[str, Any]:
    """Per-image and batch-8 timings of one model through our pipeline."""
    import numpy as np

    from napari_nevseg.core.image_io import read_image, write_mask_png
    from napari_nevseg.core.pipeline import predict_files

    predictor, device = session.predictor, session.device
    row: dict[str, Any] = {}
    ms = lambda v: 1000 * _median(v)  # noqa: E731

    def file_to_file(path: Path) -> None:
        write_mask_png(out_dir / f"{path.stem}.png", predictor.predict(read_image(path)).mask)

    for _ in range(2):  # warm-up: oneDNN / cuDNN pick their kernels on the first calls
        file_to_file(files[0])
    row["file_to_file_ms"] = ms([_timed(lambda f=f: file_to_file(f), device)[0] for f in files])
    row["in_process_ms"] = ms([_timed(lambda im=im: predictor.predict(im), device)[0] for im in rgbs])
    x1 = predictor._batch(rgbs[:1])
    row["network_ms"] = 1000 * _repeat(lambda: predictor.forward(x1), device, reps=max(5, min(20, len(rgbs))))
    lows = [predictor.low_res_probabilities([im])[0] for im in rgbs]
    row["postprocess_ms"] = ms([_timed(lambda lo=lo, im=im: predictor.finish(lo, im.shape[:2]), device)[0]
                                for lo, im in zip(lows, rgbs, strict=True)])
    row["lesion_fraction_mean"] = float(np.mean([predictor.finish(lo, im.shape[:2]).mask.mean()
                                                 for lo, im in zip(lows, rgbs, strict=True)]))

    eight = (rgbs * (8 // len(rgbs) + 1))[:8]
    x8 = predictor._batch(eight)
    row["batch8_network_ips"] = 8 / _repeat(lambda: predictor.forward(x8), device, reps=5)
    many = rgbs if len(rgbs) >= 8 else eight
    seconds = _repeat(lambda: list(predictor.predict_many(many, batch_size=8)), device, reps=3, warmup=1)
    row["batch8_in_process_ips"] = len(many) / seconds
    pipe_dir = out_dir / "pipeline"
    list(predict_files(files[:2], pipe_dir, session, workers=workers))
    seconds = _timed(lambda: list(predict_files(files, pipe_dir, session, workers=workers)), device)[0]
    row["files_parallel_ips"] = len(files) / seconds
    row["files_parallel_workers"] = workers
    return row


def _finetune(session, meta, train_set, val_set, device_name: str) -> dict[str, Any]:
    """One fine-tune step at batch 4, and a fine-tune on the training images to early stopping."""
    from napari_nevseg.core.training import TrainConfig, train

    init = (session.cpu_copy()[0], meta)
    row: dict[str, Any] = {}
    step_cfg = TrainConfig(freeze_bn=True, epochs=5, batch_size=4, lr=5e-4, device=device_name, seed=0)
    four = type(train_set)(train_set.images[:4], train_set.masks[:4], train_set.stems[:4])
    stamps = [p.elapsed_s for p in _drain(train(four, None, step_cfg, init))]
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    row["finetune_step_s"] = _median(steps[1:] or steps or stamps)
    cfg = TrainConfig(freeze_bn=True, patience=3, epochs=30, batch_size=4, lr=5e-4, device=device_name, seed=0)
    result = _result(train(train_set, val_set, cfg, init))
    row["finetune10"] = {
        "train_images": len(train_set), "val_images": len(val_set) if val_set is not None else 0,
        "seconds": result.seconds, "epochs": len(result.history), "stopped_by": result.stopped_by,
        "best_epoch": result.best_epoch, "val_dice_before": result.val_dice_before, "val_dice_best": result.val_dice_best,
    }
    return row


def _drain(gen) -> list:
    items = []
    try:
        while True:
            items.append(next(gen))
    except StopIteration:
        return items


def _result(gen):
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


def _full_res_dice(model, meta, device, pairs) -> float | None:
    from napari_nevseg.core.data import load_pair
    from napari_nevseg.core.inference import Predictor
    from napari_nevseg.core.metrics import dice

    if not pairs:
        return None
    predictor = Predictor(model, meta, device)
    scores = []
    for pair in pairs:
        image, ref = load_pair(pair)
        scores.append(dice(predictor.predict(image).mask, ref))
    return float(sum(scores) / len(scores))


def _accuracy(args, device, meta_template, builders: dict[str, Callable[[], Any]], pairs) -> dict[str, Any]:
    """Each architecture from scratch, same recipe, split, seed and time budget; full-res Dice."""
    import torch

    from napari_nevseg.core.data import read_strata, stratified_split
    from napari_nevseg.core.training import TrainConfig, _channel_stats, load_training_set, train

    strata_path = args.strata or (args.images.parent / "classes.csv")
    strata = read_strata(strata_path) if strata_path.is_file() else None
    stems = [p.stem for p in pairs]
    rest, test = stratified_split(stems, 0.2, args.seed, strata)
    train_stems, val_stems = stratified_split(rest, 0.2, args.seed + 1, strata)
    by_stem = {p.stem: p for p in pairs}
    work_hw = (192, 256)
    train_set = load_training_set([by_stem[s] for s in train_stems], work_hw)
    val_set = load_training_set([by_stem[s] for s in val_stems], work_hw)
    mean, std = _channel_stats(train_set)
    out: dict[str, Any] = {
        "budget_minutes_per_model": args.train_minutes,
        "recipe": "core.training.train: AdamW lr 2e-3, weight decay 1e-4, batch 8, cosine schedule sized to the "
                  "budget (epochs from a timed calibration), augmentation as nevseg train, seed "
                  f"{args.seed}, working size 256x192, best validation epoch kept",
        "split": {"train": len(train_stems), "val": len(val_stems), "test": len(test),
                  "stratified_by": str(strata_path) if strata else None, "seed": args.seed},
        "models": {},
    }
    budget_s = args.train_minutes * 60
    for name, build in builders.items():
        torch.manual_seed(args.seed)
        net = build()
        meta = {**meta_template, "arch": name, "arch_params": {}, "work_size": list(work_hw),
                "normalization": {"mean": mean, "std": std}, "threshold": 0.5, "tta": 1}
        epoch_s = _epoch_seconds(net, meta, train_set, val_set, args.device)
        epochs = max(1, int(0.95 * budget_s / epoch_s))
        cfg = TrainConfig(epochs=epochs, batch_size=8, lr=2e-3, seed=args.seed, max_minutes=args.train_minutes,
                          device=args.device, work_size=work_hw)
        print(f"bench: training {LABELS.get(name, name)} from scratch: {epochs} epochs planned "
              f"({epoch_s:.1f} s each), stop at {args.train_minutes:g} min", flush=True)
        result = _result(train(train_set, val_set, cfg, (net, meta)))
        out["models"][name] = {
            "parameters": sum(p.numel() for p in net.parameters()),
            "minutes": result.seconds / 60, "epochs": len(result.history), "epochs_planned": epochs,
            "stopped_by": result.stopped_by, "best_epoch": result.best_epoch,
            "val_dice_work_res": result.val_dice_best,
            "val_dice": _full_res_dice(result.model, meta, device, [by_stem[s] for s in val_stems]),
            "test_dice": _full_res_dice(result.model, meta, device, [by_stem[s] for s in test]),
        }
        del net, result
        _free(device)
    return out


def _epoch_seconds(net, meta, train_set, val_set, device_name: str) -> float:
    """Seconds one epoch (training steps plus validation) takes, from three timed steps."""
    import math

    from napari_nevseg.core.training import TrainConfig, train

    n_steps = 4
    small = type(train_set)(train_set.images[: 8 * n_steps], train_set.masks[: 8 * n_steps], train_set.stems[: 8 * n_steps])
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-4, device=device_name)
    started = time.perf_counter()
    stamps = [p.elapsed_s for p in _drain(train(small, None, cfg, (net, meta)))]
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)] or [time.perf_counter() - started]
    step_s = statistics.median(steps)
    val_s = step_s * len(val_set) / 8 / 3 if val_set is not None else 0.0  # forward only: about a third
    return max(1e-3, step_s * math.ceil(len(train_set) / 8) + val_s)


def _free(device) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# -- the command -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    import torch

    from napari_nevseg.core.checkpoint import load_model
    from napari_nevseg.core.data import Pair, find_pairs
    from napari_nevseg.core.device import select_device
    from napari_nevseg.core.errors import NevsegError
    from napari_nevseg.core.image_io import list_images, read_image
    from napari_nevseg.core.session import ModelSession, resolve_model_path
    from napari_nevseg.core.training import load_training_set

    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    files = list_images(args.images)
    if not files:
        raise NevsegError(f"{args.images} holds no images")
    timed_files = files[: args.limit] if args.limit else files
    pairs: list[Pair] = find_pairs(args.images, args.masks) if args.masks else []
    workers = args.workers or (max(2, min(8, (os.cpu_count() or 2) // 2)) if device.type == "cuda" else 2)
    report: dict[str, Any] = {
        "environment": _environment(device, args),
        "settings": {"images": str(args.images), "masks": str(args.masks) if args.masks else None,
                     "model": args.model, "timed_images": len(timed_files), "precision": args.precision,
                     "train_minutes": args.train_minutes, "seed": args.seed, "workers": workers},
        "skipped": {},
        "models": {},
    }
    print(f"bench: {len(timed_files)} images timed on {device.type} ({report['environment'].get('gpu') or report['environment'].get('cpu')}), "
          f"{torch.get_num_threads()} torch threads", flush=True)

    if not args.no_startup:
        report["startup"] = _startup(args.model, widget=not args.no_widget)

    model, meta = load_model(resolve_model_path(args.model), "cpu")
    report["settings"]["work_size_hw"] = list(meta["work_size"])
    builders: dict[str, Callable[[], Any]] = {}
    if args.no_monai:
        report["skipped"]["monai"] = "--no-monai"
    else:
        monai, why = _monai()
        if monai is None:
            report["skipped"]["monai"] = why
            print(f"bench: {why}", flush=True)
        else:
            builders = _monai_networks()
    monai_meta = {k: meta[k] for k in ("work_size", "normalization", "threshold", "tta") if k in meta}
    if args.models:
        wanted = {m.strip() for m in args.models.split(",") if m.strip()}
        unknown = wanted - {OURS, MONAI_UNET, MONAI_BASIC}
        if unknown:
            raise NevsegError(f"--models: unknown {', '.join(sorted(unknown))}; choose from {OURS}, {MONAI_UNET}, {MONAI_BASIC}")
        builders = {k: v for k, v in builders.items() if k in wanted}
    else:
        wanted = {OURS, *builders}
    networks: dict[str, tuple[Any, dict[str, Any]]] = {OURS: (model, meta)} if OURS in wanted else {}
    for name, build in builders.items():
        torch.manual_seed(args.seed)
        networks[name] = (build().eval(), {**monai_meta, "arch": name, "arch_params": {}})

    rgbs = [read_image(f) for f in timed_files]
    by_stem = {p.stem: p for p in pairs}
    ft_pairs = [by_stem[f.stem] for f in files if f.stem in by_stem]
    recorded_test = set((meta.get("training") or {}).get("test_images") or [])
    # fine-tune on images the model did not train on, where the model file says which those are
    ft_pairs = [p for p in ft_pairs if p.stem in recorded_test] or ft_pairs
    ft_train, ft_val = ft_pairs[:10], ft_pairs[10:14] or ft_pairs[-1:]
    work_hw = tuple(meta["work_size"])
    ft_sets = None
    if ft_train and not args.no_finetune:
        ft_sets = (load_training_set(ft_train, work_hw), load_training_set(ft_val, work_hw))

    with tempfile.TemporaryDirectory(prefix="nevseg-bench-") as tmp:
        out_dir = Path(tmp)
        report["pipeline"] = _decode_and_write(timed_files, out_dir)
        for name, (net, net_meta) in networks.items():
            print(f"bench: timing {LABELS[name]} ...", flush=True)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            session = ModelSession(net, net_meta, device, name)
            session.predictor.precision = args.precision
            row: dict[str, Any] = {"label": LABELS[name], "parameters": sum(p.numel() for p in net.parameters()),
                                   "precision": str(session.predictor.amp_dtype or torch.float32).replace("torch.", "")}
            row.update(_speed(session, timed_files, rgbs, out_dir / name, workers))
            if ft_sets is not None:
                row.update(_finetune(session, net_meta, *ft_sets, args.device))
            row["rss_mb"] = _rss_mb()
            row["peak_rss_mb_so_far"] = _peak_rss_mb()
            if device.type == "cuda":
                row["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
                row["cuda_max_reserved_mb"] = torch.cuda.max_memory_reserved(device) / 2**20
            report["models"][name] = row
            del session
            _free(device)

    if recorded_test and pairs:
        test_pairs = [by_stem[s] for s in sorted(recorded_test) if s in by_stem]
        if test_pairs:
            report["model_test_dice"] = {"images": len(test_pairs),
                                         "dice": _full_res_dice(model, meta, device, test_pairs)}
    if args.train_minutes > 0 and pairs:
        from napari_nevseg.core.model import build_model

        ours = {OURS: lambda: build_model(meta["arch"], meta["arch_params"])} if OURS in wanted else {}
        report["accuracy"] = _accuracy(args, device, {}, {**ours, **builders}, pairs)
    elif args.train_minutes > 0:
        report["skipped"]["accuracy"] = "no --masks given"
    else:
        report["skipped"]["accuracy"] = "--train-minutes 0"

    print(format_report(report))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
        print(f"bench: wrote {args.json_out}")
    return 0


# -- the table -------------------------------------------------------------------------------

_ROWS = [
    ("file_to_file_ms", "file -> mask file, ms/image", "{:.1f}"),
    ("in_process_ms", "RGB array -> full-res mask, ms/image", "{:.1f}"),
    ("network_ms", "network alone at working size, ms", "{:.1f}"),
    ("postprocess_ms", "upsample + threshold + clean-up, ms", "{:.1f}"),
    ("batch8_network_ips", "network at batch 8, images/s", "{:.0f}"),
    ("batch8_in_process_ips", "predict_many batch 8, images/s", "{:.0f}"),
    ("files_parallel_ips", "files -> files, parallel decode, images/s", "{:.0f}"),
    ("finetune_step_s", "one fine-tune step (batch 4), s", "{:.2f}"),
    ("finetune10.seconds", "fine-tune 10 images to early stop, s", "{:.1f}"),
    ("finetune10.epochs", "  epochs run", "{}"),
    ("finetune10.val_dice_best", "  validation Dice (working size)", "{:.3f}"),
    ("peak_rss_mb_so_far", "peak RSS of the process so far, MiB", "{:.0f}"),
    ("cuda_max_allocated_mb", "CUDA max allocated, MiB", "{:.0f}"),
    ("cuda_max_reserved_mb", "CUDA max reserved, MiB", "{:.0f}"),
    ("parameters", "parameters", "{:,}"),
    ("precision", "network precision", "{}"),
]


def _get(row: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(row, dict) or part not in row:
            return None
        row = row[part]
    return row


def format_report(report: dict[str, Any]) -> str:
    """The results as a plain-text table."""
    env = report["environment"]
    names = list(report["models"])
    lines = [
        f"nevseg bench: {env['device']} ({env.get('gpu') or env.get('cpu')}), torch {env['torch']}, "
        f"{env['torch_threads']} threads, MONAI {env.get('monai') or 'not used'}; "
        f"{report['settings']['timed_images']} images timed (median per image, after warm-up)",
    ]
    width = 44
    lines.append(f"{'':<{width}}" + "".join(f"{report['models'][n]['label']:>18}" for n in names))
    for key, label, fmt in _ROWS:
        values = [_get(report["models"][n], key) for n in names]
        if all(v is None for v in values):
            continue
        cells = "".join(f"{(fmt.format(v) if v is not None else 'n/a'):>18}" for v in values)
        lines.append(f"{label:<{width}}{cells}")
    pipe = report.get("pipeline") or {}
    if pipe:
        lines.append(f"shared by all: PNG decode {pipe['decode_ms']:.1f} ms, mask PNG encode {pipe['encode_png_ms']:.1f} ms, "
                     f"atomic write (fsync) {pipe['write_mask_png_ms']:.1f} ms")
    start = report.get("startup")
    if start:
        widget = (f"{start['widget_open_s']:.2f} s (viewer {start.get('viewer_s', 0):.2f} s before it; model ready "
                  f"{start['model_ready_s']:.2f} s)" if start.get("widget_open_s") is not None and start.get("model_ready_s") is not None
                  else f"{start['widget_open_s']:.2f} s" if start.get("widget_open_s") is not None
                  else start.get("widget_note") or "n/a")
        lines.append(f"import napari_nevseg: {1000 * start['import_s']:.0f} ms (imports torch: {start['import_pulls_torch']}; "
                     f"Python start included {1000 * start['python_start_and_import_s']:.0f} ms); "
                     f"open the NevSeg widget: {widget}")
    if "model_test_dice" in report:
        t = report["model_test_dice"]
        lines.append(f"our model on its {t['images']} held-out images: mean Dice {t['dice']:.4f} (full resolution, clean-up on)")
    acc = report.get("accuracy")
    if acc:
        split = acc["split"]
        lines.append(f"accuracy at equal cost: each trained from scratch for at most {acc['budget_minutes_per_model']:g} min "
                     f"on {env['device']} ({split['train']} train / {split['val']} val / {split['test']} test, seed {split['seed']})")
        lines.append(f"{'':<{width}}" + "".join(f"{LABELS.get(n, n):>18}" for n in acc["models"]))
        for key, label, fmt in [("minutes", "minutes used", "{:.1f}"), ("epochs", "epochs", "{}"),
                                ("val_dice", "validation Dice (full res)", "{:.4f}"),
                                ("test_dice", "held-out Dice (full res)", "{:.4f}")]:
            cells = "".join(f"{(fmt.format(m[key]) if m.get(key) is not None else 'n/a'):>18}" for m in acc["models"].values())
            lines.append(f"{label:<{width}}{cells}")
    for what, why in report.get("skipped", {}).items():
        lines.append(f"skipped {what}: {why}")
    return "\n".join(lines)
