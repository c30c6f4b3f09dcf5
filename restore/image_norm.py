"""Whole-image InstanceNorm statistics for tiled inference.

An InstanceNorm layer normalises with the mean and variance of its whole input. A tile holds only part of the
image, so with its own statistics every tile comes out differently from the whole image (by a quarter of what the
shipped model changes, measured in docs/inference.md). ``ImageStatistics`` measures each norm layer's statistics over
the whole image instead, tile by tile, and then hands them to the layers for the pass that makes the output.

A layer's statistics depend on every layer before it, so they are measured layer by layer, in execution order:
the pass for layer k normalises layers 0..k-1 with their (already whole-image) statistics, adds up layer k's
input over the part of the image each tile owns (every pixel counted once), and stops the forward right there.
Measuring all layers in one pass and iterating does not work: early layers' statistics then become exact while
later ones are still per-tile, and that mix is far from both (measured: the output error grew 30,000x).
The cost is the sum of the truncated passes (about half a full pass per norm layer on average).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

from nets.blocks import InstanceNorm2d

# (top, bottom, left, right) of the image part a tile owns, in the tile's own pixel coordinates, and its size.
Region = tuple[int, int, int, int, int, int]


class _Stop(Exception):
    """Raised by the layer after the one being measured: the rest of the forward is not needed."""


class ImageStatistics:
    def __init__(self, model: nn.Module):
        self.model = model
        self.norms = [module for module in model.modules() if isinstance(module, InstanceNorm2d)]
        self.regions: list[Region] = []

    def __bool__(self) -> bool:
        return bool(self.norms)

    def execution_order(self, probe: torch.Tensor) -> list[InstanceNorm2d]:
        """The norm layers in the order a forward calls them (module order need not be call order)."""
        order: list[InstanceNorm2d] = []
        handles = [norm.register_forward_pre_hook(lambda module, _: order.append(module)) for norm in self.norms]
        try:
            with torch.no_grad():
                self.model(probe)
        finally:
            for handle in handles:
                handle.remove()
        return list(dict.fromkeys(order))

    def measure(self, run_tiles: Callable[[], None], probe: torch.Tensor) -> None:
        """Measure every layer's whole-image statistics and hand them to the layers. ``run_tiles()`` must run the
        network over all tiles (through ``run_until_stopped``), setting ``self.regions`` before each batch;
        ``probe``, a small input, finds the layers' call order."""
        self.release()
        order = self.execution_order(probe)
        for index, norm in enumerate(order):
            sums: list = [0.0, 0.0, 0]
            stop = order[index + 1] if index + 1 < len(order) else None
            with self._recording(norm, sums), self._stopping_at(stop):
                run_tiles()
            total, squares, count = sums
            mean = total / count
            var = (squares / count - mean * mean).clamp_min(0.0)
            norm.given_statistics = (mean.to(norm.weight.dtype), var.to(norm.weight.dtype))

    @contextlib.contextmanager
    def _recording(self, norm: InstanceNorm2d, sums: list) -> Iterator[None]:
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            for sample, (top, bottom, left, right, height, width) in zip(inputs[0], self.regions):
                # A level's feature map is the tile scaled by an exact power of two (tiles and their owned parts
                # start at multiples of the network's size multiple): the owned part is whole feature pixels.
                scale_h, scale_w = sample.shape[-2] / height, sample.shape[-1] / width
                part = sample[:, round(top * scale_h) : round(bottom * scale_h),
                              round(left * scale_w) : round(right * scale_w)].double()
                sums[0] = sums[0] + part.sum(dim=(1, 2))
                sums[1] = sums[1] + (part * part).sum(dim=(1, 2))
                sums[2] += part.shape[1] * part.shape[2]

        handle = norm.register_forward_pre_hook(record)
        try:
            yield
        finally:
            handle.remove()

    @contextlib.contextmanager
    def _stopping_at(self, norm: InstanceNorm2d | None) -> Iterator[None]:
        def stop(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            raise _Stop

        handle = norm.register_forward_pre_hook(stop) if norm is not None else None
        try:
            yield
        finally:
            if handle is not None:
                handle.remove()

    def release(self) -> None:
        for norm in self.norms:
            norm.given_statistics = None


def run_until_stopped(network: Callable[[torch.Tensor], torch.Tensor], tiles: torch.Tensor) -> None:
    """One truncated forward of a measuring pass."""
    try:
        network(tiles)
    except _Stop:
        pass
