"""Exact whole-image inference of an InstanceNorm network in bounded memory, at about the cost of one pass.

An InstanceNorm layer needs its whole input's statistics, so a tile cannot be finished on its own. Measuring the
statistics with extra tiled passes (restore/image_norm.py) re-runs the network's prefix once per norm layer. Here
the network runs once, operation by operation, over the whole image in row bands instead:

- ``model.residual`` is traced (torch.fx) into its operations: convolutions, norms, activations, upsamplers,
  additions and channel concatenations.
- Each operation's output is computed band by band from the bands of its inputs that it needs (a convolution's
  halo rows, zero rows at the image's border exactly as the whole-image padding gives) and stored whole: in memory
  up to ``MEMORY_BYTES`` in all, beyond it in temporary files (rows of H x W x C, read and written with
  pread/pwrite so the process keeps only a few bands resident).
- A norm layer reads its input once to add up the exact per-channel mean and variance (band sums added up in
  float64), then is applied as the band is read by its consumer, as are activations and concatenations; a
  convolution read only by another (a depthwise conv before its pointwise one) is computed as it is read. None of
  those is stored.
- A stored output is deleted as soon as its last consumer has run.

The result equals the whole image's up to summation order, for any size, with memory bounded by the band size.
Networks with an operation it does not know raise ``NotStreamable`` (the caller falls back to tiled passes).
"""

from __future__ import annotations

import contextlib
import math
import operator
import tempfile
from pathlib import Path
from typing import Callable

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from nets.blocks import ChannelNorm, cat_channels, pad_to_multiple

from .band_storage import Rows, Value

# Modules traced as one operation. Elementwise ones are applied as a band is read.
ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.Identity, ChannelNorm)
POOLS = (nn.MaxPool2d, nn.AvgPool2d)
LEAVES = (nn.Conv2d, nn.ConvTranspose2d, nn.PixelShuffle, nn.Upsample, nn.InstanceNorm2d, nn.BatchNorm2d, *POOLS,
          *ELEMENTWISE)
