"""Training checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint is one safetensors file (written atomically): the tensors (weights, optimizer
moments, moving average, best weights, random-number states) as tensors, and the rest
(counters, history, the configuration it was made with) as JSON in the header, where each tensor
is named by a ``{"__tensor__": key}`` placeholder. Nothing is unpickled when it is read.

Randomness: a run draws only from its own ``torch.Generator`` and from torch's global generator
(weight initialisation); both states are saved, the generator's of every rank of a distributed
run (rank 0 writes the file; every rank reads it back and takes its own). Neither numpy's nor
Python's generator is used while training, so they are not.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from napari_nevseg.core.atomic import atomic_write_bytes
from napari_nevseg.core.checkpoint import weights_digest
from napari_nevseg.core.errors import ResumeError
from napari_nevseg.core.training.steps import Run

__all__ = [
    "Checkpointing", "checkpoint_path_for", "current_world_size", "run_identity", "save_run", "restore_run",
]

FORMAT = "napari-nevseg-train-state/1"
_KEY = "nevseg_train_state"
#: settings that may change between a run and its resumption (they do not decide the weights,
#: except that float sums depend on the thread count: keep it for bit-equal results)
_MAY_CHANGE = {"device", "threads", "max_minutes"}


@dataclass(frozen=True)
class Checkpointing:
    """Write the run's state to ``path`` every ``every`` epochs; ``resume``: start from it."""

    path: Path
    every: int = 5
    resume: bool = False

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"checkpoint every {self.every} epochs: it must be at least 1")


def checkpoint_path_for(out: str | os.PathLike[str]) -> Path:
    """Where the checkpoint of a run that writes model file ``out`` lives: beside it."""
    out = Path(out)
    return out.with_name(out.name + ".resume")


def current_world_size() -> int:
    """The number of training processes (torchrun's process group, else 1; a checkpoint
    records it and refuses to resume with another number, since the data each process sees and
    the random-number streams would differ)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def _pack(obj: Any, tensors: dict[str, torch.Tensor], key: str) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__items__": [[k, _pack(v, tensors, f"{key}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_pack(v, tensors, f"{key}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_pack(v, tensors, f"{key}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a training checkpoint ({key})")


def _unpack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_unpack(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(_unpack(v, tensors) for v in obj["__tuple__"])
        return {k: _unpack(v, tensors) for k, v in obj["__items__"]}
    return obj


def run_identity(run: Run, stems: tuple[list[str], list[str]], init_state: dict | None) -> dict[str, Any]:
    """What must be the same for a checkpoint to continue this run."""
    config = {k: v for k, v in asdict(run.config).items() if k not in _MAY_CHANGE}
    return {
        "config": json.loads(json.dumps(config)),
        "train_images": list(stems[0]),
        "val_images": list(stems[1]),
        "init_weights": weights_digest(init_state) if init_state is not None else None,
    }


def save_run(path: Path, run: Run, identity: dict[str, Any], generators: list[torch.Tensor] | None = None) -> Path:
    """Write the run's state to ``path`` atomically; ``generators``: every rank's generator
    state, in rank order (default: this process's only)."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    state = {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict() if run.optimizer is not None else None,
        "scaler": run.scaler.state_dict(),
        "averaged": run.averaged.state_dict() if run.averaged is not None else None,
        "best_state": run.best_state,
        "generator": run.gen.get_state(),
        "rank_generators": generators if generators is not None else [run.gen.get_state()],
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if run.device.type == "cuda" else None,
    }
    counters = {
        "epoch": run.epoch, "step": run.step, "before": run.before, "best_dice": run.best_dice,
        "best_epoch": run.best_epoch, "epochs_without_gain": run.epochs_without_gain,
        "history": run.history, "mean": run.mean, "std": run.std,
        "elapsed_s": time.perf_counter() - run.started,
    }
    header = {"format": FORMAT, "world_size": current_world_size(), "identity": identity,
              "counters": counters, "state": _pack(state, tensors, "s")}
    return atomic_write_bytes(path, save(tensors, metadata={_KEY: json.dumps(header)}))


def _read(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not path.is_file():
        raise ResumeError(f"there is no training checkpoint at {path} to resume from; start without --resume")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = json.loads((handle.metadata() or {})[_KEY])
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors and json raise their own types
        raise ResumeError(f"{path} is not a readable training checkpoint ({exc}); start without --resume") from exc
    if header.get("format") != FORMAT:
        raise ResumeError(f"{path} is a checkpoint of another format ({header.get('format')}); start without --resume")
    return header, tensors


def _with_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's settings, those it predates (a setting added since) at their defaults, so
    a run resumed with new code that trains the same way is not refused."""
    from napari_nevseg.core.training.guidance import ClickTraining
    from napari_nevseg.core.training.records import TrainConfig

    out = {**{k: v for k, v in asdict(TrainConfig()).items() if k not in _MAY_CHANGE}, **saved}
    if isinstance(out.get("clicks"), dict):
        out["clicks"] = {**asdict(ClickTraining()), **out["clicks"]}
    return out


def _refuse_mismatch(path: Path, header: dict[str, Any], identity: dict[str, Any]) -> None:
    saved_world, world = header.get("world_size"), current_world_size()
    if saved_world != world:
        raise ResumeError(f"{path} was written by {saved_world} training process(es) and this run has {world}: "
                          "resume with the same number of processes")
    saved = header["identity"]
    for part, what in (("train_images", "training images"), ("val_images", "validation images"),
                       ("init_weights", "starting model")):
        if saved.get(part) != identity[part]:
            raise ResumeError(f"{path} was made with other {what}; resume with the same data and --init, "
                              "or start without --resume")
    before = _with_defaults(saved["config"])
    changed = sorted(k for k in identity["config"] if before.get(k) != identity["config"][k])
    if changed:
        detail = ", ".join(f"{k} {before.get(k)!r} -> {identity['config'][k]!r}" for k in changed)
        raise ResumeError(f"{path} was made with other settings ({detail}); resume with the same ones")


def restore_run(path: Path, run: Run, identity: dict[str, Any]) -> None:
    """Put the state saved in ``path`` into a freshly prepared ``run`` (refusing another run's)."""
    header, tensors = _read(path)
    _refuse_mismatch(path, header, identity)
    state, counters = _unpack(header["state"], tensors), header["counters"]
    run.model.load_state_dict(state["model"])
    if run.optimizer is not None and state["optimizer"] is not None:
        run.optimizer.load_state_dict(state["optimizer"])
    if state["scaler"]:
        run.scaler.load_state_dict(state["scaler"])
    if run.averaged is not None and state["averaged"] is not None:
        run.averaged.load_state_dict(state["averaged"])
    run.best_state = state["best_state"]
    run.gen.set_state((state.get("rank_generators") or [state["generator"]])[run.ranks.rank])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and run.device.type == "cuda":
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    for name in ("epoch", "step", "before", "best_dice", "best_epoch", "epochs_without_gain", "history"):
        setattr(run, name, counters[name])
    run.mean, run.std = counters["mean"], counters["std"]
    run.started = time.perf_counter() - counters["elapsed_s"]
    if run.config.max_minutes:
        run.deadline = run.started + run.config.max_minutes * 60
