"""Random motion-blur kernels (a simple camera-shake model; see ``random_motion_kernel``)."""

from __future__ import annotations

import numpy as np
import torch


def random_motion_kernel(
    size: int, rng: np.random.Generator, min_length: float = 3.0, max_length: float | None = None, points: int = 64
) -> torch.Tensor:
    """A ``size x size`` kernel, summing to 1, from a smooth random camera path.

    The path is a random walk of the heading (Gaussian turns, so paths range from straight lines to curves),
    scaled to a length drawn uniformly in [min_length, max_length] pixels, centred on its centroid so the blur
    does not shift the image, and splatted bilinearly so sub-pixel positions keep their weight.
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and >= 3, got {size}")
    max_length = size - 3 if max_length is None else max_length
    length = rng.uniform(min(min_length, max_length), max_length)
    headings = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, rng.uniform(0.0, 0.4), points))
    steps = np.stack([np.cos(headings), np.sin(headings)], axis=1)
    path = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    travelled = np.abs(np.diff(path, axis=0)).sum() or 1.0
    path *= length / travelled
    path -= path.mean(axis=0)
    # Curved paths can reach further from their centroid than straight ones; shrink to stay inside the kernel.
    reach = np.abs(path).max()
    if reach > (size - 3) / 2:
        path *= (size - 3) / 2 / reach
    return splat(path + (size - 1) / 2, size)


def splat(points: np.ndarray, size: int) -> torch.Tensor:
    """Bilinear splat of equally weighted (x, y) points into a normalised ``size x size`` kernel."""
    kernel = np.zeros((size, size), dtype=np.float64)
    x0 = np.floor(points[:, 0]).astype(int)
    y0 = np.floor(points[:, 1]).astype(int)
    fx = points[:, 0] - x0
    fy = points[:, 1] - y0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(kernel, (y0 + dy, x0 + dx), wy * wx)
    return torch.from_numpy(kernel / kernel.sum()).float()


def delta_kernel(size: int) -> torch.Tensor:
    kernel = torch.zeros(size, size)
    kernel[size // 2, size // 2] = 1.0
    return kernel
