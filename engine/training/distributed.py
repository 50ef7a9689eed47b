"""One process or many: the same training code with or without ``torchrun``.

Under torchrun (``WORLD_SIZE`` > 1 in the environment) this joins the process group and pins each
process to its GPU; alone it is a world of one where every collective is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place in the run. ``control`` is a gloo group over the same processes for
    the small per-step messages (the clock, the stop decision, file lists): exchanged between
    the hosts' memories, they do not make the host wait for its GPU, so preparing the next batch
    still overlaps the GPU's work on this one, as it does in a single-process run. Through NCCL
    every such message would be a device round trip and a synchronisation per step."""

    rank: int
    size: int
    device: torch.device
    control: Any = None

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, checkpoints and decides when to stop; the others follow."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (file lists, stop decisions)."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def share(self, values: list[float]) -> list[float]:
        """Rank 0's numbers on every rank: one small host-side broadcast, cheap enough per step."""
        if not self.distributed:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.broadcast(t, src=0, group=self.control)
        return t.tolist()

    def mean(self, value: float) -> float:
        """The average of ``value`` over all ranks."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(t, group=self.control)
        return float(t) / self.size

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier(group=self.control)


def pick_device(name: str | None) -> torch.device:
    """``name`` if given, else CUDA when available, else MPS where present, else the CPU."""
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def join_world(device_name: str | None = None) -> World:
    """Join torchrun's process group when launched by it; otherwise a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(0, 1, pick_device(device_name))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available() and device_name in (None, "cuda"):
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, device_id=device if backend == "nccl" else None)
    return World(dist.get_rank(), dist.get_world_size(), device, dist.new_group(backend="gloo"))


def leave_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
