"""Speed, memory, fine-tune and start-up measurements of one model through our pipeline."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_nevseg.bench._common import (
    MONAI_BASIC,
    MONAI_UNET,
    drain,
    final_result,
    median,
    median_seconds,
    timed,
)

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
while widget.controller.session is None and widget.controller.is_busy("load") and time.perf_counter() < deadline:
    QApplication.processEvents()
    time.sleep(0.005)
t4 = time.perf_counter()
print(json.dumps({"napari_import_s": t1 - t0, "viewer_s": t2 - t1, "widget_open_s": t3 - t2,
                  "model_ready_s": (t4 - t2) if widget.controller.session is not None else None}), flush=True)
os._exit(0)
"""


def import_monai() -> tuple[Any, str | None]:
    """The ``monai`` module, or ``None`` and why not."""
    try:
        import monai  # noqa: F401
        from monai.networks import nets  # noqa: F401

        return monai, None
    except Exception as exc:  # ImportError, or a MONAI that fails on import with this torch
        return None, f"MONAI is not importable ({type(exc).__name__}: {exc}); its columns are skipped"


def monai_networks() -> dict[str, Callable[[], Any]]:
    from monai.networks.nets import BasicUNet, UNet

    return {
        MONAI_UNET: lambda: UNet(spatial_dims=2, in_channels=3, out_channels=1, channels=(16, 32, 64, 128, 256),
                                 strides=(2, 2, 2, 2), num_res_units=2),
        MONAI_BASIC: lambda: BasicUNet(spatial_dims=2, in_channels=3, out_channels=1),
    }


def environment(device, args) -> dict[str, Any]:
    import numpy as np
    import torch

    from napari_nevseg import __version__
    from napari_nevseg.core.inference import cpu_has_bf16

    monai, _ = (None, None) if args.no_monai else import_monai()
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


def startup_times(model_spec: str, widget: bool = True) -> dict[str, Any]:
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
    result: dict[str, Any] = {"import_s": median(times), "import_pulls_torch": pulls_torch,
                              "python_start_and_import_s": median(walls)}
    result.update(_widget_open(model_spec, env) if widget else {"widget_open_s": None, "widget_note": "n/a (--no-widget)"})
    return result


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


def decode_and_write(files: list[Path], out_dir: Path) -> dict[str, Any]:
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
    ms = lambda v: 1000 * median(v)  # noqa: E731
    return {"decode_ms": ms(decode), "encode_png_ms": ms(encode), "write_mask_png_ms": ms(write)}


def time_in_turn(names: list[str], calls: list[Callable[[str], Any]], device) -> dict[str, list[float]]:
    """Seconds of ``call(name)`` for every call and name, the names in turn within each call and
    the first name rotating from one call to the next."""
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, call in enumerate(calls):
        start = i % len(names)
        for name in names[start:] + names[:start]:
            times[name].append(timed(lambda c=call, n=name: c(n), device)[0])
    return times


def measure_latency(sessions: dict[str, Any], files: list[Path], rgbs: list, out_dir: Path) -> dict[str, dict[str, Any]]:
    """Per-image latencies of every model, taken in turn on each image (the first model rotates),
    so that a slow minute of a shared machine falls on all of them alike."""
    import numpy as np

    from napari_nevseg.core.image_io import read_image, write_mask_png

    names = list(sessions)
    rows: dict[str, dict[str, Any]] = {name: {} for name in names}
    device = next(iter(sessions.values())).device

    def in_turn(key: str, calls: list[Callable[[str], Any]]) -> None:
        for name, times in time_in_turn(names, calls, device).items():
            rows[name][key] = 1000 * median(times)

    for name in names:
        (out_dir / name).mkdir(parents=True, exist_ok=True)

    def file_to_file(path: Path, name: str) -> None:
        write_mask_png(out_dir / name / f"{path.stem}.png", sessions[name].predictor.predict(read_image(path)).mask)

    for name in names:  # warm-up: oneDNN / cuDNN pick their kernels on the first calls
        for _ in range(2):
            file_to_file(files[0], name)
    in_turn("file_to_file_ms", [lambda n, f=f: file_to_file(f, n) for f in files])
    in_turn("in_process_ms", [lambda n, im=im: sessions[n].predictor.predict(im) for im in rgbs])
    one = {name: session.predictor.batch(rgbs[:1]) for name, session in sessions.items()}
    reps = max(5, min(20, len(rgbs)))
    in_turn("network_ms", [lambda n: sessions[n].predictor.forward(one[n])] * reps)
    lows = {name: [session.predictor.low_res_probabilities([im])[0] for im in rgbs] for name, session in sessions.items()}
    in_turn("postprocess_ms", [lambda n, i=i, im=im: sessions[n].predictor.finish(lows[n][i], im.shape[:2])
                               for i, im in enumerate(rgbs)])
    for name, session in sessions.items():
        rows[name]["lesion_fraction_mean"] = float(np.mean(
            [session.predictor.finish(lo, im.shape[:2]).mask.mean() for lo, im in zip(lows[name], rgbs, strict=True)]))
    return rows


def measure_throughput(session, files: list[Path], rgbs: list, out_dir: Path, workers: int) -> dict[str, Any]:
    """Batch-8 and whole-pipeline throughput of one model."""
    from napari_nevseg.core.pipeline import predict_files

    predictor, device = session.predictor, session.device
    row: dict[str, Any] = {}
    eight = (rgbs * (8 // len(rgbs) + 1))[:8]
    x8 = predictor.batch(eight)
    row["batch8_network_ips"] = 8 / median_seconds(lambda: predictor.forward(x8), device, reps=5)
    many = rgbs if len(rgbs) >= 8 else eight
    seconds = median_seconds(lambda: list(predictor.predict_many(many, batch_size=8)), device, reps=3, warmup=1)
    row["batch8_in_process_ips"] = len(many) / seconds
    pipe_dir = out_dir / "pipeline"
    list(predict_files(files[:2], pipe_dir, session, workers=workers))
    seconds = timed(lambda: list(predict_files(files, pipe_dir, session, workers=workers)), device)[0]
    row["files_parallel_ips"] = len(files) / seconds
    row["files_parallel_workers"] = workers
    return row


def measure_finetune(session, meta, train_set, val_set, device_name: str) -> dict[str, Any]:
    """One fine-tune step at batch 4, and a fine-tune on the training images to early stopping."""
    from napari_nevseg.core.training import TrainConfig, train

    init = (session.cpu_copy()[0], meta)
    row: dict[str, Any] = {}
    step_cfg = TrainConfig(freeze_bn=True, epochs=5, batch_size=4, lr=5e-4, device=device_name, seed=0)
    four = type(train_set)(train_set.images[:4], train_set.masks[:4], train_set.stems[:4])
    stamps = [p.elapsed_s for p in drain(train(four, None, step_cfg, init))]
    steps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    row["finetune_step_s"] = median(steps[1:] or steps or stamps)
    cfg = TrainConfig(freeze_bn=True, patience=3, epochs=30, batch_size=4, lr=5e-4, device=device_name, seed=0)
    result = final_result(train(train_set, val_set, cfg, init))
    row["finetune10"] = {
        "train_images": len(train_set), "val_images": len(val_set) if val_set is not None else 0,
        "seconds": result.seconds, "epochs": len(result.history), "stopped_by": result.stopped_by,
        "best_epoch": result.best_epoch, "val_dice_before": result.val_dice_before, "val_dice_best": result.val_dice_best,
    }
    return row
