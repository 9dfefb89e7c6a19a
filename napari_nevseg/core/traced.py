"""The network as one call that lets go of Python's GIL: for a click's answer in a live viewer.

In napari the GUI thread holds the GIL while Qt paints and composes the window (PyQt keeps it
through its C++ calls: a Python thread made 8% of its progress during a 59 ms ``QImage.scaled``).
An eager forward needs the GIL between each of its hundred-odd operations, so a worker's
network waits out every frame painted meanwhile: 19 ms quiet, 61 ms in the viewer while the
point just placed was being drawn (``benchmarks/click_latency.py``, 2 CPU cores). Traced for its
one input shape, the forward runs inside TorchScript's interpreter with the GIL released, and
alongside the painting; on the same input its outputs equal the eager network's bit for bit.

TorchScript is deprecated in favour of ``torch.compile`` / ``torch.export``, which need a C++
compiler at run time on the CPU; so tracing is an accelerator, never a requirement: where it is
missing or fails, the eager network runs (``None`` from :func:`trace_network`).
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Any

import torch
from torch import nn

__all__ = ["TracedNetwork", "trace_network"]

log = logging.getLogger(__name__)


def trace_network(net: nn.Module, example: torch.Tensor, amp_dtype: torch.dtype | None) -> Any | None:
    """``net`` traced and frozen for ``example``'s shape, device, layout and autocast type, or
    ``None`` where tracing is unavailable or fails (the caller then runs ``net`` itself)."""
    trace = getattr(torch.jit, "trace", None)
    if trace is None:
        return None
    device = example.device.type
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notice and the shape-fixing notes
            previous = torch._C._jit_is_autocast_enabled() if hasattr(torch._C, "_jit_is_autocast_enabled") else None
            if previous is not None:
                torch._C._jit_set_autocast_mode(False)  # record autocast's casts, do not redo them
            try:
                with torch.inference_mode(False), torch.no_grad():
                    if amp_dtype is None:
                        traced = trace(net, example, check_trace=False)
                    else:
                        with torch.autocast(device, dtype=amp_dtype):
                            traced = trace(net, example, check_trace=False)
                    traced = torch.jit.freeze(traced.eval(), optimize_numerics=False)  # the same numbers
                    for _ in range(2):  # TorchScript optimises on its first runs: pay them now
                        traced(example)
            finally:
                if previous is not None:
                    torch._C._jit_set_autocast_mode(previous)
    except Exception as exc:  # noqa: BLE001 (an accelerator: any failure falls back to eager)
        log.info("tracing the network failed (%s); clicks run it eagerly", exc)
        return None
    return traced


class TracedNetwork:
    """A traced copy of one network for one input shape, made on first use and remade when the
    network, device, layout or autocast type changes; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._traced: Any | None = None

    @staticmethod
    def _key_of(net: nn.Module, x: torch.Tensor, amp_dtype: torch.dtype | None) -> tuple:
        layout = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        return net, tuple(x.shape), str(x.device), layout, amp_dtype  # the module by identity

    def __call__(self, net: nn.Module, x: torch.Tensor, amp_dtype: torch.dtype | None) -> torch.Tensor:
        """``net(x)`` (under ``amp_dtype`` autocast), through the traced copy where there is one."""
        key = self._key_of(net, x, amp_dtype)
        with self._lock:
            if key != self._key:
                self._key, self._traced = key, trace_network(net, x, amp_dtype)
            traced = self._traced
        if traced is not None:
            return traced(x)
        if amp_dtype is None:
            return net(x)
        with torch.autocast(x.device.type, dtype=amp_dtype):
            return net(x)
