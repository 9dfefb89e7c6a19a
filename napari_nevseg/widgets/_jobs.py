"""Start napari workers that the controller tracks, and stop *and join* them when the dock goes.

Joining matters: a worker still running when Python shuts down emits into Qt objects already
deleted (``wrapped C/C++ object ... has been deleted``) or imports torch modules half torn down,
and the process aborts. A generator worker stops at its next ``yield`` (and is closed here); a
function worker (model load, training warm-up) cannot be interrupted, so teardown waits for it;
one not begun yet is cancelled. The wait is on each worker's own "left work()" event, set in the
worker thread: queued signals cannot be delivered to a GUI thread that is waiting.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from napari_nevseg.widgets.controller import ReviewController

#: how long teardown waits for the workers of one dock (a model load on 2 busy cores)
JOIN_TIMEOUT_S = 90.0


class _Job:
    """Whether a worker's function has begun, may still begin, or has left.

    superqt's ``worker.start()`` hands the worker to the thread pool from a 1 ms timer whenever an
    event loop runs, so a dock torn down in the same turn (File > Quit right after the model
    loaded) met a worker that had not begun and could not begin until the loop ran again: the
    join waited its whole timeout, then the timer started the training warm-up in a dying
    interpreter (exit code 134). A job cancelled before it begins never runs its function, and
    only a job that has begun is waited for.
    """

    def __init__(self) -> None:
        self.done = threading.Event()
        self.generator: Any = None
        self._lock = threading.Lock()
        self._begun = self._cancelled = False

    def begin(self) -> bool:
        """Called in the worker thread before the work: False when cancelled before that."""
        with self._lock:
            if self._cancelled:
                return False
            self._begun = True
            return True

    def cancel(self) -> bool:
        """No begin from now on; True when the function has begun (then wait for ``done``)."""
        with self._lock:
            self._cancelled = True
            return self._begun


def _keeping_generator(func: Callable, job: _Job) -> Callable:
    """The generator function ``func``, its generator kept by ``job`` (for
    :func:`_run_as_job` to close); it stays a generator function, so napari still makes a
    stoppable GeneratorWorker of it."""
    @functools.wraps(func)
    def generator(*args, **kwargs):
        job.generator = func(*args, **kwargs)
        return (yield from job.generator)

    return generator


def _run_as_job(worker: Any, job: _Job) -> None:
    """Make the worker's ``work()`` run only if its job was not cancelled first, set the job's
    ``done`` when the worker's thread leaves it, and close a generator it leaves suspended: on
    ``quit()`` superqt's GeneratorWorker stops asking for values without closing the
    generator, so its ``finally`` (a project prediction's decoding pool) never ran and a join
    that waited for it took its whole timeout (90 s on quitting mid-prediction)."""
    work = worker.work

    def work_as_job():
        try:
            return work() if job.begin() else None  # superqt emits no "returned" once aborted
        finally:
            try:
                if job.generator is not None:
                    job.generator.close()
            finally:
                job.done.set()

    worker.work = work_as_job


def start_worker(controller: ReviewController, func: Callable, *args: Any, _progress: dict | None = None,
                 **slots: Callable) -> Any:
    """``create_worker(func, *args)`` with ``slots`` connected (``yielded=``, ``returned=``...),
    tracked by the controller until it finishes, then started."""
    from napari.qt.threading import create_worker

    job = _Job()
    work = _keeping_generator(func, job) if inspect.isgeneratorfunction(func) else func
    worker = create_worker(work, *args, _progress=_progress) if _progress else create_worker(work, *args)
    worker.nevseg_job = job
    _run_as_job(worker, job)
    worker.nevseg_slots = [(getattr(worker, name), slot) for name, slot in slots.items()]
    for signal, slot in worker.nevseg_slots:
        signal.connect(slot)
    worker.finished.connect(lambda: controller.untrack(worker))
    controller.track(worker)
    worker.start()
    return worker


def stop_and_join(controller: ReviewController, timeout_s: float = JOIN_TIMEOUT_S) -> bool:
    """Ask every tracked worker to stop, disconnect the dock's slots from it, cancel the ones not
    begun yet, and wait until each begun one's thread has left the work; True when all did
    within the timeout."""
    workers = controller.workers
    begun = []
    for worker in workers:
        worker.quit()
        for signal, slot in getattr(worker, "nevseg_slots", ()):
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):  # already disconnected, or the Qt side is gone
                pass
        if worker.nevseg_job.cancel():  # after quit(): superqt emits no "returned" once aborted
            begun.append(worker)
    deadline = time.monotonic() + timeout_s
    joined = all(w.nevseg_job.done.wait(max(0.0, deadline - time.monotonic())) for w in begun)
    for worker in workers:
        controller.untrack(worker)
    return joined


def join_thread_pool(timeout_ms: int = 5000) -> bool:
    """At application exit: let every pooled thread leave ``run()`` (its last emits included)."""
    from qtpy.QtCore import QThreadPool

    return bool(QThreadPool.globalInstance().waitForDone(timeout_ms))
