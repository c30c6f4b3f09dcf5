"""LightUNet: the lightweight residual deblurring generator (about 6.8M parameters at ``start_filters=48``)."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import DSConv, LightResBlock, make_upsampler, pad_to_multiple


class LightUNet(nn.Module):
    """U-Net of depthwise-separable ResBlocks that predicts a residual: ``y = x + F(x)``.

    Encoder level i (width ``start_filters * 2**i``): DSConv + LightResBlock, then a strided standard 3x3 conv
    halves the resolution. Bottleneck: DSConv + LightResBlock + DSConv at ``2**levels * start_filters``. Decoder
    level: x2 upsampling (PixelShuffle by default), concatenation with the skip, a DSConv that fuses the two back to
    the level's width, and a LightResBlock. The output conv is zero-initialised, so an untrained network is the
    identity and training starts from the blurry input rather than from noise.

    Any input size works: the input is reflect-padded to a multiple of ``2**levels`` and the output cropped back.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        start_filters: int = 48,
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

        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.encoders = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        previous = widths[0]
        for width in widths:
            self.encoders.append(nn.Sequential(DSConv(previous, width, norm), LightResBlock(width, norm)))
            self.downsamplers.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
            previous = width

        bottom = widths[-1] * 2
        self.bottleneck = nn.Sequential(
            DSConv(widths[-1], bottom, norm), LightResBlock(bottom, norm), DSConv(bottom, bottom, norm)
        )

        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        previous = bottom
        for index, width in enumerate(reversed(widths)):
            # Counted from the output end: the last N decoder levels run without normalisation.
            level_norm = "none" if index >= levels - plain_last_decoder_blocks else norm
            self.upsamplers.append(make_upsampler(upsample, previous, width))
            self.decoders.append(nn.Sequential(DSConv(2 * width, width, level_norm), LightResBlock(width, level_norm)))
            previous = width

        self.head = nn.Conv2d(widths[0], out_channels, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, (height, width) = pad_to_multiple(x, 2**self.levels)
        features = self.stem(padded)
        skips = []
        for encoder, downsample in zip(self.encoders, self.downsamplers):
            features = encoder(features)
            skips.append(features)
            features = downsample(features)
        features = self.bottleneck(features)
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, reversed(skips)):
            features = decoder(torch.cat([upsample(features), skip], dim=1))
        residual = self.head(features)[..., :height, :width]
        return x + residual if self.global_residual else residual
