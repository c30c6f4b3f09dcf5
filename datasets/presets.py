"""The published benchmarks' degradations, by preset name: what ``python -m datasets.benchmark --preset`` builds
and what ``data.val_degradation`` validates under. Kept apart from the benchmark builder so that the training data
path never imports it (nor the photo-set builder it uses)."""

from __future__ import annotations

from .degradation import DegradationSpec
from .synthetic import Degradation

# The published benchmarks, frozen: a preset rebuilds each one's images bit for bit. motion-v1 and gaussian-v1
# predate the Boracchi-Foi walk at its own scale and linear-light read noise, so they name the kinds and noise
# space they were built with ("trajectory_v1", "srgb"); motion-v2 uses today's camera shake at 15-35 px. Inputs
# are rounded to 8 bits, as the benchmarks' PNG files are. Every other setting is DegradationSpec's default (off).
LEGACY_KIND_NAMES = {"trajectory_v1": "trajectory"}
PRESETS = {
    "motion-v1": DegradationSpec(kernel_size=21, kernels={"trajectory_v1": 1.0}, noise_sigma=0.01,
                                 noise_space="srgb", quantize=True),
    "gaussian-v1": DegradationSpec(kernel_size=21, kernels={"gaussian": 1.0}, noise_sigma=0.01, noise_space="srgb",
                                   quantize=True),
    "motion-v2": DegradationSpec(kernel_size=39, kernels={"trajectory": 0.7, "linear": 0.15, "smooth": 0.15},
                                 blur_extent=[15.0, 35.0], noise_sigma=0.003, noise_space="linear", quantize=True),
    # Spatially varying shake: a 10-25 px walk plus up to 2 degrees of camera roll, on a 3 x 3 kernel lattice.
    "motion-sv1": DegradationSpec(kernel_size=39, kernels={"trajectory": 1.0}, blur_extent=[10.0, 25.0],
                                  noise_sigma=0.003, noise_space="linear", quantize=True, field_probability=1.0,
                                  field_grid=3, max_roll_degrees=2.0),
}
# A benchmark built without --preset starts from this (its flags override it): 21 px Boracchi-Foi shake with read
# noise on the sensor.
CUSTOM_BASE = DegradationSpec(kernel_size=21, kernels={"trajectory": 1.0}, noise_sigma=0.01, noise_space="linear",
                              quantize=True)


def preset_degradation(name: str) -> Degradation:
    """A published benchmark's degradation."""
    return Degradation.of(PRESETS[name])
