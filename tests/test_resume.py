"""Exact resume, graceful interruption and crash-safe checkpoints, with real subprocesses and real signals."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from core.checkpoint import load_checkpoint, step_checkpoints
from helpers import ROOT, TINY, run_cli, spawns

# Three epochs of 20 steps: long enough that a signal sent after epoch 1 lands mid-run. One thread and
# deterministic algorithms make the CPU arithmetic bit-identical between processes.
RUN = [
    *TINY,
    "data.train_pairs_per_epoch=80",
    "train.epochs=3",
    "train.threads=1",
    "train.deterministic=true",
]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1"}


def start_run(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "train_gan", *args], cwd=cwd, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_line(process: subprocess.Popen, text: str) -> None:
    for line in process.stdout:
        if text in line:
            return
    raise AssertionError(f"the run ended before printing {text!r}: {process.stderr.read()}")


def scalars(folder: Path, tag: str) -> dict[int, float]:
    """step -> value over every event file of a run, as TensorBoard shows it (purged steps dropped)."""
    accumulator = EventAccumulator(str(folder / "tensorboard"), size_guidance={"scalars": 0}).Reload()
    return {event.step: event.value for event in accumulator.Scalars(tag)}


@pytest.fixture(scope="module")
@spawns
def uninterrupted(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("whole")
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "whole", "--set", *RUN, cwd=workdir)
    assert result.returncode == 0, result.stderr
    return workdir / "experiments" / "whole"


@pytest.mark.subprocess
def test_sigterm_then_resume_matches_the_uninterrupted_run_step_for_step(uninterrupted, tmp_path):
    process = start_run("--pretrain", "--name", "cut", "--set", *RUN, cwd=tmp_path)
    wait_for_line(process, "epoch 1/3")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "SIGTERM received: finishing the current step and saving a checkpoint" in stderr
    assert "continue with: python train_gan.py --pretrain --resume experiments/cut" in stderr
    folder = tmp_path / "experiments" / "cut"
    stopped_at = load_checkpoint(step_checkpoints(folder / "checkpoints")[0])["step"]
    assert 20 <= stopped_at < 60 and f"stopped by SIGTERM at step {stopped_at}/60" in stderr

    result = run_cli("-m", "train_gan", "--pretrain", "--resume", "experiments/cut", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"resuming experiments/cut from experiments/cut/checkpoints/step-{stopped_at:08d}.pt" in result.stdout

    for tag in ("train/loss", "train/lr", "val/psnr"):
        expected = scalars(uninterrupted, tag)
        assert scalars(folder, tag) == expected, tag  # every step, exactly equal
    assert len(scalars(folder, "train/loss")) == 60
    final, reference = (load_checkpoint(f / "checkpoints" / "step-00000060.pt") for f in (folder, uninterrupted))
    assert all((final["generator"][k] == reference["generator"][k]).all() for k in reference["generator"])


@pytest.mark.subprocess
def test_a_second_signal_exits_at_once_leaving_only_complete_checkpoints(tmp_path):
    process = start_run("--pretrain", "--name", "twice", "--set", *RUN, cwd=tmp_path)
    wait_for_line(process, "epoch 1/3")
    # Two different signals: two of the same kind sent at once would merge into one pending signal.
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM), stderr
    assert "second signal (SIG" in stderr and "exiting now without saving" in stderr and "stopped by" not in stderr
    checkpoints = (tmp_path / "experiments" / "twice" / "checkpoints")
    saved = sorted(checkpoints.glob("*.pt"))
    assert saved, "the first epoch's checkpoints were written before the signals"
    for path in saved:
        load_checkpoint(path)  # every file that carries a checkpoint's name is a whole checkpoint


@pytest.mark.subprocess
def test_sigkill_in_the_middle_of_a_checkpoint_write_keeps_the_previous_one(tmp_path):
    # A wider network makes each checkpoint tens of MB, so the write takes long enough to be caught in the act.
    options = [*TINY, "model.start_filters=32", "train.checkpoint_every=1", "train.epochs=1",
               "data.train_pairs_per_epoch=16"]
    process = start_run("--pretrain", "--name", "killed", "--set", *options, cwd=tmp_path)
    checkpoints = tmp_path / "experiments" / "killed" / "checkpoints"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if step_checkpoints(checkpoints) and list(checkpoints.glob(".step-*.tmp")):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before a checkpoint write could be caught"
    (partial,) = checkpoints.glob(".step-*.tmp")  # the write that was cut short
    complete = step_checkpoints(checkpoints)[0]
    good = load_checkpoint(complete)
    assert partial.name.startswith(f".step-{good['step'] + 1:08d}.pt.")

    result = run_cli("-m", "train_gan", "--pretrain", "--resume", "--name", "killed", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"from experiments/killed/checkpoints/{complete.name} (step {good['step']}/4)" in result.stdout
    assert not list(checkpoints.glob("*.tmp"))  # the stale partial write was cleared
    assert load_checkpoint(step_checkpoints(checkpoints)[0])["step"] == 4


@pytest.mark.subprocess
def test_rolling_checkpoints_keep_the_last_k_and_the_best(uninterrupted, tmp_path):
    names = sorted(p.name for p in (uninterrupted / "checkpoints").iterdir())
    assert names == ["best.pt", "step-00000040.pt", "step-00000060.pt"]  # keep_last=2 at epoch ends
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "k", "--set", *TINY, "train.checkpoint_every=1",
                     "train.keep_last=3", "train.ema_decay=0.9", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "experiments" / "k" / "checkpoints"
    assert [p.name for p in step_checkpoints(folder)] == [f"step-0000000{s}.pt" for s in (4, 3, 2)]
    state = load_checkpoint(folder / "step-00000004.pt")
    assert state["ema_updates"] == 4 and set(state["generator_ema"]) == set(state["generator"])
    assert any(not (state["generator_ema"][k] == state["generator"][k]).all() for k in state["generator"])


@pytest.mark.subprocess
def test_resume_with_ema_and_an_adversarial_run_continues_exactly(tmp_path):
    """The adversarial phase (critic, two optimisers, the gradient penalty's random draws) and the EMA resume too."""
    pretrain = run_cli("-m", "train_gan", "--pretrain", "--name", "pre", "--set", *TINY, "train.epochs=1", cwd=tmp_path)
    assert pretrain.returncode == 0, pretrain.stderr
    options = [*TINY, "adv.n_critic=2", "adv.critic={name: patchgan, base_channels: 8}", "adv.w_perceptual=0",
               "train.ema_decay=0.5", "train.threads=1", "train.deterministic=true"]
    result = run_cli("-m", "train_gan", "--adv", "--name", "once", "--set", *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # A copy continues from its first epoch's checkpoint; its rerun of epoch 2 must equal the original's.
    twice = tmp_path / "experiments" / "twice"
    shutil.copytree(tmp_path / "experiments" / "once", twice)
    (twice / "checkpoints" / "step-00000004.pt").unlink()
    result = run_cli("-m", "train_gan", "--adv", "--resume", str(twice / "checkpoints" / "step-00000002.pt"),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    once = load_checkpoint(tmp_path / "experiments" / "once" / "checkpoints" / "step-00000004.pt")
    again = load_checkpoint(twice / "checkpoints" / "step-00000004.pt")
    for key in ("generator", "generator_ema", "critic"):
        assert all((once[key][k] == again[key][k]).all() for k in once[key]), key
    assert scalars(twice, "train/critic_loss") == scalars(tmp_path / "experiments" / "once", "train/critic_loss")


def test_ema_follows_the_weights_early_and_reaches_its_decay_later():
    """The EMA's decay ramps up as min(decay, (1 + n) / (10 + n)): early averages are not stuck at the init."""
    from torch.optim.swa_utils import AveragedModel

    from gan.trainer import ema_with_warmup

    layer = torch.nn.Linear(1, 1, bias=False)
    layer.weight.data.fill_(0.0)
    ema = AveragedModel(layer, multi_avg_fn=ema_with_warmup(0.999), use_buffers=True)
    ema.update_parameters(layer)  # the first update copies
    layer.weight.data.fill_(1.0)
    ema.update_parameters(layer)  # n = 1: decay 2/11, so 9/11 of the way to the new weights
    assert ema.module.weight.item() == pytest.approx(9 / 11)
    ema.n_averaged.fill_(100_000)
    layer.weight.data.fill_(0.0)
    before = ema.module.weight.item()
    ema.update_parameters(layer)  # late: the configured decay
    assert ema.module.weight.item() == pytest.approx(before * 0.999)
