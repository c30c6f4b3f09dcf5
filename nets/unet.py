"""The standard U-Net reference (Ronneberger et al. 2015 widths, about 31M parameters at ``start_filters=64``)."""

from __future__ import annotations

from torch import nn

from .blocks import make_norm
from .registry import register
from .residual_unet import ResidualUNet


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


@register("unet")
class UNet(ResidualUNet):
    """Plain-conv U-Net with max-pool downsampling, on LightUNet's skeleton so the two compare on one flag: same
    residual formulation, options and any-size padding; only the blocks differ (dense 3x3 double convs)."""

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
        super().__init__(
            in_channels, out_channels, start_filters, levels, norm, plain_last_decoder_blocks, upsample, global_residual
        )

    def make_encoder(self, in_channels: int, width: int, norm: str) -> nn.Module:
        return DoubleConv(in_channels, width, norm)

    def make_downsampler(self, width: int) -> nn.Module:
        return nn.MaxPool2d(2)

    def make_bottleneck(self, in_channels: int, width: int, norm: str) -> nn.Module:
        return DoubleConv(in_channels, width, norm)

    def make_decoder(self, in_channels: int, width: int, norm: str) -> nn.Module:
        return DoubleConv(in_channels, width, norm)

    def make_head(self, width: int, out_channels: int) -> nn.Conv2d:
        return nn.Conv2d(width, out_channels, 1)
