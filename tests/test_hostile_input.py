"""A hostile user's inputs: nothing of theirs is lost, every bad value gets one clear line.

Each case runs the real command line on real files and checks the disk afterwards: files outside the output or
experiment folders are byte for byte as they were.
"""

import io
import os
import pickle
import re
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from core.checkpoint import save_checkpoint
from core.errors import DataError
from datasets.paired import list_file_pairs
from gan.config import load_config
from gan.errors import ConfigError, TrainingDiverged
from gan.experiment import plan_experiment
from gan.pretrain import PretrainTrainer
from helpers import ROOT, TINY, one_error_line, run_cli, save_photo, snapshot

# -- data loss ---------------------------------------------------------------------------------------------


@pytest.mark.subprocess
def test_compare_panels_obey_the_output_rules(tmp_path, checkpoint):
    photo = save_photo(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    panel = save_photo(out / "a_compare.png", seed=1)  # the user's own file, where the panel would go
    before = panel.read_bytes()
    args = ["-m", "infer", "--input", str(photo), "--output", str(out / "a.png"), "--checkpoint", str(checkpoint),
            "--compare"]
    assert "a_compare.png exists; pass --overwrite" in one_error_line(run_cli(*args, cwd=tmp_path))
    assert panel.read_bytes() == before and not (out / "a.png").exists()
    # The input itself can never be a panel, --overwrite or not.
    own = save_photo(tmp_path / "x" / "b_compare.png")
    before = own.read_bytes()
    args = ["-m", "infer", "--input", str(own), "--output", str(tmp_path / "x" / "b.png"), "--checkpoint",
            str(checkpoint), "--compare", "--overwrite"]
    assert "is the input file" in one_error_line(run_cli(*args, cwd=tmp_path))
    assert own.read_bytes() == before


@pytest.mark.subprocess
def test_an_output_that_is_the_input_under_another_name_is_refused(tmp_path, checkpoint):
    photo = save_photo(tmp_path / "a.png")
    before = photo.read_bytes()
    os.link(photo, tmp_path / "hard.png")
    (tmp_path / "soft.png").symlink_to(photo)
    for alias in ("hard.png", "soft.png"):
        args = ["-m", "infer", "--input", str(photo), "--output", str(tmp_path / alias), "--checkpoint",
                str(checkpoint), "--overwrite"]
        assert "is the input file" in one_error_line(run_cli(*args, cwd=tmp_path))
        assert photo.read_bytes() == before


@pytest.mark.subprocess
def test_outputs_are_written_whole_or_not_at_all(tmp_path, checkpoint):
    photo = save_photo(tmp_path / "a.png")
    target = save_photo(tmp_path / "out.png", seed=3)
    os.link(target, tmp_path / "keep.png")  # another name of the old output: a rename leaves it alone
    keep = (tmp_path / "keep.png").read_bytes()
    args = ["-m", "infer", "--input", str(photo), "--output", str(target), "--checkpoint", str(checkpoint),
            "--overwrite"]
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    assert (tmp_path / "keep.png").read_bytes() == keep and target.read_bytes() != keep
    assert Image.open(target).size == (64, 48)
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


@pytest.mark.subprocess
@pytest.mark.parametrize("name", ["../victim", "{abs}", "."])
def test_overwrite_never_deletes_outside_the_experiment_root(tmp_path, name):
    victim = tmp_path / "victim"
    save_photo(victim / "thesis.png")
    before = snapshot(victim)
    (tmp_path / "work").mkdir()
    name = name.format(abs=victim)
    result = run_cli("-m", "train_gan", "--pretrain", "--name", name, "--overwrite", "--set", *TINY,
                     cwd=tmp_path / "work")
    assert "must be a plain folder name" in one_error_line(result)
    assert snapshot(victim) == before


@pytest.mark.subprocess
def test_overwrite_refuses_a_folder_that_is_not_an_experiment(tmp_path):
    data = tmp_path / "experiments" / "photos"
    save_photo(data / "a.png")
    (data / "config.yaml").write_text("my notes\n")  # even with a config.yaml, foreign files make it not ours
    before = snapshot(data)
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "photos", "--overwrite", "--set", *TINY, cwd=tmp_path)
    assert "--overwrite refuses to delete" in one_error_line(result) and "'a.png'" in result.stderr
    assert snapshot(data) == before


