"""A stretch of the long run at another machine's scale (gan/gpu_stretch.py, gan/gpu_pack.py), run end to end on
the CPU with a tiny setting: the pack's photos put in place, train_gan.py continuing the shipped weights with a
larger batch and crop, the planned stop of train.max_minutes, and the files that come back."""

import json
import shutil

import pytest
import torch
import yaml

from core.checkpoint import step_checkpoints
from gan.config import load_config
from gan.long_run import NOT_RECIPE, _hash_without, same_recipe
from helpers import ROOT, one_error_line, run_cli, save_photo

RECIPE = {
    "experiment": {"name": "long"},
    "model": {"name": "light_unet", "start_filters": 4},
    "data": {"source": "folder", "sharp_dir": "photos/train", "crop_size": 32, "kernel_size": 7,
             "train_pairs_per_epoch": 8, "val_crop_size": 32, "val_crops_per_photo": 1,
             "leaves": 0.5},  # as the long run, with dead leaves (blurred on the device at the GPU scale)
    "train": {"schedule_steps": 400, "warmup_steps": 2, "epochs": 1, "batch_size": 4, "lr": 1e-3},
    "log": {"lpips": False},
}


def _first_stretch(tmp_path):
    """A long run's first stretch (2 steps of batch 4 at 32 px) on photos in tmp_path/photos/train, shipped."""
    for index in range(6):
        save_photo(tmp_path / "photos" / "train" / f"p{index}.png", seed=index, size=(96, 96))
    config = tmp_path / "long.yaml"
    config.write_text(yaml.safe_dump(RECIPE))
    assert run_cli("-m", "train_gan", "--pretrain", "--config", str(config), cwd=tmp_path).returncode == 0
    run = tmp_path / "experiments" / "long"
    weights = tmp_path / "weights"
    assert run_cli("-m", "release.bundled", "--checkpoint", str(step_checkpoints(run / "checkpoints")[0]),
                   "--model", "long-run", "--out", str(weights), cwd=tmp_path).returncode == 0
    with_init = {**RECIPE, "train": {**RECIPE["train"], "init": str(weights / "light_unet_long_run.pt")}}
    config.write_text(yaml.safe_dump(with_init))
    return config, run, weights / "light_unet_long_run.pt"


@pytest.mark.subprocess
def test_a_gpu_sized_stretch_continues_the_shipped_weights_and_returns_them(tmp_path):
    config, run, shipped = _first_stretch(tmp_path)
    start = torch.load(shipped, weights_only=True)["long_run"]["global_step"]
    # A bare machine: no run folder, no photos; they travel in the pack.
    assert run_cli("-m", "gan.gpu_pack", "--photos", "photos/train", "--out", "pack", "--no-wheels",
                   cwd=tmp_path).returncode == 0
    assert json.loads((tmp_path / "pack" / "pack.json").read_text())["photos"] == 6
    shutil.rmtree(run)
    shutil.rmtree(tmp_path / "photos")
    result = run_cli("-m", "gan.gpu_stretch", "--pack", "pack", "--out", "out", "--work", "work", "--config",
                     str(config), "--device", "cpu", "--amp", "off", "--batch", "2", "--crop", "48", "--workers", "0",
                     "--minutes", "0.001", "--validate-every", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in (tmp_path / "photos" / "train").iterdir()) == [f"p{i}.jpg" for i in range(6)]
    log = (tmp_path / "out" / "stretch.log").read_text()
    assert f"continuing {shipped} at global step {start}" in log and "stopped after train.max_minutes=0.001" in log
    returned = torch.load(tmp_path / "out" / "weights" / "light_unet_long_run.pt", weights_only=True)
    record = returned["long_run"]
    stretch = record["stretches"][-1]
    assert record["global_step"] == stretch["last_step"] > stretch["first_step"] == start
    assert (stretch["batch_size"], stretch["crop_size"]) == (2, 48) and stretch["device"].startswith("cpu")
    assert returned["config"]["data"]["blur_on_device"] is True
    assert same_recipe(load_config(config), returned)  # the same long run, at another scale
    assert "light_unet_long_run.pt" in (tmp_path / "out" / "weights" / "SHA256SUMS").read_text()
    assert len(list((tmp_path / "out" / "tensorboard").glob("events.out.tfevents.*"))) == 1

    # Back where the first stretch's folder survived: the returned weights are ahead of it, which is said, not
    # silently ignored, and the folder is left as it was.
    returned_file = tmp_path / "out" / "weights" / "light_unet_long_run.pt"
    assert run_cli("-m", "release.bundled", "--checkpoint", str(returned_file), "--model", "long-run", "--out",
                   str(shipped.parent), cwd=tmp_path).returncode == 0  # shipped as the docs say
    shutil.copytree(tmp_path / "work" / "experiments" / "long", run)
    newest = step_checkpoints(run / "checkpoints")[0]
    state = torch.load(newest, weights_only=False)
    state["long_run"]["global_step"] = start  # a folder that stopped before the GPU stretch
    torch.save(state, newest)
    line = one_error_line(run_cli("-m", "train_gan", "--pretrain", "--continue-shipped", "--config", str(config),
                                  cwd=tmp_path))
    assert f"is at global step {record['global_step']}, ahead of run folder" in line
    assert "(mv experiments/long experiments/long-2) and run again" in line


def test_records_hashed_before_stretches_kept_their_scale_still_belong_to_the_recipe():
    config = load_config(ROOT / "configs" / "long_run.yaml")
    old = {"long_run": {"recipe": _hash_without(config, NOT_RECIPE)}, "config": config.to_dict()}
    assert same_recipe(config, old)
    gpu = load_config(ROOT / "configs" / "long_run.yaml", ["train.batch_size=64", "data.crop_size=256",
                                                           "data.blur_on_device=true", "train.amp=bf16"])
    assert same_recipe(gpu, old)  # another scale of the same recipe
    assert not same_recipe(load_config(ROOT / "configs" / "long_run.yaml", ["train.lr=1e-3"]), old)
    assert not same_recipe(config, {"long_run": {"recipe": "0" * 16}, "config": config.to_dict()})


@pytest.mark.subprocess
def test_a_pack_replaces_only_a_pack(tmp_path):
    save_photo(tmp_path / "photos" / "a.png")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    line = one_error_line(run_cli("-m", "gan.gpu_pack", "--photos", "photos", "--out", "mine", "--no-wheels",
                                  cwd=tmp_path))
    assert "mine exists and is not a GPU pack" in line and (mine / "notes.txt").read_text() == "keep"
    assert "no training photos in empty" in one_error_line(
        run_cli("-m", "gan.gpu_pack", "--photos", "empty", "--out", "pack", "--no-wheels", cwd=tmp_path))
    assert not (tmp_path / "pack").exists()
