"""Data-parallel training across processes started by torchrun (one per GPU, or several CPU processes with gloo).

    torchrun --nproc_per_node 4 train_gan.py --pretrain --config configs/research.yaml

Every process builds the same model from the same seed, trains on its own share of each epoch's items, and
averages gradients with the others before every optimiser step, so the replicas stay identical. Rank 0 alone
writes the experiment folder, TensorBoard events and checkpoints. ``train.batch_size`` is per process: the
effective batch is ``batch_size x world_size`` and an epoch takes ``1 / world_size`` as many steps.

The generator is wrapped in ``DistributedDataParallel`` (its gradient reduction overlaps the backward pass). The
critic is not: its WGAN-GP loss differentiates through ``torch.autograd.grad(..., create_graph=True)`` and
forwards the critic three times before one backward, which DDP's reducer does not support. Its gradients are
averaged explicitly after the backward pass instead, which gives exactly the gradient of the mean penalty over
the global batch (samples do not interact in the critic, and every rank has the same local batch size).
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist
from torch import nn

from .errors import ConfigError


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Distributed()
_current = SINGLE


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device_name: str = "auto") -> Distributed:
    """Join the process group torchrun set up (NCCL on CUDA, gloo otherwise); a single process gets ``SINGLE``."""
    global _current
    if not launched_by_torchrun() or _current.enabled:
        return _current
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"local rank {local_rank} has no GPU: this machine has {torch.cuda.device_count()}")
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    _current = Distributed(rank, world_size, local_rank)
    return _current


def shutdown() -> None:
    global _current
    _current = SINGLE
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_parameters(module: nn.Module, world: Distributed) -> None:
    """Rank 0's weights on every rank (DDP does this for the modules it wraps)."""
    if world.enabled:
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def average_gradients(parameters: Iterable[nn.Parameter], world: Distributed) -> None:
    """All-reduce the gradients of ``parameters`` to their mean over the ranks, in one flat buffer."""
    if not world.enabled:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.world_size
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def all_true(flag: bool, world: Distributed, device: torch.device) -> bool:
    """True when ``flag`` holds on every rank: ranks must take the same branch before any collective."""
    if not world.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def any_true(flag: bool, world: Distributed, device: torch.device) -> bool:
    return not all_true(not flag, world, device)


def broadcast_object(value, world: Distributed):
    """Rank 0's ``value`` on every rank (a run name, say: each rank's clock may read a different second)."""
    if not world.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def weights_checksum(modules: list[nn.Module]) -> str:
    """sha256 (first 16 hex digits) of the modules' state dicts, names and bytes."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in module.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def replica_checksums(modules: list[nn.Module], world: Distributed) -> list[str]:
    """Every rank's weights checksum, in rank order (collective: all ranks call it)."""
    own = weights_checksum(modules)
    if not world.enabled:
        return [own]
    gathered: list[str | None] = [None] * world.world_size
    dist.all_gather_object(gathered, own)
    return [str(item) for item in gathered]