# -- silently wrong ----------------------------------------------------------------------------------------


@pytest.mark.subprocess
def test_repeated_set_flags_all_apply(tmp_path):
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "r", "--set", *TINY, "--set", "train.lr=3e-4",
                     "--set", "train.lr_min=1e-5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((tmp_path / "experiments" / "r" / "config.yaml").read_text())
    assert saved["model"]["start_filters"] == 4 and saved["train"]["lr"] == 3e-4 and saved["train"]["lr_min"] == 1e-5


@pytest.mark.parametrize("override", ["train.lr=inf", "train.lr=.nan", "data.noise_sigma=-.inf",
                                      "data.blur_extent=[1, .inf]", "model.start_filters=.nan"])
def test_non_finite_values_are_rejected(override):
    with pytest.raises(ConfigError, match="must be finite|must be int"):
        load_config(None, [*TINY, override])


def test_a_checkpoint_with_non_finite_weights_is_never_saved(tmp_path):
    config = load_config(None, [*TINY, f"experiment.root={tmp_path}", "experiment.name=nan"])
    trainer = PretrainTrainer(config, plan_experiment(config, "nan"))
    trainer.experiment.start(config)
    with torch.no_grad():
        trainer.generator.head.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="not finite at step 0 .*head.weight"):
        trainer.save()
    assert not list((tmp_path / "nan").rglob("*.pt"))


@pytest.mark.subprocess
def test_bundled_weights_are_checked_under_any_path(tmp_path):
    shutil.copy(ROOT / "weights" / "light_unet_pretrain.pt", tmp_path / "light_unet_pretrain.pt")
    shutil.copy(ROOT / "weights" / "SHA256SUMS", tmp_path / "SHA256SUMS")
    data = bytearray((tmp_path / "light_unet_pretrain.pt").read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / "light_unet_pretrain.pt").write_bytes(data)
    photo = save_photo(tmp_path / "a.png")
    args = ["-m", "infer", "--input", str(photo), "--output", str(tmp_path / "b.png"), "--checkpoint",
            str(tmp_path / "light_unet_pretrain.pt")]
    assert "does not match its sha256" in one_error_line(run_cli(*args, cwd=tmp_path))


def test_a_changed_benchmark_kernel_is_named(tmp_path, photo_folder):
    from datasets.benchmark import Benchmark
    from datasets.benchmark import main as build

    assert build(["--out", str(tmp_path / "b"), "--photos", str(photo_folder), "--tile", "32",
                  "--crops-per-photo", "1", "--min-texture", "0"]) == 0
    kernel = sorted((tmp_path / "b" / "kernels").iterdir())[0]
    np.save(kernel, np.roll(np.load(kernel), 1))
    with pytest.raises(DataError, match="benchmark kernel .* was changed"):
        Benchmark.load(tmp_path / "b")


