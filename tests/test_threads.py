"""Torch threads beside a viewer (core/threads.py)."""

from __future__ import annotations

import threading

import torch

from napari_nevseg.core.threads import cores, threads_beside_a_viewer, torch_threads


def test_the_viewer_keeps_one_core():
    assert threads_beside_a_viewer() == max(1, cores() - 1)


def test_torch_threads_sets_the_count_for_the_block_and_gives_it_back():
    """A pool thread that ran a click with fewer threads must run the next job as before."""
    seen = {}

    def job():
        seen["before"] = torch.get_num_threads()
        with torch_threads(1):
            seen["inside"] = torch.get_num_threads()
        seen["after"] = torch.get_num_threads()
        with torch_threads(None):
            seen["none"] = torch.get_num_threads()

    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
    assert seen["inside"] == 1
    assert seen["after"] == seen["before"] == seen["none"]


def test_torch_threads_restores_after_an_error():
    before = torch.get_num_threads()
    try:
        with torch_threads(1):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert torch.get_num_threads() == before
