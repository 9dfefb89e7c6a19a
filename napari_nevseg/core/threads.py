"""CPU threads for torch work that runs beside a viewer.

Torch keeps its intra-op thread count per thread (OpenMP's count is a thread's own setting), so
a worker thread may run with fewer threads than the process started with, and must give the
count back: the same pool thread runs the next job, which may want them all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["cores", "threads_beside_a_viewer", "torch_threads"]


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def threads_beside_a_viewer() -> int:
    """Every core but one, which the viewer keeps for its events and painting: on two cores a
    click's prediction with a second torch thread reaches the screen later, not sooner, because
    its threads wait for the core the viewer paints on (docs/benchmarks.md, click latency)."""
    return max(1, cores() - 1)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch threads in this thread (None: as it is), then restore."""
    previous = torch.get_num_threads()
    if n is None or n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
