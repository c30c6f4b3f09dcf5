"""The training engine's data: the datasets a config names and their loaders, resumable mid-epoch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from core.errors import ConfigError
from datasets import EpochSampler, build_datasets

from .config import Config
from .distributed import Distributed
from .interrupt import ignore_interrupts_in_worker


@dataclass
class Loaders:
    train_set: Dataset
    val_set: Dataset
    split: dict[str, Any]
    sampler: EpochSampler
    train_loader: DataLoader
    val_loader: DataLoader


def build_loaders(config: Config, world: Distributed, device: torch.device) -> Loaders:
    """The datasets of ``config.data`` and their loaders for this rank; a ConfigError when an epoch would have no
    step."""
    # A stretch of a long run (train.start_step) draws new pairs, from the same held-out split as every other.
    datasets = build_datasets(config.data, seed=config.experiment.seed,
                              pair_seed=config.experiment.seed + config.train.start_step)
    # Items are pure functions of (seed, epoch, index); the sampler hands out those keys (and can start mid-epoch on
    # resume). The loader's own generator keeps its seed draws off the global torch RNG, which a resumed run
    # restores exactly.
    sampler = EpochSampler(len(datasets.train), world.rank, world.world_size)
    train_loader = DataLoader(
        datasets.train,
        batch_size=config.train.batch_size,
        sampler=sampler,
        num_workers=config.data.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=config.data.num_workers > 0,
        drop_last=True,
        generator=torch.Generator().manual_seed(config.experiment.seed),
        worker_init_fn=ignore_interrupts_in_worker,
    )
    if len(train_loader) == 0:
        processes = f" x {world.world_size} processes" if world.enabled else ""
        raise ConfigError(
            f"data.train_pairs_per_epoch ({len(datasets.train)}) is smaller than train.batch_size "
            f"({config.train.batch_size}){processes}: an epoch would have no step"
        )
    whole_images = not config.data.synthetic and config.data.val_crop_size == 0
    val_loader = DataLoader(
        datasets.val,
        batch_size=1 if whole_images else config.train.batch_size,  # whole images differ in size
        shuffle=False,
        num_workers=config.data.num_workers,
        pin_memory=device.type == "cuda",
        # Its own generator: validating (and scoring the references in fit()) never moves the global RNG stream
        # that a resumed run restores.
        generator=torch.Generator().manual_seed(config.experiment.seed),
    )
    return Loaders(datasets.train, datasets.val, datasets.split, sampler, train_loader, val_loader)