BAND_BYTES = 16 * 2**20  # rows of one stored output read or written at a time (about this many bytes)
MEMORY_BYTES = 2**29  # stored outputs are kept in memory up to this many bytes in all; the rest go to files
ROW_ALIGNMENT = 8  # band edges fall on multiples of this, so x2 resampling maps whole bands to whole bands


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _out_of_place(layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``layer`` as a function that never writes into its input (a band read may be a view of a stored one)."""
    if isinstance(layer, nn.ReLU):
        return torch.relu
    if isinstance(layer, nn.LeakyReLU):
        return lambda band: F.leaky_relu(band, layer.negative_slope)
    return layer


class NotStreamable(Exception):
    """The network holds an operation the streamed executor does not know."""


class _Tracer(fx.Tracer):
    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, LEAVES) or super().is_leaf_module(module, qualified_name)


class _Residual(nn.Module):
    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, padded: torch.Tensor) -> torch.Tensor:
        return self.network.residual(padded)


def trace(model: nn.Module) -> fx.GraphModule:
    """``model.residual`` as a graph of the operations above; ``NotStreamable`` where it is not one."""
    if not hasattr(model, "residual") or not hasattr(model, "add_residual"):
        raise NotStreamable(f"{type(model).__name__} has no residual() to trace")
    tracer = _Tracer()
    try:
        graph = tracer.trace(_Residual(model))
    except Exception as error:  # fx raises several kinds for untraceable control flow
        raise NotStreamable(f"{type(model).__name__} cannot be traced: {error}") from None
    module = fx.GraphModule(tracer.root, graph)
    for node in graph.nodes:
        _check_supported(module, node)
    return module


def _check_supported(module: fx.GraphModule, node: fx.Node) -> None:
    if node.op in ("placeholder", "output"):
        return
    if node.op == "call_function" and node.target in (operator.add, cat_channels):
        return
    if node.op == "call_module":
        layer = module.get_submodule(node.target)
        if isinstance(layer, nn.Conv2d) and layer.padding_mode == "zeros" and not isinstance(layer.padding, str):
            return
        if isinstance(layer, (nn.ConvTranspose2d,)) and layer.kernel_size == layer.stride and layer.padding == (0, 0):
            return
        if isinstance(layer, nn.Upsample) and layer.scale_factor in (2, 2.0) and layer.mode in (
                "nearest", "bilinear") and not layer.align_corners:
            return
        if isinstance(layer, nn.BatchNorm2d) and not layer.training:
            return
        if isinstance(layer, POOLS) and _pair(layer.kernel_size) == _pair(layer.stride) and _pair(layer.padding) == (
                0, 0) and not layer.ceil_mode:
            return
        if isinstance(layer, (nn.PixelShuffle, nn.InstanceNorm2d, *ELEMENTWISE)):
            return
    raise NotStreamable(f"operation {node.op} {node.target} cannot be streamed")


def _bands(height: int, row_bytes: int, band_bytes: int) -> list[tuple[int, int]]:
    rows = max(ROW_ALIGNMENT, band_bytes // max(row_bytes, 1) // ROW_ALIGNMENT * ROW_ALIGNMENT)
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


class StreamedNetwork:
    """Callable 1 x 3 x H x W -> the network's output, computed as the whole image is, band by band (see the
    module's docstring). ``folder``: where large activations go (default: the system's temporary folder)."""

    def __init__(self, model: nn.Module, band_bytes: int = BAND_BYTES, memory_bytes: int = MEMORY_BYTES,
                 folder: str | Path | None = None, dtype: torch.dtype = torch.float32):
        self.model = model
        self.graph = trace(model)
        self.band_bytes, self.memory_bytes = band_bytes, memory_bytes
        self.folder = Path(folder or tempfile.gettempdir())
        # bf16: the operations run under autocast, as the whole-image path does, and their outputs are stored in
        # bf16 (half the memory traffic); float32: exact up to summation order.
        self.dtype = dtype
        self.peak_stored_bytes = 0  # the most bytes held in stored outputs (memory and files) in the latest call
        self._stored: dict[int, Rows] = {}

    @torch.no_grad()
    def __call__(self, image: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        if image.shape[0] != 1:
            raise ValueError("the streamed executor takes one image at a time")
        padded, _ = pad_to_multiple(image.float().cpu(), self.model.size_multiple, minimum=self.model.min_size)
        residual = self.run(padded, progress)
        return self.model.add_residual(image.float().cpu(), residual)

    def run(self, padded: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        nodes = list(self.graph.graph.nodes)
        remaining = {node: len(node.users) for node in nodes}
        values: dict[fx.Node, Value] = {}
        stored = self._stored = {}  # every Rows still open, by id
        self.peak_stored_bytes = 0
        try:
            for done, node in enumerate(nodes):
                if node.op == "output":
                    (result,) = node.args
                    output = values[result].read(0, values[result].shape[1]).contiguous()
                    if progress is not None:
                        progress(len(nodes), len(nodes))
                    return output
                values[node] = self._evaluate(node, values, padded)
                self.peak_stored_bytes = max(self.peak_stored_bytes, self._stored_bytes(stored))
                for argument in node.all_input_nodes:
                    remaining[argument] -= 1
                    if remaining[argument] == 0:
                        del values[argument]
                self._close_unreachable(values, stored)
                if progress is not None:
                    progress(done + 1, len(nodes))
        finally:
            for rows in stored.values():
                rows.close()
        raise NotStreamable("the traced graph has no output")

    @staticmethod
    def _stored_bytes(stored: dict[int, Rows]) -> int:
        return sum(rows.nbytes for rows in stored.values())

    @staticmethod
    def _close_unreachable(values: dict[fx.Node, Value], stored: dict[int, Rows]) -> None:
        """Close the stored outputs no live value reads any more (directly or through a lazy one)."""
        reachable, pending = set(), list(values.values())
        while pending:
            value = pending.pop()
            if value.rows is not None:
                reachable.add(id(value.rows))
            pending += [value.source] if value.source is not None else []
            pending += value.parts or []
        for key in [key for key in stored if key not in reachable]:
            stored.pop(key).close()

    def _evaluate(self, node: fx.Node, values: dict[fx.Node, Value], padded: torch.Tensor) -> Value:
        if node.op == "placeholder":
            rows = self._rows(*padded.shape[1:])
            rows.write(0, padded.to(self.dtype).contiguous(memory_format=torch.channels_last))
            return Value(rows)
        if node.target is cat_channels:
            (inputs,) = node.args
            return Value(parts=[values[argument] for argument in inputs])
        if node.target is operator.add:
            left, right = (values[argument] for argument in node.args)
            return self._map(left.shape[0], left.shape[1], left.shape[2], lambda top, bottom:
                             left.read(top, bottom) + right.read(top, bottom))
        layer = self.graph.get_submodule(node.target)
        (argument,) = node.args
        source = values[argument]
        if isinstance(layer, nn.InstanceNorm2d) and not (layer.track_running_stats and not layer.training):
            return Value(source=source, function=self._instance_norm(layer, source), fresh=True)
        if isinstance(layer, nn.ReLU) and source.fresh:  # norm then ReLU: one function, the ReLU in place
            normalise = source.function
            return Value(source=source.source, function=lambda band: torch.relu_(normalise(band)))
        if isinstance(layer, (*ELEMENTWISE, nn.BatchNorm2d, nn.InstanceNorm2d)):  # these norms: fixed statistics
            return Value(source=source, function=_out_of_place(layer))
        if isinstance(layer, nn.Conv2d):
            # A convolution read only by another one (a depthwise conv before its pointwise one) is computed as its
            # consumer reads it, never stored: a few halo rows computed twice instead of a write and a read.
            (user,) = node.users if len(node.users) == 1 else (None,)
            feeds_conv = user is not None and user.op == "call_module" and isinstance(
                self.graph.get_submodule(user.target), nn.Conv2d)
            return self._conv(layer, source, stored=not feeds_conv)
        if isinstance(layer, POOLS):
            return self._pool(layer, source)
        return self._resample(layer, source)

    def _autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=self.dtype)

    def _rows(self, channels: int, height: int, width: int) -> Rows:
        """Stored in memory while all outputs held in memory stay within ``memory_bytes``, else in a file."""
        in_memory = sum(rows.nbytes for rows in self._stored.values() if rows.in_memory)
        rows = Rows(channels, height, width, self.folder, self.memory_bytes - in_memory, self.dtype)
        self._stored[id(rows)] = rows
        return rows

    def _map(self, channels: int, height: int, width: int, band: Callable[[int, int], torch.Tensor]) -> Value:
        """A stored output of ``channels x height x width``, each band [top, bottom) computed by ``band``."""
        rows = self._rows(channels, height, width)
        for top, bottom in _bands(height, rows.row_bytes, self.band_bytes):
            with self._autocast():
                output = band(top, bottom)
            rows.write(top, output.to(self.dtype).contiguous(memory_format=torch.channels_last))
        return Value(rows)

    def _instance_norm(self, layer: nn.InstanceNorm2d, source: Value) -> Callable[[torch.Tensor], torch.Tensor]:
        """The layer with its input's exact whole-image statistics (one read of the input)."""
        channels, height, width = source.shape
        # Per band, sums of the values less a shift (the first band's first row mean, so the squares do not cancel)
        # by a matrix product over the band's pixels (H W x C rows: far faster than a strided reduction), added up
        # in float64.
        count, shift = 0, None
        total, squares = torch.zeros(channels, dtype=torch.float64), torch.zeros(channels, dtype=torch.float64)
        for top, bottom in _bands(height, width * channels * 4, self.band_bytes):
            pixels = source.read(top, bottom).permute(0, 2, 3, 1).reshape(-1, channels).float()
            if shift is None:
                shift = pixels[:width].mean(dim=0)
            centred = pixels - shift
            ones = torch.ones(1, centred.shape[0])
            total += (ones @ centred)[0].double()
            squares += (ones @ centred.square())[0].double()
            count += centred.shape[0]
        mean = total / count
        var = (squares / count - mean.square()).clamp_min(0)
        mean, var = (mean + shift.double()).float(), var.float()
        weight = layer.weight if layer.affine else None
        bias = layer.bias if layer.affine else None
        return lambda band: F.batch_norm(band, mean, var, weight, bias, False, 0.0, layer.eps)

    def _conv(self, layer: nn.Conv2d, source: Value, stored: bool = True) -> Value:
        channels, height, width = source.shape
        (kernel, _), (stride, _), (padding, pad_width), (dilation, _) = (
            layer.kernel_size, layer.stride, layer.padding, layer.dilation)
        out_height = (height + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
        out_width = (width + 2 * pad_width - layer.dilation[1] * (layer.kernel_size[1] - 1) - 1) // layer.stride[1] + 1

        def band(top: int, bottom: int) -> torch.Tensor:
            first = top * stride - padding
            last = (bottom - 1) * stride - padding + dilation * (kernel - 1) + 1
            rows = source.read(max(first, 0), min(last, height), max(-first, 0), max(last - height, 0))
            return F.conv2d(rows, layer.weight, layer.bias, layer.stride, (0, pad_width), layer.dilation,
                            layer.groups)

        if not stored:
            return Value(source=source, compute=band, shape=(layer.out_channels, out_height, out_width))
        return self._map(layer.out_channels, out_height, out_width, band)

    def _pool(self, layer: nn.Module, source: Value) -> Value:
        """Pooling over non-overlapping windows: output rows [top, bottom) read input rows [top * k, bottom * k)."""
        channels, height, width = source.shape
        factor, factor_width = _pair(layer.kernel_size)
        return self._map(channels, height // factor, width // factor_width,
                         lambda top, bottom: layer(source.read(top * factor, bottom * factor)))

    def _resample(self, layer: nn.Module, source: Value) -> Value:
        """x2 (or x r) row-local resampling: PixelShuffle, a non-overlapping transposed conv, x2 upsampling."""
        channels, height, width = source.shape
        if isinstance(layer, nn.PixelShuffle):
            factor, out_channels = layer.upscale_factor, channels // layer.upscale_factor**2
        elif isinstance(layer, nn.ConvTranspose2d):
            factor, out_channels = layer.stride[0], layer.out_channels
        else:
            factor, out_channels = 2, channels
        halo = 1 if isinstance(layer, nn.Upsample) else 0  # interpolation reads one row either side

        def band(top: int, bottom: int) -> torch.Tensor:
            first, last = max(top // factor - halo, 0), min(math.ceil(bottom / factor) + halo, height)
            output = layer(source.read(first, last))
            return output[:, :, top - first * factor : bottom - first * factor]

        return self._map(out_channels, height * factor, width * factor, band)
