"""Torch threads beside a viewer (core/threads.py)."""

from __future__ import annotations

import threading

import pytest
import torch

from napari_nevseg.core import threads
from napari_nevseg.core.threads import torch_threads


@pytest.mark.parametrize(("cpus", "torch_default", "expected"), [(2, 2, 1), (8, 4, 4), (8, 8, 7), (1, 1, 1)])
def test_the_viewer_keeps_one_core_and_logical_cpus_add_none(monkeypatch, cpus, torch_default, expected):
    monkeypatch.setattr(threads, "cores", lambda: cpus)
    monkeypatch.setattr(threads, "_TORCH_DEFAULT", torch_default)
    assert threads.threads_beside_a_viewer() == expected


def test_torch_threads_sets_the_count_for_the_block_and_gives_it_back():
    """A pool thread that ran a click with another count must run the next job as before."""
    seen = {}

    def job():
        seen["before"] = torch.get_num_threads()
        other = seen["before"] + 1
        with torch_threads(other):
            seen["inside"] = torch.get_num_threads() == other
        seen["after"] = torch.get_num_threads()
        with torch_threads(None):
            seen["none"] = torch.get_num_threads()

    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
    assert seen["inside"]
    assert seen["after"] == seen["before"] == seen["none"]


def test_torch_threads_restores_after_an_error():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), torch_threads(before + 1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
