"""Image-quality metrics with the published GoPro conventions stated, not implied.

PSNR: RGB, both images rounded to 8-bit first, no border crop, computed per image then averaged over images.
LPIPS: the lpips package (AlexNet by default, or VGG), inputs rounded to 8-bit then scaled to [-1, 1]; reported
only when the ImageNet backbone weights are really there, never with a random backbone.
SSIM: RGB rounded to 8-bit, Gaussian window 11 with sigma 1.5, computed per channel over 'valid' windows only
(no padding; equal to scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1)``), averaged over channels and pixels, then over images.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Callable

import torch
from kornia.metrics import ssim as kornia_ssim

from core.images import quantize_8bit
from losses.torchvision_import import import_torchvision

LPIPS_BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


# Identical images have infinite PSNR; every mean (evaluation and training validation) counts at most this per image.
PSNR_CAP = 100.0


def mean_psnr(values: torch.Tensor) -> float:
    """The mean of per-image PSNRs with each capped at ``PSNR_CAP`` (an identical pair would make it +inf)."""
    return values.clamp(max=PSNR_CAP).mean().item()


def psnr_per_image(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image of an N x C x H x W batch; identical images give +inf."""
    error = (quantize_8bit(prediction.double()) - quantize_8bit(target.double())) ** 2
    mse = error.flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse)


def ssim_per_image(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    maps = kornia_ssim(quantize_8bit(prediction).float(), quantize_8bit(target).float(), 11, padding="valid")
    return maps.flatten(1).mean(dim=1)


def load_lpips(
    net: str = "alex", device: torch.device | str = "cpu"
) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None, str]:
    """An LPIPS scorer (per image, lower is better) and "", or None and the one-line reason it is unavailable."""
    import_torchvision()
    import lpips

    try:
        # Quiet: torchvision's "pretrained is deprecated" warnings and torch.hub's download notice, which offline
        # would precede every run's output; the returned reason says what happened in one line instead.
        quiet = io.StringIO()
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net=net, verbose=False).to(device).eval()
    except Exception as error:  # offline, torchvision's download fails in several ways
        where = Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONE_FILES[net]
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, (
            f"LPIPS ({net}) not reported: its ImageNet backbone weights are unavailable ({reason}); "
            f"put torchvision's {LPIPS_BACKBONE_FILES[net]} at {where}"
        )
    model.requires_grad_(False)

    @torch.no_grad()
    def score(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return model(quantize_8bit(prediction) * 2 - 1, quantize_8bit(target) * 2 - 1).flatten()

    return score, ""
