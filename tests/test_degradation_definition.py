"""One definition of a degradation: the config section, the presets and the benchmark's flags are DegradationSpec,
and configs and checkpoints written before data.degradation existed keep loading."""

import json

import pytest
import yaml

from core.checkpoint import load_checkpoint, save_checkpoint
from core.errors import DataError
from datasets.benchmark import main as build_benchmark
from datasets.degradation import DEGRADATION_KEYS, DegradationSpec, flatten_degradation, nest_degradation
from datasets.presets import PRESETS, preset_degradation
from datasets.synthetic import Degradation
from gan.config import config_from_dict, load_config, save_config
from gan.errors import ConfigError, ExperimentError
from gan.long_run import recipe_hash
from gan.resume import plan_resume
from helpers import ROOT, TINY, one_error_line, run_cli

FLAT_DATA = {"source": "embedded", "crop_size": 48, "kernel_size": 15, "kernels": {"trajectory": 1.0},
             "blur_extent": [2, 12], "noise_sigma": 0.01, "noise_space": "mixed", "jpeg_quality": [70, 90]}


def test_an_older_flat_config_loads_as_the_nested_one_with_the_same_recipe_hash(tmp_path):
    flat, nested = tmp_path / "flat.yaml", tmp_path / "nested.yaml"
    flat.write_text(yaml.safe_dump({"data": FLAT_DATA}))
    moved = {key: value for key, value in FLAT_DATA.items() if key not in DEGRADATION_KEYS}
    moved["degradation"] = {key: value for key, value in FLAT_DATA.items() if key in DEGRADATION_KEYS}
    nested.write_text(yaml.safe_dump({"data": moved}))
    old, new = load_config(flat), load_config(nested)
    assert old.to_dict() == new.to_dict()
    assert new.data.degradation.kernel_size == 15 and new.data.degradation.noise_space == "mixed"
    assert recipe_hash(old) == recipe_hash(new)
    # The hash is taken over the flat form, so a long run's hash did not move with the section.
    assert flatten_degradation(new.to_dict()["data"])["kernel_size"] == 15


def test_every_shipped_config_is_written_in_the_nested_form():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        data = (yaml.safe_load(path.read_text()) or {}).get("data") or {}
        assert not set(data) & set(DEGRADATION_KEYS), f"{path.name} names degradation keys directly under data:"


