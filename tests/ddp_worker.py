"""One rank of the distributed-training tests, started by the real ``torchrun`` (tests/test_ddp.py).

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py OUT MODE...

MODEs, run in turn in one launch (a launch costs seconds of imports): ``equivalence``;
``first`` and ``second`` (a run, and the same run stopped after epoch 3, then resumed in
another launch); ``agree`` (rank 1 would stop early and at once on a time limit; rank 0
decides). Or ``cli ARGS...``: the ``nevseg`` command line, run as ``python -m napari_nevseg``.
Every rank writes ``OUT/rank-R.json`` (what it saw, by mode) and logs each file it renames into
place, i.e. each atomic write, to ``OUT/writes-R-MODE.txt`` (MODE: the launch's first); rank 0
writes the weights it ended with.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import save_file

from napari_nevseg.core.augment import AugmentConfig
from napari_nevseg.core.training import (
    Checkpointing,
    ClickTraining,
    TrainConfig,
    make_training_set,
    steps,
    train,
)
from napari_nevseg.core.training.distributed import Ranks, process_group
from napari_nevseg.core.training.scoring import evaluate_dice
from tests.synthetic import blob_picture

WORK = (32, 48)
#: augmentation that changes nothing (it still draws its numbers)
NO_AUGMENT = AugmentConfig(rotate=False, flip=False, zoom=(1.0, 1.0), shift=0.0, brightness=0.0, contrast=0.0,
                           saturation=0.0, channel_gain=0.0, gamma=0.0)


def pictures(n: int, start: int = 0):
    return make_training_set([(f"b{start + i}", *blob_picture(40, 60, seed=start + i)) for i in range(n)], WORK)


def config(**kw) -> TrainConfig:
    """The default network (instance-normalised ResUNet), narrow; the recipe's learning rate."""
    base = dict(arch="resunet", arch_params={"channels": [4, 8, 16], "norm": "instance", "top": "direct"},
                work_size=WORK, epochs=1, batch_size=8, lr=2e-3, device="cpu", seed=5, augment=NO_AUGMENT)
    return TrainConfig(**{**base, **kw})


def finish(gen):
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def stop_after_epoch(gen, epoch: int) -> None:
    for progress in gen:
        if progress.epoch == epoch and progress.epoch_loss is not None:
            gen.close()
            return
    raise AssertionError("the run ended before the epoch to stop at")


def _audit_writes(out: Path, rank: int, launch: str) -> None:
    """Log every ``os.replace`` destination (atomic writes end in one) of this rank."""
    real = os.replace

    def logged(src, dst, *args, **kwargs):
        with open(out / f"writes-{rank}-{launch}.txt", "a") as log:
            log.write(f"{Path(dst).name}\n")
        return real(src, dst, *args, **kwargs)

    os.replace = logged  # type: ignore[assignment]


def _weights(out: Path, name: str, result, ranks: Ranks) -> None:
    if ranks.lead:
        save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, str(out / name))


#: training set sizes of the equivalence runs at global batch 8: the last batch of 21 splits
#: 3 + 2 (weighted shares), that of 17 is one image (rank 1 computes with weight 0)
EQUIVALENCE_SIZES = (21, 17)


def _equivalence(out: Path, ranks: Ranks) -> dict:
    shares: list[list[int]] = []
    real_share = Ranks.share

    def recorded(self, batch):
        mine, weight = real_share(self, batch)
        shares.append(mine.tolist() if weight else [])
        return mine, weight

    Ranks.share = recorded  # type: ignore[method-assign]
    report = {}
    for n in EQUIVALENCE_SIZES:
        shares.clear()
        result = finish(train(pictures(n), None, config()))
        _weights(out, f"weights-{n}.safetensors", result, ranks)
        report[str(n)] = {"world_size": result.metadata["training"]["world_size"], "shares": list(shares),
                          "history": result.history}
    Ranks.share = real_share  # type: ignore[method-assign]
    return report


def _resume_config() -> TrainConfig:
    """With augmentation and simulated clicks: every rank draws from its own generator."""
    return config(epochs=5, ema_decay=0.5, patience=4, augment=AugmentConfig(), batch_size=4,
                  clicks=ClickTraining(max_iterations=1))


def _first(out: Path, ranks: Ranks) -> dict:
    train_set, val_set = pictures(10), pictures(3, 100)
    whole = finish(train(train_set, val_set, _resume_config(), checkpoint=Checkpointing(out / "whole.resume", 2)))
    _weights(out, "whole.safetensors", whole, ranks)
    stop_after_epoch(train(train_set, val_set, _resume_config(), checkpoint=Checkpointing(out / "cut.resume", 2)), 3)
    return {"history": whole.history, "best_epoch": whole.best_epoch}


def _second(out: Path, ranks: Ranks) -> dict:
    resumed = finish(train(pictures(10), pictures(3, 100), _resume_config(),
                           checkpoint=Checkpointing(out / "cut.resume", 2, resume=True)))
    _weights(out, "resumed.safetensors", resumed, ranks)
    return {"history": resumed.history, "best_epoch": resumed.best_epoch}


def _agree(out: Path, ranks: Ranks) -> dict:
    """Rank 1 would stop early after every epoch and on a time limit at once: rank 0 decides."""
    if ranks.rank == 1:
        steps.should_stop_early = lambda run: True
    cfg = config(epochs=3, patience=2, max_minutes=1e-9 if ranks.rank == 1 else None, batch_size=4)
    val_set = pictures(3, 100)
    result = finish(train(pictures(6), val_set, cfg))
    # the all-reduced validation score of the final weights, each of the 3 images once
    run = SimpleNamespace(ranks=ranks, mean=result.metadata["normalization"]["mean"],
                          std=result.metadata["normalization"]["std"], device=torch.device("cpu"),
                          guidance_channels=0)
    return {"history": result.history, "stopped_by": result.stopped_by,
            "reduced_val": steps.validation_dice(run, result.model, val_set),
            "whole_val": evaluate_dice(result.model, val_set, run.mean, run.std, run.device)}


MODES = {"equivalence": _equivalence, "first": _first, "second": _second, "agree": _agree}


def main() -> None:
    out, modes = Path(sys.argv[1]), sys.argv[2:]
    torch.set_num_threads(1)
    if modes[0] == "cli":
        rank = int(os.environ["RANK"])
        _audit_writes(out, rank, "cli")
        sys.argv = ["nevseg", *modes[1:]]
        runpy.run_module("napari_nevseg", run_name="__main__")
        return
    with process_group("cpu") as ranks:
        _audit_writes(out, ranks.rank, modes[0])
        report = {mode: MODES[mode](out, ranks) for mode in modes}
        path = out / f"rank-{ranks.rank}.json"
        earlier = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**earlier, **report}))


if __name__ == "__main__":
    main()
