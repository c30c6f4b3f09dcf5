"""HIDE's test layout in evaluate.py: close-ups and long shots scored and reported apart, on a tiny real tree."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from datasets.build import list_pairs
from datasets.config import DataConfig
from helpers import run_cli, smooth_photo


def _hide_tree(root):
    rng = np.random.default_rng(11)
    (root / "GT").mkdir(parents=True)
    for subset, names in (("test-close", ["1_a.png", "1_b.png"]), ("test-long", ["2_a.png", "2_b.png", "2_c.png"])):
        (root / "test" / subset).mkdir(parents=True)
        for name in names:
            sharp = smooth_photo(rng, 32, 40)
            Image.fromarray(sharp).save(root / "GT" / name)
            blurred = Image.fromarray(sharp).resize((10, 8)).resize((40, 32), Image.BILINEAR)
            blurred.save(root / "test" / subset / name)
    return root


def test_hide_pairs_blurred_subsets_with_gt_by_name(tmp_path):
    root = _hide_tree(tmp_path / "HIDE_dataset")
    Image.fromarray(smooth_photo(np.random.default_rng(0), 32, 40)).save(root / "test" / "test-long" / "orphan.png")
    pairs, problems = list_pairs(DataConfig(source="hide", root=str(root)), "test")
    assert sorted((p.blur.parent.name, p.sharp.name) for p in pairs)[:2] == [("test-close", "1_a.png"),
                                                                            ("test-close", "1_b.png")]
    assert {p.group for p in pairs} == {"test-close", "test-long"} and len(pairs) == 5
    assert problems == [f"{root / 'test' / 'test-long' / 'orphan.png'} has no partner in {root / 'GT'}"]


@pytest.mark.subprocess
def test_evaluate_on_hide_reports_each_subset(tmp_path):
    root = _hide_tree(tmp_path / "HIDE_dataset")
    out = tmp_path / "evals"
    result = run_cli("-m", "evaluate", "--data", "hide", "--root", str(root), "--methods", "blind-rl",
                     "--rl-iterations", "2", "--metrics", "psnr", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "| subset test-close | 2 |" in result.stdout and "| subset test-long | 3 |" in result.stdout
    folder = next(out.iterdir())
    rows = list(csv.DictReader(open(folder / "per_image.csv")))
    assert sorted(r["subset"] for r in rows) == ["test-close"] * 2 + ["test-long"] * 3
    summary = json.loads((folder / "summary.json").read_text())
    close = next(g for g in summary["breakdown"] if g["group"] == "subset test-close")
    mine = [float(r["psnr"]) for r in rows if r["subset"] == "test-close"]
    assert abs(close["psnr"] - np.mean(mine)) < 1e-9


@pytest.mark.subprocess
def test_a_hide_root_without_gt_is_named(tmp_path):
    (tmp_path / "HIDE_dataset" / "test").mkdir(parents=True)
    result = run_cli("-m", "evaluate", "--data", "hide", "--root", str(tmp_path / "HIDE_dataset"), cwd=tmp_path)
    assert result.returncode == 2
    gt = tmp_path / "HIDE_dataset" / "GT"
    assert result.stderr.strip() == f"error: HIDE ground-truth folder {gt} does not exist or is not a folder"
