"""The pretrain command end to end, as a user runs it: a real subprocess, real files on disk."""


import pytest
import torch
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from core.checkpoint import load_checkpoint
from datasets import build_datasets
from evaluation.metrics import psnr_per_image
from gan.config import config_from_dict
from helpers import TINY, run_cli, snapshot, spawns
from restore.generator import generator_from_checkpoint

pytestmark = pytest.mark.subprocess  # every test here starts the project's scripts or servers


@pytest.fixture(scope="module")
@spawns
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "tiny", "--set", *TINY, "log.progress_every=3",
                     cwd=workdir)
    assert result.returncode == 0, result.stderr
    return workdir / "experiments" / "tiny", result


def test_pretrain_prints_blurry_and_restored_psnr(tiny_run):
    _, result = tiny_run
    assert "epoch 2/2" in result.stdout
    # Output to a pipe has no progress bar: a progress line every log.progress_every steps instead.
    progress = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    assert len(progress) == 1 and progress[0].startswith("step 3/4  loss ") and " s/step" in progress[0]
    assert "Validation PSNR: blurry input" in result.stdout and "-> restored" in result.stdout


def test_pretrain_writes_config_checkpoints_and_tensorboard_events(tiny_run):
    folder, _ = tiny_run
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    assert saved["model"]["start_filters"] == 4 and saved["experiment"]["name"] == "tiny"
    saved = sorted(p.name for p in (folder / "checkpoints").iterdir())
    assert saved == ["best.pt", "step-00000002.pt", "step-00000004.pt"]

    events = list((folder / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    accumulator = EventAccumulator(str(events[0]), size_guidance={"images": 0, "scalars": 0}).Reload()
    scalars = set(accumulator.Tags()["scalars"])
    assert {"train/loss", "train/lr", "val/psnr", "val/ssim", "val/psnr_blurry_input"} <= scalars
    assert len(accumulator.Scalars("val/psnr")) == 2  # one validation per epoch
    assert len(accumulator.Scalars("train/loss")) == 4  # 2 epochs x 2 steps, logged every step
    lrs = [event.value for event in accumulator.Scalars("train/lr")]
    assert lrs[0] == pytest.approx(2e-4) and lrs[-1] < lrs[0]  # cosine annealing runs
    image = accumulator.Images("val/blurred_restored_sharp")[-1]
    assert image.width == 3 * 32 and image.height == 2 * 32  # 2 validation pairs, blurred | restored | sharp


def test_reloaded_checkpoint_reproduces_its_logged_validation_psnr(tiny_run):
    folder, _ = tiny_run
    state = load_checkpoint(folder / "checkpoints" / "step-00000004.pt")
    assert state["step"] == 4 and state["epoch"] == 2 and "optimizer" in state and "scheduler" in state
    generator = generator_from_checkpoint(state).eval()
    data = config_from_dict(state["config"]).data
    _, val = build_datasets(data, seed=state["config"]["experiment"]["seed"])
    blur = torch.stack([pair["blur"] for pair in val])
    sharp = torch.stack([pair["sharp"] for pair in val])
    with torch.no_grad():
        psnr = psnr_per_image(generator(blur).clamp(0, 1), sharp).mean().item()
    assert psnr == pytest.approx(state["metrics"]["val_psnr"], abs=1e-6)
    assert not torch.equal(generator(blur), blur)  # training moved the network away from the identity


def test_existing_experiment_folder_is_never_overwritten(tiny_run):
    folder, _ = tiny_run
    before = snapshot(folder)
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "tiny", "--set", *TINY, cwd=folder.parents[1])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: experiment folder experiments/tiny already exists and is not empty; choose another "
        "experiment.name, pass --resume to continue it or --overwrite to replace it"
    ]
    assert snapshot(folder) == before


def test_overwrite_with_a_bad_command_keeps_the_old_run(tiny_run):
    folder, _ = tiny_run
    before = snapshot(folder)
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "tiny", "--overwrite", "--set", *TINY,
                     "data.source=folder", "data.sharp_dir=/does/not/exist", cwd=folder.parents[1])
    assert result.returncode == 2 and "does not exist" in result.stderr
    assert snapshot(folder) == before


