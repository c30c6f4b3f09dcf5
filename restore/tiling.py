"""Tiled inference: run a network over an image of any size in memory bounded by the tile, not the image.

Tiles overlap; each tile's output is weighted by a window that ignores a thin margin at the tile's inner edges,
ramps up smoothly (raised cosine) across the rest of the overlap and is flat in the middle, and the weighted outputs
are normalised by the summed weights: a convex combination, with no seam.

The image is padded once, as the network would pad it, to a multiple of the network's ``size_multiple`` (16 for a
4-level U-Net), and tiles are sized and placed at multiples of it: each tile then runs every strided conv and
PixelShuffle on the same sampling phase as the whole image. With a per-pixel norm, or none, a tile's output
inside the margin (overlap / 4) then matches the whole image's up to the receptive field beyond the margin. For
InstanceNorm networks ``norm_statistics="image"`` normalises every tile with the whole image's statistics,
measured tile by tile in extra passes (restore/image_norm.py); ``"tile"`` lets each tile use its own (one pass,
less exact). docs/inference.md ("Tiled inference and InstanceNorm") reports the measured agreement of each.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from nets.blocks import pad_to_multiple

from .image_norm import ImageStatistics, run_until_stopped

Network = Callable[[torch.Tensor], torch.Tensor]
NORM_STATISTICS = ("image", "tile")
# Tiles smaller than this see too little context for blurs of tens of pixels, and cost many passes (infer.py says so).
MIN_USEFUL_TILE = 128


def aligned_tile(tile: int, multiple: int, min_size: int) -> int:
    """The tile side tiled_apply uses for ``--tile``: a multiple of the network's ``multiple``, at least its
    smallest input."""
    return max(multiple, tile // multiple * multiple, -(-min_size // multiple) * multiple)


def tiling_problem(tile: int, overlap: int, multiple: int, min_size: int) -> str:
    """Why ``tile`` and ``overlap`` cannot tile an image for a network with that ``multiple`` and ``min_size``
    ("" when they can): the overlap, rounded up to whole multiples, must leave tiles a stride to advance by."""
    side = aligned_tile(tile, multiple, min_size)
    if overlap < 0 or side - math.ceil(overlap / multiple) * multiple < multiple:
        return (f"--tile {tile} --overlap {overlap}: tiles are {side} px once aligned to the network's multiple of "
                f"{multiple}, so the overlap must be between 0 and {side - multiple} px")
    return ""


def tile_starts(length: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` shared pixels,
    every start a multiple of ``multiple`` (``length`` and ``tile`` must be multiples of it)."""
    if length % multiple or tile % multiple:
        raise ValueError(f"length {length} and tile {tile} must be multiples of {multiple}")
    if length <= tile:
        return [0]
    units, tile_units = length // multiple, tile // multiple
    stride = tile_units - math.ceil(overlap / multiple)
    count = math.ceil((units - tile_units) / stride) + 1
    # Spread the tiles evenly instead of leaving a thin last tile; consecutive starts differ by at most `stride`
    # units, so every overlap is at least `overlap` wide.
    return [(i * (units - tile_units) // (count - 1)) * multiple for i in range(count)]


def owned_bounds(starts: list[int], tile: int, length: int, multiple: int = 1) -> list[tuple[int, int]]:
    """The part of ``[0, length)`` each tile owns: split at the middle of each overlap (rounded to a multiple of
    ``multiple``), so the parts partition the image and each lies well inside its tile."""
    cuts = [0]
    for previous, start in zip(starts, starts[1:]):
        middle = (start + previous + tile) / 2
        cuts.append(min(max(round(middle / multiple) * multiple, start), previous + tile))
    cuts.append(length)
    return [(cuts[i], cuts[i + 1]) for i in range(len(starts))]


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
    multiple: int = 1,
    min_size: int = 0,
    statistics: ImageStatistics | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Apply ``network`` (N x C x h x w -> N x C' x h x w) to a 1 x C x H x W image tile by tile.

    The image and the output stay where ``image`` is (normally the CPU); only a batch of tiles is on ``device`` at
    a time. ``tile=0`` (or a tile covering the image) runs the whole image at once. ``multiple`` and
    ``min_size``: the network's padding rule (its ``size_multiple`` and ``min_size``), which the tiling follows.
    ``statistics``: the network's InstanceNorm layers, normalised with whole-image statistics measured tile by
    tile first (restore/image_norm.py; None: each tile uses its own). ``progress(done, total)`` is called after every
    batch of tiles, counting the statistics passes too (a page or a bar can show how far the image is).
    """
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"tiled_apply expects a 1 x C x H x W image, got {tuple(image.shape)}")
    height, width = image.shape[-2:]
    if tile <= 0 or (height <= tile and width <= tile):
        restored = network(image.to(device)).to(image.device, torch.float32)
        if progress is not None:
            progress(1, 1)
        return restored
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    padded, _ = pad_to_multiple(image, multiple, min_size)
    full_h, full_w = padded.shape[-2:]
    aligned = aligned_tile(tile, multiple, min_size)
    tile_h, tile_w = min(aligned, full_h), min(aligned, full_w)
    if overlap >= min(tile_h, tile_w) and (full_h > tile_h or full_w > tile_w):
        raise ValueError(f"overlap {overlap} must be smaller than the tile ({tile_h}x{tile_w} after aligning to "
                         f"{multiple})")
    problem = tiling_problem(tile, overlap, multiple, min_size)
    if problem:
        raise ValueError(problem)
    tops, lefts = tile_starts(full_h, tile_h, overlap, multiple), tile_starts(full_w, tile_w, overlap, multiple)
    boxes = [(top, left) for top in tops for left in lefts]
    owned_rows = dict(zip(tops, owned_bounds(tops, tile_h, full_h, multiple)))
    owned_cols = dict(zip(lefts, owned_bounds(lefts, tile_w, full_w, multiple)))

    def tiles_of(chunk: list[tuple[int, int]]) -> torch.Tensor:
        return torch.cat([padded[..., t : t + tile_h, left : left + tile_w] for t, left in chunk]).to(device)

    use_statistics = statistics is not None and bool(statistics)
    batches = -(-len(boxes) // batch_size)
    total = batches * (1 + (len(statistics.norms) if use_statistics else 0))
    counter = [0]

    def batch_done() -> None:
        counter[0] += 1
        if progress is not None:
            progress(min(counter[0], total), total)

    try:
        if use_statistics:
            def run_tiles() -> None:
                for first in range(0, len(boxes), batch_size):
                    chunk = boxes[first : first + batch_size]
                    statistics.regions = [
                        (owned_rows[t][0] - t, owned_rows[t][1] - t, owned_cols[left][0] - left,
                         owned_cols[left][1] - left, tile_h, tile_w)
                        for t, left in chunk
                    ]
                    run_until_stopped(network, tiles_of(chunk))
                    batch_done()

            probe = torch.zeros(1, image.shape[1], max(min_size, multiple), max(min_size, multiple), device=device)
            statistics.measure(run_tiles, probe)
        return _blend(network, tiles_of, boxes, batch_size, tile_h, tile_w, full_h, full_w, overlap, image.device,
                      batch_done)[
            ..., :height, :width
        ]
    finally:
        if use_statistics:
            statistics.release()


def _blend(network, tiles_of, boxes, batch_size, tile_h, tile_w, height, width, overlap, out_device,
           batch_done) -> torch.Tensor:
    output: torch.Tensor | None = None
    total_weight = torch.zeros(1, 1, height, width, dtype=torch.float32, device=out_device)
    for first in range(0, len(boxes), batch_size):
        chunk = boxes[first : first + batch_size]
        results = network(tiles_of(chunk)).to(out_device, torch.float32)
        if output is None:
            output = torch.zeros(1, results.shape[1], height, width, dtype=torch.float32, device=out_device)
        for (top, left), result in zip(chunk, results):
            rows = ramp_window(tile_h, overlap, top == 0, top + tile_h == height)
            cols = ramp_window(tile_w, overlap, left == 0, left + tile_w == width)
            weight = (rows[:, None] * cols[None, :]).float()
            output[0, :, top : top + tile_h, left : left + tile_w] += result * weight
            total_weight[0, 0, top : top + tile_h, left : left + tile_w] += weight
        batch_done()
    return output / total_weight
