"""Small local definitions of the public deblurring networks LightUNet is timed against (bench/peers.py).

Written here from the configurations their papers give, for timing only (random weights; no third-party code
copied). ``PEERS`` maps a name to (constructor, the parameter count the authors published, or None where the
paper states none). The published counts let the test suite check that each definition is the network it
names, to within ``PARAMETER_TOLERANCE``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

PARAMETER_TOLERANCE = 0.03


def conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1, relu: bool = True,
         transpose: bool = False) -> nn.Module:
    """MIMO-UNet's BasicConv: a conv (or a stride-2 transposed conv) with bias, then ReLU where asked."""
    if transpose:
        layer = nn.ConvTranspose2d(in_channels, out_channels, kernel, stride, padding=kernel // 2 - 1)
    else:
        layer = nn.Conv2d(in_channels, out_channels, kernel, stride, padding=kernel // 2)
    return nn.Sequential(layer, nn.ReLU(inplace=True)) if relu else layer


# --- NAFNet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022), the GoPro width-32 model ----------

class LayerNorm2d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class NAFBlock(nn.Module):
    """Norm, 1x1 expand x2, 3x3 depthwise, SimpleGate, simplified channel attention, 1x1; then a gated FFN."""

    def __init__(self, c: int):
        super().__init__()
        self.norm1, self.norm2 = LayerNorm2d(c), LayerNorm2d(c)
        self.expand = nn.Conv2d(c, 2 * c, 1)
        self.depthwise = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.attention = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1))
        self.project = nn.Conv2d(c, c, 1)
        self.ffn_expand, self.ffn_project = nn.Conv2d(c, 2 * c, 1), nn.Conv2d(c, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    @staticmethod
    def gate(x: torch.Tensor) -> torch.Tensor:
        first, second = x.chunk(2, dim=1)
        return first * second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gate(self.depthwise(self.expand(self.norm1(x))))
        y = x + self.project(y * self.attention(y)) * self.beta
        return y + self.ffn_project(self.gate(self.ffn_expand(self.norm2(y)))) * self.gamma


class NAFNet(nn.Module):
    def __init__(self, width: int = 32, encoder_blocks=(1, 1, 1, 28), middle_blocks: int = 1,
                 decoder_blocks=(1, 1, 1, 1)):
        super().__init__()
        self.intro = nn.Conv2d(3, width, 3, padding=1)
        self.ending = nn.Conv2d(width, 3, 3, padding=1)
        self.encoders, self.downs, self.ups, self.decoders = (nn.ModuleList() for _ in range(4))
        channels = width
        for count in encoder_blocks:
            self.encoders.append(nn.Sequential(*[NAFBlock(channels) for _ in range(count)]))
            self.downs.append(nn.Conv2d(channels, 2 * channels, 2, stride=2))
            channels *= 2
        self.middle = nn.Sequential(*[NAFBlock(channels) for _ in range(middle_blocks)])
        for count in decoder_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(channels, 2 * channels, 1, bias=False), nn.PixelShuffle(2)))
            channels //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(channels) for _ in range(count)]))
        self.multiple = 2 ** len(encoder_blocks)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        x = F.pad(image, (0, -width % self.multiple, 0, -height % self.multiple))
        x, skips = self.intro(x), []
        for encoder, down in zip(self.encoders, self.downs):
            x = encoder(x)
            skips.append(x)
            x = down(x)
        x = self.middle(x)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips)):
            x = decoder(up(x) + skip)
        return self.ending(x)[..., :height, :width] + image


# --- MIMO-UNet (Cho et al., "Rethinking Coarse-to-Fine Approach in Single Image Deblurring", ICCV 2021) -----------

