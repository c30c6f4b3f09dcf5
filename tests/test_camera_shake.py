"""Camera shake at Boracchi-Foi's own scale, drawn blur extents, sensor read noise and JPEG."""

import hashlib
import json

import numpy as np
import pytest
import torch

from datasets.benchmark import main as build_benchmark
from datasets.config import DataConfig
from datasets.degradation import DegradationSpec
from datasets.kernels import (
    BF_PATH_LENGTH,
    BF_STEPS,
    KernelMix,
    kernel_extent,
    random_trajectory_kernel,
    shake_trajectory,
)
from datasets.synthetic import Degradation, jpeg_roundtrip
from helpers import FAST_METRICS, run_cli


def _end_to_end_over_length(path: np.ndarray) -> float:
    return float(np.linalg.norm(path[-1] - path[0]) / np.linalg.norm(np.diff(path, axis=0), axis=1).sum())


def test_shake_walks_at_their_own_scale_are_as_tangled_as_boracchi_foi():
    """Boracchi and Foi's walks (60 px, 2000 samples) end close to where they started: the median ratio of the
    end-to-end distance to the path length is about 0.029. The same walk made at length 1 keeps a centripetal
    pull 60x too weak and wanders off almost straight (about 0.2)."""
    rng = np.random.default_rng(0)
    at_scale = np.median([_end_to_end_over_length(shake_trajectory(rng, BF_PATH_LENGTH, BF_STEPS)) for _ in range(150)])
    unit = np.median([_end_to_end_over_length(shake_trajectory(rng, 1.0)) for _ in range(150)])
    assert 0.015 < at_scale < 0.06, at_scale
    assert unit > 3 * at_scale


def test_shake_kernels_take_the_drawn_extent_up_to_35_px():
    rng = np.random.default_rng(1)
    extents = [kernel_extent(random_trajectory_kernel(39, rng, (15.0, 35.0))) for _ in range(40)]
    assert min(extents) >= 14 and max(extents) <= 36  # the splat adds at most a pixel
    assert max(extents) >= 30  # the range is used, not only its low end
    mix = KernelMix(39, {"linear": 1.0, "smooth": 1.0}, extent=(3.0, 35.0))
    assert max(kernel_extent(mix(rng)[0]) for _ in range(40)) >= 25


def test_the_motion_v1_walk_still_makes_the_kernels_motion_v1_was_built_with():
    """Pinned from the kernels the published motion-v1 benchmark was built with (sha256 of 20 draws)."""
    mix = KernelMix(21, {"trajectory_v1": 1.0, "gaussian": 0.5})
    rng = np.random.default_rng(7)
    digest = hashlib.sha256()
    for _ in range(20):
        digest.update(mix(rng)[0].numpy().tobytes())
    assert digest.hexdigest() == "faae84a69827c9fd1b70b3b88e6564d357b06967415175af353430343bafe74f"


def test_jpeg_roundtrip_is_a_real_lossy_8_bit_encode():
    rng = np.random.default_rng(2)
    image = torch.from_numpy(rng.random((3, 64, 64), dtype=np.float32))
    low, high = jpeg_roundtrip(image, 30), jpeg_roundtrip(image, 95)
    assert low.shape == image.shape and torch.equal(low, (low * 255).round() / 255)
    assert (low - image).abs().mean() > (high - image).abs().mean() > 0


def test_degradation_draws_jpeg_only_when_asked_and_keeps_older_streams():
    window = torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(0))
    plain = Degradation(9, {"trajectory": 1.0}, noise_sigma=0.01)
    with_jpeg = Degradation(9, {"trajectory": 1.0}, noise_sigma=0.01, jpeg_quality=(50, 50), jpeg_probability=1.0)
    a = plain(window, np.random.default_rng(3))
    b = with_jpeg(window, np.random.default_rng(3))
    assert torch.equal(a["kernel"], b["kernel"]) and not torch.equal(a["blur"], b["blur"])
    assert torch.equal(b["blur"], (b["blur"] * 255).round() / 255)


def test_log_extent_law_draws_small_shake_as_often_as_large():
    """Log-uniform in [1, 35] puts about 65% of drawn extents under 10 px (ln 10 / ln 35) where uniform puts 26%;
    trajectory_v1 walks follow the drawn extent too instead of filling the kernel."""
    def share_under_10(kind: str, law: str) -> float:
        mix = KernelMix(39, {kind: 1.0}, extent=(1.0, 35.0), extent_law=law)
        rng = np.random.default_rng(4)
        return float(np.mean([kernel_extent(mix(rng)[0]) < 10 for _ in range(120)]))

    for kind in ("trajectory", "linear", "smooth", "trajectory_v1"):
        log, uniform = share_under_10(kind, "log"), share_under_10(kind, "uniform")
        assert log > 0.4 and log > uniform + 0.25, (kind, log, uniform)
    with pytest.raises(ValueError, match="needs an extent range"):
        KernelMix(39, {"trajectory": 1.0}, extent_law="log")


