"""Validation curves of training runs from their TensorBoard events, as one PNG for the docs or a model card.

    python -m evaluation.curves --runs experiments/light-unet-v2-cpu --out docs/curves_pretrain.png
    python -m evaluation.curves --runs experiments/long-run --out docs/curves_long_run.png \
        --benchmarks evaluations/long-run/motion-v1 evaluations/long-run/motion-v2

Plots validation PSNR (and the blurred input's, dashed) against the step, and the training loss (smoothed) below,
for each run given; every point is one the run logged, nothing is interpolated. ``--benchmarks`` adds a panel of
benchmark scores: every evaluation (``evaluate.py --out``) in each folder whose weights are a checkpoint of a long
run is a point at its global step (read from the summary, or from a ``step-N.pt`` file name); the others (the
bundled file the run is measured against) are level lines. Scores are plotted as gains over the blurred input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np


def read_scalars(run: Path, tags: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """tag -> (steps, values) over all of a run's event files (a resumed run has several), each file read once
    however many tags are asked for; a tag the run never logged has empty arrays."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: dict[str, dict[int, float]] = {tag: {} for tag in tags}
    for events in sorted((run / "tensorboard").glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        logged = accumulator.Tags()["scalars"]
        for tag in tags:
            if tag in logged:
                points[tag].update({event.step: event.value for event in accumulator.Scalars(tag)})
    result = {}
    for tag, by_step in points.items():
        steps = np.array(sorted(by_step))
        result[tag] = steps, np.array([by_step[s] for s in steps])
    return result


def scalars(run: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one scalar tag over all of a run's event files."""
    return read_scalars(run, [tag])[tag]


def benchmark_points(folder: Path) -> tuple[list[tuple[int, float]], dict[str, float], float | None]:
    """One benchmark's evaluations: (global step, PSNR) of each long-run checkpoint scored, sorted; label -> PSNR of
    the evaluations of other files; and the blurred input's PSNR."""
    points, levels, blurred = [], {}, None
    for summary_file in sorted(folder.glob("*/summary.json")):
        summary = json.loads(summary_file.read_text())
        if not summary.get("complete") or summary["metrics"].get("psnr") is None:
            continue
        weights = summary.get("weights") or {}
        step = weights.get("global_step")
        named = re.fullmatch(r"step-(\d+)\.pt", Path(weights.get("path", "")).name)
        if step is None and named:
            step = int(named.group(1))  # the checkpoint's own name (core.checkpoint names them by step)
        if step is None:
            levels[summary["label"]] = summary["metrics"]["psnr"]
        else:
            points.append((int(step), summary["metrics"]["psnr"]))
        blurred = summary.get("blurred", {}).get("psnr", blurred)
    return sorted(points), levels, blurred


def _plot_benchmarks(axes, folders: list[Path]) -> None:
    """Gains over the blurred input, so benchmarks 10 dB apart share one scale."""
    for index, folder in enumerate(folders):
        points, levels, blurred = benchmark_points(folder)
        if blurred is None or not (points or levels):
            raise ValueError(f"{folder} holds no complete evaluation with PSNR (evaluate.py --out {folder})")
        colour = f"C{index}"
        if points:
            steps, psnr = zip(*points)
            axes.plot(steps, [value - blurred for value in psnr], marker="s", color=colour,
                      label=f"{folder.name}: long run")
        for label, psnr in levels.items():
            axes.axhline(psnr - blurred, color=colour, linestyle="--", linewidth=1, label=f"{folder.name}: {label}")
    axes.axhline(0, color="grey", linestyle=":", linewidth=1)
    axes.set_ylabel("benchmark PSNR over\nthe blurred input (dB)")
    axes.legend(fontsize=7, ncol=2)
    axes.grid(alpha=0.3)


def plot(runs: list[Path], out: Path, smoothing: int = 20, benchmarks: list[Path] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    if benchmarks:
        figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(7, 8), dpi=100, sharex=True)
        _plot_benchmarks(middle, benchmarks)
    else:
        figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), dpi=100, sharex=True)
    for run in runs:
        curves = read_scalars(run, ["val/psnr", "val/psnr_blurry_input", "train/loss"])
        steps, psnr = curves["val/psnr"]
        if len(steps) == 0:
            raise ValueError(f"{run} has no val/psnr events (has it finished an epoch?)")
        top.plot(steps, psnr, marker="o", label=f"{run.name}: restored")
        blurry_steps, blurry = curves["val/psnr_blurry_input"]
        top.plot(blurry_steps, blurry, linestyle="--", label=f"{run.name}: blurred input")
        loss_steps, loss = curves["train/loss"]
        if len(loss):
            window = max(1, min(smoothing, len(loss)))
            smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
            bottom.plot(loss_steps[window - 1 :], smooth, label=run.name)
    top.set_ylabel("validation PSNR (dB)")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    bottom.set_ylabel(f"training loss ({smoothing}-point mean)")
    bottom.set_xlabel("global step (a long run: every stretch on one axis)")
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.curves", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="experiment folders")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--smoothing", type=int, default=20, help="training-loss points averaged (default 20)")
    parser.add_argument("--benchmarks", type=Path, nargs="+", default=[],
                        help="evaluation folders of one benchmark each (evaluate.py --out): a panel of their scores")
    args = parser.parse_args(argv)
    missing = [run for run in args.runs if not (run / "tensorboard").is_dir()]
    missing += [folder for folder in args.benchmarks if not folder.is_dir()]
    if missing:
        kind = "an experiment folder" if missing[0] in args.runs else "a folder of evaluations"
        what = "has no tensorboard/ folder" if missing[0] in args.runs else "does not exist"
        print(f"error: {missing[0]} {what}: is it {kind}?", file=sys.stderr)
        return 2
    try:
        plot(args.runs, args.out, args.smoothing, args.benchmarks)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
