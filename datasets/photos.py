"""The embedded default photos: sharp colour (and a few grayscale) photos that ship inside scikit-image.

They are public domain / CC0 and installed with the package, so the default training run needs no download.
Validation photos are never used for training; the stereo pair stays together on the training side so its
near-identical twin cannot leak into validation.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage import data as skdata

TRAIN_PHOTOS = ("astronaut", "rocket", "motorcycle_left", "motorcycle_right", "camera", "brick", "grass", "gravel")
VAL_PHOTOS = ("coffee", "chelsea")


def _load(name: str) -> np.ndarray:
    if name.startswith("motorcycle_"):
        left, right, _ = skdata.stereo_motorcycle()
        return left if name.endswith("left") else right
    return getattr(skdata, name)()


def embedded_photo(name: str) -> torch.Tensor:
    """One photo as a 3 x H x W float tensor in [0, 1]; grayscale photos are replicated to RGB."""
    array = _load(name)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return torch.from_numpy(array.transpose(2, 0, 1).astype(np.float32) / 255.0)


def embedded_photos(split: str) -> list[torch.Tensor]:
    names = {"train": TRAIN_PHOTOS, "val": VAL_PHOTOS}[split]
    return [embedded_photo(name) for name in names]
