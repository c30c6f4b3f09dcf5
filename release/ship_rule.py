"""Should a candidate file replace the shipped one? The ship rule, applied to evaluate.py runs, paired per image.

    python -m release.ship_rule \
        --better psnr evaluations/long-run/motion-v2/shipped evaluations/long-run/motion-v2/step-21120 \
        --not-worse psnr evaluations/long-run/motion-v1/shipped evaluations/long-run/motion-v1/step-21120 \
        --not-worse jod evaluations/motion-v1/LightUNet_pretrain evaluations/motion-v1/long-run-21120

Each clause names a metric, the shipped file's run and the candidate's run of one benchmark (``evaluate.py
--methods model ... --out``; the runs must score the same images of the same benchmark). A ``--better`` clause
holds when the 95% interval of the paired difference (candidate minus shipped, evaluation/significance.py) lies on
the better side of 0; a ``--not-worse`` clause holds unless the interval lies wholly on the worse side. A mean that
is better by chance does not ship a file, and one that is worse by chance does not hold it back.

Prints one row per clause and the verdict. Exit status: 0 ship (every clause holds), 1 keep the shipped file,
2 the runs cannot be compared (one line naming the folder or value).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import DataError, ExperimentError
from evaluation.offline_metrics import COLUMN
from evaluation.scoring import read_summary
from evaluation.significance import METRICS, paired_difference, per_image

HIGHER_IS_BETTER = {column: higher for column, _, higher in METRICS}
LABELS = {column: label for column, label, _ in METRICS}
KINDS = ("better", "not-worse")
# evaluate.py --metrics names for the per_image.csv columns whose names differ.
SCORED_BY = {**{column: metric for metric, column in COLUMN.items()}, "lpips_alex": "lpips", "lpips_vgg": "lpips"}


@dataclass
class Clause:
    kind: str  # "better" | "not-worse"
    metric: str
    shipped: Path
    candidate: Path


@dataclass
class Outcome:
    clause: Clause
    benchmark: str
    difference: dict  # paired_difference of candidate minus shipped
    holds: bool


def _summary(folder: Path) -> dict:
    if not (folder / "summary.json").is_file():
        raise ExperimentError(f"{folder}: no summary.json (not an evaluate.py run folder)")
    try:
        summary = read_summary(folder / "summary.json")
    except DataError as error:
        raise ExperimentError(str(error)) from None
    if not summary.get("complete"):
        raise ExperimentError(f"{folder}: the run did not score every image of its benchmark (complete is not true)")
    return summary


def _benchmark(summary: dict) -> tuple[str, str]:
    dataset = summary.get("dataset") or {}
    return str(dataset.get("benchmark") or "?"), str(dataset.get("fingerprint") or "")


def judge(clause: Clause) -> Outcome:
    """Apply one clause; an ``ExperimentError`` where its two runs cannot be paired."""
    if clause.metric not in HIGHER_IS_BETTER:
        raise ExperimentError(f"unknown metric {clause.metric!r}; choose from {', '.join(HIGHER_IS_BETTER)}")
    if clause.shipped.resolve() == clause.candidate.resolve():
        raise ExperimentError(f"{clause.candidate}: the shipped and the candidate run are the same folder")
    summaries = [_summary(folder) for folder in (clause.shipped, clause.candidate)]
    (name, fingerprint), (other_name, other_fingerprint) = map(_benchmark, summaries)
    if (name, fingerprint) != (other_name, other_fingerprint):
        raise ExperimentError(f"{clause.candidate} scored {other_name} ({other_fingerprint or 'no fingerprint'}), "
                              f"{clause.shipped} scored {name} ({fingerprint or 'no fingerprint'}): "
                              "not the same images")
    try:
        shipped, candidate = per_image(clause.shipped), per_image(clause.candidate)
    except (OSError, KeyError, ValueError) as error:
        raise ExperimentError(f"per_image.csv of {clause.shipped} or {clause.candidate} is unreadable "
                              f"({error})") from None
    if shipped.keys() != candidate.keys():
        only = sorted(shipped.keys() ^ candidate.keys())
        raise ExperimentError(f"{clause.shipped} and {clause.candidate} scored different images ({len(only)} in one "
                              f"only, e.g. {only[0]})")
    for folder, scores in ((clause.shipped, shipped), (clause.candidate, candidate)):
        unscored = [image for image, values in scores.items() if clause.metric not in values]
        if unscored:
            raise ExperimentError(f"{folder} has no {clause.metric} for {len(unscored)} of {len(scores)} images "
                                  f"(e.g. {unscored[0]}): score it with evaluate.py --metrics ... "
                                  f"{SCORED_BY.get(clause.metric, clause.metric)}")
    difference = paired_difference(candidate, shipped, clause.metric)
    if difference is None:
        raise ExperimentError(f"{clause.candidate}: fewer than 2 images to pair")
    sign = 1 if HIGHER_IS_BETTER[clause.metric] else -1
    # The interval in the metric's better direction: above 0 is better, below 0 is worse.
    low, high = sorted((sign * difference["low"], sign * difference["high"]))
    holds = low > 0 if clause.kind == "better" else high >= 0
    return Outcome(clause, name, difference, holds)


def report(outcomes: list[Outcome]) -> tuple[str, bool]:
    """The table of clauses and the verdict line; True where every clause holds."""
    lines = ["| clause | benchmark | metric | images | candidate - shipped | 95% interval | holds |",
             "|---|---|---|---|---|---|---|"]
    for outcome in outcomes:
        d, digits = outcome.difference, 2 if outcome.clause.metric == "psnr" else 4
        lines.append(f"| {outcome.clause.kind} | {outcome.benchmark} | {LABELS[outcome.clause.metric]} | "
                     f"{d['images']} | {d['mean']:+.{digits}f} | [{d['low']:+.{digits}f}, {d['high']:+.{digits}f}] | "
                     f"{'yes' if outcome.holds else 'no'} |")
    failing = [o for o in outcomes if not o.holds]
    if not failing:
        lines.append("ship: every clause holds")
    else:
        reasons = [f"{o.benchmark} {LABELS[o.clause.metric]} is "
                   + ("not better (interval reaches 0)" if o.clause.kind == "better" else "worse (interval past 0)")
                   for o in failing]
        lines.append("keep the shipped file: " + "; ".join(reasons))
    return "\n".join(lines), not failing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for kind in KINDS:
        parser.add_argument(f"--{kind}", action="append", nargs=3, default=[],
                            metavar=("METRIC", "SHIPPED_RUN", "CANDIDATE_RUN"),
                            help=f"a clause: the candidate is {kind.replace('-', ' ')} on METRIC than the shipped file")
    args = parser.parse_args(argv)
    if not args.better:
        parser.error("give at least one --better clause: a file that is only not worse is not worth shipping")
    clauses = [Clause(kind, metric, Path(shipped), Path(candidate))
               for kind in KINDS for metric, shipped, candidate in getattr(args, kind.replace("-", "_"))]
    try:
        outcomes = [judge(clause) for clause in clauses]
    except ExperimentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text, ship = report(outcomes)
    print(text)
    return 0 if ship else 1


if __name__ == "__main__":
    sys.exit(main())
