"""Distributed training under the real torchrun (2 processes, gloo, CPU): 2 ranks at batch 4
train the weights one process makes at batch 8; resume under torchrun; rank 0 alone writes and
decides when to stop; the command line. Each launch runs several scenarios
(tests/ddp_worker.py), since starting two Python processes with torch costs seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from napari_nevseg.core.errors import ResumeError
from napari_nevseg.core.model import build_model
from napari_nevseg.core.threads import torch_threads
from napari_nevseg.core.training import Checkpointing, train
from napari_nevseg.core.training.distributed import Ranks
from tests import ddp_worker as worker

ROOT = Path(__file__).resolve().parent.parent
#: a hang (a rank waiting in a collective that another left) ends here, not in gloo's 30 minutes
TIMEOUT_S = 300


def torchrun(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(ROOT / "tests" / "ddp_worker.py"), str(out), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=out)


def _reports(out: Path) -> list[dict]:
    return [json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)]


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    done = torchrun(out, "equivalence", "first", "agree")
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.mark.parametrize("n", worker.EQUIVALENCE_SIZES)
def test_two_ranks_at_batch_4_train_what_one_process_does_at_batch_8(launched, n, monkeypatch):
    batches: list[list[int]] = []
    real_share = Ranks.share
    monkeypatch.setattr(Ranks, "share", lambda self, batch: (batches.append(batch.tolist()), real_share(self, batch))[1])
    with torch_threads(1):  # the ranks' count (OMP_NUM_THREADS=1): the same arithmetic, whatever ran before
        single = worker.finish(train(worker.pictures(n), None, worker.config()))
    ddp = load_file(str(launched / f"weights-{n}.safetensors"))
    torch.manual_seed(worker.config().seed)
    start = build_model("resunet", worker.config().arch_params).state_dict()
    diff, moved = _max_diff(single.model.state_dict(), ddp), _max_diff(start, ddp)
    print(f"n={n}: 2 ranks vs 1 process, max |weight difference| {diff:.2e}; weights moved up to {moved:.2e}")
    assert diff <= 1e-5
    assert moved > 1e-3
    reports = [r["equivalence"][str(n)] for r in _reports(launched)]
    assert all(r["world_size"] == 2 for r in reports)
    # each rank took its contiguous part of every global batch of the one process's epoch plan
    assert [a + b for a, b in zip(reports[0]["shares"], reports[1]["shares"], strict=True)] == batches
    assert len(reports[0]["shares"][0]) == len(reports[1]["shares"][0]) == 4
    # the loss recorded is the global batch's
    assert reports[0]["history"][0]["loss"] == pytest.approx(single.history[0]["loss"], abs=1e-6)


def test_resumed_under_torchrun_equals_an_uninterrupted_torchrun_run(launched):
    done = torchrun(launched, "second")
    assert done.returncode == 0, done.stderr[-4000:]
    whole, resumed = load_file(str(launched / "whole.safetensors")), load_file(str(launched / "resumed.safetensors"))
    assert _max_diff(whole, resumed) <= 1e-6
    first, second = _reports(launched)[0]["first"], _reports(launched)[0]["second"]
    assert second["history"] == first["history"] and second["best_epoch"] == first["best_epoch"] > 2


def test_a_checkpoint_of_two_processes_is_refused_by_one(launched):
    with pytest.raises(ResumeError, match=r"written by 2 training process\(es\) and this run has 1: resume with the same"):
        next(train(worker.pictures(10), worker.pictures(3, 100), worker._resume_config(),
                   checkpoint=Checkpointing(launched / "cut.resume", 2, resume=True)))


def test_only_rank_0_writes_and_the_checkpoint_holds_every_ranks_generator(launched):
    from safetensors import safe_open

    assert not (launched / "writes-1-equivalence.txt").exists()
    assert (launched / "writes-0-equivalence.txt").read_text().split() == ["whole.resume", "whole.resume", "cut.resume"]
    with safe_open(str(launched / "whole.resume"), framework="pt") as handle:
        header = json.loads(handle.metadata()["nevseg_train_state"])
        gens = [handle.get_tensor(f"s.rank_generators.{r}") for r in (0, 1)]
    assert header["world_size"] == 2
    assert not torch.equal(gens[0], gens[1])  # each rank augments from its own stream


def test_rank_0_decides_when_to_stop_and_validation_counts_each_image_once(launched):
    """Rank 1 would stop after epoch 1 (early stopping) and after its first step (time limit):
    without the agreement rank 0 would wait in a collective until the timeout."""
    reports = [r["agree"] for r in _reports(launched)]
    assert reports[0] == reports[1]
    assert len(reports[0]["history"]) == 3 and reports[0]["stopped_by"] == "epochs"
    # 3 validation images on 2 ranks: a padded split would count one twice
    assert reports[0]["reduced_val"] == pytest.approx(reports[0]["whole_val"], abs=1e-12)


def test_nevseg_train_under_torchrun(pairs_dir, tmp_path):
    from napari_nevseg.core.checkpoint import load_model

    out = tmp_path / "run"
    out.mkdir()
    model = out / "m.safetensors"
    done = torchrun(out, "cli", "train", "--images", str(pairs_dir / "images"), "--masks", str(pairs_dir / "masks"),
                    "--out", str(model), "--init", "none", "--channels", "4,8", "--work-size", "48x32",
                    "--epochs", "2", "--batch-size", "2", "--checkpoint-every", "1", "--device", "cpu")
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count("wrote ") == 1 and done.stdout.count("epoch 1/2") == 1, done.stdout
    assert load_model(model)[1]["training"]["world_size"] == 2
    assert (out / "writes-0-cli.txt").read_text().split() == ["m.safetensors.resume", "m.safetensors"]
    assert not (out / "writes-1-cli.txt").exists()
    assert sorted(p.name for p in out.iterdir()) == ["m.safetensors", "writes-0-cli.txt"]


@pytest.mark.parametrize("n", range(0, 7))
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_validation_shards_hold_every_image_once(n, world):
    parts = [list(range(n))[Ranks(r, world).shard(n)] for r in range(world)]
    assert sum(parts, []) == list(range(n))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize("size", [8, 5, 1])
def test_weighted_shares_average_to_the_global_batch_mean(size):
    """DDP averages the ranks' gradients: the shares' weighted mean losses must too."""
    batch, losses = torch.arange(10, 10 + size), torch.rand(size, generator=torch.Generator().manual_seed(size))
    parts = [Ranks(r, 2).share(batch) for r in (0, 1)]
    assert torch.cat([idx for idx, w in parts if w]).tolist() == batch.tolist()
    average = sum(w * losses[idx - 10].mean() for idx, w in parts) / 2
    assert float(average) == pytest.approx(float(losses.mean()), abs=1e-6)