def test_a_key_given_both_ways_is_one_error_naming_both(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text("data:\n  kernel_size: 15\n  degradation:\n    kernel_size: 21\n")
    with pytest.raises(ConfigError, match=r"data.kernel_size and data.degradation.kernel_size are both given"):
        load_config(path)


def test_the_older_spelling_of_an_override_sets_the_nested_key(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("data:\n  degradation:\n    kernel_size: 15\n    noise_sigma: 0.02\n")
    config = load_config(path, ["data.kernel_size=9", "data.degradation.noise_sigma=0.03"])
    assert config.data.degradation.kernel_size == 9 and config.data.degradation.noise_sigma == 0.03
    # An older flat file with a new-style override: the override wins too.
    path.write_text("data:\n  kernel_size: 15\n")
    assert load_config(path, ["data.degradation.kernel_size=11"]).data.degradation.kernel_size == 11


def test_nesting_copies_and_leaves_the_caller_s_section_alone():
    before = dict(FLAT_DATA)
    moved, problems = nest_degradation(FLAT_DATA)
    assert problems == [] and FLAT_DATA == before
    assert set(moved["degradation"]) == set(FLAT_DATA) & set(DEGRADATION_KEYS)
    assert flatten_degradation(moved) == FLAT_DATA


def test_problems_name_keys_as_the_caller_spells_them():
    spec = DegradationSpec(kernel_size=8, noise_space="gamma", jpeg_probability=2.0)
    config_names = spec.problems(lambda key: f"data.degradation.{key}")
    flag_names = spec.problems(lambda key: "--" + key.replace("_", "-"))
    assert len(config_names) == len(flag_names) == 3
    assert any(p.startswith("data.degradation.noise_space must be one of linear, srgb, mixed") for p in config_names)
    assert any(p.startswith("--kernel-size must be odd") for p in flag_names)
    with pytest.raises(DataError, match="degradation: kernel_size must be odd"):
        Degradation(kernel_size=8)


def test_every_preset_is_a_valid_spec_that_rounds_to_8_bits():
    for name, spec in PRESETS.items():
        assert spec.problems() == [], name
        degradation = preset_degradation(name)
        assert isinstance(degradation, Degradation) and degradation.quantize
        assert {key: getattr(degradation, key) for key in DEGRADATION_KEYS} == {
            key: getattr(spec, key) for key in DEGRADATION_KEYS}


@pytest.mark.subprocess
def test_a_checkpoint_written_before_the_section_resumes(tmp_path):
    """A run folder of the older shape (flat config.yaml, flat config in its checkpoint) is the same run."""
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "old", "--set", *TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "experiments" / "old"
    checkpoint = sorted((folder / "checkpoints").glob("step-*.pt"))[-1]
    state = load_checkpoint(checkpoint)
    state["config"]["data"] = flatten_degradation(state["config"]["data"])
    save_checkpoint(state, checkpoint)
    raw = yaml.safe_load((folder / "config.yaml").read_text())
    raw["data"] = flatten_degradation(raw["data"])
    (folder / "config.yaml").write_text(yaml.safe_dump(raw))
    config, _, resumed, path = plan_resume(str(folder), "pretrain", [], str(tmp_path / "experiments"))
    assert path == checkpoint and resumed["step"] == state["step"]
    assert config.data.degradation.kernel_size == 7  # TINY's data.degradation.kernel_size
    # and a changed degradation is still refused: the flat record is compared in the nested shape.
    state["config"]["data"]["kernel_size"] = 9
    save_checkpoint(state, checkpoint)
    with pytest.raises(ExperimentError, match="they differ in data.degradation.kernel_size"):
        plan_resume(str(folder), "pretrain", [], str(tmp_path / "experiments"))


def test_a_saved_config_round_trips_in_the_nested_form(tmp_path):
    config = config_from_dict({"data": FLAT_DATA})
    save_config(config, tmp_path / "config.yaml")
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert "kernel_size" not in saved["data"] and saved["data"]["degradation"]["kernel_size"] == 15
    assert load_config(tmp_path / "config.yaml").to_dict() == config.to_dict()


@pytest.mark.subprocess
def test_the_benchmark_flags_are_the_spec_s_fields(tmp_path, photo_folder):
    help_text = run_cli("-m", "datasets.benchmark", "--help", cwd=tmp_path).stdout
    for key in DEGRADATION_KEYS:
        assert "--" + key.replace("_", "-") in help_text, key
    # A setting only the spec had before it made the flags (JPEG re-compression) builds a benchmark.
    out = tmp_path / "jpeg"
    assert build_benchmark(["--out", str(out), "--photos", str(photo_folder), "--preset", "motion-v1",
                            "--jpeg-quality", "60", "60", "--jpeg-probability", "1", "--tile", "16",
                            "--crops-per-photo", "1", "--min-texture", "0"]) == 0
    meta = json.loads((out / "benchmark.json").read_text())
    assert meta["version"] == "jpeg"  # a changed preset is named after its folder, not the preset
    same = tmp_path / "same"
    assert build_benchmark(["--out", str(same), "--photos", str(photo_folder), "--preset", "motion-v1",
                            "--tile", "16", "--crops-per-photo", "1", "--min-texture", "0"]) == 0
    plain = json.loads((same / "benchmark.json").read_text())
    assert plain["images"][0]["blur_sha256"] != meta["images"][0]["blur_sha256"]  # the JPEG round trip happened


@pytest.mark.subprocess
@pytest.mark.parametrize("args, message", [
    (["--kernels", "box=1"], "--kernels: unknown kind 'box'"),
    (["--kernels", "trajectory=x"], "the weight must be a number"),
    (["--blur-extent", "5", "30"], "--blur-extent must be [min, max] with 1 <= min <= max <= --kernel-size - 3"),
    (["--preset", "motion-v2", "--noise-sigma", "0.01", "--version", "motion-v2"],
     "--version motion-v2 names a published benchmark, but these settings are not its own"),
])
def test_a_bad_degradation_flag_is_one_line_naming_the_flag(tmp_path, args, message):
    result = run_cli("-m", "datasets.benchmark", "--out", str(tmp_path / "mine"), *args, cwd=tmp_path)
    if "weight must be a number" in message:  # argparse's own refusal of the value: usage and exit 2
        assert result.returncode == 2 and message in result.stderr
    else:
        assert message in one_error_line(result)
    assert not (tmp_path / "mine").exists()
