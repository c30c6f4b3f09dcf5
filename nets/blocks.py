"""Building blocks shared by the generators: normalisation, depthwise-separable convs, resampling."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.registry import Registry

# Normalisation layers and x2 upsamplers by name (make_norm, make_upsampler): each takes the channel counts.
NORM_LAYERS = Registry("norm", {
    "instance": lambda channels: InstanceNorm2d(channels, affine=True, track_running_stats=False),
    "batch": lambda channels: nn.BatchNorm2d(channels),
    # gcd keeps the group count a divisor of every width of the 48-based ladder (48 -> 16, 96+ -> 32).
    "group": lambda channels: nn.GroupNorm(math.gcd(channels, 32), channels),
    "channel": lambda channels: ChannelNorm(channels),
    "none": lambda channels: nn.Identity(),
})
UPSAMPLING = Registry("upsample", {
    "pixelshuffle": lambda c_in, c_out: nn.Sequential(nn.Conv2d(c_in, c_out * 4, 1), nn.PixelShuffle(2)),
    "bilinear": lambda c_in, c_out: nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                                  nn.Conv2d(c_in, c_out, 1)),
    "transpose": lambda c_in, c_out: nn.ConvTranspose2d(c_in, c_out, 2, stride=2),
})
NORMS = tuple(NORM_LAYERS)
UPSAMPLERS = tuple(UPSAMPLING)


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of each pixel (NAFNet's LayerNorm2d), with a per-channel affine.

    It uses no statistics across pixels, so a network built with it gives the same result on a tile as on the
    whole image (away from the tile's edges): the tiling-exact alternative to InstanceNorm.
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normalised = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return normalised.permute(0, 3, 1, 2)


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` that keeps channels_last inputs channels_last.

    ``F.instance_norm`` first makes its input NCHW-contiguous (a full copy), which on CPU cost more than the conv
    before it. One image's instance norm is a training-mode batch norm of a batch of one, and batch norm's kernels
    take channels_last as it is: same statistics (biased variance), same result up to summation order.
    """

    # Per-channel (mean, biased variance) to normalise with instead of the input's own: tiled inference sets them
    # to the whole image's (restore/image_norm.py), so that every tile is normalised as the whole image would be.
    given_statistics: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.given_statistics is not None:
            mean, var = self.given_statistics
            return F.batch_norm(x, mean, var, self.weight, self.bias, False, 0.0, self.eps)
        if x.dim() != 4 or x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
            return super().forward(x)
        images = [
            F.batch_norm(image, None, None, self.weight, self.bias, True, 0.0, self.eps) for image in x.split(1)
        ]
        return images[0] if len(images) == 1 else torch.cat(images)


def cat_channels(tensors: list[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(tensors, dim=1)``; channels_last tensors are joined as NHWC along their last, contiguous axis,
    which on CPU is several times faster than the generic strided path ``cat`` takes for them."""
    if all(t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)
           for t in tensors):
        return torch.cat([t.permute(0, 2, 3, 1) for t in tensors], dim=3).permute(0, 3, 1, 2)
    return torch.cat(tensors, dim=1)


def make_norm(kind: str, channels: int) -> nn.Module:
    """Normalisation layer by name.

    InstanceNorm keeps no running statistics (``track_running_stats=False``), so training and inference normalise
    the same way: a stated choice, because DeblurGAN left its test-time behaviour undefined. Its statistics span
    the whole image, though, so a tile sees slightly different ones; ``channel`` avoids that (see ChannelNorm).
    """
    return NORM_LAYERS.lookup(kind)(channels)


class DSConv(nn.Sequential):
    """Depthwise 3x3 conv, pointwise 1x1 conv, norm, ReLU (``relu=False``: the norm's output, signed)."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "instance", relu: bool = True):
        # A bias before a normalisation layer is cancelled by its mean subtraction: only keep it without norm.
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=norm == "none"),
            make_norm(norm, out_channels),
            *([nn.ReLU(inplace=True)] if relu else []),
        )


class LightResBlock(nn.Module):
    """Two DSConvs with an identity skip: ``x + F(x)``.

    ``branch_relu=True`` ends ``F`` in a ReLU, so the block can only add to its input (``F >= 0``); He et al. 2016
    ("Identity mappings in deep residual networks") found ReLU before the addition clearly worse. ``False`` ends
    the branch at its normalisation layer (same parameters, so weights load either way).
    """

    def __init__(self, channels: int, norm: str = "instance", branch_relu: bool = True):
        super().__init__()
        self.body = nn.Sequential(DSConv(channels, channels, norm), DSConv(channels, channels, norm, branch_relu))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def make_upsampler(kind: str, in_channels: int, out_channels: int) -> nn.Module:
    """x2 upsampling that also maps ``in_channels`` to ``out_channels``.

    All three project with a kernel of one input pixel, so they differ only in how they create the new pixels:
    sub-pixel shuffling (no checkerboard by construction), interpolation, or a stride-2 transposed conv whose
    2x2 kernel does not overlap (the overlapping 3x3/4x4 kind is what left DeblurGAN's checkerboards).
    """
    return UPSAMPLING.lookup(kind)(in_channels, out_channels)


def pad_to_multiple(x: torch.Tensor, multiple: int, minimum: int = 0) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the bottom and right so height and width are multiples of ``multiple`` and at least ``minimum``.

    Returns the padded tensor and the original (height, width) to crop back to. Reflection needs the pad to be
    smaller than the side, so tiny images are padded in several rounds.
    """
    height, width = x.shape[-2:]
    target_h = max(-(-height // multiple) * multiple, minimum)
    target_w = max(-(-width // multiple) * multiple, minimum)
    while x.shape[-2] < target_h or x.shape[-1] < target_w:
        pad_h = min(target_h - x.shape[-2], x.shape[-2] - 1)
        pad_w = min(target_w - x.shape[-1], x.shape[-1] - 1)
        mode = "reflect" if min(x.shape[-2:]) > 1 else "replicate"
        if mode == "replicate":
            pad_h, pad_w = target_h - x.shape[-2], target_w - x.shape[-1]
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    return x, (height, width)
