"""What the training pairs look like to the model: 8-bit inputs, sharp pairs, and validation under a benchmark's
degradation."""

import numpy as np
import pytest
import torch

from datasets.build import build_datasets
from datasets.config import DataConfig
from datasets.degradation import DegradationSpec
from datasets.kernels import KernelMix
from datasets.presets import PRESETS, preset_degradation
from datasets.synthetic import Degradation, synthesize_batch


def _is_8bit(image: torch.Tensor) -> bool:
    return torch.equal(image, (image * 255).round() / 255)


def test_quantize_rounds_blurred_inputs_to_8_bit_levels_and_draws_nothing():
    window = torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(0))
    plain = Degradation(9, {"trajectory": 1.0}, noise_sigma=0.01)(window, np.random.default_rng(3))
    rounded = Degradation(9, {"trajectory": 1.0}, noise_sigma=0.01, quantize=True)(window, np.random.default_rng(3))
    assert not _is_8bit(plain["blur"]) and _is_8bit(rounded["blur"])
    # Same draws: rounding only moves each value to its nearest level, half a level at most.
    assert torch.equal(plain["kernel"], rounded["kernel"])
    assert (plain["blur"] - rounded["blur"]).abs().max() <= 0.5 / 255 + 1e-6


def test_device_side_blur_rounds_too():
    windows = torch.rand(2, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    kernels = torch.stack([KernelMix(9, {"trajectory": 1.0})(np.random.default_rng(s))[0] for s in range(2)])
    batch = {"window": windows, "kernel": kernels, "levels": torch.tensor([[1.0, 0.0, 0.005, 0.0, 0.0]] * 2)}
    blurred, sharp = synthesize_batch(batch, torch.device("cpu"), quantize=True)
    assert blurred.shape == sharp.shape == (2, 3, 20, 20) and _is_8bit(blurred)


def test_sharp_pairs_differ_from_their_target_only_by_noise():
    window = torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(2))
    pair = Degradation(21, {"none": 1.0}, noise_sigma=0.0)(window, np.random.default_rng(0))
    assert pair["kind"] == "none" and torch.allclose(pair["blur"], pair["sharp"], atol=1e-5)
    noisy = Degradation(21, {"none": 1.0}, noise_sigma=0.02, noise_space="srgb")(window, np.random.default_rng(0))
    residual = noisy["blur"] - noisy["sharp"]
    assert 0 < residual.std() < 0.02 and abs(residual.mean()) < 2e-3


def test_validation_can_follow_a_benchmark_degradation_on_the_held_out_photos():
    training_mix = DataConfig(source="embedded", degradation=DegradationSpec(kernel_size=15, kernels={"gaussian": 1.0}),
                              val_crops_per_photo=2, val_crop_size=48)
    benchmark_like = DataConfig(**{**training_mix.__dict__, "val_degradation": "motion-v1"})
    plain, tracked = build_datasets(training_mix).val, build_datasets(benchmark_like).val
    assert {pair["kind"] for pair in plain} == {"gaussian"}
    assert {pair["kind"] for pair in tracked} == {"trajectory_v1"}  # motion-v1's kernels, 21 px
    assert all(pair["kernel"].shape == (PRESETS["motion-v1"].kernel_size,) * 2 for pair in tracked)
    assert all(_is_8bit(pair["blur"]) for pair in tracked)  # as the benchmark's PNG files are
    # The same held-out photos either way: the windows come from the validation photos only.
    assert len(plain) == len(tracked)


def test_preset_degradation_is_the_published_one():
    degradation = preset_degradation("motion-v2")
    assert degradation.kernel_size == 39 and degradation.blur_extent == [15.0, 35.0]
    assert degradation.noise_space == "linear" and degradation.quantize


@pytest.mark.parametrize("settings, message", [
    ({"val_degradation": "motion-v9"}, "data.val_degradation must be null or one of gaussian-v1, motion-sv1, "
                                       "motion-v1, motion-v2"),
    ({"val_degradation": "motion-v1", "source": "gopro", "root": "x"}, "data.val_degradation needs a synthetic source"),
])
def test_a_validation_degradation_that_cannot_work_is_named(settings, message):
    problems = DataConfig(**settings).check()
    assert any(message in problem for problem in problems), problems