def test_mixed_noise_space_draws_linear_or_srgb_per_pair():
    window = torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(0))
    mixed = Degradation(9, {"trajectory": 1.0}, noise_sigma=0.01, noise_space="mixed")
    spaces = [mixed(window, np.random.default_rng(seed))["noise_space"] for seed in range(60)]
    assert 15 < spaces.count("linear") < 45 and spaces.count("linear") + spaces.count("srgb") == 60
    plain = Degradation(9, {"trajectory": 1.0}, noise_sigma=0.01)
    assert {plain(window, np.random.default_rng(seed))["noise_space"] for seed in range(5)} == {"linear"}


@pytest.mark.parametrize("settings, message", [
    ({"blur_extent_law": "cubic", "blur_extent": [1, 9]},
     "data.degradation.blur_extent_law must be one of uniform, log"),
    ({"blur_extent_law": "log"}, "data.degradation.blur_extent_law=log needs data.degradation.blur_extent"),
])
def test_extent_law_and_mixed_noise_settings_that_cannot_work_are_named(settings, message):
    problems = DataConfig(degradation=DegradationSpec(kernel_size=21, **settings)).check()
    assert any(message in problem for problem in problems), problems


@pytest.mark.parametrize("key, value, message", [
    ("blur_extent", [5, 40], "data.degradation.blur_extent must be [min, max]"),
    ("blur_extent", [9, 3], "data.degradation.blur_extent must be [min, max]"),
    ("noise_space", "gamma", "data.degradation.noise_space must be one of"),
    ("jpeg_quality", [90, 120], "data.degradation.jpeg_quality must be [min, max]"),
    ("jpeg_probability", 1.5, "data.degradation.jpeg_probability must be in [0, 1]"),
])
def test_out_of_range_degradation_settings_are_named(key, value, message):
    problems = DataConfig(degradation=DegradationSpec(kernel_size=21, **{key: value})).check()
    assert any(message in problem for problem in problems), problems


def test_benchmark_presets_record_extents_and_the_motion_v1_fingerprint_names(tmp_path, photo_folder):
    out = tmp_path / "bench"
    assert build_benchmark(["--out", str(out), "--photos", str(photo_folder), "--preset", "motion-v2",
                            "--tile", "16", "--crops-per-photo", "1", "--min-texture", "0"]) == 0
    meta = json.loads((out / "benchmark.json").read_text())
    assert meta["kernel_size"] == 39 and meta["blur_extent"] == [15.0, 35.0] and meta["noise_space"] == "linear"
    assert all(0 < item["extent"] <= 36 for item in meta["images"])
    v1 = tmp_path / "v1"
    assert build_benchmark(["--out", str(v1), "--photos", str(photo_folder), "--preset", "motion-v1",
                            "--tile", "32", "--crops-per-photo", "1", "--min-texture", "0"]) == 0
    meta = json.loads((v1 / "benchmark.json").read_text())
    assert meta["kernels"] == {"trajectory_v1": 1.0} and meta["noise_space"] == "srgb"
    legacy = [{**{k: v for k, v in item.items() if k not in ("extent", "kernel_sha256")}, "kernel": "trajectory"}
              for item in meta["images"]]
    assert meta["fingerprint"] == hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.subprocess
def test_evaluate_breaks_benchmark_scores_down_by_kernel_kind_and_extent(tmp_path, photo_folder):
    bench = tmp_path / "bench"
    assert build_benchmark(["--out", str(bench), "--photos", str(photo_folder), "--kernels", "trajectory=1",
                            "linear=1", "--kernel-size", "21", "--blur-extent", "3", "18", "--tile", "32",
                            "--crops-per-photo", "2", "--min-texture", "0"]) == 0
    result = run_cli("-m", "evaluate", "--benchmark", str(bench), "--methods", "wiener", "--no-lpips", *FAST_METRICS,
                     "--out", str(tmp_path / "eval"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = next((tmp_path / "eval").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    groups = {g["group"]: g for g in summary["breakdown"]}
    kinds = [g for name, g in groups.items() if name.startswith("kind ")]
    extents = [g for name, g in groups.items() if name.startswith("extent ")]
    images = summary["images_scored"]
    assert sum(g["images"] for g in kinds) == images and sum(g["images"] for g in extents) == images
    assert all(g["blurred_psnr"] is not None for g in kinds)
    assert (run / "breakdown.png").stat().st_size > 0 and "| kind " in (run / "breakdown.md").read_text()
    assert "| kind " in result.stdout
    header = (run / "per_image.csv").read_text().splitlines()[0].split(",")
    assert header[-2:] == ["kernel", "extent"]
