"""Paired per-image differences: hand-computed intervals and verdicts on real per_image.csv files."""

import csv
import json
import os
import subprocess
import sys

import pytest

from evaluation.significance import paired_difference, per_image, significance_table, verdict
from helpers import ROOT


def _run(folder, rows):
    folder.mkdir()
    with open(folder / "per_image.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["name", "psnr", "flip"])
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_a_consistent_gain_is_real_and_a_noisy_one_is_not(tmp_path):
    a = _run(tmp_path / "a", [{"name": f"i{k}", "psnr": 30 + k, "flip": 0.10} for k in range(3)])
    b = _run(tmp_path / "b", [{"name": f"i{k}", "psnr": 30 + k - d, "flip": 0.1 + f}
                               for k, d, f in ((0, 1, 0.01), (1, 2, 0.02), (2, 3, 0.03))])
    scores_a, scores_b = per_image(a), per_image(b)
    # Differences 1, 2, 3: mean 2, sd 1, standard error 1/sqrt(3), t(0.975, 2) = 4.3027 -> 2 +- 2.4841.
    psnr = paired_difference(scores_a, scores_b, "psnr")
    assert psnr["images"] == 3 and psnr["mean"] == pytest.approx(2.0)
    assert (psnr["low"], psnr["high"]) == pytest.approx((2 - 2.4841, 2 + 2.4841), abs=1e-3)
    assert verdict(psnr, "A", "B", True) == "no clear difference" and psnr["a_higher"] == 3
    # FLIP (lower is better): differences -0.01, -0.02, -0.03 -> interval excludes 0 only with more images.
    same_gain = _run(tmp_path / "c", [{"name": f"i{k}", "psnr": 29 + k, "flip": 0.1} for k in range(3)])
    constant = paired_difference(scores_a, per_image(same_gain), "psnr")
    assert constant["low"] == constant["high"] == pytest.approx(1.0)
    assert verdict(constant, "A", "C", True) == "A better"
    flip = paired_difference(scores_a, scores_b, "flip")
    assert verdict({**flip, "low": -0.03, "high": -0.01}, "A", "B", False) == "A better"
    # The table counts the images each method is better on, by the metric's direction (FLIP: lower).
    table = significance_table([(a, {"label": "A"}), (b, {"label": "B"})])
    assert "| A | B | FLIP | 3 | -0.0200 |" in table and "| 3 / 0 |" in table.split("FLIP")[1]


def test_images_scored_by_one_run_only_are_left_out_and_the_table_names_both(tmp_path):
    a = _run(tmp_path / "a", [{"name": n, "psnr": 31, "flip": ""} for n in ("x", "y", "z")])
    b = _run(tmp_path / "b", [{"name": n, "psnr": 30, "flip": ""} for n in ("x", "y")])
    assert paired_difference(per_image(a), per_image(b), "psnr")["images"] == 2
    assert paired_difference(per_image(a), per_image(b), "flip") is None  # not scored: no row, no made-up value
    table = significance_table([(a, {"label": "new"}), (b, {"label": "old"})])
    assert "| new | old | PSNR (dB) | 2 | +1.00 | [+1.00, +1.00] | 2 / 0 | new better |" in table
    assert "FLIP" not in table


@pytest.mark.subprocess
def test_compare_into_a_reader_that_stops_early_ends_quietly(tmp_path):
    """evaluate.py --compare | head: the reader closes the pipe before the table is written."""
    summary = {"label": "A", "metrics": {"psnr": 30.0}, "images_scored": 3, "images_total": 3, "complete": True,
               "seconds_per_image_median": 0.1, "dataset": {"benchmark": "x"}}
    run = _run(tmp_path / "a", [{"name": "i0", "psnr": 30, "flip": 0.1}])
    (run / "summary.json").write_text(json.dumps(summary))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    reader, writer = os.pipe()
    os.close(reader)  # nobody will read: every write fails with EPIPE
    process = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "--compare", str(run)], stdout=writer,
                             stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    os.close(writer)
    assert "Traceback" not in process.stderr and "BrokenPipeError" not in process.stderr, process.stderr
    assert process.returncode == 1
    # With a reader, the same command prints the table.
    table = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "--compare", str(run)], capture_output=True,
                           text=True, env=env, timeout=300)
    assert table.returncode == 0 and "| A | 30.00 |" in table.stdout
