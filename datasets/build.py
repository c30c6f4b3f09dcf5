"""Turn a ``DataConfig`` into the training and validation datasets, plus a record of the split."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import Dataset

from core.errors import DataError
from core.images import CachedImages, image_size, list_images, read_image

from .augment import PairedAugment
from .config import DataConfig
from .dead_leaves import DeadLeaves, photo_palette
from .paired import (
    Pair,
    PairedCrops,
    PairedValidation,
    check_pairs,
    gopro_pairs,
    hide_pairs,
    hold_out,
    list_file_pairs,
    paired_folder_pairs,
    realblur_pairs,
    split_by_group,
)
from .photos import TRAIN_PHOTOS, VAL_PHOTOS, embedded_photos
from .presets import preset_degradation
from .synthetic import Degradation, FixedPairs, SyntheticBlurPairs


@dataclass
class Datasets:
    train: Dataset
    val: Dataset
    # What went where (written to the experiment folder as data_split.json), including every skipped file.
    split: dict[str, Any] = field(default_factory=dict)

    def __iter__(self):  # train, val = build_datasets(...)
        return iter((self.train, self.val))


class PhotoFiles:
    """Lazily decoded photos by index; each worker keeps a small cache so a photo is not decoded for every crop."""

    def __init__(self, files: list[Path]):
        self.files = files
        self.read = CachedImages(read_image, maxsize=32)

    def __call__(self, index: int) -> torch.Tensor:
        return self.read(self.files[index])


def apply_policy(problems: list[str], policy: str, what: str) -> list[str]:
    """``fail``: the first problem is the error (with the count). ``skip``: one counted warning on stderr, and
    the full list goes into the split record. Nothing is dropped silently."""
    if problems and policy == "fail":
        more = f" (and {len(problems) - 1} more problem(s); data.on_bad=skip skips them)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)
    if problems:
        print(f"warning: skipped {len(problems)} bad {what} (data.on_bad=skip); first: {problems[0]}", file=sys.stderr)
    return problems


def _check_photos(files: list[Path], window: int) -> tuple[list[Path], list[str]]:
    """Every file readable (PNG integrity verified) and large enough for a crop plus the kernel margin."""
    good, problems = [], []
    for path in files:
        try:
            width, height = image_size(path, verify=True)
        except DataError as error:
            problems.append(str(error))
            continue
        if min(width, height) < window:
            problems.append(
                f"image {path} is {width}x{height}, smaller than the crop plus kernel margin ({window}x{window}); "
                "lower data.crop_size or data.kernel_size"
            )
            continue
        good.append(path)
    return good, problems


def _split_files(files: list[Path], val_fraction: float, seed: int, folder: str) -> tuple[list[Path], list[Path]]:
    if len(files) < 2:
        raise DataError(
            f"data folder {folder} has {len(files)} usable image(s); holding out validation images needs at least 2 "
            "(or set data.val_sharp_dir)"
        )
    held_out = hold_out(files, val_fraction, seed)
    return [f for f in files if f not in held_out], [f for f in files if f in held_out]


def degradation_from(config: DataConfig) -> Degradation:
    return Degradation(
        kernel_size=config.kernel_size,
        kernels=config.kernels,
        noise_sigma=config.noise_sigma,
        poisson_peak=config.poisson_peak,
        saturation=config.saturation,
        blur_extent=tuple(config.blur_extent) if config.blur_extent is not None else None,
        blur_extent_law=config.blur_extent_law,
        noise_space=config.noise_space,
        jpeg_quality=tuple(config.jpeg_quality) if config.jpeg_quality is not None else None,
        jpeg_probability=config.jpeg_probability,
        quantize=config.quantize,
        field_probability=config.field_probability,
        field_grid=config.field_grid,
        max_roll_degrees=config.max_roll_degrees,
        kernel_bank=config.kernel_bank,
        kernel_bank_seed=config.kernel_bank_seed,
    )


def training_augment(config: DataConfig, crop: bool) -> PairedAugment:
    return PairedAugment(config.crop_size if crop else None, config.flips, config.rot90, config.color_jitter)


def _synthetic(config: DataConfig, seed: int) -> Datasets:
    degradation = degradation_from(config)
    window = config.crop_size + degradation.margin
    common = dict(crop_size=config.crop_size, degradation=degradation, seed=seed,
                  augment=training_augment(config, crop=False), blur_on_device=config.blur_on_device,
                  leaves_share=config.leaves)
    skipped: list[str] = []
    if config.source == "embedded":
        photos = embedded_photos("train")
        train = SyntheticBlurPairs(photos, len(photos), length=config.train_pairs_per_epoch or len(photos),
                                   describe=TRAIN_PHOTOS.__getitem__, leaves=_leaves(config, lambda: photos, seed),
                                   **common)
        val_photos, val_names, train_names = embedded_photos("val"), list(VAL_PHOTOS), list(TRAIN_PHOTOS)
    else:
        files, problems = _check_photos(list_images(config.sharp_dir), window)
        skipped += apply_policy(problems, config.on_bad, "training photo(s)")
        if config.val_sharp_dir:
            val_files, problems = _check_photos(list_images(config.val_sharp_dir),
                                                config.val_crop_size + degradation.margin)
            skipped += apply_policy(problems, config.on_bad, "validation photo(s)")
            train_files = files
        else:
            train_files, val_files = _split_files(files, config.val_fraction, seed, config.sharp_dir)
        if not train_files or not val_files:
            raise DataError(f"no usable {'training' if not train_files else 'validation'} photos are left")
        loader = PhotoFiles(train_files)
        train = SyntheticBlurPairs(loader, len(train_files), length=config.train_pairs_per_epoch or len(train_files),
                                   describe=lambda i: str(train_files[i]),
                                   leaves=_leaves(config, lambda: [loader(i) for i in range(len(train_files))], seed),
                                   **common)
        val_photos = [read_image(path) for path in val_files]
        val_names, train_names = [str(p) for p in val_files], [str(p) for p in train_files]
    val_degradation = preset_degradation(config.val_degradation) if config.val_degradation else degradation
    val = FixedPairs(val_photos, crop_size=config.val_crop_size, crops_per_photo=config.val_crops_per_photo,
                     degradation=val_degradation, seed=config.val_seed, names=val_names)
    split = {"source": config.source, "train": train_names, "val": val_names, "skipped": skipped}
    return Datasets(train, val, split)


def _leaves(config: DataConfig, photos: Callable[[], list[torch.Tensor]], seed: int) -> DeadLeaves | None:
    """The dead-leaves generator for data.leaves, painting with the colours of the training photos (read only
    where the leaves are asked for)."""
    return DeadLeaves(photo_palette(photos(), seed=seed)) if config.leaves > 0 else None


def list_pairs(config: DataConfig, split: str = "train") -> tuple[list[Pair], list[str]]:
    """The pairs of a paired source (``split``: train or test for GoPro and RealBlur), and the problems found
    while listing them (files with no partner, missing listed files)."""
    if config.source == "gopro":
        return gopro_pairs(config.root, split, config.gopro_blur)
    if config.source == "hide":
        return hide_pairs(config.root, split)
    if config.source == "realblur":
        return realblur_pairs(config.root, config.realblur_variant, split, config.allow_outside_paths)
    if config.pairs_file:
        return list_file_pairs(config.pairs_file, config.allow_outside_paths)
    return paired_folder_pairs(config.root)


def _paired(config: DataConfig, seed: int) -> Datasets:
    pairs, problems = list_pairs(config, "train")
    good, bad = check_pairs(pairs)
    skipped = apply_policy(problems + bad, config.on_bad, "pair(s)")
    if not good:
        raise DataError(f"data.root {config.root or config.pairs_file} has no usable pairs")
    train_pairs, val_pairs = split_by_group(good, config.val_fraction, seed)
    train = PairedCrops(train_pairs, config.train_pairs_per_epoch, training_augment(config, crop=True), seed)
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


def build_datasets(config: DataConfig, seed: int = 0) -> Datasets:
    return _synthetic(config, seed) if config.synthetic else _paired(config, seed)
