"""Spatially varying camera shake: a translation walk plus an in-plane rotation (roll) of the camera.

During the exposure the camera translates along a Boracchi-Foi walk and rolls by a small angle that drifts with
it; a scene point at ``p`` (from the image centre) then moves by ``translation(t) + roll(t) * R90 p``, so the blur
path differs across the image and changes smoothly: long arcs at the corners, the pure walk at the centre. The
image is rendered with the efficient filter flow model (Nagy and O'Leary 1998; Hirsch et al. 2010): the kernel at
each node of a ``grid x grid`` lattice blurs the whole window, and the results are blended with bilinear weights
that sum to one at every pixel. Everything happens in linear light, like ``blur.synthesize``.
"""

from __future__ import annotations

import numpy as np
import torch
from kornia.filters import filter2d

from .kernels import BF_PATH_LENGTH, BF_STEPS, _check_size, _fit_inside, path_extent, shake_trajectory, splat


def node_positions(grid: int, height: int, width: int) -> np.ndarray:
    """(grid * grid) x 2 pixel positions (x, y) of the lattice nodes relative to the image centre, corners included."""
    ys = np.linspace(-(height - 1) / 2, (height - 1) / 2, grid) if grid > 1 else np.zeros(1)
    xs = np.linspace(-(width - 1) / 2, (width - 1) / 2, grid) if grid > 1 else np.zeros(1)
    return np.array([(x, y) for y in ys for x in xs])


def shake_field(
    size: int, grid: int, height: int, width: int, rng: np.random.Generator,
    extent: tuple[float, float] = (5.0, 25.0), max_roll_degrees: float = 1.0,
) -> torch.Tensor:
    """``grid x grid x size x size`` kernels of one camera shake with roll, for an image of ``height x width``.

    The translation walk is drawn at Boracchi-Foi's scale and rescaled to an extent uniform in ``extent`` px; the
    roll follows a second walk rescaled to a peak angle uniform in [0, ``max_roll_degrees``]. Each node's path is
    clipped to the kernel (shrunk if it would reach the outer ring) and splatted centred, so no part of the image
    shifts against its sharp target.
    """
    _check_size(size)
    if grid < 1:
        raise ValueError(f"a kernel field needs grid >= 1, got {grid}")
    path = shake_trajectory(rng, length=BF_PATH_LENGTH, steps=BF_STEPS)
    path = path - path.mean(axis=0)
    path *= rng.uniform(*extent) / (path_extent(path) or 1.0)
    roll = shake_trajectory(rng, length=BF_PATH_LENGTH, steps=BF_STEPS)[:, 0]
    roll = roll - roll.mean()
    roll *= np.deg2rad(rng.uniform(0, max_roll_degrees)) / (np.abs(roll).max() or 1.0)
    kernels = []
    for x, y in node_positions(grid, height, width):
        # Small-angle rotation of the point (x, y) by roll(t): displacement roll(t) * (-y, x).
        moved = path + roll[:, None] * np.array([-y, x])[None, :]
        kernels.append(splat(_fit_inside(moved, size), size))
    return torch.stack(kernels).reshape(grid, grid, size, size)


def blend_weights(grid: int, height: int, width: int) -> torch.Tensor:
    """(grid * grid) x height x width bilinear weights of the lattice nodes: each pixel's weights sum to one."""
    def hats(length: int) -> torch.Tensor:
        if grid == 1:
            return torch.ones(1, length)
        position = torch.linspace(0, grid - 1, length)
        nodes = torch.arange(grid, dtype=torch.float32)[:, None]
        return (1 - (position[None, :] - nodes).abs()).clamp_min(0)

    rows, cols = hats(height), hats(width)
    return (rows[:, None, :, None] * cols[None, :, None, :]).reshape(grid * grid, height, width)


def blur_field(linear: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Blur linear-light windows (B x C x (H + k - 1) x (W + k - 1)) with one kernel field each (B x g x g x k x k),
    'valid' (B x C x H x W): the filter-flow sum of each node's blur times its bilinear weight."""
    batch, grid, size = kernels.shape[0], kernels.shape[1], kernels.shape[-1]
    height, width = linear.shape[-2] - size + 1, linear.shape[-1] - size + 1
    weights = blend_weights(grid, height, width).to(linear)
    flat = kernels.reshape(batch, grid * grid, size, size)
    output = linear.new_zeros(batch, linear.shape[1], height, width)
    for node in range(grid * grid):
        output += weights[node] * filter2d(linear, flat[:, node], padding="valid", behaviour="conv")
    return output.clamp_min(0.0)
