"""Physically motivated synthetic blur: convolution in linear light, optional over-exposure, shot and read noise."""

from __future__ import annotations

import torch
from kornia.color import linear_rgb_to_rgb, rgb_to_linear_rgb
from kornia.filters import filter2d

from .spatially_varying import blur_field

# Where read noise is added: "linear" on the sensor, before the clip (physical); "srgb" after the tone curve.
NOISE_SPACES = ("linear", "srgb")


def synthesize(
    windows: torch.Tensor,
    kernels: torch.Tensor,
    gain: torch.Tensor | float = 1.0,
    poisson_peak: torch.Tensor | float = 0.0,
    noise_sigma: torch.Tensor | float = 0.0,
    generator: torch.Generator | None = None,
    noise_space: str | torch.Tensor = "linear",
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of (blurred, sharp) pairs from sRGB windows of size crop + k - 1, on the windows' device.

    In linear light the scene is scaled by ``gain`` (> 1 over-exposes: highlights clip in the sharp target and
    their blur streaks stay saturated, as in a real long exposure), convolved 'valid', then photon shot noise
    with ``poisson_peak`` photons at white (0: none) and Gaussian read noise of standard deviation
    ``noise_sigma`` are drawn before the sensor clips to [0, 1], both in linear light as on a sensor
    (``noise_space="srgb"`` adds the read noise after the tone curve instead, in sRGB units: how motion-v1 and
    gaussian-v1 were built). Per-pair values are B-vectors; ``noise_space`` may be one too, of booleans (True: that
    pair's read noise is in sRGB). ``kernels`` may also be B x g x g x k x k kernel fields
    (``spatially_varying.shake_field``): the blur then varies across the image.
    """
    batch = windows.shape[0]
    if isinstance(noise_space, str):
        if noise_space not in NOISE_SPACES:
            raise ValueError(f"noise_space must be one of {', '.join(NOISE_SPACES)}, got {noise_space!r}")
        in_srgb = torch.full((batch,), noise_space == "srgb", dtype=torch.bool, device=windows.device)
    else:
        in_srgb = torch.as_tensor(noise_space, dtype=torch.bool, device=windows.device)
    in_srgb = in_srgb.reshape(-1, 1, 1, 1)

    def per_pair(value: torch.Tensor | float) -> torch.Tensor:
        value = torch.as_tensor(value, dtype=windows.dtype, device=windows.device)
        return value.reshape(-1, 1, 1, 1).expand(batch, 1, 1, 1)

    margin = kernels.shape[-1] // 2
    linear = rgb_to_linear_rgb(windows)
    gain = per_pair(gain)
    if bool((gain != 1).any()):
        linear = linear * gain
        sharp = linear_rgb_to_rgb(center_crop(linear, margin).clamp(0.0, 1.0))
    else:
        sharp = center_crop(windows, margin)  # exact: no round trip through linear light
    if kernels.dim() == 5:  # B x g x g x k x k: a kernel field, the blur varies across the image
        blurred = blur_field(linear, kernels)
    else:
        blurred = filter2d(linear, kernels, padding="valid", behaviour="conv").clamp_min(0.0)
    peak = per_pair(poisson_peak)
    if bool((peak > 0).any()):
        safe_peak = torch.where(peak > 0, peak, torch.ones_like(peak))
        noisy = torch.poisson(blurred * safe_peak, generator=generator) / safe_peak
        blurred = torch.where(peak > 0, noisy, blurred)
    sigma = per_pair(noise_sigma)
    # A space no pair uses draws nothing, so a single-space batch keeps the random stream it always had.
    blurred = _read_noise(blurred, torch.where(in_srgb, 0.0, sigma), generator)
    blurred = linear_rgb_to_rgb(blurred.clamp(0.0, 1.0))
    srgb_sigma = torch.where(in_srgb, sigma, 0.0)
    if bool((srgb_sigma > 0).any()):
        blurred = torch.where(in_srgb, _read_noise(blurred, srgb_sigma, generator).clamp(0.0, 1.0), blurred)
    return blurred, sharp


def _read_noise(images: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    if not bool((sigma > 0).any()):
        return images
    noise = torch.randn(images.shape, generator=generator, dtype=images.dtype, device=images.device)
    return images + sigma * noise


def center_crop(images: torch.Tensor, margin: int) -> torch.Tensor:
    """Remove ``margin`` pixels from every side (the sharp counterpart of a 'valid' blur)."""
    return images if margin == 0 else images[..., margin:-margin, margin:-margin]