def test_replaced_images_with_edited_hashes_do_not_pass_as_the_benchmark(tmp_path, photo_folder):
    import json

    from core.hashing import sha256
    from datasets.benchmark import Benchmark
    from datasets.benchmark import main as build

    assert build(["--out", str(tmp_path / "b"), "--photos", str(photo_folder), "--tile", "32",
                  "--crops-per-photo", "1", "--min-texture", "0"]) == 0
    meta_path = tmp_path / "b" / "benchmark.json"
    meta = json.loads(meta_path.read_text())
    first = meta["images"][0]["name"]
    save_photo(tmp_path / "b" / "sharp" / f"{first}.png", seed=9, size=(32, 32))  # another sharp image...
    meta["images"][0]["sharp_sha256"] = sha256(tmp_path / "b" / "sharp" / f"{first}.png")  # ...its hash edited in
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="was edited: it records fingerprint"):
        Benchmark.load(tmp_path / "b")
    meta["fingerprint"] = "0" * 16  # a recomputed fingerprint is not enough to pass as a published benchmark
    from datasets.benchmark import fingerprint

    meta["fingerprint"], meta["version"] = fingerprint(meta["images"]), "motion-v1"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="calls itself motion-v1 but its fingerprint is .* not the published"):
        Benchmark.load(tmp_path / "b")


@pytest.mark.subprocess
@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"version": "x"}', '{"images": [{"name": "a"}]}'])
def test_a_malformed_benchmark_description_is_one_line(tmp_path, content):
    from datasets.benchmark import Benchmark

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "benchmark.json").write_text(content)
    with pytest.raises(DataError, match="benchmark.json"):
        Benchmark.load(tmp_path / "b")
    result = run_cli(str(ROOT / "evaluate.py"), "--benchmark", str(tmp_path / "b"), "--methods", "wiener",
                     "--no-lpips", "--metrics", "psnr", "ssim", "--out", str(tmp_path / "e"), cwd=tmp_path)
    assert "benchmark.json" in one_error_line(result)


@pytest.mark.subprocess
@pytest.mark.parametrize("content", ["{broken", '{"label": "x"}', "[]"])
def test_compare_on_a_corrupt_or_incomplete_summary_is_one_line(tmp_path, content):
    for run in ("a", "b"):
        (tmp_path / "runs" / run).mkdir(parents=True)
        (tmp_path / "runs" / run / "summary.json").write_text(content)
    result = run_cli(str(ROOT / "evaluate.py"), "--compare", str(tmp_path / "runs"), cwd=tmp_path)
    assert "summary.json" in one_error_line(result)


def test_a_pairs_list_that_points_outside_its_folder_is_refused(tmp_path):
    outside = save_photo(tmp_path / "elsewhere" / "s.png")
    save_photo(tmp_path / "list" / "b.png")
    listing = tmp_path / "list" / "pairs.csv"
    for row in ("b.png,../elsewhere/s.png", f"b.png,{outside}"):
        listing.write_text(row + "\n")
        with pytest.raises(DataError, match="points outside"):
            list_file_pairs(listing)
        pairs, problems = list_file_pairs(listing, allow_outside=True)
        assert len(pairs) == 1 and not problems


# -- tracebacks --------------------------------------------------------------------------------------------


@pytest.mark.subprocess
@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "is a folder, not a YAML file"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00model: {}"), "is not UTF-8 text"),
])
def test_unreadable_configs_are_named(tmp_path, make, message):
    make(tmp_path / "bad.yaml")
    result = run_cli("-m", "train_gan", "--pretrain", "--config", str(tmp_path / "bad.yaml"), cwd=tmp_path)
    assert message in one_error_line(result)


@pytest.mark.subprocess
def test_a_malformed_override_value_is_named(tmp_path):
    result = run_cli("-m", "train_gan", "--pretrain", "--set", "train.lr=[1,", cwd=tmp_path)
    assert "override 'train.lr=[1,': the value is not valid YAML" in one_error_line(result)


@pytest.mark.subprocess
def test_an_image_declaring_too_many_pixels_is_refused_before_decoding(tmp_path, checkpoint, monkeypatch):
    photo = save_photo(tmp_path / "a.png")
    monkeypatch.setenv("LIGHTDEBLUR_MAX_PIXELS", "1000")
    line = one_error_line(run_cli("-m", "infer", "--input", str(photo), "--output", str(tmp_path / "b.png"),
                                  "--checkpoint", str(checkpoint), cwd=tmp_path))
    assert "declares 64x48 = 3,072 pixels, more than the limit of 1,000" in line


