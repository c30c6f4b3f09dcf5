"""Turn a ``DataConfig`` into the training and validation datasets."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .config import DataConfig
from .errors import DataError
from .images import list_images, read_image
from .photos import TRAIN_PHOTOS, VAL_PHOTOS, embedded_photos
from .synthetic import FixedPairs, SyntheticBlurPairs


class PhotoFiles:
    """Lazily decoded photos; each worker keeps a small cache so a photo is not decoded for every crop."""

    def __init__(self, files: list[Path]):
        self.files = files
        self._read = lru_cache(maxsize=32)(self._read_uncached)

    def _read_uncached(self, index: int) -> torch.Tensor:
        return read_image(self.files[index])

    def __call__(self, index: int) -> torch.Tensor:
        return self._read(index)

    def __getstate__(self) -> dict:
        # lru_cache wrappers do not pickle; loader workers rebuild their own cache.
        return {"files": self.files}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["files"])


def _check_sizes(files: list[Path], window: int) -> None:
    """Fail before training starts on a file that is not an image or is too small to crop."""
    for path in files:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (OSError, SyntaxError, ValueError) as error:
            raise DataError(f"cannot read image {path}: {error}") from None
        if min(width, height) < window:
            raise DataError(
                f"image {path} is {width}x{height}, smaller than the crop plus kernel margin ({window}x{window}); "
                "lower data.crop_size or data.kernel_size"
            )


def _split_folder(config: DataConfig, seed: int) -> tuple[list[Path], list[Path]]:
    files = list_images(config.sharp_dir)
    if config.val_sharp_dir:
        return files, list_images(config.val_sharp_dir)
    if len(files) < 2:
        raise DataError(
            f"data folder {config.sharp_dir} has {len(files)} image; holding out validation images needs at least 2 "
            "(or set data.val_sharp_dir)"
        )
    order = np.random.default_rng(seed).permutation(len(files))
    num_val = min(len(files) - 1, max(1, round(config.val_fraction * len(files))))
    val = sorted(files[i] for i in order[:num_val])
    train = sorted(files[i] for i in order[num_val:])
    return train, val


def build_datasets(config: DataConfig, seed: int = 0) -> tuple[SyntheticBlurPairs, FixedPairs]:
    window = config.crop_size + config.kernel_size - 1
    common = dict(
        crop_size=config.crop_size,
        kernel_size=config.kernel_size,
        length=config.train_pairs_per_epoch,
        noise_sigma=config.noise_sigma,
        seed=seed,
    )
    if config.source == "embedded":
        photos = embedded_photos("train")
        train = SyntheticBlurPairs(photos, len(photos), describe=TRAIN_PHOTOS.__getitem__, **common)
        val_photos, val_names = embedded_photos("val"), list(VAL_PHOTOS)
    else:
        train_files, val_files = _split_folder(config, seed)
        _check_sizes(train_files, window)
        train = SyntheticBlurPairs(
            PhotoFiles(train_files), len(train_files), describe=lambda i: str(train_files[i]), **common
        )
        val_photos, val_names = [read_image(path) for path in val_files], [str(path) for path in val_files]
    val = FixedPairs(
        val_photos,
        crop_size=config.val_crop_size,
        kernel_size=config.kernel_size,
        crops_per_photo=config.val_crops_per_photo,
        noise_sigma=config.noise_sigma,
        seed=config.val_seed,
        names=val_names,
    )
    return train, val
