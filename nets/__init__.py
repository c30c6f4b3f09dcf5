"""Architectures: pure ``nn.Module``s, built by name through the registry."""

from .registry import build_network, network_names, network_options, register
from .light_unet import LightUNet
from .patchgan import DoubleScaleCritic, PatchGAN
from .unet import UNet

register("light_unet")(LightUNet)
register("unet")(UNet)
register("patchgan")(PatchGAN)
register("double_scale")(DoubleScaleCritic)

__all__ = ["DoubleScaleCritic", "LightUNet", "PatchGAN", "UNet", "build_network", "network_names", "network_options",
           "register"]
