"""LightUNet: the lightweight residual deblurring generator (about 6.8M parameters at ``start_filters=48``)."""

from __future__ import annotations

from torch import nn

from .blocks import DSConv, LightResBlock
from .registry import register
from .residual_unet import ResidualUNet


@register("light_unet")
class LightUNet(ResidualUNet):
    """U-Net of depthwise-separable ResBlocks that predicts a residual: ``y = x + F(x)``.

    A 3x3 stem lifts RGB to ``start_filters`` channels (a depthwise conv on 3 channels would see almost nothing).
    Encoder level: DSConv + LightResBlock, then a strided standard 3x3 conv halves the resolution (no max pooling).
    Bottleneck: DSConv + LightResBlock + DSConv. Decoder level: x2 upsampling (PixelShuffle by default),
    concatenation with the skip, a DSConv that fuses the two back to the level's width, a LightResBlock. Head: a
    3x3 conv to RGB, zero-initialised.

    ``branch_relu``: whether every LightResBlock's residual branch ends in a ReLU (see ``LightResBlock``).

    ``half_input``: a multi-scale input in the spirit of MIMO-UNet (Cho et al. 2021): a half-resolution copy of the
    image (2x2 average) is lifted by a shallow conv module (3x3 conv, ReLU, 1x1 conv) and added to the level-1
    features, so the second level sees the blurred image directly at its own scale, not only through level 0's
    strided conv. About 3.7k parameters at ``start_filters=48``; the 1x1 conv starts at zero, so the network
    computes exactly what it did without the module and shipped weights can start a run with it.
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
        branch_relu: bool = True,
        half_input: bool = False,
    ):
        # Read by the make_* methods, which the base __init__ calls.
        self.branch_relu, self.with_half_input = branch_relu, half_input
        super().__init__(
            in_channels, out_channels, start_filters, levels, norm, plain_last_decoder_blocks, upsample, global_residual
        )

    def make_stem(self, in_channels: int, width: int) -> nn.Module:
        return nn.Conv2d(in_channels, width, 3, padding=1)

    def make_half_input(self, in_channels: int, width: int) -> nn.Module | None:
        if not self.with_half_input:
            return None
        lift = nn.Conv2d(width, width, 1)
        nn.init.zeros_(lift.weight)
        nn.init.zeros_(lift.bias)
        return nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), lift)

    def make_encoder(self, in_channels: int, width: int, norm: str) -> nn.Module:
        return nn.Sequential(DSConv(in_channels, width, norm), LightResBlock(width, norm, self.branch_relu))

    def make_downsampler(self, width: int) -> nn.Module:
        return nn.Conv2d(width, width, 3, stride=2, padding=1)

    def make_bottleneck(self, in_channels: int, width: int, norm: str) -> nn.Module:
        return nn.Sequential(
            DSConv(in_channels, width, norm), LightResBlock(width, norm, self.branch_relu), DSConv(width, width, norm)
        )

    def make_decoder(self, in_channels: int, width: int, norm: str) -> nn.Module:
        return nn.Sequential(DSConv(in_channels, width, norm), LightResBlock(width, norm, self.branch_relu))

    def make_head(self, width: int, out_channels: int) -> nn.Conv2d:
        return nn.Conv2d(width, out_channels, 3, padding=1)
