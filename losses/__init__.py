"""Losses: pure functions and modules over [0, 1] image tensors; they know nothing about datasets."""

from .charbonnier import charbonnier
from .psnr_loss import psnr_loss

__all__ = ["charbonnier", "psnr_loss"]
