"""Background priority: only the calling thread is lowered, and only inside the block."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from napari_nevseg.core.priority import background_priority

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux-only")


def _nice(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


@linux_only
def test_lowers_only_the_calling_thread():
    main_tid = threading.get_native_id()
    main_before = _nice(main_tid)
    seen: dict[str, object] = {}

    def work():
        tid = threading.get_native_id()
        seen["before"] = _nice(tid)
        with background_priority(5) as lowered:
            seen["lowered"] = lowered
            seen["inside"] = _nice(tid)
            seen["main_inside"] = _nice(main_tid)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen["lowered"] is True
    assert seen["inside"] == min(19, seen["before"] + 5)
    assert seen["main_inside"] == main_before  # the GUI thread keeps its priority
    assert _nice(main_tid) == main_before


def test_zero_niceness_changes_nothing():
    tid = threading.get_native_id()
    before = _nice(tid) if sys.platform.startswith("linux") else None
    with background_priority(0) as lowered:
        assert lowered is False
        if before is not None:
            assert _nice(tid) == before


def test_yields_false_off_linux(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    with background_priority(10) as lowered:
        assert lowered is False
