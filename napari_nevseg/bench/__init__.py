"""``nevseg bench``: speed and accuracy of our model against MONAI's UNet and BasicUNet, in one run.

Every network runs through the very same pipeline (our :class:`~napari_nevseg.core.inference.Predictor`
with our model's working size, normalisation, threshold and clean-up), so only the network
differs. What is measured, per model:

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
Heavy imports happen inside the functions, so ``nevseg --help`` stays fast. The measured tables,
with their dates and machines, are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari_nevseg.bench._accuracy import accuracy_at_equal_cost, full_res_dice
from napari_nevseg.bench._common import (
    LABELS,
    MONAI_BASIC,
    MONAI_UNET,
    OURS,
    free_memory,
    peak_rss_mb,
    rss_mb,
)
from napari_nevseg.bench._measure import (
    decode_and_write,
    environment,
    import_monai,
    measure_finetune,
    measure_latency,
    measure_throughput,
    monai_networks,
    startup_times,
)
from napari_nevseg.bench._report import format_report


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark speed and accuracy against MONAI (results: docs/benchmarks.md)",
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


def run(args: argparse.Namespace) -> int:
    """Measure every model the arguments ask for, print the report, write it as JSON if asked."""
    import torch

    from napari_nevseg.core.checkpoint import load_model
    from napari_nevseg.core.device import select_device
    from napari_nevseg.core.session import resolve_model_path

    if args.threads:
        torch.set_num_threads(args.threads)
    device = select_device(args.device)
    files, timed_files, pairs = _inputs(args)
    workers = args.workers or _default_workers(device)
    report = _new_report(args, device, timed_files, workers)
    print(f"bench: {len(timed_files)} images timed on {device.type} "
          f"({report['environment'].get('gpu') or report['environment'].get('cpu')}), "
          f"{torch.get_num_threads()} torch threads", flush=True)
    if not args.no_startup:
        report["startup"] = startup_times(args.model, widget=not args.no_widget)

    model, meta = load_model(resolve_model_path(args.model), "cpu")
    report["settings"]["work_size_hw"] = list(meta["work_size"])
    wanted, builders = _chosen_models(args, _monai_builders(args, report))
    networks = _networks(model, meta, builders, wanted, args.seed)
    ft_sets = None if args.no_finetune else _finetune_sets(files, pairs, meta)
    _measure_models(report, networks, timed_files, device, args, workers, ft_sets)
    _add_accuracy(report, args, device, (model, meta), pairs, builders, wanted)

    print(format_report(report))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
        print(f"bench: wrote {args.json_out}")
    return 0


def _inputs(args: argparse.Namespace) -> tuple[list[Path], list[Path], list[Any]]:
    """All image files, the ones timed (``--limit``), and the image-mask pairs (``--masks``)."""
    from napari_nevseg.core.data import find_pairs
    from napari_nevseg.core.errors import NevsegError
    from napari_nevseg.core.image_io import list_images

    files = list_images(args.images)
    if not files:
        raise NevsegError(f"{args.images} holds no images")
    timed_files = files[: args.limit] if args.limit else files
    pairs = find_pairs(args.images, args.masks) if args.masks else []
    return files, timed_files, pairs


def _default_workers(device) -> int:
    """Decoding threads for the whole-pipeline row: a GPU waits on decoding, so it gets more;
    on the CPU, decoding threads compete with the network's."""
    return max(2, min(8, (os.cpu_count() or 2) // 2)) if device.type == "cuda" else 2


def _new_report(args: argparse.Namespace, device, timed_files: list[Path], workers: int) -> dict[str, Any]:
    """The report's skeleton: where and how it was measured, before any number."""
    return {
        "environment": environment(device, args),
        "settings": {"images": str(args.images), "masks": str(args.masks) if args.masks else None,
                     "model": args.model, "timed_images": len(timed_files), "precision": args.precision,
                     "train_minutes": args.train_minutes, "seed": args.seed, "workers": workers},
        "skipped": {},
        "models": {},
    }


def _monai_builders(args: argparse.Namespace, report: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """MONAI's networks, or none (and the reason in ``report["skipped"]``)."""
    if args.no_monai:
        report["skipped"]["monai"] = "--no-monai"
        return {}
    monai, why = import_monai()
    if monai is None:
        report["skipped"]["monai"] = why
        print(f"bench: {why}", flush=True)
        return {}
    return monai_networks()


def _chosen_models(args: argparse.Namespace, builders: dict[str, Callable[[], Any]]):
    """The model names to measure (``--models``, default all available) and their builders."""
    from napari_nevseg.core.errors import NevsegError

    if not args.models:
        return {OURS, *builders}, builders
    wanted = {m.strip() for m in args.models.split(",") if m.strip()}
    unknown = wanted - {OURS, MONAI_UNET, MONAI_BASIC}
    if unknown:
        raise NevsegError(f"--models: unknown {', '.join(sorted(unknown))}; choose from {OURS}, {MONAI_UNET}, {MONAI_BASIC}")
    return wanted, {k: v for k, v in builders.items() if k in wanted}


def _networks(model, meta, builders, wanted, seed: int) -> dict[str, tuple[Any, dict[str, Any]]]:
    """``{name: (network, metadata)}``; MONAI's networks borrow our model's working size,
    normalisation, threshold and flips, so only the network differs."""
    import torch

    shared = {k: meta[k] for k in ("work_size", "normalization", "threshold", "tta") if k in meta}
    networks: dict[str, tuple[Any, dict[str, Any]]] = {OURS: (model, meta)} if OURS in wanted else {}
    for name, build in builders.items():
        torch.manual_seed(seed)
        networks[name] = (build().eval(), {**shared, "arch": name, "arch_params": {}})
    return networks


def _finetune_sets(files: list[Path], pairs: list[Any], meta: dict[str, Any]):
    """10 training and up to 4 validation images for the fine-tune rows, taken from the images
    the model file records as held out where it names them (a fine-tune on images the model
    trained on would stop at once); ``None`` without masks."""
    from napari_nevseg.core.training import load_training_set

    by_stem = {p.stem: p for p in pairs}
    ft_pairs = [by_stem[f.stem] for f in files if f.stem in by_stem]
    recorded_test = set((meta.get("training") or {}).get("test_images") or [])
    ft_pairs = [p for p in ft_pairs if p.stem in recorded_test] or ft_pairs
    ft_train, ft_val = ft_pairs[:10], ft_pairs[10:14] or ft_pairs[-1:]
    if not ft_train:
        return None
    work_hw = tuple(meta["work_size"])
    return load_training_set(ft_train, work_hw), load_training_set(ft_val, work_hw)


def _measure_models(report, networks, timed_files, device, args, workers: int, ft_sets) -> None:
    """Latency of all models in turn, then throughput, fine-tuning and memory of one at a time."""
    import torch

    from napari_nevseg.core.image_io import read_image
    from napari_nevseg.core.session import ModelSession

    rgbs = [read_image(f) for f in timed_files]
    with tempfile.TemporaryDirectory(prefix="nevseg-bench-") as tmp:
        out_dir = Path(tmp)
        report["pipeline"] = decode_and_write(timed_files, out_dir)
        sessions = {}
        for name, (net, net_meta) in networks.items():
            sessions[name] = ModelSession(net, net_meta, device, name)
            sessions[name].predictor.precision = args.precision
        latency = {}
        if sessions:
            print(f"bench: per-image latency, {', '.join(LABELS[n] for n in sessions)} in turn ...", flush=True)
            latency = measure_latency(sessions, timed_files, rgbs, out_dir / "latency")
        if device.type == "cuda":  # one model on the GPU at a time from here, for its memory rows
            for parked in sessions.values():
                parked.predictor.to_device(torch.device("cpu"))
            free_memory(device)
        for name, (_, net_meta) in networks.items():
            print(f"bench: throughput and fine-tuning of {LABELS[name]} ...", flush=True)
            session = sessions.pop(name)
            report["models"][name] = _model_row(name, session, net_meta, latency[name], timed_files, rgbs,
                                                out_dir / name, workers, ft_sets, args.device)
            del session
            free_memory(device)


def _model_row(name, session, net_meta, latency, files, rgbs, out_dir: Path, workers: int, ft_sets, device_name: str):
    """One model's column of the report, measured with that model alone on the device."""
    import torch

    device = session.device
    if device.type == "cuda":
        session.predictor.to_device(device)
        torch.cuda.reset_peak_memory_stats(device)
    row: dict[str, Any] = {"label": LABELS[name], "parameters": sum(p.numel() for p in session.predictor.model.parameters()),
                           "precision": str(session.predictor.amp_dtype or torch.float32).replace("torch.", "")}
    row.update(latency)
    row.update(measure_throughput(session, files, rgbs, out_dir, workers))
    if ft_sets is not None:
        row.update(measure_finetune(session, net_meta, *ft_sets, device_name))
    row["rss_mb"] = rss_mb()
    row["peak_rss_mb_so_far"] = peak_rss_mb()
    if device.type == "cuda":
        row["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        row["cuda_max_reserved_mb"] = torch.cuda.max_memory_reserved(device) / 2**20
    return row


def _add_accuracy(report, args, device, shipped, pairs, builders, wanted) -> None:
    """Our model's Dice on the images its file records as held out, and, with
    ``--train-minutes``, every architecture trained from scratch for the same time."""
    model, meta = shipped
    recorded_test = set((meta.get("training") or {}).get("test_images") or [])
    by_stem = {p.stem: p for p in pairs}
    test_pairs = [by_stem[s] for s in sorted(recorded_test) if s in by_stem]
    if test_pairs:
        report["model_test_dice"] = {"images": len(test_pairs), "dice": full_res_dice(model, meta, device, test_pairs)}
    if args.train_minutes <= 0:
        report["skipped"]["accuracy"] = "--train-minutes 0"
    elif not pairs:
        report["skipped"]["accuracy"] = "no --masks given"
    else:
        from napari_nevseg.core.model import build_model

        ours = {OURS: lambda: build_model(meta["arch"], meta["arch_params"])} if OURS in wanted else {}
        report["accuracy"] = accuracy_at_equal_cost(args, device, {}, {**ours, **builders}, pairs)
