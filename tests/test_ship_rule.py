"""The ship rule on real evaluate.py run folders (summary.json and per_image.csv as evaluate.py writes them)."""

import csv
import json
import subprocess
import sys

import pytest

from helpers import ROOT
from release.ship_rule import main

FIELDS = ["name", "psnr", "ssim", "jod", "flip"]


def _run(folder, scores, benchmark="motion-v2", fingerprint="7d2e86903126357a", complete=True):
    """An evaluate.py run folder scoring images i0, i1, ... with ``scores`` (metric -> per-image values)."""
    folder.mkdir(parents=True)
    count = len(next(iter(scores.values())))
    with open(folder / "per_image.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        for k in range(count):
            writer.writerow({"name": f"i{k}", **{metric: values[k] for metric, values in scores.items()}})
    means = {metric: sum(values) / count for metric, values in scores.items()}
    summary = {"label": folder.name, "dataset": {"benchmark": benchmark, "fingerprint": fingerprint},
               "images_total": count, "images_scored": count, "complete": complete, "metrics": means}
    (folder / "summary.json").write_text(json.dumps(summary))
    return str(folder)


SHIPPED = {"psnr": [20.0, 21.0, 22.0, 23.0], "jod": [8.0, 8.5, 9.0, 9.5], "flip": [0.20, 0.18, 0.16, 0.14]}


def _shifted(scores, **shifts):
    """``scores`` with per-image offsets added: metric -> list of offsets."""
    return {metric: [v + d for v, d in zip(values, shifts.get(metric, [0] * len(values)))]
            for metric, values in scores.items()}


def test_ships_when_better_on_one_benchmark_and_not_worse_on_the_other(tmp_path, capsys):
    old_v2 = _run(tmp_path / "v2/shipped", SHIPPED)
    new_v2 = _run(tmp_path / "v2/new", _shifted(SHIPPED, psnr=[0.1, 0.2, 0.1, 0.2]))
    old_v1 = _run(tmp_path / "v1/shipped", SHIPPED, benchmark="motion-v1", fingerprint="c5fc")
    # Worse on average on motion-v1, but not consistently: the interval spans 0, so it does not hold the file back.
    new_v1 = _run(tmp_path / "v1/new", _shifted(SHIPPED, psnr=[-0.5, 0.4, -0.3, 0.2]),
                  benchmark="motion-v1", fingerprint="c5fc")
    assert main(["--better", "psnr", old_v2, new_v2, "--not-worse", "psnr", old_v1, new_v1]) == 0
    out = capsys.readouterr().out
    assert "| better | motion-v2 | PSNR (dB) | 4 | +0.15 |" in out
    assert "| not-worse | motion-v1 | PSNR (dB) | 4 | -0.05 |" in out
    assert out.rstrip().endswith("ship: every clause holds")


def test_keeps_the_shipped_file_when_a_gain_is_not_clear_or_a_loss_is(tmp_path, capsys):
    old = _run(tmp_path / "shipped", SHIPPED)
    noisy = _run(tmp_path / "noisy", _shifted(SHIPPED, psnr=[0.6, -0.2, 0.5, -0.1]))  # mean +0.2, interval spans 0
    assert main(["--better", "psnr", old, noisy]) == 1
    assert "keep the shipped file: motion-v2 PSNR (dB) is not better (interval reaches 0)" in capsys.readouterr().out
    # Better in PSNR, consistently a little worse in JOD: the JOD clause keeps the shipped file.
    jod_worse = _run(tmp_path / "jod-worse", _shifted(SHIPPED, psnr=[0.2] * 4, jod=[-0.02, -0.03, -0.02, -0.03]))
    assert main(["--better", "psnr", old, jod_worse, "--not-worse", "jod", old, jod_worse]) == 1
    out = capsys.readouterr().out
    assert "| not-worse | motion-v2 | JOD | 4 | -0.0250 |" in out and "| no |" in out
    assert "motion-v2 JOD is worse (interval past 0)" in out and "PSNR (dB) is" not in out.splitlines()[-1]


def test_lower_is_better_metrics_are_judged_in_their_direction(tmp_path):
    old = _run(tmp_path / "shipped", SHIPPED)
    lower_flip = _run(tmp_path / "lower", _shifted(SHIPPED, flip=[-0.01, -0.02, -0.01, -0.02]))
    assert main(["--better", "flip", old, lower_flip]) == 0  # FLIP is an error: lower is better
    assert main(["--better", "flip", lower_flip, old]) == 1
    assert main(["--better", "psnr", old, lower_flip, "--not-worse", "flip", lower_flip, old]) == 1


@pytest.mark.parametrize("case, message", [
    ("other-benchmark", "scored motion-v1 (c5fc), "),
    ("other-images", "scored different images (1 in one only, e.g. i3)"),
    ("unscored", "has no jod for 4 of 4 images (e.g. i0): score it with evaluate.py --metrics ... cvvdp"),
    ("incomplete", "did not score every image of its benchmark"),
    ("same-folder", "the shipped and the candidate run are the same folder"),
    ("not-a-run", "no summary.json (not an evaluate.py run folder)"),
    ("unknown-metric", "unknown metric 'sharpness'"),
])
def test_runs_that_cannot_be_paired_are_one_line_and_exit_2(tmp_path, capsys, case, message):
    old = _run(tmp_path / "shipped", SHIPPED)
    metric, candidate = "psnr", None
    if case == "other-benchmark":
        candidate = _run(tmp_path / "new", SHIPPED, benchmark="motion-v1", fingerprint="c5fc")
    elif case == "other-images":
        candidate = _run(tmp_path / "new", {m: v[:3] for m, v in SHIPPED.items()})
    elif case == "unscored":
        metric, candidate = "jod", _run(tmp_path / "new", {"psnr": SHIPPED["psnr"]})
        old, candidate = candidate, old  # the shipped run is the one without JOD
    elif case == "incomplete":
        candidate = _run(tmp_path / "new", SHIPPED, complete=False)
    elif case == "same-folder":
        candidate = old
    elif case == "not-a-run":
        (tmp_path / "empty").mkdir()
        candidate = str(tmp_path / "empty")
    elif case == "unknown-metric":
        metric, candidate = "sharpness", _run(tmp_path / "new", SHIPPED)
    assert main(["--better", metric, old, candidate]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


@pytest.mark.subprocess
def test_the_command_line_needs_a_better_clause_and_reports_by_exit_status(tmp_path):
    old = _run(tmp_path / "shipped", SHIPPED)
    new = _run(tmp_path / "new", _shifted(SHIPPED, psnr=[0.3, 0.2, 0.3, 0.2]))
    command = [sys.executable, "-m", "release.ship_rule"]
    only_not_worse = subprocess.run(command + ["--not-worse", "psnr", old, new], cwd=ROOT, capture_output=True,
                                    text=True)
    assert only_not_worse.returncode == 2 and "at least one --better clause" in only_not_worse.stderr
    ship = subprocess.run(command + ["--better", "psnr", old, new], cwd=ROOT, capture_output=True, text=True)
    assert ship.returncode == 0 and ship.stdout.strip().endswith("ship: every clause holds")
