"""Charbonnier loss: a differentiable L1 that is quadratic near zero."""

from __future__ import annotations

import torch


def charbonnier(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Mean over all elements of ``sqrt((prediction - target)**2 + eps**2)``.

    ``eps`` is not subtracted back out, so a perfect prediction scores ``eps``, as in the formula we quote.
    """
    return torch.sqrt((prediction - target) ** 2 + eps**2).mean()

