"""Shared pieces of the benchmark: model names, timers, memory readings."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

OURS = "nevseg"


MONAI_UNET = "monai_unet"


MONAI_BASIC = "monai_basicunet"


LABELS = {OURS: "ours (nevseg)", MONAI_UNET: "MONAI UNet", MONAI_BASIC: "MONAI BasicUNet"}


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(fn: Callable[[], Any], device) -> tuple[float, Any]:
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def median_seconds(fn: Callable[[], Any], device, reps: int, warmup: int = 2) -> float:
    """Median seconds of ``fn`` over ``reps`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    return float(statistics.median(timed(fn, device)[0] for _ in range(reps)))


def peak_rss_mb() -> float | None:
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


def rss_mb() -> float | None:
    try:
        import psutil

        return psutil.Process().memory_info().rss / (1024 * 1024)
    except ImportError:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
        except (OSError, ValueError, AttributeError):
            return None


def free_memory(device) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def drain(gen) -> list:
    items = []
    try:
        while True:
            items.append(next(gen))
    except StopIteration:
        return items


def final_result(gen):
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value
