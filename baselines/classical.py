"""Non-blind and blind deconvolution with scikit-image: Wiener, Richardson-Lucy, and RL with a guessed kernel.

All of them work in linear light, where the benchmark's blur happened (so the oracle really inverts the true
forward model), per channel, on the image padded symmetrically by one kernel width: the FFT-based Wiener filter
assumes a periodic image and RL a zero border, and both ring at the edges of an unpadded crop.
"""

from __future__ import annotations

import numpy as np
from kornia.color import linear_rgb_to_rgb, rgb_to_linear_rgb
from skimage import restoration

from core.images import array_to_tensor, tensor_to_array
from datasets.kernels import gaussian_kernel


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    return tensor_to_array(rgb_to_linear_rgb(array_to_tensor(image)))


def linear_to_srgb(image: np.ndarray) -> np.ndarray:
    return tensor_to_array(linear_rgb_to_rgb(array_to_tensor(image).clamp(0.0, 1.0)))


def deconvolve(blurred: np.ndarray, kernel: np.ndarray, per_channel) -> np.ndarray:
    """Apply ``per_channel(channel, kernel)`` in linear light with symmetric padding; H x W x 3 in [0, 1]."""
    pad = kernel.shape[0]
    linear = np.pad(srgb_to_linear(blurred.astype(np.float32)), ((pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    kernel = kernel.astype(np.float64)
    restored = np.stack([per_channel(linear[..., c].astype(np.float64), kernel) for c in range(3)], axis=-1)
    return linear_to_srgb(restored[pad:-pad, pad:-pad].astype(np.float32))


def wiener(blurred: np.ndarray, kernel: np.ndarray, balance: float = 0.01) -> np.ndarray:
    """Wiener deconvolution with a fixed noise-to-signal ``balance`` (scikit-image's ``wiener``)."""
    return deconvolve(blurred, kernel, lambda c, k: restoration.wiener(c, k, balance, clip=False))


def richardson_lucy(blurred: np.ndarray, kernel: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Richardson-Lucy (the maximum-likelihood deconvolution under Poisson noise), ``iterations`` steps."""
    return deconvolve(blurred, kernel, lambda c, k: restoration.richardson_lucy(c, k, iterations, clip=False))


def blind_richardson_lucy(blurred: np.ndarray, sigma: float = 2.0, size: int = 21, iterations: int = 30) -> np.ndarray:
    """The seed's blind baseline: RL with a guessed kernel, a Gaussian of fixed ``sigma`` whatever the blur."""
    return richardson_lucy(blurred, gaussian_kernel(size, sigma).numpy(), iterations)


def per_node(method, blurred: np.ndarray, field: np.ndarray) -> np.ndarray:
    """A non-blind ``method(blurred, kernel)`` under spatially varying blur: restore the whole image with each
    lattice node's kernel of a ``g x g x k x k`` field and blend the results with the nodes' bilinear weights (the
    filter-flow model the blur was made with, ``datasets.spatially_varying``)."""
    from datasets.spatially_varying import blend_weights

    grid = field.shape[0]
    weights = blend_weights(grid, *blurred.shape[:2]).numpy()
    output = np.zeros_like(blurred, dtype=np.float64)
    for node, kernel in enumerate(field.reshape(grid * grid, *field.shape[-2:])):
        output += weights[node][..., None] * method(blurred, kernel)
    return output.astype(np.float32)
