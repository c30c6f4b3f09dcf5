"""The conditional 70x70 PatchGAN critic (pix2pix / DeblurGAN), without BatchNorm."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from core.registry import Registry

from .registry import register

# BatchNorm is excluded on purpose: it mixes the samples of a batch, so the gradient of one sample's score would
# depend on the others and the per-sample gradient penalty would no longer be per sample.
CRITIC_NORM_LAYERS = Registry("critic norm", {
    "instance": lambda channels: nn.InstanceNorm2d(channels, affine=True, track_running_stats=False),
    "layer": lambda channels: nn.GroupNorm(1, channels),  # LayerNorm over C x H x W, resolution-independent
    "none": lambda channels: nn.Identity(),
})
CRITIC_NORMS = tuple(CRITIC_NORM_LAYERS)


def _critic_norm(kind: str, channels: int) -> nn.Module:
    return CRITIC_NORM_LAYERS.lookup(kind)(channels)


@register("patchgan")
class PatchGAN(nn.Module):
    """Scores overlapping patches of ``cat(condition, image)``: a map of one score per receptive field.

    With ``n_layers=3`` every output sees a 70x70 patch: three stride-2 4x4 convs, then two stride-1 4x4 convs.
    Conditioning on the blurred input lets the critic judge whether the restoration fits its input, not only
    whether it looks sharp; ``in_channels`` is therefore 3 (condition) + 3 (image).
    """

    def __init__(
        self,
        in_channels: int = 6,
        base_channels: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        spectral_norm: bool = False,
    ):
        super().__init__()
        _critic_norm(norm, 1)  # validate the name before building anything
        wrap = apply_spectral_norm if spectral_norm else (lambda module: module)
        bias = norm == "none"
        layers: list[nn.Module] = [wrap(nn.Conv2d(in_channels, base_channels, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        channels = base_channels
        for index in range(1, n_layers + 1):
            out_channels = base_channels * min(2**index, 8)
            stride = 2 if index < n_layers else 1
            layers += [
                wrap(nn.Conv2d(channels, out_channels, 4, stride, 1, bias=bias)),
                _critic_norm(norm, out_channels),
                nn.LeakyReLU(0.2, True),
            ]
            channels = out_channels
        layers.append(wrap(nn.Conv2d(channels, 1, 4, 1, 1)))
        self.body = nn.Sequential(*layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([condition, image], dim=1))

    def features(self, condition: torch.Tensor, image: torch.Tensor) -> list[torch.Tensor]:
        """The activations after each LeakyReLU (for feature matching), without the final score conv."""
        outputs, x = [], torch.cat([condition, image], dim=1)
        for layer in self.body:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                outputs.append(x.clone())  # the next in-place activation must not change a kept feature
        return outputs


@register("double_scale")
class DoubleScaleCritic(nn.Module):
    """DeblurGAN-v2's double-scale critic: a local PatchGAN on the image as it is, and a global one on the image
    downscaled by ``global_downscale`` whose patch map is averaged to one score per image.

    The output is one row per sample, ``N x 1 x 1 x 2P``: the P local patch scores, then the global score repeated
    P times, so every objective's mean over the map weights the two scales equally (and a gradient penalty on the
    sample's mean score constrains both).
    """

    def __init__(self, in_channels: int = 6, base_channels: int = 64, n_layers: int = 3, global_n_layers: int = 4,
                 global_downscale: int = 4, norm: str = "instance", spectral_norm: bool = False):
        super().__init__()
        if global_downscale < 1:
            raise ValueError(f"global_downscale must be >= 1, got {global_downscale}")
        self.local = PatchGAN(in_channels, base_channels, n_layers, norm, spectral_norm)
        self.global_critic = PatchGAN(in_channels, base_channels, global_n_layers, norm, spectral_norm)
        self.global_downscale = global_downscale

    def _small(self, image: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(image, self.global_downscale) if self.global_downscale > 1 else image

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        local = self.local(condition, image).flatten(1)
        whole = self.global_critic(self._small(condition), self._small(image)).flatten(1).mean(1, keepdim=True)
        return torch.cat([local, whole.expand_as(local)], dim=1)[:, None, None, :]

    def features(self, condition: torch.Tensor, image: torch.Tensor) -> list[torch.Tensor]:
        return [*self.local.features(condition, image),
                *self.global_critic.features(self._small(condition), self._small(image))]
