"""Where the streamed executor (restore/streamed.py) keeps an operation's output: ``Rows`` stored band by band (in
memory, or in an unlinked temporary file read and written with pread/pwrite), and ``Value``, an output that is
either stored or computed from another as each band is read."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import torch

from nets.blocks import cat_channels


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's memory as a dtype numpy has (bfloat16 as int16), for reading and writing files."""
    return tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor


class Rows:
    """A whole 1 x C x H x W activation of ``dtype`` (float32, or bfloat16 when the network runs in bf16), stored as
    it is written, band by band: in memory (the bands' own tensors, no copy) or in a file of ``folder`` (H x W x C
    rows)."""

    def __init__(self, channels: int, height: int, width: int, folder: Path, memory_bytes: int,
                 dtype: torch.dtype = torch.float32):
        self.channels, self.height, self.width, self.dtype = channels, height, width, dtype
        self.row_bytes = width * channels * dtype.itemsize
        self.nbytes = height * self.row_bytes
        self.fd = None
        self.chunks: list[tuple[int, torch.Tensor]] | None = None  # (first row, 1 x C x h x W band) in memory
        if self.nbytes <= memory_bytes:
            self.chunks = []
        else:
            handle, name = tempfile.mkstemp(dir=folder, suffix=".rows")
            os.unlink(name)  # the open descriptor keeps it until closed: nothing is left behind, even on a crash
            os.ftruncate(handle, self.nbytes)
            self.fd = handle

    @property
    def in_memory(self) -> bool:
        return self.chunks is not None

    def write(self, top: int, band: torch.Tensor) -> None:
        if self.chunks is not None:
            self.chunks.append((top, band))
            return
        rows = band[0].permute(1, 2, 0).contiguous()  # a channels_last band is already in this order
        os.pwrite(self.fd, memoryview(_bits(rows).numpy()).cast("B"), top * self.row_bytes)

    def read(self, top: int, bottom: int, pad_top: int = 0, pad_bottom: int = 0) -> torch.Tensor:
        """Rows [top, bottom) with ``pad_top`` and ``pad_bottom`` zero rows around them, as 1 x C x h x W
        (channels_last). Rows of one band in memory, unpadded, come back as a view: callers never write into a
        band they read."""
        if self.chunks is not None:
            pieces = [band[:, :, max(top - first, 0) : bottom - first] for first, band in self.chunks
                      if first < bottom and first + band.shape[2] > top]
            if len(pieces) == 1 and not pad_top and not pad_bottom:
                return pieces[0]
            # Joined as N x H x W x C blocks (one contiguous copy each; cat on the channels_last view is strided).
            joined = torch.cat([piece.permute(0, 2, 3, 1) for piece in pieces], dim=1).permute(0, 3, 1, 2)
            return _pad_rows(joined, pad_top, pad_bottom)
        buffer = torch.empty(pad_top + bottom - top + pad_bottom, self.width, self.channels, dtype=self.dtype)
        buffer[:pad_top] = 0
        buffer[buffer.shape[0] - pad_bottom :] = 0
        middle = _bits(buffer[pad_top : pad_top + bottom - top]).numpy()
        if bottom > top:
            done = os.preadv(self.fd, [memoryview(middle).cast("B")], top * self.row_bytes)
            if done != middle.nbytes:
                raise OSError(f"short read of a streamed activation: {done} of {middle.nbytes} bytes")
        return buffer.permute(2, 0, 1)[None]

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.chunks = None


class Value:
    """An operation's output: stored ``Rows``; or computed from ``source`` as a band is read: by an elementwise
    ``function`` (norm, activation) or by ``compute(top, bottom)`` (a convolution whose only consumer is another
    one, so its output is never stored); or a channel concatenation of ``parts``."""

    def __init__(self, rows: Rows | None = None, source: "Value | None" = None,
                 function: Callable[[torch.Tensor], torch.Tensor] | None = None, parts: list["Value"] | None = None,
                 compute: Callable[[int, int], torch.Tensor] | None = None,
                 shape: tuple[int, int, int] | None = None, fresh: bool = False):
        self.rows, self.source, self.function, self.parts = rows, source, function, parts
        self.compute, self._shape = compute, shape
        self.fresh = fresh  # ``function`` returns a new tensor, which a following function may change in place

    @property
    def shape(self) -> tuple[int, int, int]:
        if self._shape is not None:
            return self._shape
        if self.rows is not None:
            return self.rows.channels, self.rows.height, self.rows.width
        if self.parts is not None:
            shapes = [part.shape for part in self.parts]
            return sum(s[0] for s in shapes), shapes[0][1], shapes[0][2]
        return self.source.shape

    def read(self, top: int, bottom: int, pad_top: int = 0, pad_bottom: int = 0) -> torch.Tensor:
        if self.rows is not None:
            return self.rows.read(top, bottom, pad_top, pad_bottom)
        if self.parts is not None:
            return cat_channels([part.read(top, bottom, pad_top, pad_bottom) for part in self.parts])
        band = self.compute(top, bottom) if self.compute else self.function(self.source.read(top, bottom))
        return _pad_rows(band, pad_top, pad_bottom)


def _pad_rows(band: torch.Tensor, top: int, bottom: int) -> torch.Tensor:
    """``band`` with ``top`` and ``bottom`` zero rows, channels_last (joined as N x H x W x C blocks)."""
    if not top and not bottom:
        return band
    _, channels, _, width = band.shape
    zeros = [band.new_zeros(1, rows, width, channels) for rows in (top, bottom)]
    return torch.cat([zeros[0], band.permute(0, 2, 3, 1), zeros[1]], dim=1).permute(0, 3, 1, 2)
