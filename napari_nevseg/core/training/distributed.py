"""Training one model on several processes: ``torchrun`` plus DistributedDataParallel.

``torchrun --nproc_per_node=N -m napari_nevseg train ...`` starts N copies of the command; each
learns its rank from torchrun's environment variables and joins one process group (gloo on the
CPU, NCCL on CUDA). Without those variables nothing here does anything: :class:`Ranks` of a
plain run is rank 0 of 1, and every method below returns its input.

What keeps N processes one run:

- **the same epoch plan**: rank 0's order of the images is broadcast, whatever drew it, and
  every global batch ``order[b*B:(b+1)*B]`` is cut into N contiguous parts (:meth:`Ranks.share`),
  so the per-rank batch is B / N;
- **the same gradient**: DDP averages the ranks' gradients; a rank's loss is weighted by its
  share of the global batch, so the average is the gradient of the global batch's mean loss even
  when the last batch does not split evenly (the loss is a mean of per-image terms,
  ``core/losses.py``, which is what makes half-batches add up to the whole);
- **one validation score**: every validation image is scored once, on one rank
  (:meth:`Ranks.shard`), and the sums and counts are all-reduced (:meth:`Ranks.mean`);
- **one decision**: stopping (time limit, early stopping) is rank 0's, broadcast
  (:meth:`Ranks.lead_decides`), so no rank leaves while another waits in a collective;
- **its own random numbers per rank**: augmentation and simulated clicks draw from a generator
  seeded from (seed, rank) (:meth:`Ranks.seed`); rank 0 keeps the run's seed, so a
  one-process run is unchanged. A checkpoint holds every rank's generator state
  (:meth:`Ranks.gather`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from napari_nevseg.core.device import select_device

__all__ = ["Ranks", "launched_by_torchrun", "process_group"]

#: what torchrun (and any ``env://`` launcher) sets for every process it starts
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: where collectives' tensors live: the CPU for gloo, this rank's GPU for NCCL
    comm_device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def current(cls) -> Ranks:
        if not (dist.is_available() and dist.is_initialized()):
            return cls()
        local = int(os.environ.get("LOCAL_RANK", "0"))
        comm = torch.device("cuda", local) if dist.get_backend() == "nccl" else torch.device("cpu")
        return cls(dist.get_rank(), dist.get_world_size(), local, comm)

    @property
    def lead(self) -> bool:
        """Rank 0: the one that decides, prints and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def device(self, device: torch.device) -> torch.device:
        """This rank's device: its own GPU (``LOCAL_RANK``) when training on CUDA."""
        if not self.distributed:
            return device
        if device.type == "cuda":
            return self.comm_device
        if device.type != "cpu":
            raise ValueError(f"distributed training runs on CUDA or the CPU, not {device.type}: use --device cpu")
        return device

    def seed(self, seed: int) -> int:
        """The seed of this rank's generator: the run's own for rank 0, one drawn from
        (seed, rank) for the others (so ranks do not augment their images alike)."""
        if self.rank == 0:
            return seed
        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1, np.uint64)[0])

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to train through: DDP around ``model`` (whose weights it shares)."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.comm_device.index] if self.comm_device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def same_order(self, order: torch.Tensor) -> torch.Tensor:
        """Rank 0's epoch order (indices, a tensor or an array) on every rank."""
        if not self.distributed:
            return order
        shared = torch.as_tensor(order).to(self.comm_device, torch.int64)
        dist.broadcast(shared, 0)
        return shared.cpu()

    def share(self, batch: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This rank's contiguous part of a global batch of indices, and the weight of its mean
        loss that makes the ranks' average the global batch's mean. A rank left without an
        image (a last batch smaller than the world) computes one with weight 0, so DDP's
        gradient all-reduce still meets every rank."""
        if not self.distributed:
            return batch, 1.0
        mine = torch.tensor_split(batch, self.world_size)[self.rank]
        if len(mine) == 0:
            return batch[:1], 0.0
        return mine, len(mine) * self.world_size / len(batch)

    def batch_loss(self, loss: float, weight: float) -> float:
        """The global batch's mean loss from every rank's mean and weight."""
        if not self.distributed:
            return loss
        total = torch.tensor([loss * weight / self.world_size], dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(total)
        return float(total.item())

    def shard(self, n: int) -> slice:
        """This rank's contiguous part of ``n`` images: the parts differ by at most one and
        together hold every image exactly once (no padding, no repeats)."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def mean(self, scores: list[float]) -> float:
        """The mean of every rank's scores together."""
        if not self.distributed:
            return float(np.mean(scores)) if scores else float("nan")
        totals = torch.tensor([math.fsum(scores), len(scores)], dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(totals)
        return float(totals[0] / totals[1]) if totals[1] > 0 else float("nan")

    def lead_decides(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank."""
        if not self.distributed:
            return flag
        shared = torch.tensor([int(flag)], device=self.comm_device)
        dist.broadcast(shared, 0)
        return bool(shared.item())

    def gather(self, state: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's ``state`` (a generator's, equal sizes), in rank order, on every rank."""
        if not self.distributed:
            return [state]
        mine = state.to(self.comm_device)
        parts = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(parts, mine)
        return [p.cpu() for p in parts]


@contextmanager
def process_group(device_name: str = "auto") -> Iterator[Ranks]:
    """Join torchrun's process group for the duration (gloo on the CPU, NCCL on CUDA), then
    leave it; outside torchrun, or inside a group someone else made, just say where we are."""
    if not launched_by_torchrun() or (dist.is_available() and dist.is_initialized()):
        yield Ranks.current()
        return
    device = select_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield Ranks.current()
    finally:
        dist.destroy_process_group()
