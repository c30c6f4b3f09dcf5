"""Architectures: pure ``nn.Module``s, built by name through the registry."""

from .registry import build_network, network_names, network_options, register
from .light_unet import LightUNet
from .unet import UNet

register("light_unet")(LightUNet)
register("unet")(UNet)

__all__ = ["LightUNet", "UNet", "build_network", "network_names", "network_options", "register"]
