"""ColorVideoVDP (JOD) and FLIP: known cases, evaluate.py's columns, and a missing package named in one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from datasets.kernels import gaussian_kernel
from evaluation.offline_metrics import load_cvvdp, load_flip
from evaluation.tables import markdown_table
from helpers import ROOT, run_cli, smooth_photo

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    kernel = gaussian_kernel(15, sigma)[None, None].expand(3, 1, 15, 15)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    padded = torch.nn.functional.pad(tensor, (7, 7, 7, 7), mode="reflect")
    return torch.nn.functional.conv2d(padded, kernel, groups=3)[0].permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def photo():
    return smooth_photo(np.random.default_rng(3), 96, 96).astype(np.float32) / 255.0


@pytest.fixture
def bench(bench_folder):
    return bench_folder


@pytest.mark.parametrize("load, identical, better", [(load_cvvdp, 10.0, np.greater), (load_flip, 0.0, np.less)])
def test_identical_images_score_perfectly_and_sharper_scores_better(photo, load, identical, better):
    score, reason = load()
    assert score is not None, reason
    assert score(photo, photo) == pytest.approx(identical, abs=1e-4)
    mild, strong = score(_blurred(photo, 1.0), photo), score(_blurred(photo, 3.0), photo)
    assert better(mild, strong) and better(identical, mild), (mild, strong)


@pytest.mark.subprocess
def test_evaluate_reports_jod_and_flip_per_image_and_averaged(tmp_path, bench):
    result = run_cli("-m", "evaluate", "--benchmark", str(bench), "--methods", "wiener", "--no-lpips",
                     "--out", str(tmp_path / "all"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "all" / "wiener" / "summary.json").read_text())
    assert 0 < summary["metrics"]["jod"] <= 10 and 0 < summary["metrics"]["flip"] < 1
    assert summary["blurred"]["jod"] < summary["metrics"]["jod"]  # the oracle helps, and JOD sees it
    assert "| JOD | FLIP |" in result.stdout and "standard_fhd" in summary["conventions"]
    header = (tmp_path / "all" / "wiener" / "per_image.csv").read_text().splitlines()[0].split(",")
    assert {"jod", "flip", "blurred_jod", "blurred_flip"} <= set(header)

    only_flip = run_cli("-m", "evaluate", "--benchmark", str(bench), "--methods", "wiener", "--metrics", "flip",
                        "--out", str(tmp_path / "flip"), cwd=tmp_path)
    assert only_flip.returncode == 0, only_flip.stderr
    metrics = json.loads((tmp_path / "flip" / "wiener" / "summary.json").read_text())["metrics"]
    assert metrics["flip"] is not None and metrics["jod"] is None and metrics["lpips_alex"] is None

    bogus = run_cli("-m", "evaluate", "--benchmark", str(bench), "--metrics", "vmaf", cwd=tmp_path)
    assert bogus.returncode == 2 and "invalid choice: 'vmaf'" in bogus.stderr


@pytest.mark.subprocess
def test_a_missing_metric_package_is_one_line_when_asked_for_and_a_note_otherwise(tmp_path, bench):
    # A real interpreter that cannot import flip_evaluator, as on a machine without the extra installed.
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['flip_evaluator'] = None\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{ROOT}", "NO_ALBUMENTATIONS_UPDATE": "1"}

    def evaluate(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "evaluate", "--benchmark", str(bench), "--methods", "wiener",
                               *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    asked = evaluate("--metrics", "flip", "--out", str(tmp_path / "a"))
    assert asked.returncode == 2
    assert asked.stderr.strip().splitlines()[-1] == ("error: FLIP skipped: the flip-evaluator package is not "
                                                      "installed (pip install flip-evaluator)")
    assert not (tmp_path / "a").exists()
    default = evaluate("--no-lpips", "--out", str(tmp_path / "b"))
    assert default.returncode == 0, default.stderr
    said = default.stdout + default.stderr
    assert said.count("FLIP skipped: the flip-evaluator package is not installed") == 1, said  # said once
    assert "FLIP skipped" in (tmp_path / "b" / "wiener" / "table.md").read_text()  # the saved table keeps it
    metrics = json.loads((tmp_path / "b" / "wiener" / "summary.json").read_text())["metrics"]
    assert metrics["flip"] is None and metrics["jod"] is not None  # n/a, never a made-up value


def test_tables_of_runs_scored_before_jod_and_flip_show_na():
    old = {"label": "old", "metrics": {"psnr": 30.0, "ssim": 0.9, "lpips_alex": None, "lpips_vgg": None},
           "blurred": None, "complete": True, "images_scored": 4, "images_total": 4,
           "seconds_per_image_median": 0.1, "dataset": {"benchmark": "x"}}
    assert "| old | 30.00 | 0.9000 | n/a | n/a | n/a | n/a | 0.100 | 4 |" in markdown_table([old])


@pytest.mark.subprocess
def test_training_validation_can_log_flip_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from helpers import TINY

    result = run_cli("-m", "train_gan", "--pretrain", "--name", "flip", "--set", *TINY, "train.epochs=1",
                     "log.perceptual=flip", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "FLIP " in result.stdout
    events = EventAccumulator(str(tmp_path / "experiments" / "flip" / "tensorboard"))
    events.Reload()
    assert {"val/flip", "val/flip_blurry_input"} <= set(events.Tags()["scalars"])
    assert 0 <= events.Scalars("val/flip")[-1].value < 1
    bad = run_cli("-m", "train_gan", "--pretrain", "--name", "bad", "--set", *TINY, "log.perceptual=vmaf",
                  cwd=tmp_path)
    assert bad.returncode != 0 and "log.perceptual must be one of none, cvvdp, flip, got 'vmaf'" in bad.stderr
