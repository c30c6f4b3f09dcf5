"""Bad input to the training command: each case gets one clear line, a non-zero exit, and the disk as it was.

The README's "Bad input" table lists every case across the project and the test that covers it; the data,
inference and evaluation cases live beside their features (test_bad_data, test_inference, test_evaluate).
"""

import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.checkpoint import load_checkpoint
from helpers import ROOT, TINY, one_error_line, run_cli, snapshot, spawns

pytestmark = pytest.mark.subprocess  # every test here starts the project's scripts or servers

SAVE_EVERY_STEP = [*TINY, "train.checkpoint_every=1", "train.keep_last=10"]


def train_in_process(*args: str, cwd: Path, monkeypatch, capsys) -> subprocess.CompletedProcess:
    """``train_gan.main`` in this process: the cases that stop before training need no fresh interpreter."""
    import train_gan

    monkeypatch.chdir(cwd)
    capsys.readouterr()
    try:
        code = train_gan.main(list(args))
    except SystemExit as exit:  # argparse's usage errors
        code = exit.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


@pytest.fixture(scope="module")
@spawns
def finished_run(tmp_path_factory) -> Path:
    """A tiny pretrain run with a checkpoint at every step: step-00000001.pt ... step-00000004.pt and best.pt."""
    workdir = tmp_path_factory.mktemp("bad-input")
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "run", "--set", *SAVE_EVERY_STEP, cwd=workdir)
    assert result.returncode == 0, result.stderr
    return workdir


@pytest.fixture
def workdir(finished_run, tmp_path) -> Path:
    """A private copy of the finished run, so each case can damage it."""
    shutil.copytree(finished_run, tmp_path / "w")
    return tmp_path / "w"


@pytest.fixture
@spawns
def resume(monkeypatch, capsys):
    """``train_gan.py <phase> --resume ARGS`` run in this process, in ``workdir``."""
    def run(workdir: Path, *args: str, phase: str = "--pretrain") -> subprocess.CompletedProcess:
        return train_in_process(phase, "--resume", *args, cwd=workdir, monkeypatch=monkeypatch, capsys=capsys)
    return run


def test_a_corrupt_newest_checkpoint_is_named_and_the_previous_good_one_offered(workdir, resume):
    newest = workdir / "experiments" / "run" / "checkpoints" / "step-00000004.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # cut short, as by a failing disk
    before = snapshot(workdir)
    line = one_error_line(resume(workdir, "experiments/run"))
    previous = "experiments/run/checkpoints/step-00000003.pt"
    assert line.startswith("error: checkpoint experiments/run/checkpoints/step-00000004.pt is corrupt or truncated")
    assert line.endswith(f"the previous good checkpoint is {previous}: continue from it with --resume {previous}")
    assert snapshot(workdir) == before
    # Taking the offer finishes the run (a real subprocess) and replaces the broken file.
    result = run_cli("-m", "train_gan", "--pretrain", "--resume", previous, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(newest)["step"] == 4


def test_infer_offers_the_previous_good_checkpoint_too(workdir):
    best = workdir / "experiments" / "run" / "checkpoints" / "best.pt"
    best.write_bytes(b"not a checkpoint")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(workdir / "a.png")
    before = snapshot(workdir)
    result = run_cli("-m", "infer", "--input", "a.png", "--output", "b.png", "--checkpoint", str(best), cwd=workdir)
    assert one_error_line(result).endswith("the previous good checkpoint is "
                                           f"{best.parent / 'step-00000004.pt'}")
    assert snapshot(workdir) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["experiments/run", "--set", "model.start_filters=8"],
         "--set model.start_filters would change the run being resumed"),
        (["experiments/run", "--set", "train.lr=1e-3"], "--set train.lr would change the run being resumed"),
        (["experiments/nothing"], "--resume experiments/nothing: no such checkpoint file or experiment folder"),
        (["experiments"], "experiments is not an experiment folder (no config.yaml)"),
    ],
)
def test_resume_refuses_what_would_not_be_the_same_run(workdir, resume, args, message):
    before = snapshot(workdir)
    assert message in one_error_line(resume(workdir, *args))
    assert snapshot(workdir) == before


