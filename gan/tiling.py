"""Tiled inference: run a network over an image of any size in memory bounded by the tile, not the image.

Tiles overlap; each tile's output is weighted by a window that ignores a thin margin at the tile's inner edges,
ramps up smoothly (raised cosine) across the rest of the overlap and is flat in the middle, and the weighted outputs
are normalised by the summed weights: a convex combination, with no seam. For a network without image-wide
statistics whose receptive radius is within the margin (overlap / 4) this reproduces whole-image inference exactly. For InstanceNorm networks each tile
normalises with its own statistics; README "Tiled inference" reports how close that comes and what fixes it.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

Network = Callable[[torch.Tensor], torch.Tensor]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` shared pixels."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = math.ceil((length - tile) / stride) + 1
    # Spread the tiles evenly instead of leaving a thin last tile: every overlap is at least `overlap` wide.
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def ramp_window(size: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """1-D blending weights for one tile: on each side that meets another tile, weight 0 over a margin of
    ``overlap // 4`` pixels, then a raised-cosine ramp up to 1 across the rest of the overlap but that margin again.

    The margin drops the pixels whose receptive field crosses the tile's edge (they saw zero padding where the
    image has content): with a margin wider than a network's receptive radius, tiling is exact. Where two tiles
    meet, one's ramp up mirrors the other's ramp down and their weights sum to 1. Sides on the image border keep
    weight 1 up to the edge.
    """
    weights = torch.ones(size, dtype=torch.float64)
    margin = overlap // 4
    ramp_length = overlap - 2 * margin
    if overlap > 0:
        positions = (torch.arange(ramp_length, dtype=torch.float64) + 0.5) / ramp_length
        side = torch.cat([torch.zeros(margin, dtype=torch.float64), 0.5 - 0.5 * torch.cos(math.pi * positions)])
        if not at_start:
            weights[: len(side)] = side
        if not at_end:
            weights[size - len(side) :] = side.flip(0)
    return weights


@torch.no_grad()
def tiled_apply(
    network: Network,
    image: torch.Tensor,
    tile: int = 512,
    overlap: int = 64,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Apply ``network`` (N x C x h x w -> N x C' x h x w) to a 1 x C x H x W image tile by tile.

    The image and the output stay where ``image`` is (normally the CPU); only a batch of tiles is on ``device`` at
    a time. ``tile=0`` (or a tile covering the image) runs the whole image at once.
    """
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"tiled_apply expects a 1 x C x H x W image, got {tuple(image.shape)}")
    height, width = image.shape[-2:]
    if tile <= 0 or (height <= tile and width <= tile):
        return network(image.to(device)).to(image.device, torch.float32)
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    tile_h, tile_w = min(tile, height), min(tile, width)
    tops, lefts = tile_starts(height, tile_h, overlap), tile_starts(width, tile_w, overlap)
    boxes = [(top, left) for top in tops for left in lefts]

    output: torch.Tensor | None = None
    total_weight = torch.zeros(1, 1, height, width, dtype=torch.float32, device=image.device)
    for first in range(0, len(boxes), batch_size):
        chunk = boxes[first : first + batch_size]
        tiles = torch.cat([image[..., t : t + tile_h, l : l + tile_w] for t, l in chunk]).to(device)
        results = network(tiles).to(image.device, torch.float32)
        if output is None:
            output = torch.zeros(1, results.shape[1], height, width, dtype=torch.float32, device=image.device)
        for (top, left), result in zip(chunk, results):
            rows = ramp_window(tile_h, overlap, top == 0, top + tile_h == height)
            cols = ramp_window(tile_w, overlap, left == 0, left + tile_w == width)
            weight = (rows[:, None] * cols[None, :]).float()
            output[0, :, top : top + tile_h, left : left + tile_w] += result * weight
            total_weight[0, 0, top : top + tile_h, left : left + tile_w] += weight
    return output / total_weight
