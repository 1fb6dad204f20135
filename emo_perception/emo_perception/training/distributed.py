"""One process, or one of several started by `torchrun` (its RANK/WORLD_SIZE/LOCAL_RANK variables):
the same training script either way. gloo on CPU, NCCL on CUDA."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.size > 1:
            dist.barrier()

    def gather(self, obj) -> list:
        """Every rank's `obj` (picklable), in rank order, on every rank."""
        if self.size == 1:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def mean(self, value: float) -> float:
        """The mean over ranks of a per-rank number (rank-0 logging of the global loss)."""
        if self.size == 1:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64)
        dist.all_reduce(t)
        return float(t.item()) / self.size


def start(device: str = "auto") -> World:
    """Join the process group when launched by torchrun; pick the device ('auto': CUDA if present)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise RuntimeError("device is 'cuda' but torch sees no CUDA device; use device: cpu")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return World(rank, size, local, dev)


def stop(world: World):
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()
