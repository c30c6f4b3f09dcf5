"""Sharper-detail terms added to the pixel loss: image gradients, the Fourier spectrum, total variation.

Each is a pure function ``(prediction, target) -> scalar`` over N x C x H x W images in [0, 1], selected by name with
a weight in the config (``train.detail_losses``, both phases). The pixel loss alone is satisfied by a blurry mean
of the plausible sharp images; these terms say where that mean loses detail.
"""

from __future__ import annotations

import torch
from kornia.filters import spatial_gradient

from core.registry import Registry


def gradient_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between the normalised Sobel gradients (x and y) of prediction and target: edges in the
    right place with the right contrast, whatever the flat regions' level."""
    return (spatial_gradient(prediction) - spatial_gradient(target)).abs().mean()


def frequency_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance between the 2-D Fourier transforms (real and imaginary parts), as in MIMO-UNet's FFT loss,
    with the orthonormal transform: MIMO-UNet's unnormalised one scales with the crop size, this one does not, so
    one weight serves every crop. High frequencies, which blur removes, count as much as low ones."""
    spectrum = torch.fft.fft2((prediction - target).float(), norm="ortho")
    return torch.view_as_real(spectrum).abs().mean()


def total_variation(prediction: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute difference between horizontal and vertical neighbours of the prediction (the target is not
    used): a smoothness prior against ringing and noise amplification, to be used with a small weight."""
    dx = (prediction[..., :, 1:] - prediction[..., :, :-1]).abs().mean()
    dy = (prediction[..., 1:, :] - prediction[..., :-1, :]).abs().mean()
    return dx + dy


DETAIL_LOSSES: Registry = Registry("detail loss", {
    "gradient": gradient_loss,
    "fft": frequency_loss,
    "tv": total_variation,
})


def detail_terms(
    prediction: torch.Tensor, target: torch.Tensor, weights: dict[str, float]
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum of the named terms (zero-weight terms are not computed) and each term's value for logging."""
    total = prediction.new_zeros((), dtype=torch.float32)
    logged: dict[str, float] = {}
    for name, weight in weights.items():
        if weight == 0:
            continue
        value = DETAIL_LOSSES[name](prediction.float(), target)
        total = total + weight * value
        logged[f"loss_{name}"] = value.item()
    return total, logged
