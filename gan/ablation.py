"""Run a grid of config variants as ordinary experiments, then tabulate and plot their validation scores.

    python -m gan.ablation configs/ablations/seed_table.yaml              # sequential, resumable
    python -m gan.ablation configs/ablations/seed_table.yaml --gpus 0 1   # one run per GPU at a time
    python -m gan.ablation configs/ablations/seed_table.yaml --report     # the table and plot of what has run

The file names a base config, overrides for every variant, the seeds, and the variants (name -> overrides)::

    name: seed-table                 # runs go to <experiment.root>/ablations/seed-table/<variant>-seed<k>/
    phase: pretrain                  # pretrain | adv
    config: configs/pretrain.yaml
    set: [train.epochs=4]            # applied to every variant
    seeds: [0, 1]                    # experiment.seed; each variant runs once per seed
    benchmark: benchmarks/motion-v1  # optional: score each run's final weights there with evaluate.py
                                     # (or a list: [benchmarks/motion-v1, benchmarks/motion-v2])
    metrics: [psnr, ssim, flip]      # optional: what evaluate.py scores on the benchmark (default psnr ssim)
    variants:
      baseline: []
      filters-32: [model.start_filters=32]

Each run is a ``train_gan.py`` subprocess in its own experiment folder: a finished run is kept (and skipped when the
command runs again), an interrupted one is resumed with ``--resume``. ``table.md`` and ``curves.png`` beside the runs
give each variant's final validation PSNR and SSIM (and JOD or FLIP where the runs logged them) as the mean and
standard deviation over its seeds; with a benchmark, also its scores there (``evaluate.py --methods model`` on the
newest step checkpoint, EMA weights where the run kept them), each run's evaluation in ``benchmark/<run>/`` (with
several benchmarks, ``benchmark/<benchmark name>/<run>/``, so ``evaluate.py --compare`` pairs one benchmark's runs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from core.checkpoint import step_checkpoints
from core.resources import resource_dir
from evaluation.curves import read_scalars
from evaluation.offline_metrics import METRIC_CHOICES

from .config import load_config, load_yaml
from .errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"name", "phase", "config", "set", "seeds", "variants", "benchmark", "metrics"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
DONE = "ablation_run.json"  # written beside a run once train_gan.py has returned 0
# Final validation figures read from the runs' TensorBoard events: (tag, column, format).
COLUMNS = (("val/psnr", "PSNR (dB)", "{:.2f}"), ("val/ssim", "SSIM", "{:.4f}"), ("val/jod", "JOD", "{:.3f}"),
           ("val/flip", "FLIP", "{:.4f}"))
# Benchmark figures read from evaluate.py's summary.json: (evaluate.py --metrics name, summary key, column, format);
# lower is better for LPIPS and FLIP.
BENCHMARK_COLUMNS = (("psnr", "psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "ssim", "SSIM", "{:.4f}"),
                     ("lpips", "lpips_alex", "LPIPS (Alex)", "{:.4f}"), ("cvvdp", "jod", "JOD", "{:.3f}"),
                     ("flip", "flip", "FLIP", "{:.4f}"))


@dataclass
class Run:
    variant: str
    seed: int
    folder: Path
    overrides: list[str]


@dataclass
class Grid:
    name: str
    phase: str
    config: Path
    runs: list[Run]
    folder: Path
    benchmarks: tuple[Path, ...] = ()
    metrics: tuple[str, ...] = ("psnr", "ssim")

    def evaluations(self, benchmark: Path) -> Path:
        """evaluate.py's output folder for ``benchmark``: one run folder (named as the run) per scored run."""
        return self.folder / "benchmark" / (benchmark.name if len(self.benchmarks) > 1 else "")

    def summary(self, run: Run, benchmark: Path) -> Path:
        """The summary.json of ``run``'s scores on ``benchmark``."""
        return self.evaluations(benchmark) / run.folder.name / "summary.json"


