"""Architectures: pure ``nn.Module``s, built by name through the registry."""

# Importing each architecture's file registers it (``@register`` beside its class).
from .light_unet import LightUNet
from .patchgan import DoubleScaleCritic, PatchGAN
from .registry import build_network, network_names, network_options, register
from .unet import UNet

__all__ = ["DoubleScaleCritic", "LightUNet", "PatchGAN", "UNet", "build_network", "network_names", "network_options",
           "register"]