def test_a_sigma_cnn_file_that_is_not_a_state_dict_is_named_without_unsafe_advice(tmp_path):
    from baselines.sigma_cnn import load
    from gan.errors import ExperimentError

    pickled = tmp_path / "pickled.pt"
    buffer = io.BytesIO()
    torch.save({"options": {}, "state_dict": {}, "extra": pickle.PickleError("any object")}, buffer)
    pickled.write_bytes(buffer.getvalue())
    with pytest.raises(ExperimentError) as error:
        load(pickled)
    assert "never loaded" in str(error.value) and "weights_only" not in str(error.value)
    wrong = tmp_path / "wrong.pt"
    save_checkpoint({"model": {"name": "light_unet"}, "generator": {}}, wrong)
    with pytest.raises(ExperimentError, match="not a file of python -m baselines.sigma_cnn"):
        load(wrong)


# -- runs that share a folder, and what --overwrite may delete --------------------------------------------------


@pytest.mark.subprocess
def test_a_second_run_on_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    from gan.experiment import Experiment

    assert run_cli("-m", "train_gan", "--pretrain", "--name", "done", "--set", *TINY, cwd=tmp_path).returncode == 0
    finished = tmp_path / "experiments" / "done"
    before = snapshot(finished)
    for name, args in (("same", ["--name", "same", "--set", *TINY]), ("done", ["--resume", str(finished)])):
        running = Experiment(tmp_path / "experiments" / name)
        running.lock()  # as a train_gan.py still running on that folder holds it
        result = run_cli("-m", "train_gan", "--pretrain", *args, cwd=tmp_path)
        assert f"is in use by a running train_gan.py (pid {os.getpid()})" in one_error_line(result)
    assert not (tmp_path / "experiments" / "same").exists() and snapshot(finished) == before


@pytest.mark.subprocess
@pytest.mark.parametrize("foreign", ["checkpoints/notes.txt", "tensorboard/mine/events.out.tfevents.1"])
def test_overwrite_refuses_a_run_holding_nested_user_files(tmp_path, foreign):
    assert run_cli("-m", "train_gan", "--pretrain", "--name", "r", "--set", *TINY, cwd=tmp_path).returncode == 0
    run = tmp_path / "experiments" / "r"
    mine = run / foreign
    mine.parent.mkdir(parents=True, exist_ok=True)
    mine.write_text("my notes\n")
    before = snapshot(run)
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "r", "--overwrite", "--set", *TINY, cwd=tmp_path)
    assert "--overwrite refuses to delete" in one_error_line(result) and foreign.split("/")[1] in result.stderr
    assert snapshot(run) == before


@pytest.mark.subprocess
@pytest.mark.parametrize("label", ["..", ".", "/", "___"])
def test_an_evaluation_label_never_writes_outside_out(tmp_path, label):
    for index in range(2):
        save_photo(tmp_path / "sharp" / f"p{index}.png", seed=index)
        save_photo(tmp_path / "restored" / f"p{index}.png", seed=index + 5)
    out = tmp_path / "evals" / "here"
    result = run_cli(str(ROOT / "evaluate.py"), "--restored", str(tmp_path / "restored"), "--sharp",
                     str(tmp_path / "sharp"), "--label", label, "--out", str(out), "--metrics", "psnr", "ssim",
                     "--no-lpips", cwd=tmp_path)
    assert "makes no folder name below --out" in one_error_line(result)
    assert not (tmp_path / "evals").exists()


# -- values that used to reach a traceback ------------------------------------------------------------------------


@pytest.mark.parametrize("setting, message", [
    ("experiment.seed=-1", "experiment.seed must be in [0, 2**63)"),
    ("experiment.seed=99999999999999999999", "experiment.seed must be in [0, 2**63)"),
    ("data.val_seed=-5", "data.val_seed must be in [0, 2**63)"),
    ("data.field_grid=100000", "data.degradation.field_grid must be in [1, 16]"),
    ("data.val_crops_per_photo=1000000", "data.val_crops_per_photo must be at most 1000"),
])
def test_out_of_range_values_are_config_errors_before_any_work(setting, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [setting])


