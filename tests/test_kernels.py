import numpy as np
import pytest
import torch
from kornia.color import rgb_to_linear_rgb

from datasets.blur import synthesize
from datasets.kernels import (
    KERNEL_KINDS,
    KernelMix,
    disk_kernel,
    gaussian_kernel,
    linear_kernel,
    shake_trajectory,
    trajectory_kernels,
)

COORDINATES = torch.arange(21.0)


def centre_of_mass(kernel: torch.Tensor) -> tuple[float, float]:
    return (kernel.sum(0) * COORDINATES).sum().item(), (kernel.sum(1) * COORDINATES).sum().item()


@pytest.mark.parametrize("kind", KERNEL_KINDS)
def test_every_kind_sums_to_one_is_centred_and_deterministic_per_seed(kind):
    mix = KernelMix(21, {kind: 1.0})
    rng = np.random.default_rng(0)
    for _ in range(30):
        kernel, drawn = mix(rng)
        assert drawn == kind and kernel.shape == (21, 21)
        assert abs(kernel.sum().item() - 1) < 1e-5 and (kernel >= 0).all()
        x, y = centre_of_mass(kernel)
        assert abs(x - 10) < 1e-3 and abs(y - 10) < 1e-3  # no shift between blurred input and sharp target
    first, _ = mix(np.random.default_rng(5))
    again, _ = mix(np.random.default_rng(5))
    other, _ = mix(np.random.default_rng(6))
    if kind == "none":  # the one kind with nothing to draw: always the delta kernel
        assert torch.equal(first, other) and first[10, 10] == 1
        return
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_a_mix_draws_kinds_in_proportion_to_their_weights():
    mix = KernelMix(15, {"trajectory": 3.0, "gaussian": 1.0})
    rng = np.random.default_rng(1)
    kinds = [mix(rng)[1] for _ in range(400)]
    assert 0.65 < kinds.count("trajectory") / 400 < 0.85 and set(kinds) == {"trajectory", "gaussian"}
    with pytest.raises(ValueError, match="unknown kernel kind 'box'"):
        KernelMix(15, {"box": 1.0})


def test_shake_trajectory_has_the_requested_length_and_longer_exposures_blur_more():
    path = shake_trajectory(np.random.default_rng(2), length=30.0)
    assert abs(np.linalg.norm(np.diff(path, axis=0), axis=1).sum() - 30.0) < 1e-6
    kernels = trajectory_kernels(path, 41, fractions=(0.1, 0.5, 1.0))
    r = torch.arange(41.0) - 20
    spread = [((k.sum(0) * r**2).sum() + (k.sum(1) * r**2).sum()).item() for k in kernels]  # about the centroid
    assert spread[0] < spread[1] < spread[2]


def test_parametric_kernels_have_their_stated_geometry():
    # Gaussian: the variance of each marginal is sigma^2 (truncation negligible at sigma = size / 8).
    kernel = gaussian_kernel(41, 2.5)
    r = torch.arange(41.0) - 20
    assert abs((kernel.sum(0) * r**2).sum().item() - 2.5**2) < 1e-3
    assert torch.equal(gaussian_kernel(5, 0.0)[2, 2], torch.tensor(1.0))
    # Linear: a horizontal line 9 pixels long covers one row (two with bilinear splatting) and ~10 columns.
    line = linear_kernel(21, 9.0, 0.0)
    assert (line.sum(1) > 1e-6).sum() <= 2 and 9 <= (line.sum(0) > 1e-6).sum() <= 11
    # Defocus: a disk of radius 4 has area pi r^2 (interior pixels weigh 1 / area) and is symmetric.
    disk = disk_kernel(21, 4.0)
    assert abs(1 / disk.max().item() - np.pi * 16) < 1.0
    assert torch.allclose(disk, disk.T) and torch.allclose(disk, disk.flip(0))


def test_over_exposure_clips_highlights_in_both_images():
    window = torch.full((1, 3, 13, 13), 0.9)
    kernel = gaussian_kernel(5, 1.0)[None]
    blurred, sharp = synthesize(window, kernel, gain=2.0)
    assert torch.allclose(sharp, torch.ones_like(sharp)) and torch.allclose(blurred, torch.ones_like(blurred))
    blurred, sharp = synthesize(window, kernel)  # gain 1: the sharp target is the untouched centre crop
    assert torch.equal(sharp, window[..., 2:-2, 2:-2])


def test_noise_is_seeded_and_shot_noise_grows_with_brightness():
    window = torch.cat([torch.full((1, 3, 40, 40), 0.05), torch.full((1, 3, 40, 40), 0.8)])
    kernel = torch.stack([gaussian_kernel(3, 0.5)] * 2)
    first, _ = synthesize(window, kernel, poisson_peak=200.0, generator=torch.Generator().manual_seed(0))
    again, _ = synthesize(window, kernel, poisson_peak=200.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(first, again)
    clean = synthesize(window, kernel)[0]
    # Shot noise variance is proportional to intensity in linear light.
    dark_noise = (first[0] - clean[0]).std().item()
    assert dark_noise > 0 and (first[1] - clean[1]).std().item() > 0
    read, _ = synthesize(window, kernel, noise_sigma=0.02, generator=torch.Generator().manual_seed(1),
                         noise_space="srgb")
    assert abs((read[1] - clean[1]).std().item() - 0.02) < 0.004
    # On the sensor (the default), read noise has its stated std in linear light, before the tone curve.
    sensor, _ = synthesize(window, kernel, noise_sigma=0.02, generator=torch.Generator().manual_seed(1))
    linear_error = rgb_to_linear_rgb(sensor[1]) - rgb_to_linear_rgb(clean[1])
    assert abs(linear_error.std().item() - 0.02) < 0.004
    # ... so in sRGB it is larger in the shadows than in the highlights (the tone curve is steep near black).
    assert (sensor[0] - clean[0]).std() > 1.5 * (sensor[1] - clean[1]).std()
