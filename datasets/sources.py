"""Where training data comes from: every ``data.source`` is registered by name in ``SOURCES``.

Two kinds of source:

- ``SharpPhotos``: sharp photos blurred on the fly by ``data.degradation`` (``embedded``: scikit-image's bundled
  photos; ``folder``: every image below ``data.sharp_dir``). Its ``split`` names the training and validation photos.
- ``RealPairs``: blurred/sharp pairs on disk (GoPro, RealBlur, HIDE, a paired folder or list). Its ``pairs`` lists
  them for a split; ``datasets.build`` holds out whole sequences or scenes for validation.

A new source is one entry here (see docs/architecture.md, "A data source").
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from core.errors import DataError
from core.images import CachedImages, image_size, list_images, read_image
from core.registry import Registry

from .paired import Pair, gopro_pairs, hide_pairs, hold_out, list_file_pairs, paired_folder_pairs, realblur_pairs
from .photos import TRAIN_PHOTOS, VAL_PHOTOS, embedded_photos

# The data section (datasets.config.DataConfig, which imports this module to know the sources' names).
DataConfig = Any


@dataclass
class PhotoSplit:
    """A synthetic source's photos: the training photos by index (decoded when first used), the validation photos,
    their names for the split record, and the files skipped under ``data.on_bad: skip``."""

    load: Callable[[int], torch.Tensor]
    train_names: list[str]
    val_photos: list[torch.Tensor]
    val_names: list[str]
    skipped: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.train_names)


@dataclass(frozen=True)
class SharpPhotos:
    """A source of sharp photos, blurred on the fly. ``split(config, seed, margin)``: the photos, checked to hold a
    crop plus ``margin`` (the kernel's support minus one)."""

    split: Callable[[DataConfig, int, int], PhotoSplit]
    needs: tuple[str, ...] = ()  # config keys it cannot do without (any one of them)
    synthetic = True


@dataclass(frozen=True)
class RealPairs:
    """A source of blurred/sharp pairs on disk. ``pairs(config, split)``: the pairs of ``split`` and the problems
    met listing them. ``test_split``: the dataset publishes a test split (what evaluate.py scores)."""

    pairs: Callable[[DataConfig, str], tuple[list[Pair], list[str]]]
    needs: tuple[str, ...] = ("root",)
    test_split: bool = False
    synthetic = False


SOURCES = Registry("data source")


def needs_problem(name: str, source: SharpPhotos | RealPairs, config: DataConfig) -> str:
    """Why ``config`` lacks what source ``name`` needs ("" when it has it)."""
    if not source.needs or any(getattr(config, key) for key in source.needs):
        return ""
    return f"data.source {name!r} needs " + " or ".join(f"data.{key}" for key in source.needs)


def apply_policy(problems: list[str], policy: str, what: str) -> list[str]:
    """``fail``: the first problem is the error (with the count). ``skip``: one counted warning on stderr, and
    the full list goes into the split record. Nothing is dropped silently."""
    if problems and policy == "fail":
        more = f" (and {len(problems) - 1} more problem(s); data.on_bad=skip skips them)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)
    if problems:
        print(f"warning: skipped {len(problems)} bad {what} (data.on_bad=skip); first: {problems[0]}", file=sys.stderr)
    return problems


class PhotoFiles:
    """Lazily decoded photos by index; each worker keeps a small cache so a photo is not decoded for every crop."""

    def __init__(self, files: list[Path]):
        self.files = files
        self.read = CachedImages(read_image, maxsize=32)

    def __call__(self, index: int) -> torch.Tensor:
        return self.read(self.files[index])


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
                "lower data.crop_size or data.degradation.kernel_size"
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


def _embedded(config: DataConfig, seed: int, margin: int) -> PhotoSplit:
    photos = embedded_photos("train")
    return PhotoSplit(photos.__getitem__, list(TRAIN_PHOTOS), embedded_photos("val"), list(VAL_PHOTOS))


def _folder(config: DataConfig, seed: int, margin: int) -> PhotoSplit:
    files, problems = _check_photos(list_images(config.sharp_dir), config.crop_size + margin)
    skipped = apply_policy(problems, config.on_bad, "training photo(s)")
    if config.val_sharp_dir:
        val_files, problems = _check_photos(list_images(config.val_sharp_dir), config.val_crop_size + margin)
        skipped += apply_policy(problems, config.on_bad, "validation photo(s)")
        train_files = files
    else:
        train_files, val_files = _split_files(files, config.val_fraction, seed, config.sharp_dir)
    if not train_files or not val_files:
        raise DataError(f"no usable {'training' if not train_files else 'validation'} photos are left")
    return PhotoSplit(PhotoFiles(train_files), [str(p) for p in train_files], [read_image(p) for p in val_files],
                      [str(p) for p in val_files], skipped)


def _paired(config: DataConfig, split: str) -> tuple[list[Pair], list[str]]:
    if config.pairs_file:
        return list_file_pairs(config.pairs_file, config.allow_outside_paths)
    return paired_folder_pairs(config.root)


SOURCES.add("embedded", SharpPhotos(_embedded))
SOURCES.add("folder", SharpPhotos(_folder, needs=("sharp_dir",)))
SOURCES.add("gopro", RealPairs(lambda config, split: gopro_pairs(config.root, split, config.gopro_blur),
                               test_split=True))
SOURCES.add("realblur", RealPairs(lambda config, split: realblur_pairs(
    config.root, config.realblur_variant, split, config.allow_outside_paths), test_split=True))
SOURCES.add("hide", RealPairs(lambda config, split: hide_pairs(config.root, split), test_split=True))
# root/blur and root/sharp with matching names, or a list file of "blur,sharp" paths.
SOURCES.add("paired", RealPairs(_paired, needs=("root", "pairs_file")))
