"""Paired augmentation with albumentations: one random transform applied identically to blur and sharp."""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check at import

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402


class PairedAugment:
    """Random crop (reflect-padded when the image is smaller), flips, 90-degree rotations and a soft colour
    jitter, drawn once per call and applied to both images (albumentations' additional targets).

    ``seed`` makes each call a pure function of its inputs, so items stay reproducible whatever the number of
    loader workers. Validation uses ``PairedAugment(crop, flips=False, rot90=False)``: a crop and nothing else.
    """

    def __init__(self, crop_size: int | None, flips: bool = True, rot90: bool = True, color_jitter: float = 0.0):
        transforms = []
        if crop_size:
            transforms.append(
                A.RandomCrop(crop_size, crop_size, pad_if_needed=True, border_mode=cv2.BORDER_REFLECT_101)
            )
        if flips:
            transforms += [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)]
        if rot90:
            transforms.append(A.RandomRotate90(p=1.0))
        if color_jitter > 0:
            # Soft: brightness/contrast/saturation within +-color_jitter, hue within +-color_jitter/5 of a turn.
            transforms.append(
                A.ColorJitter(color_jitter, color_jitter, color_jitter, color_jitter / 5, p=0.5)
            )
        self.compose = A.Compose(transforms, additional_targets={"sharp": "image"}, seed=0)

    def __call__(self, blur: np.ndarray, sharp: np.ndarray | None = None, seed: int = 0):
        """H x W x 3 float32 arrays in [0, 1]; returns the transformed (blur, sharp), or blur alone if no sharp."""
        self.compose.set_random_seed(seed)
        if sharp is None:
            return np.clip(self.compose(image=blur, sharp=blur)["image"], 0.0, 1.0)
        out = self.compose(image=blur, sharp=sharp)
        return np.clip(out["image"], 0.0, 1.0), np.clip(out["sharp"], 0.0, 1.0)
