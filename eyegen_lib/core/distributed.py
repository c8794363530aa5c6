"""DDP plumbing so that one training script runs unchanged alone or under ``torchrun``.

``torchrun --nproc_per_node N script.py`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; we then join
the process group (NCCL on CUDA, gloo on CPU) and wrap models in DistributedDataParallel; each
rank's share of the data comes from :mod:`eyegen_lib.science.batches`. Without those variables everything is a plain single process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistInfo", "init_distributed", "wrap_ddp", "all_reduce_mean", "any_rank", "barrier", "gather_objects",
           "broadcast_buffers", "shutdown_distributed"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed() -> DistInfo:
    """Join the process group when launched by torchrun; a no-op (world size 1) otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def wrap_ddp(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DDP-wrap a trainable module in a multi-process run; return it unchanged otherwise."""
    if not info.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    if device.type == "cuda":  # BatchNorm statistics over every GPU's batch (Seg2Eye's final run); no CPU kernel
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def all_reduce_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average logged scalars over ranks, so rank 0 logs what the whole job saw."""
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = _all_reduce(torch.tensor([float(values[k]) for k in keys], dtype=torch.float64), dist.ReduceOp.SUM)
    return {k: v / info.world_size for k, v in zip(keys, t.tolist())}


def _all_reduce(t: torch.Tensor, op) -> torch.Tensor:
    if dist.get_backend() == "nccl":  # NCCL reduces CUDA tensors only
        t = t.cuda()
    dist.all_reduce(t, op=op)
    return t


def any_rank(flags: list[bool], info: DistInfo) -> list[bool]:
    """Per flag: true on any rank (so every rank saves, or stops, at the same step)."""
    if not info.enabled:
        return list(flags)
    t = _all_reduce(torch.tensor([int(f) for f in flags], dtype=torch.int64), dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def barrier(info: DistInfo) -> None:
    """Wait for every rank (a no-op in one process)."""
    if info.enabled:
        dist.barrier()


def gather_objects(obj, info: DistInfo) -> list:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(model: nn.Module, info: DistInfo) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank: DDP synchronises parameters,
    and buffers only at the start of each forward, so after the last step each rank holds its own."""
    if info.enabled:
        for buffer in model.buffers():
            dist.broadcast(buffer.data, 0)


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
