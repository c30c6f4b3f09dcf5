"""Turn a ``DataConfig`` into the training and validation datasets, plus a record of the split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.utils.data import Dataset

from core.errors import DataError

from .augment import PairedAugment
from .config import DataConfig
from .dead_leaves import DeadLeaves, photo_palette
from .paired import Pair, PairedCrops, PairedValidation, check_pairs, split_by_group
from .presets import preset_degradation
from .sources import SOURCES, RealPairs, SharpPhotos, apply_policy
from .synthetic import Degradation, FixedPairs, SyntheticBlurPairs


@dataclass
class Datasets:
    train: Dataset
    val: Dataset
    # What went where (written to the experiment folder as data_split.json), including every skipped file.
    split: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):  # train, val = build_datasets(...)
        return iter((self.train, self.val))


def degradation_from(config: DataConfig) -> Degradation:
    return Degradation.of(config.degradation)


def training_augment(config: DataConfig, crop: bool) -> PairedAugment:
    return PairedAugment(config.crop_size if crop else None, config.flips, config.rot90, config.color_jitter)


def _synthetic(config: DataConfig, seed: int, source: SharpPhotos, pair_seed: int) -> Datasets:
    degradation = degradation_from(config)
    photos = source.split(config, seed, degradation.margin)
    train = SyntheticBlurPairs(
        photos.load, photos.count, crop_size=config.crop_size, degradation=degradation, seed=pair_seed,
        length=config.train_pairs_per_epoch or photos.count, augment=training_augment(config, crop=False),
        describe=photos.train_names.__getitem__, blur_on_device=config.blur_on_device,
        leaves=_leaves(config, lambda: [photos.load(i) for i in range(photos.count)], seed),
        leaves_share=config.leaves)
    val_degradation = preset_degradation(config.val_degradation) if config.val_degradation else degradation
    val = FixedPairs(photos.val_photos, crop_size=config.val_crop_size, crops_per_photo=config.val_crops_per_photo,
                     degradation=val_degradation, seed=config.val_seed, names=photos.val_names)
    split = {"source": config.source, "train": photos.train_names, "val": photos.val_names, "skipped": photos.skipped}
    return Datasets(train, val, split)


def _leaves(config: DataConfig, photos: Callable[[], list[torch.Tensor]], seed: int) -> DeadLeaves | None:
    """The dead-leaves generator for data.leaves, painting with the colours of the training photos (read only
    where the leaves are asked for)."""
    return DeadLeaves(photo_palette(photos(), seed=seed)) if config.leaves > 0 else None


def list_pairs(config: DataConfig, split: str = "train") -> tuple[list[Pair], list[str]]:
    """The pairs of a real-pair source (``split``: train, or test where the dataset has one), and the problems
    found while listing them (files with no partner, missing listed files)."""
    return SOURCES.lookup(config.source).pairs(config, split)


def _paired(config: DataConfig, seed: int, source: RealPairs, pair_seed: int) -> Datasets:
    pairs, problems = source.pairs(config, "train")
    good, bad = check_pairs(pairs)
    skipped = apply_policy(problems + bad, config.on_bad, "pair(s)")
    if not good:
        raise DataError(f"data.root {config.root or config.pairs_file} has no usable pairs")
    train_pairs, val_pairs = split_by_group(good, config.val_fraction, seed)
    train = PairedCrops(train_pairs, config.train_pairs_per_epoch, training_augment(config, crop=True), pair_seed)
    val = PairedValidation(val_pairs, config.val_crop_size, config.val_crops_per_photo, config.val_seed)
    split = {
        "source": config.source,
        "root": config.root,
        "val_fraction": config.val_fraction,
        "seed": seed,
        "train_groups": sorted({p.group for p in train_pairs}),
        "val_groups": sorted({p.group for p in val_pairs}),
        "train": [[str(p.blur), str(p.sharp)] for p in train_pairs],
        "val": [[str(p.blur), str(p.sharp)] for p in val_pairs],
        "skipped": skipped,
    }
    return Datasets(train, val, split)


def build_datasets(config: DataConfig, seed: int = 0, pair_seed: int | None = None) -> Datasets:
    """The training and validation sets: ``seed`` chooses the held-out photos (or pairs), ``pair_seed`` (default
    ``seed``) the training pairs drawn from the rest. A long run's stretches draw fresh pairs from one split."""
    source = SOURCES.lookup(config.source)
    pair_seed = seed if pair_seed is None else pair_seed
    build = _synthetic if source.synthetic else _paired
    return build(config, seed, source, pair_seed)
