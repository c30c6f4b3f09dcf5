"""README crops: the image and window are chosen by rule, and the figure has one titled panel per method."""

import csv

import numpy as np
import pytest
from PIL import Image

from helpers import ROOT, run_cli
from release.crops import busiest_window, typical_image


def test_the_window_is_where_the_detail_is_and_the_image_is_the_median_gain():
    image = np.full((60, 80, 3), 128, np.uint8)
    image[30:46, 50:66] = np.random.default_rng(0).integers(0, 256, (16, 16, 3))
    top, left = busiest_window(image, 16, stride=2)
    assert abs(top - 30) <= 2 and abs(left - 50) <= 2
    rows = {name: {"psnr": str(30 + gain), "blurred_psnr": "30"} for name, gain in (("a", 3), ("b", 1), ("c", 2))}
    assert typical_image(rows) == "c"


def _write_run(run, names, psnrs, rng, copy_from=None):
    (run / "images").mkdir(parents=True)
    with (run / "per_image.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["name", "psnr", "blurred_psnr"])
        writer.writeheader()
        for name, psnr in zip(names, psnrs):
            writer.writerow({"name": name, "psnr": psnr, "blurred_psnr": 25.0})
            image = Image.open(copy_from / f"{name}.png") if copy_from else Image.fromarray(
                rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
            image.save(run / "images" / f"{name}.png")


@pytest.mark.subprocess
def test_crops_figure_from_evaluation_runs(tmp_path):
    rng = np.random.default_rng(1)
    names = ["one", "two", "three"]
    for side in ("blur", "sharp"):
        (tmp_path / "bench" / side).mkdir(parents=True)
    for name in names:
        sharp = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(sharp).save(tmp_path / "bench" / "sharp" / f"{name}.png")
        Image.fromarray(sharp // 4 + 96).save(tmp_path / "bench" / "blur" / f"{name}.png")  # a quarter of the contrast
    _write_run(tmp_path / "pretrain", names, [26.0, 28.0, 27.0], rng, copy_from=tmp_path / "bench" / "sharp")
    _write_run(tmp_path / "gan", names, [25.5, 27.5, 26.5], rng)
    out = tmp_path / "crops.png"
    args = ["-m", "release.crops", "--benchmark", str(tmp_path / "bench"), "--runs", str(tmp_path / "pretrain"),
            str(tmp_path / "gan"), "--out", str(out), "--size", "16", "--zoom", "2"]
    result = run_cli(*args, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "three, 16x16" in result.stdout  # median gain of the first run: 27 dB of 26, 27, 28
    energy = result.stdout.split("(median over the benchmark): ")[1]
    assert energy.startswith("blurred 0.06, pretrain 1.00, gan ")  # (1/4)^2 of the sharp energy; a perfect copy
    figure = Image.open(out)
    assert figure.size == (4 * 32 + 3 * 6, 32 + 14)  # blurred | pretrain | gan | sharp
    before = out.read_bytes()
    assert run_cli(*args, cwd=ROOT).returncode == 2 and out.read_bytes() == before  # no silent overwrite

    (tmp_path / "gan" / "images" / "three.png").unlink()
    result = run_cli(*args, "--overwrite", cwd=ROOT)
    assert result.returncode == 2 and "three.png is missing: run evaluate.py with --save-images" in result.stderr
