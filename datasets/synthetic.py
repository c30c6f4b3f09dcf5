"""Blurred/sharp pairs made on the fly from sharp photos with random motion kernels."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .blur import blur_valid, center_crop
from .errors import DataError
from .kernels import random_motion_kernel

PhotoSource = Callable[[int], torch.Tensor]


class SyntheticBlurPairs(Dataset):
    """``length`` random pairs per epoch: a random crop of a random photo, flipped/rotated, blurred.

    Every item is a pure function of (seed, epoch, index): runs are reproducible whatever the number of loader
    workers, and a resumed run can regenerate exactly the pairs it would have seen. Call ``set_epoch`` to draw
    new pairs each epoch.
    """

    def __init__(
        self,
        photos: Sequence[torch.Tensor] | PhotoSource,
        num_photos: int,
        crop_size: int,
        kernel_size: int,
        length: int,
        noise_sigma: float = 0.0,
        seed: int = 0,
        augment: bool = True,
        describe: Callable[[int], str] = str,
    ):
        self.load = photos if callable(photos) else photos.__getitem__
        self.num_photos = num_photos
        self.crop_size = crop_size
        self.kernel_size = kernel_size
        self.length = length
        self.noise_sigma = noise_sigma
        self.seed = seed
        self.augment = augment
        self.describe = describe
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        photo_index = int(rng.integers(self.num_photos))
        photo = self.load(photo_index)
        window = self.crop_size + self.kernel_size - 1
        height, width = photo.shape[-2:]
        if height < window or width < window:
            raise DataError(
                f"photo {self.describe(photo_index)} is {width}x{height}, smaller than the crop plus kernel margin "
                f"({window}x{window}); lower data.crop_size or data.kernel_size"
            )
        top = int(rng.integers(height - window + 1))
        left = int(rng.integers(width - window + 1))
        crop = photo[:, top : top + window, left : left + window]
        if self.augment:
            # Augmenting the sharp photo before blurring moves both images of the pair identically by construction.
            if rng.random() < 0.5:
                crop = crop.flip(-1)
            crop = torch.rot90(crop, int(rng.integers(4)), dims=(-2, -1))
        return make_pair(crop, random_motion_kernel(self.kernel_size, rng), self.noise_sigma * rng.random(), rng)


def make_pair(
    window: torch.Tensor, kernel: torch.Tensor, noise_sigma: float, rng: np.random.Generator
) -> dict[str, torch.Tensor]:
    """Blur a (crop + kernel margin) window; the sharp target is its centre, aligned pixel for pixel."""
    blurred = blur_valid(window[None], kernel[None])[0]
    if noise_sigma > 0:
        noise = torch.from_numpy(rng.normal(0.0, noise_sigma, blurred.shape).astype(np.float32))
        blurred = (blurred + noise).clamp(0.0, 1.0)
    return {"blur": blurred, "sharp": center_crop(window, kernel.shape[-1] // 2), "kernel": kernel}


class FixedPairs(Dataset):
    """A validation set made once from seeded crops and kernels: identical on every run, never augmented."""

    def __init__(
        self,
        photos: Sequence[torch.Tensor],
        crop_size: int,
        kernel_size: int,
        crops_per_photo: int,
        noise_sigma: float = 0.0,
        seed: int = 12345,
        names: Sequence[str] | None = None,
    ):
        names = names or [f"photo {i}" for i in range(len(photos))]
        window = crop_size + kernel_size - 1
        rng = np.random.default_rng(seed)
        self.pairs = []
        for photo, name in zip(photos, names):
            height, width = photo.shape[-2:]
            if height < window or width < window:
                raise DataError(
                    f"validation photo {name} is {width}x{height}, smaller than the validation crop plus kernel "
                    f"margin ({window}x{window}); lower data.val_crop_size"
                )
            for _ in range(crops_per_photo):
                top = int(rng.integers(height - window + 1))
                left = int(rng.integers(width - window + 1))
                crop = photo[:, top : top + window, left : left + window]
                self.pairs.append(make_pair(crop, random_motion_kernel(kernel_size, rng), noise_sigma * rng.random(), rng))

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.pairs[index]