def test_a_checkpoint_of_another_run_or_phase_is_refused(workdir, resume):
    other = run_cli("-m", "train_gan", "--pretrain", "--name", "wide", "--set", *TINY, "model.start_filters=8",
                    "train.epochs=1", cwd=workdir)
    assert other.returncode == 0, other.stderr
    stray = workdir / "experiments" / "run" / "checkpoints" / "step-00000009.pt"
    shutil.copy(workdir / "experiments" / "wide" / "checkpoints" / "step-00000002.pt", stray)
    before = snapshot(workdir)
    line = one_error_line(resume(workdir, "experiments/run"))
    assert "checkpoint experiments/run/checkpoints/step-00000009.pt does not belong to" in line
    assert "differ in model.start_filters (8 vs 4)" in line
    assert "from the 'pretrain' phase, not 'adv': resume it with --pretrain" in one_error_line(
        resume(workdir, "experiments/wide", phase="--adv"))
    assert snapshot(workdir) == before


def test_resume_takes_neither_a_config_nor_overwrite(workdir, resume):
    result = resume(workdir, "experiments/run", "--config", "configs/pretrain.yaml")
    assert result.returncode == 2 and "--resume continues a run with its own config.yaml" in result.stderr


def test_a_run_without_checkpoints_or_any_run_at_all_says_so(tmp_path, resume):
    (tmp_path / "experiments" / "empty").mkdir(parents=True)
    (tmp_path / "experiments" / "empty" / "config.yaml").write_text("{}\n")
    assert "experiment experiments/empty has no step checkpoint to resume from" in one_error_line(
        resume(tmp_path, "experiments/empty"))
    assert "no adv run with a checkpoint under experiments/ to resume" in one_error_line(
        resume(tmp_path, phase="--adv"))


def test_data_that_changed_since_the_run_began_is_refused(photo_folder, tmp_path, resume):
    options = [*TINY, "data.source=folder", f"data.sharp_dir={photo_folder}", "train.epochs=1"]
    result = run_cli("-m", "train_gan", "--pretrain", "--name", "f", "--set", *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    next(photo_folder.glob("*.png")).unlink()
    before = snapshot(tmp_path)
    line = one_error_line(resume(tmp_path, "experiments/f"))
    assert "the data changed since experiments/f began" in line and "restore the files or start a new run" in line
    assert snapshot(tmp_path) == before


def test_a_full_disk_stops_the_run_keeping_every_checkpoint(workdir):
    """A real write failure: the file-size limit makes the kernel refuse the write (EFBIG), as a full disk would."""
    checkpoints = workdir / "experiments" / "run" / "checkpoints"
    before = snapshot(checkpoints)

    def small_files_only():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, resource.RLIM_INFINITY))

    result = subprocess.run(
        [sys.executable, "-m", "train_gan", "--pretrain", "--resume", str(checkpoints / "step-00000002.pt")],
        # No bytecode: under the limit a module compiled by this process would be cached truncated (the write is
        # cut short without an error), and every later import of it would fail.
        cwd=workdir, env={"PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1", "PATH": "/usr/bin:/bin",
                          "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, preexec_fn=small_files_only, timeout=300,
    )
    line = one_error_line(result)
    assert f"cannot write checkpoint {checkpoints / 'step-00000003.pt'}: File too large" in line
    assert f"the newest complete one is {checkpoints / 'step-00000004.pt'}" in line
    assert snapshot(checkpoints) == before  # no partial file, nothing replaced


def test_an_unwritable_experiment_root_is_named_before_any_work(tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    result = train_in_process("--pretrain", "--set", *TINY, "experiment.root=a-file/experiments", cwd=tmp_path,
                              monkeypatch=monkeypatch, capsys=capsys)
    assert "cannot write experiment folder a-file/experiments/" in one_error_line(result)
    assert (tmp_path / "a-file").read_text() == "not a folder"


@pytest.mark.parametrize("make, message", [
    (lambda folder: None, "contains no images"),
    (lambda folder: Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / "small.png"),
     "smaller than the crop plus kernel margin"),
])
def test_empty_and_too_small_photo_folders_are_named(tmp_path, make, message, monkeypatch, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    make(folder)
    result = train_in_process("--pretrain", "--set", *TINY, "data.source=folder", f"data.sharp_dir={folder}",
                              cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert message in one_error_line(result)
    assert not (tmp_path / "experiments").exists()


def test_a_photo_with_nan_after_decoding_is_named(photo_folder, tmp_path, monkeypatch, capsys):
    validation = tmp_path / "val"
    validation.mkdir()
    Image.fromarray(np.full((64, 64), np.nan, np.float32), mode="F").save(validation / "nan.tif")
    result = train_in_process("--pretrain", "--set", *TINY, "data.source=folder", f"data.sharp_dir={photo_folder}",
                              f"data.val_sharp_dir={validation}", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert "nan.tif contains non-finite values after decoding" in one_error_line(result)
    assert not (tmp_path / "experiments").exists()