def load_grid(path: Path) -> Grid:
    """The grid in ``path``, every variant's config checked before anything runs (one ConfigError otherwise)."""
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read ablation file {path}: {str(error).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"ablation file {path} must be a mapping with {', '.join(sorted(KEYS))}")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ConfigError(f"ablation file {path}: unknown key {unknown[0]!r}; known: {', '.join(sorted(KEYS))}")
    name, phase = raw.get("name"), raw.get("phase", "pretrain")
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"ablation file {path}: name must be a plain folder name, got {name!r}")
    if phase not in ("pretrain", "adv"):
        raise ConfigError(f"ablation file {path}: phase must be pretrain or adv, got {phase!r}")
    variants, common, seeds = raw.get("variants"), raw.get("set") or [], raw.get("seeds", [0])
    if not isinstance(variants, dict) or not variants:
        raise ConfigError(f"ablation file {path}: variants is empty; give at least one name -> list of overrides")
    if not isinstance(common, list) or not all(isinstance(item, str) for item in common):
        raise ConfigError(f"ablation file {path}: set must be a list of SECTION.KEY=VALUE strings")
    whole_numbers = isinstance(seeds, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    if not seeds or not whole_numbers:
        raise ConfigError(f"ablation file {path}: seeds must be a non-empty list of whole numbers, got {seeds!r}")
    benchmarks, metrics = _benchmarks(path, raw)
    config = Path(raw.get("config") or resource_dir("configs") / f"{phase}.yaml")
    if not config.is_absolute() and not config.is_file():
        config = ROOT / config
    base = load_config(config, common)
    folder = Path(base.experiment.root) / "ablations" / name
    runs = []
    for variant, overrides in variants.items():
        overrides = overrides or []
        if not isinstance(variant, str) or not NAME.match(variant):
            raise ConfigError(f"ablation file {path}: variant name {variant!r} must be a plain folder name")
        if not isinstance(overrides, list) or not all(isinstance(item, str) for item in overrides):
            raise ConfigError(f"ablation file {path}: variant {variant!r} must be a list of SECTION.KEY=VALUE strings")
        for seed in seeds:
            run_overrides = [*common, *overrides, f"experiment.seed={seed}", f"experiment.root={folder}",
                             f"experiment.name={variant}-seed{seed}"]
            try:
                load_config(config, run_overrides)
            except ConfigError as error:
                raise ConfigError(f"ablation variant {variant!r}: {error}") from None
            runs.append(Run(variant, seed, folder / f"{variant}-seed{seed}", run_overrides))
    return Grid(name, phase, config, runs, folder, benchmarks, metrics)


def _benchmarks(path: Path, raw: dict) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """The grid's benchmark folders (each checked to be one, so a missing build fails before hours of training)
    and the metrics to score there."""
    benchmarks, metrics = raw.get("benchmark"), raw.get("metrics", ["psnr", "ssim"])
    if not isinstance(metrics, list) or not metrics or not all(m in METRIC_CHOICES for m in metrics):
        raise ConfigError(f"ablation file {path}: metrics must be a non-empty list of {', '.join(METRIC_CHOICES)}, "
                          f"got {metrics!r}")
    if benchmarks is None:
        if "metrics" in raw:
            raise ConfigError(f"ablation file {path}: metrics is given without a benchmark to score them on")
        return (), tuple(metrics)
    for benchmark in benchmarks if isinstance(benchmarks, list) and benchmarks else [benchmarks]:
        if not isinstance(benchmark, str) or not (Path(benchmark) / "benchmark.json").is_file():
            raise ConfigError(f"ablation file {path}: benchmark {benchmark!r} is not a benchmark folder (no "
                              "benchmark.json); build it with python -m datasets.benchmark")
    folders = tuple(Path(b) for b in (benchmarks if isinstance(benchmarks, list) else [benchmarks]))
    if len({folder.name for folder in folders}) < len(folders):
        raise ConfigError(f"ablation file {path}: two benchmarks share a folder name ({[str(f) for f in folders]})")
    return folders, tuple(dict.fromkeys(["psnr", "ssim", *metrics]))


def command(grid: Grid, run: Run) -> list[str]:
    script = [sys.executable, str(ROOT / "train_gan.py"), f"--{grid.phase}"]
    if run.folder.is_dir():  # started before and not finished: continue it exactly
        return [*script, "--resume", str(run.folder)]
    return [*script, "--config", str(grid.config), "--set", *run.overrides]


def evaluate_command(grid: Grid, run: Run, benchmark: Path) -> list[str]:
    """evaluate.py on ``benchmark`` with the run's final weights (the newest step checkpoint)."""
    final = step_checkpoints(run.folder / "checkpoints")[0]
    return [sys.executable, str(ROOT / "evaluate.py"), "--benchmark", str(benchmark), "--methods", "model",
            "--checkpoint", str(final), "--label", run.folder.name, "--out", str(grid.evaluations(benchmark)),
            "--overwrite", "--metrics", *grid.metrics]


def evaluate_runs(grid: Grid, say=print) -> list[Run]:
    """Score every finished run on every benchmark where it has no complete evaluation yet; returns the runs
    that failed."""
    failed = []
    for benchmark in grid.benchmarks:
        for run in grid.runs:
            if not (run.folder / DONE).is_file() or _complete_summary(grid.summary(run, benchmark)) is not None:
                continue
            say(f"scoring {run.folder.name} on {benchmark}")
            log_path = grid.folder / f"{run.folder.name}.log"  # after the run's own training log
            with open(log_path, "a") as log:
                process = subprocess.run(evaluate_command(grid, run, benchmark), stdout=log, stderr=subprocess.STDOUT)
            if process.returncode != 0 or _complete_summary(grid.summary(run, benchmark)) is None:
                failed.append(run)
                say(f"scoring {run.folder.name} on {benchmark} failed (exit {process.returncode}); see {log_path}")
    return list(dict.fromkeys(failed))


def _complete_summary(path: Path) -> dict | None:
    """The evaluation summary at ``path`` where it exists and scored every image, else None."""
    if not path.is_file():
        return None
    found = json.loads(path.read_text())
    return found if found.get("complete") is True else None


def run_grid(grid: Grid, gpus: list[str], say=print) -> list[Run]:
    """Run every unfinished run, ``len(gpus)`` at a time (sequentially without GPUs), then score the finished ones
    on the benchmark where the grid names one; returns the failed ones."""
    pending = [run for run in grid.runs if not (run.folder / DONE).is_file()]
    for run in grid.runs:
        if run not in pending:
            say(f"kept {run.folder.name} (finished earlier)")
    slots = gpus or [None]
    active: list[tuple[Run, subprocess.Popen, str | None]] = []
    failed: list[Run] = []
    grid.folder.mkdir(parents=True, exist_ok=True)
    while pending or active:
        free = [slot for slot in slots if slot not in [used for _, _, used in active]]
        while pending and free:
            run, slot = pending.pop(0), free.pop(0)
            env = dict(os.environ)
            if slot is not None:
                env["CUDA_VISIBLE_DEVICES"] = slot
            log = open(grid.folder / f"{run.folder.name}.log", "a")
            say(f"running {run.folder.name}" + (f" on GPU {slot}" if slot is not None else ""))
            active.append((run, subprocess.Popen(command(grid, run), stdout=log, stderr=subprocess.STDOUT, env=env,
                                                 cwd=Path.cwd()), slot))
            log.close()
        time.sleep(0.2)
        for item in list(active):
            run, process, _ = item
            if process.poll() is None:
                continue
            active.remove(item)
            if process.returncode == 0:
                (run.folder / DONE).write_text(json.dumps({"variant": run.variant, "seed": run.seed,
                                                           "overrides": run.overrides}))
            else:
                failed.append(run)
                say(f"{run.folder.name} failed (exit {process.returncode}); see {grid.folder / run.folder.name}.log")
    return failed + evaluate_runs(grid, say)


BLURRY = "val/psnr_blurry_input"


def report(grid: Grid) -> str:
    """Write table.md and curves.png for the finished runs; returns the table."""
    finished = [run for run in grid.runs if (run.folder / DONE).is_file()]
    # Each run's events are read once: the final value of every column, and the PSNR curve for the plot.
    curves = {id(run): read_scalars(run.folder, [*(tag for tag, _, _ in COLUMNS), BLURRY]) for run in finished}
    scores = {key: {tag: float(values[-1]) for tag, (_, values) in run_curves.items() if len(values)}
              for key, run_curves in curves.items()}
    shown = [column for column in COLUMNS if any(column[0] in s for s in scores.values())]
    columns = [(lambda run, tag=tag: scores[id(run)].get(tag), name, fmt)
               for tag, name, fmt in (*shown, (BLURRY, "blurred PSNR (dB)", "{:.2f}"))]
    if grid.benchmarks:
        columns = [(getter, f"val {name}", fmt) for getter, name, fmt in columns]
    for benchmark in grid.benchmarks:
        bench = {id(run): _benchmark_scores(grid.summary(run, benchmark)) for run in finished}
        columns += [(lambda run, key=key, bench=bench: bench[id(run)].get(key), f"{benchmark.name} {name}", fmt)
                    for metric, key, name, fmt in BENCHMARK_COLUMNS if metric in grid.metrics]
        columns.append((lambda run, bench=bench: bench[id(run)].get("blurred_psnr"),
                        f"{benchmark.name} blurred PSNR (dB)", "{:.2f}"))
    header = ["Variant", "seeds", *(name for _, name, _ in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant in dict.fromkeys(run.variant for run in grid.runs):
        runs = [run for run in finished if run.variant == variant]
        cells = [variant, str(len(runs))]
        for getter, _, fmt in columns:
            cells.append(_mean_and_spread([value for run in runs if (value := getter(run)) is not None], fmt))
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    grid.folder.mkdir(parents=True, exist_ok=True)
    names = ", ".join(benchmark.name for benchmark in grid.benchmarks)
    where = "" if not grid.benchmarks else (f"; {names}: evaluate.py on the final weights of each run, mean over "
                                            "the benchmark's images")
    (grid.folder / "table.md").write_text(
        f"Final validation scores of `{grid.name}` (mean ± sample standard deviation over seeds{where})\n\n{table}")
    _plot(grid, finished, {key: run_curves["val/psnr"] for key, run_curves in curves.items()})
    return table


def _benchmark_scores(summary: Path) -> dict[str, float]:
    """A run's mean benchmark metrics and the blurred input's PSNR, from its complete evaluation (else nothing)."""
    found = _complete_summary(summary)
    if found is None:
        return {}
    values = {metric: value for metric, value in found["metrics"].items() if value is not None}
    if found.get("blurred") and found["blurred"].get("psnr") is not None:
        values["blurred_psnr"] = found["blurred"]["psnr"]
    return values


def _mean_and_spread(values: list[float], fmt: str) -> str:
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(np.mean(values))} ± {fmt.format(np.std(values, ddof=1))}"


def _plot(grid: Grid, finished: list[Run], psnr: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4), dpi=100)
    for index, variant in enumerate(dict.fromkeys(run.variant for run in finished)):
        curves = [psnr[id(run)] for run in finished if run.variant == variant]
        steps = sorted(set.intersection(*(set(s.tolist()) for s, _ in curves)))
        if not steps:
            continue
        values = np.array([[dict(zip(s.tolist(), v.tolist()))[step] for step in steps] for s, v in curves])
        # The colour cycle has 10 colours: later variants are dashed, so no two curves look alike.
        axis.plot(steps, values.mean(0), marker="o", linestyle="-" if index < 10 else "--",
                  label=f"{variant} ({len(curves)} seed{'s' * (len(curves) > 1)})")
        if len(curves) > 1:
            axis.fill_between(steps, values.min(0), values.max(0), alpha=0.2)
    axis.set_xlabel("step")
    axis.set_ylabel("validation PSNR (dB)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the curves, never over them
    figure.tight_layout()
    figure.savefig(grid.folder / "curves.png")
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan.ablation", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="ablation YAML (name, phase, config, set, seeds, variants)")
    parser.add_argument("--gpus", nargs="+", default=[], help="run one variant per listed GPU at a time")
    parser.add_argument("--report", action="store_true", help="only write the table and plot of finished runs")
    args = parser.parse_args(argv)
    try:
        grid = load_grid(args.file)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = [] if args.report else run_grid(grid, args.gpus, say=lambda text: print(text, flush=True))
    print(report(grid), end="")
    print(f"wrote {grid.folder / 'table.md'} and {grid.folder / 'curves.png'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
