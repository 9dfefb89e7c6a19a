"""CPU threads for torch work that runs beside a viewer.

Under OpenMP torch's intra-op thread count is mostly a thread's own: ``torch.set_num_threads``
sets the calling thread's count, and also the count that a thread which has not yet run a
parallel operation takes for good when it first does. So a worker sets its count for its job
and gives it back (the same pool thread runs the next job); a thread born while a click runs may
keep the click's count, at most one fewer than the cores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: torch's own choice at start-up (the physical cores, where it can tell), before anyone sets it
_TORCH_DEFAULT = torch.get_num_threads()

__all__ = ["cores", "threads_beside_a_viewer", "torch_threads"]


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def threads_beside_a_viewer() -> int:
    """Every core but one, which the viewer keeps for its events and painting, and never more
    than torch's own default (logical CPUs beyond the physical cores only oversubscribe them):
    on two cores a click's prediction with a second torch thread reaches the screen later, not
    sooner, because its threads wait for the core the viewer paints on (docs/benchmarks.md)."""
    return max(1, min(_TORCH_DEFAULT, cores() - 1))


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
