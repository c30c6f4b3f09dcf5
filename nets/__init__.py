"""Architectures: pure ``nn.Module``s, built by name through the registry."""

from .registry import build_network, network_names, network_options, register
from .light_unet import LightUNet
from .patchgan import PatchGAN
from .unet import UNet

register("light_unet")(LightUNet)
register("unet")(UNet)
register("patchgan")(PatchGAN)

__all__ = ["LightUNet", "PatchGAN", "UNet", "build_network", "network_names", "network_options", "register"]