class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(conv(c, c, 3), conv(c, c, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def res_blocks(c: int, count: int) -> nn.Sequential:
    return nn.Sequential(*[ResBlock(c) for _ in range(count)])


class ShallowConvModule(nn.Module):
    """SCM: features of a downscaled input image, concatenated with it."""

    def __init__(self, out: int):
        super().__init__()
        self.body = nn.Sequential(conv(3, out // 4, 3), conv(out // 4, out // 2, 1), conv(out // 2, out // 2, 3),
                                  conv(out // 2, out - 3, 1))
        self.fuse = conv(out, out, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([x, self.body(x)], dim=1))


class FeatureAttention(nn.Module):
    """FAM: x + conv(x * scm)."""

    def __init__(self, c: int):
        super().__init__()
        self.merge = conv(c, c, 3, relu=False)

    def forward(self, x: torch.Tensor, scm: torch.Tensor) -> torch.Tensor:
        return x + self.merge(x * scm)


class AsymmetricFusion(nn.Module):
    """AFF: the three encoder levels, resampled to one scale, concatenated and fused."""

    def __init__(self, in_channels: int, out: int):
        super().__init__()
        self.body = nn.Sequential(conv(in_channels, out, 1), conv(out, out, 3, relu=False))

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat(features, dim=1))


class MIMOUNet(nn.Module):
    def __init__(self, base: int = 32, blocks: int = 8):
        super().__init__()
        b = base
        self.encoders = nn.ModuleList([res_blocks(b, blocks), res_blocks(2 * b, blocks), res_blocks(4 * b, blocks)])
        self.extract = nn.ModuleList([conv(3, b, 3), conv(b, 2 * b, 3, 2), conv(2 * b, 4 * b, 3, 2),
                                      conv(4 * b, 2 * b, 4, 2, transpose=True), conv(2 * b, b, 4, 2, transpose=True),
                                      conv(b, 3, 3, relu=False)])
        self.decoders = nn.ModuleList([res_blocks(4 * b, blocks), res_blocks(2 * b, blocks), res_blocks(b, blocks)])
        self.reduce = nn.ModuleList([conv(4 * b, 2 * b, 1), conv(2 * b, b, 1)])
        self.outputs = nn.ModuleList([conv(4 * b, 3, 3, relu=False), conv(2 * b, 3, 3, relu=False)])
        self.fusions = nn.ModuleList([AsymmetricFusion(7 * b, b), AsymmetricFusion(7 * b, 2 * b)])
        self.fam1, self.scm1 = FeatureAttention(4 * b), ShallowConvModule(4 * b)
        self.fam2, self.scm2 = FeatureAttention(2 * b), ShallowConvModule(2 * b)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """The full-resolution output (the two coarser ones, which training supervises, are computed too)."""
        height, width = image.shape[-2:]
        x = F.pad(image, (0, -width % 4, 0, -height % 4))
        x2 = F.interpolate(x, scale_factor=0.5)
        x4 = F.interpolate(x2, scale_factor=0.5)
        z2, z4 = self.scm2(x2), self.scm1(x4)
        e1 = self.encoders[0](self.extract[0](x))
        e2 = self.encoders[1](self.fam2(self.extract[1](e1), z2))
        e3 = self.encoders[2](self.fam1(self.extract[2](e2), z4))
        f1 = self.fusions[0](e1, F.interpolate(e2, scale_factor=2), F.interpolate(e3, scale_factor=4))
        f2 = self.fusions[1](F.interpolate(e1, scale_factor=0.5), e2, F.interpolate(e3, scale_factor=2))
        d = self.decoders[0](e3)
        _ = self.outputs[0](d) + x4  # the 1/4 output
        d = self.decoders[1](self.reduce[0](torch.cat([self.extract[3](d), f2], dim=1)))
        _ = self.outputs[1](d) + x2  # the 1/2 output
        d = self.decoders[2](self.reduce[1](torch.cat([self.extract[4](d), f1], dim=1)))
        return (self.extract[5](d) + x)[..., :height, :width]


# --- DeblurGAN (Kupyn et al., CVPR 2018): the ResNet generator, 64 filters, 9 blocks ------------------------------

class DeblurGANResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c), nn.ReLU(True),
                                  nn.Dropout(0.5), nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), nn.InstanceNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DeblurGANGenerator(nn.Module):
    def __init__(self, filters: int = 64, blocks: int = 9):
        super().__init__()
        f = filters
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, f, 7), nn.InstanceNorm2d(f), nn.ReLU(True)]
        for scale in (1, 2):
            layers += [nn.Conv2d(f * scale, f * scale * 2, 3, 2, 1), nn.InstanceNorm2d(f * scale * 2), nn.ReLU(True)]
        layers += [DeblurGANResBlock(4 * f) for _ in range(blocks)]
        for scale in (4, 2):
            layers += [nn.ConvTranspose2d(f * scale, f * scale // 2, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(f * scale // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(f, 3, 7), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        x = F.pad(image, (0, -width % 4, 0, -height % 4), mode="reflect")
        return (self.body(x)[..., :height, :width] + image).clamp(-1, 1)


# --- DeblurGAN-v2 (Kupyn et al., ICCV 2019): FPN on a MobileNetV2 backbone ---------------------------------------

class FPNMobileNet(nn.Module):
    """MobileNetV2 (width 1.0) features at strides 2-32 (16, 24, 32, 64, 160 channels), 1x1 laterals to 128 (64 at
    stride 2), top-down sums, two 3x3 convs of 64 per stride-4..32 level as heads, upsampled to stride 4 and
    concatenated, then 3x3 convs to 64 and 32 channels with norm and ReLU, x2 upsampling between them and to full
    size, a 3x3 conv to RGB, tanh, plus the input."""

    def __init__(self, fpn: int = 128, filters: int = 64):
        super().__init__()
        from losses.torchvision_import import import_torchvision

        features = import_torchvision().models.mobilenet_v2(weights=None).features
        self.stages = nn.ModuleList([features[0:2], features[2:4], features[4:7], features[7:11], features[11:16]])
        self.laterals = nn.ModuleList([nn.Conv2d(c, fpn // 2 if i == 0 else fpn, 1, bias=False)
                                       for i, c in enumerate((16, 24, 32, 64, 160))])
        self.td = nn.ModuleList([nn.Sequential(nn.Conv2d(fpn, fpn, 3, padding=1), nn.InstanceNorm2d(fpn),
                                               nn.ReLU(True)) for _ in range(3)])
        self.heads = nn.ModuleList([nn.Sequential(nn.Conv2d(fpn, filters, 3, padding=1, bias=False), nn.ReLU(True),
                                                  nn.Conv2d(filters, filters, 3, padding=1, bias=False),
                                                  nn.ReLU(True)) for _ in range(4)])
        self.smooth = nn.Sequential(nn.Conv2d(4 * filters, filters, 3, padding=1), nn.InstanceNorm2d(filters),
                                    nn.ReLU(True))
        self.smooth2 = nn.Sequential(nn.Conv2d(filters, filters // 2, 3, padding=1), nn.InstanceNorm2d(filters // 2),
                                     nn.ReLU(True))
        self.final = nn.Conv2d(filters // 2, 3, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        padded = F.pad(image, (0, -width % 32, 0, -height % 32), mode="reflect")
        levels, x = [], padded
        for stage in self.stages:
            x = stage(x)
            levels.append(x)
        lateral = [layer(level) for layer, level in zip(self.laterals, levels)]
        map4 = lateral[4]
        map3 = self.td[0](lateral[3] + F.interpolate(map4, scale_factor=2, mode="nearest"))
        map2 = self.td[1](lateral[2] + F.interpolate(map3, scale_factor=2, mode="nearest"))
        map1 = self.td[2](lateral[1] + F.interpolate(map2, scale_factor=2, mode="nearest"))
        heads = [F.interpolate(head(level), scale_factor=2**i, mode="nearest")
                 for i, (head, level) in enumerate(zip(self.heads, (map1, map2, map3, map4)))]
        smoothed = F.interpolate(self.smooth(torch.cat(heads, dim=1)), scale_factor=2, mode="nearest")
        smoothed = F.interpolate(self.smooth2(smoothed + lateral[0]), scale_factor=2, mode="nearest")
        return (torch.tanh(self.final(smoothed)) + padded)[..., :height, :width].clamp(-1, 1)


# name -> (constructor, published parameter count or None). NAFNet-32 (GoPro): 17.11M in the NAFNet paper's model
# table; MIMO-UNet: 6.8M in its paper's Table 1. DeblurGAN's and DeblurGAN-v2's papers state FLOPs and run times
# but no parameter count for these generators, so theirs are not checked against a published figure.
PEERS: dict[str, tuple[Callable[[], nn.Module], float | None]] = {
    "DeblurGAN-v2 FPN-MobileNet": (FPNMobileNet, None),
    "NAFNet-width32": (NAFNet, 17.11e6),
    "MIMO-UNet": (MIMOUNet, 6.8e6),
    "DeblurGAN v1 generator": (DeblurGANGenerator, None),
}
