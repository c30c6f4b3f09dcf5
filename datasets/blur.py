"""Physically motivated synthetic blur: convolution in linear light, optional sensor noise."""

from __future__ import annotations

import torch
from kornia.color import linear_rgb_to_rgb, rgb_to_linear_rgb
from kornia.filters import filter2d


def blur_valid(sharp: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Blur sRGB images with one kernel each, in linear light, keeping only fully covered pixels.

    ``sharp``: B x 3 x (H + k - 1) x (W + k - 1) in [0, 1]; ``kernels``: B x k x k, each summing to 1.
    Returns B x 3 x H x W. Light adds linearly, so a camera integrates the scene in linear intensity: blurring
    gamma-encoded values darkens highlights' streaks. 'valid' convolution means no pixel depends on an
    invented border, so the pair matches a real exposure everywhere. Works on any device, batched.
    """
    linear = rgb_to_linear_rgb(sharp)
    blurred = filter2d(linear, kernels, padding="valid", behaviour="conv")
    return linear_rgb_to_rgb(blurred.clamp(0.0, 1.0))


def center_crop(images: torch.Tensor, margin: int) -> torch.Tensor:
    """Remove ``margin`` pixels from every side (the sharp counterpart of a 'valid' blur)."""
    if margin == 0:
        return images
    return images[..., margin:-margin, margin:-margin]
