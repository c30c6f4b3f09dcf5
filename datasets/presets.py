"""The published benchmarks' degradations, by preset name: what ``python -m datasets.benchmark --preset`` builds
and what ``data.val_degradation`` validates under. Kept apart from the benchmark builder so that the training data
path never imports it (nor the photo-set builder it uses)."""

from __future__ import annotations

from core.errors import DataError

from .synthetic import Degradation

# The published benchmarks, frozen: a preset rebuilds each one's images bit for bit. motion-v1 and gaussian-v1
# predate the Boracchi-Foi walk at its own scale and linear-light read noise, so they name the kinds and noise
# space they were built with ("trajectory_v1", "srgb"); motion-v2 uses today's camera shake at 15-35 px.
LEGACY_KIND_NAMES = {"trajectory_v1": "trajectory"}
PRESETS = {
    "motion-v1": {"kernels": ["trajectory_v1=1"], "kernel_size": 21, "noise_sigma": 0.01, "noise_space": "srgb"},
    "gaussian-v1": {"kernels": ["gaussian=1"], "kernel_size": 21, "noise_sigma": 0.01, "noise_space": "srgb"},
    "motion-v2": {"kernels": ["trajectory=0.7", "linear=0.15", "smooth=0.15"], "kernel_size": 39,
                  "blur_extent": [15.0, 35.0], "noise_sigma": 0.003, "noise_space": "linear"},
    # Spatially varying shake: a 10-25 px walk plus up to 2 degrees of camera roll, on a 3 x 3 kernel lattice.
    "motion-sv1": {"kernels": ["trajectory=1"], "kernel_size": 39, "blur_extent": [10.0, 25.0], "noise_sigma": 0.003,
                   "noise_space": "linear", "field_probability": 1.0, "field_grid": 3, "max_roll_degrees": 2.0},
}


def preset_degradation(name: str) -> Degradation:
    """A published benchmark's degradation, with inputs rounded to 8 bits as its PNG files are."""
    preset = PRESETS[name]
    return Degradation(preset["kernel_size"], kernel_mix(preset["kernels"]), noise_sigma=preset["noise_sigma"],
                       blur_extent=tuple(preset["blur_extent"]) if preset.get("blur_extent") else None,
                       noise_space=preset["noise_space"], quantize=True, **field_settings(preset))


def field_settings(values: dict) -> dict:
    """The spatially varying settings of a preset or parsed arguments (absent: uniform blur, as older presets)."""
    return {key: values[key] for key in ("field_probability", "field_grid", "max_roll_degrees") if key in values}


def kernel_mix(items: list[str]) -> dict[str, float]:
    """``["trajectory=0.7", "linear"]`` -> {kind: weight} (a bare kind weighs 1), as --kernels and presets write it."""
    mix = {}
    for item in items:
        kind, sep, weight = item.partition("=")
        try:
            mix[kind] = float(weight) if sep else 1.0
        except ValueError:
            raise DataError(f"--kernels {item!r}: the weight must be a number (kind=weight)") from None
    return mix