def test_a_failed_start_leaves_no_experiment_folder(tmp_path):
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "x", "--set", *TINY, "data.source=folder",
                     "data.sharp_dir=/does/not/exist", cwd=tmp_path)
    assert result.returncode == 2
    assert not (tmp_path / "experiments" / "x").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["train.nonsense=1"], "unknown config key 'train.nonsense'"),
        (["train.batch_size=-2"], "train.batch_size must be >= 1"),
        (["model.norm=layer"], "unknown norm 'layer'"),
        (["train.amp=fp16", "train.device=cpu"], "train.amp=fp16 needs a CUDA device, not cpu"),
        (["data.source=folder", "data.sharp_dir=/does/not/exist"], "data folder /does/not/exist does not exist"),
    ],
)
def test_bad_input_gets_one_line_and_a_nonzero_exit(tmp_path, extra, message):
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "bad", "--set", *TINY, *extra, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_empty_and_unreadable_data_folders_are_named(tmp_path, photo_folder):
    (tmp_path / "empty").mkdir()
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "a", "--set", *TINY, "data.source=folder",
                     f"data.sharp_dir={tmp_path / 'empty'}", cwd=tmp_path)
    assert result.returncode == 2 and "contains no images" in result.stderr

    (photo_folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "b", "--set", *TINY, "data.source=folder",
                     f"data.sharp_dir={photo_folder}", "data.crop_size=24", "data.val_crop_size=24", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "corrupt.png" in result.stderr


def test_missing_config_file_is_named(tmp_path):
    result = run_cli("-m", "train_gan", "--pretrain", "--config", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == "error: config file nope.yaml does not exist"


def test_trains_on_a_folder_of_sharp_photos(tmp_path, photo_folder):
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "folder", "--set", *TINY, "data.source=folder",
                     f"data.sharp_dir={photo_folder}", "data.crop_size=24", "data.val_crop_size=24", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    state = load_checkpoint(tmp_path / "experiments" / "folder" / "checkpoints" / "best.pt")
    assert state["config"]["data"]["sharp_dir"] == str(photo_folder)


@pytest.mark.parametrize("source", ["gopro", "realblur", "paired"])
def test_trains_on_real_pair_layouts_by_config_alone(tmp_path, request, source):
    root = request.getfixturevalue(f"{source}_tree")
    config = tmp_path / f"{source}.yaml"
    config.write_text(yaml.safe_dump({"data": {"source": source, "root": str(root), "num_workers": 1}}))
    result = run_cli("-m", "train_gan", "--pretrain", "--config", str(config), "--name", source, "--set", *TINY,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "experiments" / source
    split = yaml.safe_load((folder / "data_split.json").read_text())  # JSON is YAML
    assert split["source"] == source and split["train"] and split["val"]
    assert not set(split["train_groups"]) & set(split["val_groups"])
    assert (folder / "checkpoints" / "best.pt").is_file()


def test_bf16_autocast_channels_last_and_blur_on_device_train_and_save_fp32_weights(tmp_path):
    """The speed options (mixed precision, memory format, blur made by the trainer) run end to end."""
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "amp", "--set", *TINY, "train.epochs=1",
                     "train.amp=bf16", "train.channels_last=true", "data.blur_on_device=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    state = torch.load(tmp_path / "experiments" / "amp" / "checkpoints" / "best.pt", weights_only=False)
    weights = state["generator"]
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in weights.values())
    assert weights["head.weight"].abs().sum() > 0  # the zero-initialised head has moved: it trained
    assert state["metrics"]["val_psnr"] > 0


def test_curves_plot_a_runs_logged_validation_psnr(tiny_run, tmp_path):
    from evaluation.curves import scalars

    folder, _ = tiny_run
    steps, values = scalars(folder, "val/psnr")
    assert list(steps) == [2, 4] and all(v > 0 for v in values)
    result = run_cli("-m", "evaluation.curves", "--runs", str(folder), "--out", str(tmp_path / "c.png"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "c.png").size == (700, 550)
    missing = run_cli("-m", "evaluation.curves", "--runs", str(tmp_path), "--out", str(tmp_path / "d.png"),
                      cwd=tmp_path)
    assert missing.returncode == 2 and "has no tensorboard/ folder" in missing.stderr