@pytest.mark.subprocess
@pytest.mark.parametrize("width", [-4, 100_000])
def test_a_network_width_out_of_range_is_refused_before_allocating(tmp_path, width):
    result = run_cli("-m", "train_gan", "--pretrain", "--set", *TINY, f"model.start_filters={width}", cwd=tmp_path)
    assert "start_filters must be in [1, 1024]" in one_error_line(result)
    assert not (tmp_path / "experiments").exists()


@pytest.mark.subprocess
@pytest.mark.parametrize("args, message", [
    (["--tile", "48", "--overlap", "47"], "so the overlap must be between 0 and 32 px"),
    (["--device", "potato"], "device 'potato' is not one torch knows"),
])
def test_tile_and_device_problems_are_one_line(tmp_path, checkpoint, args, message):
    photo = save_photo(tmp_path / "a.png", size=(96, 96))
    result = run_cli("-m", "infer", "--input", str(photo), "--output", str(tmp_path / "out.png"), "--checkpoint",
                     str(checkpoint), *args, cwd=tmp_path)
    assert message in one_error_line(result) and not (tmp_path / "out.png").exists()


BILLION_LAUGHS = "\n".join(
    [f'l0: &l0 [{", ".join(["lol"] * 9)}]']
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 7)]
)


@pytest.mark.subprocess
@pytest.mark.parametrize("where", ["config", "set", "ablation"])
def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, where):
    if where == "config":
        (tmp_path / "bomb.yaml").write_text(BILLION_LAUGHS + "\ntrain:\n  epochs: *l6\n")
        args = ["-m", "train_gan", "--pretrain", "--config", str(tmp_path / "bomb.yaml")]
    elif where == "set":
        args = ["-m", "train_gan", "--pretrain", "--set", "train.epochs={" + BILLION_LAUGHS.replace("\n", ", ") + "}"]
    else:
        (tmp_path / "grid.yaml").write_text(BILLION_LAUGHS + "\nname: g\nseeds: *l6\nvariants: {a: []}\n")
        args = ["-m", "gan.ablation", str(tmp_path / "grid.yaml")]
    result = run_cli(*args, cwd=tmp_path)  # run_cli's timeout would fail a hang
    assert "aliases (*name), more than the 32" in one_error_line(result)
    assert len(result.stderr) < 1000 and not (tmp_path / "experiments").exists()


@pytest.mark.subprocess
def test_an_error_never_echoes_a_huge_value_whole(tmp_path):
    result = run_cli("-m", "train_gan", "--pretrain", "--set", "train.epochs=" + "x" * 100_000, cwd=tmp_path)
    assert "train.epochs" in one_error_line(result) and len(result.stderr) < 1000


@pytest.mark.subprocess
@pytest.mark.parametrize("args, message", [
    (["--out", "{tmp}/motion-v1"], "named like the published benchmark motion-v1, but these settings differ"),
    (["--out", "{tmp}/motion-v2", "--preset", "motion-v2", "--tile", "192"], "differ from it: --tile;"),
    (["--out", "{tmp}/mine", "--tile", "0"], "--tile must be >= 1"),
    (["--out", "{tmp}/mine", "--max-roll-degrees", "nan"], "--max-roll-degrees must be a finite number"),
])
def test_a_benchmark_folder_named_like_a_published_one_holds_exactly_it(tmp_path, args, message):
    args = [arg.format(tmp=tmp_path) for arg in args]
    result = run_cli("-m", "datasets.benchmark", *args, cwd=tmp_path)
    assert message in one_error_line(result)
    assert list(tmp_path.iterdir()) == []
