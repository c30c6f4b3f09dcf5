"""The standard U-Net reference (Ronneberger et al. 2015 widths, about 31M parameters at ``start_filters=64``)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import make_norm, make_upsampler, pad_to_multiple


class DoubleConv(nn.Sequential):
    """Two plain 3x3 convs, each followed by norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "instance"):
        bias = norm == "none"
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias),
            make_norm(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias),
            make_norm(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """Plain-conv U-Net with max-pool downsampling, sharing LightUNet's options so the two compare on one flag.

    Same residual formulation (``y = x + F(x)``, zero-initialised head) and the same any-size padding; only the
    blocks differ (dense 3x3 double convs instead of depthwise-separable ResBlocks).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        start_filters: int = 64,
        levels: int = 4,
        norm: str = "instance",
        plain_last_decoder_blocks: int = 0,
        upsample: str = "pixelshuffle",
        global_residual: bool = True,
    ):
        super().__init__()
        if global_residual and in_channels != out_channels:
            raise ValueError("global_residual needs in_channels == out_channels")
        if not 0 <= plain_last_decoder_blocks <= levels:
            raise ValueError(f"plain_last_decoder_blocks must be in [0, {levels}], got {plain_last_decoder_blocks}")
        self.levels = levels
        self.global_residual = global_residual
        widths = [start_filters * 2**i for i in range(levels)]

        self.encoders = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.encoders.append(DoubleConv(previous, width, norm))
            previous = width
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(widths[-1], widths[-1] * 2, norm)

        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        previous = widths[-1] * 2
        for index, width in enumerate(reversed(widths)):
            level_norm = "none" if index >= levels - plain_last_decoder_blocks else norm
            self.upsamplers.append(make_upsampler(upsample, previous, width))
            self.decoders.append(DoubleConv(2 * width, width, level_norm))
            previous = width

        self.head = nn.Conv2d(widths[0], out_channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, (height, width) = pad_to_multiple(x, 2**self.levels)
        features = padded
        skips = []
        for encoder in self.encoders:
            features = encoder(features)
            skips.append(features)
            features = self.pool(features)
        features = self.bottleneck(features)
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, reversed(skips)):
            features = decoder(torch.cat([upsample(features), skip], dim=1))
        residual = self.head(features)[..., :height, :width]
        return x + residual if self.global_residual else residual
