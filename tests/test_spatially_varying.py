"""Spatially varying camera shake: the kernel field, the filter-flow blur, the benchmark built from it."""

import json

import numpy as np
import pytest
import torch
from kornia.filters import filter2d

from core.errors import DataError
from datasets.benchmark import Benchmark
from datasets.benchmark import main as build_benchmark
from datasets.config import DataConfig
from datasets.degradation import DegradationSpec
from datasets.spatially_varying import blend_weights, blur_field, node_positions, shake_field
from datasets.synthetic import Degradation


def test_blend_weights_are_a_partition_of_unity_peaking_at_their_nodes():
    weights = blend_weights(3, 21, 31)
    assert weights.shape == (9, 21, 31) and torch.allclose(weights.sum(0), torch.ones(21, 31))
    assert [weights[0, 0, 0].item(), weights[4, 10, 15].item(), weights[8, -1, -1].item()] == pytest.approx([1, 1, 1])
    assert torch.equal(blend_weights(1, 5, 7), torch.ones(1, 5, 7))


def test_a_field_of_one_kernel_blurs_exactly_as_that_kernel():
    rng = np.random.default_rng(0)
    kernel = shake_field(15, 1, 40, 40, rng, extent=(6, 10))[0, 0]
    image = torch.rand(1, 3, 54, 54, generator=torch.Generator().manual_seed(0))
    field = kernel.expand(1, 3, 3, 15, 15)
    expected = filter2d(image, kernel[None], padding="valid", behaviour="conv")
    assert torch.allclose(blur_field(image, field), expected, atol=1e-6)


def test_roll_makes_the_corners_blur_differently_from_the_centre():
    def field(roll):
        return shake_field(39, 3, 256, 256, np.random.default_rng(4), extent=(10, 12), max_roll_degrees=roll)

    still, rolling = field(0.0), field(3.0)
    assert all(torch.equal(still[0, 0], k) for k in still.reshape(9, 39, 39))  # no roll: the same walk everywhere
    corner_change = (rolling[0, 0] - rolling[1, 1]).abs().sum()
    neighbour_change = (rolling[1, 1] - rolling[1, 2]).abs().sum()
    assert corner_change > 0.05 and neighbour_change < corner_change  # smooth: the far corner differs most
    assert torch.allclose(rolling.sum((-1, -2)), torch.ones(3, 3))
    assert np.allclose(node_positions(3, 256, 256)[[0, 4, 8]], [(-127.5, -127.5), (0, 0), (127.5, 127.5)])


def test_degradation_draws_fields_with_their_probability_and_keeps_older_streams():
    window = torch.rand(3, 70, 70, generator=torch.Generator().manual_seed(1))
    plain = Degradation(15, {"trajectory": 1.0}, noise_sigma=0.01)
    never = Degradation(15, {"trajectory": 1.0}, noise_sigma=0.01, field_probability=0.0, field_grid=2)
    assert torch.equal(plain(window, np.random.default_rng(3))["blur"], never(window, np.random.default_rng(3))["blur"])
    always = Degradation(15, {"trajectory": 1.0}, blur_extent=(4, 10), field_probability=1.0, field_grid=2)
    pair = always(window, np.random.default_rng(3))
    assert pair["kind"] == "shake_field" and pair["kernel"].shape == (2, 2, 15, 15)
    assert pair["blur"].shape == pair["sharp"].shape == (3, 56, 56)
    with pytest.raises(DataError, match="turn data.blur_on_device off"):
        always(window, np.random.default_rng(3), deferred=True)


def test_a_spatially_varying_benchmark_records_its_fields(tmp_path, photo_folder):
    out = tmp_path / "sv"
    assert build_benchmark(["--out", str(out), "--photos", str(photo_folder), "--preset", "motion-sv1",
                            "--kernel-size", "15", "--blur-extent", "4", "10", "--tile", "32",
                            "--crops-per-photo", "1", "--min-texture", "0"]) == 0
    bench = Benchmark.load(out)
    meta = json.loads((out / "benchmark.json").read_text())
    assert meta["field_grid"] == 3 and meta["max_roll_degrees"] == 2.0
    assert {item["kernel"] for item in meta["images"]} == {"shake_field"}
    assert bench.kernel(bench.names[0]).shape == (3, 3, 15, 15)


@pytest.mark.parametrize("settings, message", [
    ({"field_probability": 1.5}, "data.degradation.field_probability must be in [0, 1]"),
    ({"field_grid": 0}, "data.degradation.field_grid must be in [1, 16]"),
    ({"field_probability": 0.5, "on_device": True},
     "data.degradation.field_probability needs data.blur_on_device off"),
])
def test_field_settings_that_cannot_work_are_named(settings, message):
    spec = DegradationSpec(**{key: value for key, value in settings.items() if key != "on_device"})
    problems = DataConfig(degradation=spec, blur_on_device=settings.get("on_device", False)).check()
    assert any(message in problem for problem in problems), problems


def test_patchwise_cnn_rl_stitches_every_patch_and_deblurs(tmp_path):
    from pathlib import Path

    from baselines.sigma_cnn import PatchCnnRL, load
    from core.images import array_to_tensor, tensor_to_array
    from datasets.blur import synthesize
    from datasets.kernels import gaussian_kernel
    from datasets.photos import embedded_photo

    # A 150 x 150 crop, Gaussian sigma 2 in linear light (as the benchmarks blur), 'valid'.
    blurred, sharp = (image[0] for image in synthesize(embedded_photo("astronaut")[None, :, 90:260, 140:310],
                                                        gaussian_kernel(21, 2.0)[None]))
    method = PatchCnnRL(load(Path(__file__).resolve().parents[1] / "weights" / "sigma_cnn.pt"), 21, 10, 64, 32)
    assert method.starts(150) == [0, 32, 64, 86]
    restored = method(tensor_to_array(blurred))
    assert restored.shape == (150, 150, 3) and np.isfinite(restored).all()
    assert len(method.last_sigmas) == 16 and all(s > 0 for s in method.last_sigmas)
    error = lambda image: float(((array_to_tensor(image) - sharp) ** 2).mean())  # noqa: E731
    assert error(restored) < error(tensor_to_array(blurred))
    with pytest.raises(ValueError, match="need 0 <= overlap < patch"):
        PatchCnnRL(method.model, overlap=64, patch=64)


@pytest.mark.subprocess
def test_evaluate_scores_a_spatially_varying_benchmark_with_per_node_oracles(tmp_path, photo_folder):
    from helpers import FAST_METRICS, run_cli

    out = tmp_path / "sv"
    assert build_benchmark(["--out", str(out), "--photos", str(photo_folder), "--preset", "motion-sv1",
                            "--kernel-size", "15", "--blur-extent", "4", "10", "--tile", "48",
                            "--crops-per-photo", "1", "--min-texture", "0"]) == 0
    result = run_cli("-m", "evaluate", "--benchmark", str(out), "--methods", "rl", "cnn-rl-patches",
                     "--rl-iterations", "5", *FAST_METRICS, "--out", str(tmp_path / "evals"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "| kind shake_field |" in result.stdout
    oracle = json.loads(next((tmp_path / "evals").glob("rl*/summary.json")).read_text())
    assert oracle["images_scored"] == 5 and oracle["metrics"]["psnr"] > oracle["blurred"]["psnr"]
