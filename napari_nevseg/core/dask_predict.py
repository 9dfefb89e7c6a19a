"""Batch prediction on a Dask cluster: ``nevseg predict --scheduler local:N | tcp://HOST:PORT``.

Imported only when a scheduler is asked for: ``dask.distributed`` is an optional extra
(``pip install 'napari-nevseg[distributed]'``).

- Each worker process loads the model once: a worker plugin holds it, loaded at the first
  chunk that worker runs (so a worker the nanny restarts after a crash loads it again, once).
- A task is a chunk of (source, output name) pairs, in the run's sorted order. The worker runs
  the same pipeline as one process (:func:`~napari_nevseg.core.pipeline.predict_files`) and
  writes the masks itself, atomically; only a small summary travels back.
- A worker that dies while it holds a chunk: the scheduler hands the chunk to another worker,
  which writes the same files again (whole files either way, the atomic writes see to that).
  A chunk that kills several workers in turn (the scheduler's ``allowed-failures``) is
  reported as failed images and the run goes on.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_nevseg.core.errors import ModelFileError, NevsegError
from napari_nevseg.core.pipeline import FileResult
from napari_nevseg.core.postprocess import Cleanup

try:
    from distributed import Client, LocalCluster, WorkerPlugin, as_completed, get_worker
    from distributed.scheduler import KilledWorker
except ImportError as exc:  # the optional extra is not installed
    raise NevsegError("--scheduler needs Dask's distributed scheduler: pip install 'napari-nevseg[distributed]'") from exc

__all__ = ["ChunkResult", "ModelPlugin", "parse_scheduler", "predict_on_dask"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkResult:
    """One finished chunk: its files' results, the worker's process id (``None``: the chunk
    was lost), and how many times that worker process has loaded the model (1, unless
    something loads it per task)."""

    results: tuple[FileResult, ...]
    worker_pid: int | None
    model_loads: int


def parse_scheduler(spec: str) -> tuple[str, Any]:
    """``"local:N"`` as ``("local", N)``; a scheduler address (``tcp://``, ``tls://``, ...)
    as ``("address", spec)``."""
    if spec.startswith("local:"):
        try:
            count = int(spec.removeprefix("local:"))
        except ValueError:
            count = 0
        if count < 1:
            raise NevsegError(f"--scheduler {spec!r}: local:N needs N, the number of worker processes, at least 1")
        return "local", count
    if "://" in spec and spec.split("://", 1)[1]:
        return "address", spec
    raise NevsegError(f"--scheduler {spec!r} must be local:N (N worker processes here) or the address of a "
                      "running Dask scheduler, e.g. tcp://10.0.0.5:8786")


class ModelPlugin(WorkerPlugin):
    """Holds one worker process's model; tasks reach it through the worker's plugins."""

    def __init__(self, model_path: Path, sha256: str, device: str, precision: str, tta: int, threads: int) -> None:
        self.model_path, self.sha256, self.device = str(model_path), sha256, device
        self.precision, self.tta, self.threads = precision, tta, threads
        self.loads = 0
        self._session: Any = None
        self._lock: Any = None

    def setup(self, worker: Any) -> None:
        self._lock = threading.Lock()

    def teardown(self, worker: Any) -> None:
        self._session = None

    def session(self) -> Any:
        """The loaded :class:`~napari_nevseg.core.session.ModelSession` (loaded on first use)."""
        with self._lock:
            if self._session is None:
                self._session = self._load()
                self.loads += 1
            return self._session

    def _load(self) -> Any:
        import torch

        from napari_nevseg.core.content_hash import file_sha256
        from napari_nevseg.core.session import ModelSession

        torch.set_num_threads(self.threads)
        found = file_sha256(self.model_path)
        if found != self.sha256:
            raise ModelFileError(f"{self.model_path} on worker {os.uname().nodename} is not the model the run "
                                 f"started with (sha256 {found[:12]}, expected {self.sha256[:12]})")
        session = ModelSession.load(self.model_path, self.device)
        session.predictor.precision = self.precision
        session.predictor.tta = self.tta
        return session


def _predict_chunk(pairs: Sequence[tuple[Path, str]], out_dir: Path, plugin_name: str, options: dict) -> ChunkResult:
    """The task: predict one chunk on this worker and write its masks here."""
    from napari_nevseg.core.pipeline import predict_files

    plugin = get_worker().plugins[plugin_name]
    session = plugin.session()
    files = [source for source, _ in pairs]
    results = predict_files(files, out_dir, session, stems=[stem for _, stem in pairs],
                            on_fallback=log.warning, **options)
    return ChunkResult(tuple(results), os.getpid(), plugin.loads)


@contextmanager
def _client(kind: str, value: Any) -> Iterator[Client]:
    if kind == "local":
        # one thread per worker process: torch gets one core each (ModelPlugin.threads); the
        # scheduler's web server on a free port (the default, 8787, may be another cluster's)
        with LocalCluster(n_workers=value, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
                Client(cluster) as client:
            yield client
    else:
        try:
            client = Client(value, timeout="30s")
        except OSError as exc:
            raise NevsegError(f"cannot reach the Dask scheduler at {value} ({exc}); is it running?") from exc
        with client:
            yield client


def predict_on_dask(
    pairs: Sequence[tuple[Path, str]],
    out_dir: Path,
    scheduler: str,
    plugin: ModelPlugin,
    *,
    threshold: float,
    cleanup: Cleanup,
    probabilities: bool = False,
    overlays: bool = False,
    chunk_size: int = 32,
    batch_size: int = 8,
) -> Iterator[ChunkResult]:
    """Predict ``pairs`` on ``scheduler`` in chunks of ``chunk_size``; chunks as they finish."""
    kind, value = parse_scheduler(scheduler)
    if chunk_size < 1:
        raise NevsegError("--chunk-size must be at least 1")
    chunks = [list(pairs[i : i + chunk_size]) for i in range(0, len(pairs), chunk_size)]
    options = {"threshold": threshold, "cleanup": cleanup, "probabilities": probabilities,
               "overlays": overlays, "batch_size": batch_size}
    run = uuid.uuid4().hex[:12]
    name = f"nevseg-model-{plugin.sha256[:12]}-{run}"
    with _client(kind, value) as client:
        client.register_plugin(plugin, name=name)
        try:
            futures = {client.submit(_predict_chunk, chunk, Path(out_dir), name, options,
                                     key=f"nevseg-chunk-{run}-{i:06d}", pure=False): chunk
                       for i, chunk in enumerate(chunks)}
            for future in as_completed(futures):
                try:
                    yield future.result()
                except KilledWorker:
                    error = ("the Dask workers holding its chunk died (out of memory? killed?) and the scheduler "
                             "gave up on it; the next run tries it again")
                    yield ChunkResult(tuple(FileResult(src, error=f"{src}: {error}") for src, _ in futures[future]),
                                      None, 0)
                future.release()
        finally:
            if kind == "address":  # a cluster that outlives the run: free the workers' model
                client.unregister_worker_plugin(name)
