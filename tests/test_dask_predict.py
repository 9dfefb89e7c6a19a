"""`nevseg predict --scheduler`: a Dask LocalCluster, a worker killed mid-chunk, the missing extra."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import distributed  # the optional extra napari-nevseg[distributed]; the test extra installs it
import pytest
from PIL import Image

from napari_nevseg.cli import main
from napari_nevseg.core.batch import FAILURES_NAME


@pytest.fixture
def pictures(tmp_path, make_blob):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(10):
        Image.fromarray(make_blob(40 + i, 56, seed=30 + i)[0]).save(folder / f"img{i:02d}.png")
    return folder


def _masks(out):
    return {p.name: p.read_bytes() for p in out.glob("*.png")}


def _single_process(pictures, out, model):
    assert main(["predict", str(pictures), "--out", str(out), "--model", str(model), "--device", "cpu",
                 "--precision", "fp32", "--quiet"]) == 0
    return _masks(out)


def test_local_cluster_writes_the_single_process_masks(pictures, tmp_path, blob_model_file, capsys):
    reference = _single_process(pictures, tmp_path / "ref", blob_model_file)
    out = tmp_path / "out"
    code = main(["predict", str(pictures), "--out", str(out), "--model", str(blob_model_file), "--device", "cpu",
                 "--precision", "fp32", "--scheduler", "local:2", "--chunk-size", "3"])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "predicted 10 of 10 images" in stdout and "Dask local:2" in stdout
    assert _masks(out) == reference
    # the Dask run resumes like any other: nothing left, so no cluster is even started
    assert main(["predict", str(pictures), "--out", str(out), "--model", str(blob_model_file),
                 "--precision", "fp32", "--scheduler", "local:2"]) == 0
    assert "nothing to predict" in capsys.readouterr().out


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, shared by the tests below (each registers its own plugins)."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test plugins, by value
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as local, distributed.Client(local) as client:
        yield local, client
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


class _WriteHook(distributed.WorkerPlugin):
    """Test only: runs ``hook(path)`` in the worker right after each mask is written; removed
    again at teardown."""

    def __init__(self, target: str, marker: str) -> None:
        self.target, self.marker = target, marker

    def setup(self, worker) -> None:
        from napari_nevseg.core import pipeline

        self._original = write = pipeline.write_mask_png

        def hooked(path, mask):
            written = write(path, mask)
            if path.name == self.target:
                self.hook()
            return written

        pipeline.write_mask_png = hooked

    def teardown(self, worker) -> None:
        from napari_nevseg.core import pipeline

        pipeline.write_mask_png = self._original


class _StallOnce(_WriteHook):
    """The first worker to write ``target`` records its pid in ``marker`` and stalls there, in
    the middle of its chunk, until the test kills it; the recomputation goes through."""

    def hook(self) -> None:
        try:
            fd = os.open(self.marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(120)


class _DieAlways(_WriteHook):
    """Every worker that writes ``target`` kills itself on the spot."""

    def hook(self) -> None:
        os.kill(os.getpid(), signal.SIGKILL)


def _kill_when_stalled(marker, killed: list) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if os.path.exists(marker) and os.path.getsize(marker):
            pid = int(Path(marker).read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.05)


def test_a_killed_worker_s_chunk_is_recomputed_elsewhere(cluster, pictures, tmp_path, blob_model_file):
    from napari_nevseg.core.batch import RunSettings, plan_run
    from napari_nevseg.core.dask_predict import ModelPlugin, predict_on_dask
    from napari_nevseg.core.postprocess import Cleanup

    local, client = cluster
    reference = _single_process(pictures, tmp_path / "ref", blob_model_file)
    out, marker = tmp_path / "out", str(tmp_path / "stalled.pid")
    settings = RunSettings.for_model(blob_model_file, "blob", None, Cleanup(), "fp32", None)
    plan = plan_run(sorted(pictures.iterdir()), out, settings)
    plugin = ModelPlugin(blob_model_file, settings.model_sha256, "cpu", "fp32", settings.tta, 1)
    killed: list[int] = []
    client.register_plugin(_StallOnce("img04.png", marker), name="stall-once")
    killer = threading.Thread(target=_kill_when_stalled, args=(marker, killed), daemon=True)
    killer.start()
    try:
        chunks = list(predict_on_dask(plan.todo, out, local.scheduler_address, plugin,
                                      threshold=settings.threshold, cleanup=settings.cleanup, chunk_size=2))
    finally:
        client.unregister_worker_plugin("stall-once")
    killer.join(timeout=5)
    assert len(killed) == 1, "the worker never stalled: nothing was killed"
    results = [r for chunk in chunks for r in chunk.results]
    assert sorted(r.source.name for r in results) == sorted(p.name for p in pictures.iterdir())
    assert all(r.error is None for r in results)
    # img04's chunk (img04, img05) was finished by another process than the one killed
    lost = next(chunk for chunk in chunks if any(r.source.name == "img04.png" for r in chunk.results))
    assert lost.worker_pid not in (None, killed[0])
    assert _masks(out) == reference  # byte for byte, the single-process fp32 masks
    # the model is loaded once per worker process, however many chunks it ran
    assert all(chunk.model_loads == 1 for chunk in chunks)
    assert len({chunk.worker_pid for chunk in chunks}) < len(chunks)


def test_a_chunk_that_kills_its_workers_is_reported_and_the_run_goes_on(cluster, pictures, tmp_path,
                                                                        tiny_model_file, capsys):
    local, client = cluster
    client.run_on_scheduler(_set_allowed_failures, 0)  # the first death gives up on the chunk
    client.register_plugin(_DieAlways("img07.png", ""), name="die-always")
    out = tmp_path / "out"
    try:
        code = main(["predict", str(pictures), "--out", str(out), "--model", str(tiny_model_file),
                     "--scheduler", local.scheduler_address, "--chunk-size", "2"])
    finally:
        client.unregister_worker_plugin("die-always")
        client.run_on_scheduler(_set_allowed_failures, 3)
    assert code == 1
    failed = {Path(f["source"]).name: f["error"]
              for f in map(json.loads, (out / FAILURES_NAME).read_text().splitlines())}
    # the poisoned chunk; a chunk already queued on the same worker is lost with it
    assert {"img06.png", "img07.png"} <= set(failed) and len(failed) < 10
    assert all("workers holding its chunk died" in error for error in failed.values())
    done = {p.name for p in pictures.iterdir()} - set(failed)
    assert all((out / name).is_file() for name in done)
    assert f"predicted {len(done)} of 10 images" in capsys.readouterr().out


def _set_allowed_failures(count: int, dask_scheduler=None) -> None:
    dask_scheduler.allowed_failures = count


def test_without_dask_the_scheduler_says_what_to_install(pictures, tmp_path, tiny_model_file, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    monkeypatch.delitem(sys.modules, "napari_nevseg.core.dask_predict", raising=False)
    out = tmp_path / "out"
    assert main(["predict", str(pictures), "--out", str(out), "--model", str(tiny_model_file),
                 "--scheduler", "local:2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "pip install 'napari-nevseg[distributed]'" in err
    assert not out.exists()  # refused before anything was written


@pytest.mark.parametrize("spec", ["local:0", "local:two", "localhost:8786", "tcp://"])
def test_bad_scheduler_is_one_line(pictures, tmp_path, tiny_model_file, capsys, spec):
    assert main(["predict", str(pictures), "--out", str(tmp_path / "out"), "--model", str(tiny_model_file),
                 "--scheduler", spec]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--scheduler" in err and "Traceback" not in err
