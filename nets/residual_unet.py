"""The U-Net skeleton both generators share: levels, skips, padding to any size, zero-initialised residual head."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import cat_channels, make_upsampler, pad_to_multiple

# Traced as one operation (its layout test is not traceable): restore/streamed.py runs ``residual`` as a graph.
torch.fx.wrap("cat_channels")


class ResidualUNet(nn.Module):
    """Encoder levels of widths ``start_filters * 2**i``, a bottleneck at twice the last width, decoder levels that
    upsample, concatenate the skip and fuse, and a head initialised to zero so the untrained network is exactly the
    identity: ``y = x + F(x)`` with ``F = 0``. Training then starts from the blurry input rather than from noise.

    Subclasses choose the blocks by overriding the ``make_*`` methods; the wiring lives here once. Any input size
    works: the input is reflect-padded to a multiple of ``2**levels``, and to at least ``2**(levels + 1)`` so the
    bottleneck sees 2x2 pixels or more (instance statistics of a single pixel are degenerate), then cropped back.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        start_filters: int,
        levels: int,
        norm: str,
        plain_last_decoder_blocks: int,
        upsample: str,
        global_residual: bool,
    ):
        super().__init__()
        # Checked before any weight is allocated: a mistyped width would otherwise ask for gigabytes.
        if not 1 <= start_filters <= 1024 or not 1 <= levels <= 8:
            raise ValueError(f"start_filters must be in [1, 1024] and levels in [1, 8], got {start_filters} and "
                             f"{levels}")
        if global_residual and in_channels != out_channels:
            raise ValueError("global_residual needs in_channels == out_channels")
        if not 0 <= plain_last_decoder_blocks <= levels:
            raise ValueError(f"plain_last_decoder_blocks must be in [0, {levels}], got {plain_last_decoder_blocks}")
        self.levels = levels
        self.global_residual = global_residual
        widths = [start_filters * 2**i for i in range(levels)]

        self.stem = self.make_stem(in_channels, widths[0])
        self.encoders = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        previous = widths[0] if not isinstance(self.stem, nn.Identity) else in_channels
        for width in widths:
            self.encoders.append(self.make_encoder(previous, width, norm))
            self.downsamplers.append(self.make_downsampler(width))
            previous = width
        # An optional second view of the input, added to the features where level 0 hands over to level 1.
        self.half_input = self.make_half_input(in_channels, widths[0])
        self.bottleneck = self.make_bottleneck(widths[-1], widths[-1] * 2, norm)

        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        previous = widths[-1] * 2
        for index, width in enumerate(reversed(widths)):
            # Counted from the output end: the last N decoder levels run without normalisation.
            level_norm = "none" if index >= levels - plain_last_decoder_blocks else norm
            self.upsamplers.append(make_upsampler(upsample, previous, width))
            self.decoders.append(self.make_decoder(2 * width, width, level_norm))
            previous = width

        self.head = self.make_head(widths[0], out_channels)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def make_stem(self, in_channels: int, width: int) -> nn.Module:
        return nn.Identity()

    def make_half_input(self, in_channels: int, width: int) -> nn.Module | None:
        """A module from the full-resolution input to ``width`` channels at half its resolution, or None."""
        return None

    def make_encoder(self, in_channels: int, width: int, norm: str) -> nn.Module:
        raise NotImplementedError

    def make_downsampler(self, width: int) -> nn.Module:
        raise NotImplementedError

    def make_bottleneck(self, in_channels: int, width: int, norm: str) -> nn.Module:
        raise NotImplementedError

    def make_decoder(self, in_channels: int, width: int, norm: str) -> nn.Module:
        raise NotImplementedError

    def make_head(self, width: int, out_channels: int) -> nn.Conv2d:
        raise NotImplementedError

    def zero_init_additions(self) -> tuple[str, ...]:
        """State-dict prefixes of optional parts that start at zero and so leave the network's function unchanged:
        a file saved without them (an older or smaller configuration) may initialise the rest (``train.init``)."""
        return ("half_input.",) if self.half_input is not None else ()

    @property
    def min_size(self) -> int:
        return 2 ** (self.levels + 1)

    @property
    def size_multiple(self) -> int:
        """Inputs are padded to a multiple of this; tiles that start at multiples of it see the same sampling
        phase in every strided conv and PixelShuffle as the whole image does (restore/tiling.py)."""
        return 2**self.levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, _ = pad_to_multiple(x, 2**self.levels, minimum=self.min_size)
        return self.add_residual(x, self.residual(padded))

    def add_residual(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """Crop the residual of the padded input back to ``x``'s size and apply the global skip."""
        residual = residual[..., : x.shape[-2], : x.shape[-1]]
        return x + residual if self.global_residual else residual

    def residual(self, padded: torch.Tensor) -> torch.Tensor:
        """``F`` on an input whose sides are multiples of ``2**levels`` and at least ``min_size``."""
        features = self.stem(padded)
        skips = []
        for level, (encoder, downsample) in enumerate(zip(self.encoders, self.downsamplers)):
            features = encoder(features)
            skips.append(features)
            features = downsample(features)
            if level == 0 and self.half_input is not None:
                features = features + self.half_input(padded)
        features = self.bottleneck(features)
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, reversed(skips)):
            features = decoder(cat_channels([upsample(features), skip]))
        return self.head(features)
