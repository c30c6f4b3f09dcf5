"""The ablation runner: a grid of variants as real train_gan.py runs, resumable, tabulated over seeds."""

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import yaml

from gan.ablation import load_grid
from gan.errors import ConfigError
from helpers import ROOT, TINY, run_cli

pytestmark = pytest.mark.subprocess  # every test here starts the project's scripts or servers


def _grid(tmp_path, **changes) -> str:
    grid = {"name": "tiny", "phase": "pretrain", "set": [*TINY, "train.epochs=1"], "seeds": [0, 1],
            "variants": {"base": [], "narrow": ["model.start_filters=2"]}, **changes}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return str(path)


@pytest.mark.slow  # over 20 s on a 2-core CPU
def test_a_grid_runs_each_variant_per_seed_keeps_finished_runs_and_tabulates_mean_and_spread(tmp_path):
    result = run_cli("-m", "gan.ablation", _grid(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = tmp_path / "experiments" / "ablations" / "tiny"
    runs = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert runs == ["base-seed0", "base-seed1", "narrow-seed0", "narrow-seed1"]
    assert json.loads((folder / "narrow-seed1" / "ablation_run.json").read_text())["seed"] == 1
    saved = yaml.safe_load((folder / "narrow-seed1" / "config.yaml").read_text())
    assert saved["model"]["start_filters"] == 2 and saved["experiment"]["seed"] == 1
    table = (folder / "table.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| base") or line.startswith("| narrow")]
    assert len(rows) == 2 and all(" | 2 | " in row and " ± " in row for row in rows)
    assert (folder / "curves.png").stat().st_size > 0
    # Run again: nothing is retrained, the table is the same.
    again = run_cli("-m", "gan.ablation", _grid(tmp_path), cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("kept ") == 4 and "running" not in again.stdout
    assert (folder / "table.md").read_text() == table


@pytest.mark.slow  # over 20 s on a 2-core CPU
def test_a_grid_with_a_benchmark_scores_each_runs_final_weights_there_and_tabulates_them(tmp_path, bench_folder):
    grid = _grid(tmp_path, variants={"base": []}, benchmark=str(bench_folder), metrics=["flip"])
    result = run_cli("-m", "gan.ablation", grid, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("scoring base-seed") == 2
    folder = tmp_path / "experiments" / "ablations" / "tiny"
    summaries = [json.loads((folder / "benchmark" / f"base-seed{k}" / "summary.json").read_text()) for k in (0, 1)]
    for seed, summary in enumerate(summaries):
        assert summary["complete"] and summary["dataset"]["benchmark"] == "tiny-v1"
        # The final weights: the run's newest step checkpoint, not best.pt.
        newest = sorted((folder / f"base-seed{seed}" / "checkpoints").glob("step-*.pt"))[-1]
        words = shlex.split(summary["command"])
        assert (tmp_path / words[words.index("--checkpoint") + 1]).resolve() == newest.resolve()
    header, _, row = [line for line in (folder / "table.md").read_text().splitlines() if line.startswith("|")]
    assert "val PSNR (dB)" in header and "tiny-v1 PSNR (dB)" in header and "tiny-v1 FLIP" in header
    cells = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in row.strip("|").split("|")]))
    psnr = [s["metrics"]["psnr"] for s in summaries]
    assert cells["tiny-v1 PSNR (dB)"] == f"{np.mean(psnr):.2f} ± {np.std(psnr, ddof=1):.2f}"
    assert cells["tiny-v1 blurred PSNR (dB)"].startswith(f"{summaries[0]['blurred']['psnr']:.2f} ± ")
    flip = [s["metrics"]["flip"] for s in summaries]
    assert cells["tiny-v1 FLIP"] == f"{np.mean(flip):.4f} ± {np.std(flip, ddof=1):.4f}"
    # Run again: nothing retrained or scored again.
    again = run_cli("-m", "gan.ablation", grid, cwd=tmp_path)
    assert again.returncode == 0 and "running" not in again.stdout and "scoring" not in again.stdout


@pytest.mark.slow  # over 20 s on a 2-core CPU
def test_a_grid_with_two_benchmarks_scores_and_tabulates_each(tmp_path, bench_folder):
    other = tmp_path / "other-v1"
    other.symlink_to(bench_folder)
    grid = _grid(tmp_path, variants={"base": []}, seeds=[0], benchmark=[str(bench_folder), str(other)])
    result = run_cli("-m", "gan.ablation", grid, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = tmp_path / "experiments" / "ablations" / "tiny"
    for name in (bench_folder.name, "other-v1"):
        summary = json.loads((folder / "benchmark" / name / "base-seed0" / "summary.json").read_text())
        assert summary["complete"]
        words = shlex.split(summary["command"])
        assert Path(words[words.index("--benchmark") + 1]).name == name
    header, _, row = [line for line in (folder / "table.md").read_text().splitlines() if line.startswith("|")]
    assert f"{bench_folder.name} PSNR (dB)" in header and "other-v1 PSNR (dB)" in header
    duplicate = _grid(tmp_path, benchmark=[str(bench_folder), str(bench_folder)])
    assert "two benchmarks share a folder name" in run_cli("-m", "gan.ablation", duplicate, cwd=tmp_path).stderr


def test_the_shipped_grids_are_valid_and_name_their_rows(tmp_path, bench_folder, monkeypatch):
    # The grids that score on motion-v1 and motion-v2 need them built; any benchmark folder stands in here.
    (tmp_path / "benchmarks").mkdir()
    for name in ("motion-v1", "motion-v2"):
        (tmp_path / "benchmarks" / name).symlink_to(bench_folder)
    monkeypatch.chdir(tmp_path)
    files = sorted((ROOT / "configs" / "ablations").glob("*.yaml"))
    grids = {path.stem: load_grid(path) for path in files}
    assert {"seed_table", "losses", "gan_objectives", "learning", "ladder"} <= set(grids)
    seed_table = grids["seed_table"]
    assert {run.seed for run in seed_table.runs} == {0, 1} and len(seed_table.runs) == 22
    assert {"norm-none", "norm-batch", "norm-group", "norm-channel", "upsample-transpose", "plain-last-2",
            "filters-32", "plateau"} <= {run.variant for run in seed_table.runs}
    assert grids["losses"].benchmarks[0].name == "motion-v1" and "cvvdp" in grids["losses"].metrics
    assert grids["gan_objectives"].phase == "adv"
    assert [b.name for b in grids["learning"].benchmarks] == ["motion-v2", "motion-v1"]
    assert {run.variant for run in grids["ladder"].runs} == {"one-kernel", "eight-kernels", "family"}


def test_bad_ablation_files_are_one_line_and_run_nothing(tmp_path):
    cases = [
        ({"epochs": 3}, "unknown key 'epochs'"),
        ({"variants": {}}, "variants is empty"),
        ({"variants": {"wide": ["model.start_filterz=64"]}}, "ablation variant 'wide':"),
        ({"seeds": []}, "seeds must be a non-empty list"),
        ({"name": "../escape"}, "name must be a plain folder name"),
        ({"benchmark": str(tmp_path / "nowhere")}, "is not a benchmark folder (no benchmark.json)"),
        ({"benchmark": str(tmp_path), "metrics": ["sharpness"]}, "metrics must be a non-empty list of psnr"),
        ({"metrics": ["flip"]}, "metrics is given without a benchmark"),
    ]
    for changes, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_grid(Path(_grid(tmp_path, **changes)))
    # The command line: the same message as one line, exit 2, nothing run.
    result = run_cli("-m", "gan.ablation", _grid(tmp_path, variants={}), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("error: ablation file")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "experiments").exists()
