"""PSNR loss (NAFNet's): the negative PSNR of each image, averaged over the batch."""

from __future__ import annotations

import math

import torch


def psnr_loss(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Mean over the batch of ``10 * log10(MSE_i + eps)``, the negative PSNR in dB of each [0, 1] image.

    The log makes each image's gradient ``1 / MSE_i`` times the MSE's: an image already restored well weighs as much
    as a hard one, where a plain mean of squared errors is ruled by the worst-blurred images of a batch.
    """
    mse = ((prediction - target) ** 2).flatten(1).mean(dim=1)
    return (10.0 / math.log(10.0)) * torch.log(mse + eps).mean()
