"""Is one method really better than another on these images? Paired per-image differences with a 95% interval.

A 0.1 dB difference in mean PSNR over 48 images is noise unless the per-image differences agree: the paired
test uses each image's difference (method A minus method B), their mean and a Student-t 95% confidence interval
of that mean. A difference counts as real only when the interval excludes zero.
"""

from __future__ import annotations

import csv
import itertools
import math
import statistics
from pathlib import Path

from scipy import stats

from .metrics import PSNR_CAP  # as in the means: an identical image counts as PSNR_CAP dB

# (column, label, higher is better)
METRICS = (("psnr", "PSNR (dB)", True), ("ssim", "SSIM", True), ("lpips_alex", "LPIPS (Alex)", False),
           ("lpips_vgg", "LPIPS (VGG)", False), ("jod", "JOD", True), ("flip", "FLIP", False))


def per_image(folder: Path) -> dict[str, dict[str, float]]:
    """name -> {metric: value} from a run's per_image.csv (empty cells, metrics not scored, left out)."""
    rows = {}
    with open(folder / "per_image.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            values = {}
            for column, _, _ in METRICS:
                if row.get(column) not in (None, ""):
                    value = float(row[column])
                    values[column] = min(value, PSNR_CAP) if column == "psnr" else value
            rows[row["name"]] = values
    return rows


def paired_difference(a: dict[str, dict], b: dict[str, dict], column: str) -> dict | None:
    """Mean of a - b over the images both scored, with its 95% confidence interval; None under 2 images."""
    names = sorted(n for n in a.keys() & b.keys() if column in a[n] and column in b[n])
    if len(names) < 2:
        return None
    differences = [a[n][column] - b[n][column] for n in names]
    mean = statistics.fmean(differences)
    spread = statistics.stdev(differences) / math.sqrt(len(names))
    half = stats.t.ppf(0.975, len(names) - 1) * spread
    return {"images": len(names), "mean": mean, "low": mean - half, "high": mean + half,
            "a_higher": sum(d > 0 for d in differences), "b_higher": sum(d < 0 for d in differences)}


def verdict(result: dict, a: str, b: str, higher_is_better: bool) -> str:
    if result["low"] <= 0 <= result["high"]:
        return "no clear difference"
    a_better = (result["mean"] > 0) == higher_is_better
    return f"{a if a_better else b} better"


def significance_table(runs: list[tuple[Path, dict]]) -> str:
    """Every pair of runs on PSNR; with exactly two runs, every metric both scored."""
    scores = {folder: per_image(folder) for folder, _ in runs}
    lines = ["| A | B | metric | images | mean A - B | 95% interval | images A / B better | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    metrics = METRICS if len(runs) == 2 else METRICS[:1]
    for (folder_a, a), (folder_b, b) in itertools.combinations(runs, 2):
        for column, label, higher in metrics:
            result = paired_difference(scores[folder_a], scores[folder_b], column)
            if result is None:
                continue
            digits = 2 if column == "psnr" else 4
            a_better, b_better = ((result["a_higher"], result["b_higher"]) if higher
                                  else (result["b_higher"], result["a_higher"]))
            lines.append(f"| {a['label']} | {b['label']} | {label} | {result['images']} | "
                         f"{result['mean']:+.{digits}f} | "
                         f"[{result['low']:+.{digits}f}, {result['high']:+.{digits}f}] | "
                         f"{a_better} / {b_better} | {verdict(result, a['label'], b['label'], higher)} |")
    return "\n".join(lines)
