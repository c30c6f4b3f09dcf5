"""Losses: pure functions and modules over [0, 1] image tensors; they know nothing about datasets."""

from .charbonnier import charbonnier

__all__ = ["charbonnier"]
