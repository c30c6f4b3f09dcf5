"""Image-quality metrics with the published GoPro conventions stated, not implied.

PSNR: RGB, both images rounded to 8-bit first, no border crop, computed per image then averaged over images.
SSIM: RGB rounded to 8-bit, Gaussian window 11 with sigma 1.5, computed per channel over 'valid' windows only
(no padding; equal to scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)``), averaged over channels and pixels, then over images.
"""

from __future__ import annotations

import torch
from kornia.metrics import ssim as kornia_ssim


def quantize_8bit(images: torch.Tensor) -> torch.Tensor:
    """What saving as an 8-bit PNG does to a [0, 1] image: clamp, round to 1/255 steps (ties to even, as NumPy)."""
    return torch.round(images.clamp(0.0, 1.0) * 255.0) / 255.0


def psnr_per_image(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image of an N x C x H x W batch; identical images give +inf."""
    error = (quantize_8bit(prediction.double()) - quantize_8bit(target.double())) ** 2
    mse = error.flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse)


def ssim_per_image(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    maps = kornia_ssim(quantize_8bit(prediction).float(), quantize_8bit(target).float(), 11, padding="valid")
    return maps.flatten(1).mean(dim=1)
