"""The tables evaluate.py prints and writes: one row per method (the blurred input once), and each run broken
down by kernel kind and blur extent."""

from __future__ import annotations

import json
import statistics

from .metrics import PSNR_CAP


def mean_or_none(values: list[float | None]) -> float | None:
    """The mean (infinite PSNR counted as the cap), or None when any value is missing."""
    finite = [min(v, PSNR_CAP) for v in values if v is not None]
    return statistics.fmean(finite) if finite and len(finite) == len(values) else None


# Blur extents are reported in these bins (pixels, lower bound inclusive).
EXTENT_BINS = ((0, 10), (10, 20), (20, 30), (30, 1000))


def breakdown(rows: list[dict]) -> list[dict]:
    """Mean PSNR and SSIM (restored and blurred) per kernel kind and per blur-extent bin on a benchmark, per subset
    on a real test set that has them (HIDE); [] otherwise."""
    groups: list[tuple[str, list[dict]]] = []
    if rows and "subset" in rows[0]:
        for subset in sorted({r["subset"] for r in rows}):
            groups.append((f"subset {subset}", [r for r in rows if r["subset"] == subset]))
    if rows and "extent" in rows[0]:
        for kind in sorted({r["kernel"] or "unknown" for r in rows}):
            groups.append((f"kind {kind}", [r for r in rows if (r["kernel"] or "unknown") == kind]))
        for low, high in EXTENT_BINS:
            label = f"extent {low}-{high - 1} px" if high < 1000 else f"extent {low}+ px"
            groups.append((label, [r for r in rows if low <= r["extent"] < high]))
    result = []
    for label, members in groups:
        if not members:
            continue
        entry = {"group": label, "images": len(members), "psnr": mean_or_none([r["psnr"] for r in members]),
                 "ssim": mean_or_none([r["ssim"] for r in members])}
        if "blurred_psnr" in members[0]:
            entry["blurred_psnr"] = mean_or_none([r["blurred_psnr"] for r in members])
            entry["blurred_ssim"] = mean_or_none([r["blurred_ssim"] for r in members])
        result.append(entry)
    return result


def breakdown_table(label: str, groups: list[dict]) -> str:
    lines = [f"| {label} | images | PSNR (dB) | blurred PSNR | gain (dB) | SSIM | blurred SSIM |",
             "|---|---|---|---|---|---|---|"]
    for g in groups:
        blurred = g.get("blurred_psnr")
        gain = None if blurred is None or g["psnr"] is None else g["psnr"] - blurred
        lines.append(f"| {g['group']} | {g['images']} | {_cell(g['psnr'], 2)} | {_cell(blurred, 2)} | "
                     f"{'n/a' if gain is None else f'{gain:+.2f}'} | {_cell(g['ssim'], 4)} | "
                     f"{_cell(g.get('blurred_ssim'), 4)} |")
    return "\n".join(lines)


def _cell(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown_table(summaries: list[dict], with_notes: bool = True) -> str:
    """One row per method (plus the blurred input once), on the benchmark(s) the summaries name; then the notes of
    metrics that could not run, unless ``with_notes`` is False (a scoring run has printed them already)."""
    header = "| Method | PSNR (dB) | SSIM | LPIPS (Alex) | LPIPS (VGG) | JOD | FLIP | s / image | images |"
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]

    def cells(m: dict) -> str:
        # .get: runs scored before JOD and FLIP existed show n/a there
        return (f"{_cell(m.get('psnr'), 2)} | {_cell(m.get('ssim'), 4)} | {_cell(m.get('lpips_alex'), 4)} | "
                f"{_cell(m.get('lpips_vgg'), 4)} | {_cell(m.get('jod'), 3)} | {_cell(m.get('flip'), 4)}")

    blurred = next((s for s in summaries if s.get("blurred")), None)
    if blurred is not None:
        lines.append(f"| Blurred input | {cells(blurred['blurred'])} | - | {blurred['images_scored']} |")
    for s in summaries:
        m = s["metrics"] or {}
        images = f"{s['images_scored']}" + ("" if s["complete"] else f" of {s['images_total']} (INCOMPLETE)")
        lines.append(f"| {s['label']} | {cells(m)} | {_cell(s['seconds_per_image_median'], 3)} | {images} |")
    datasets = {json.dumps(s["dataset"], sort_keys=True) for s in summaries}
    if len(datasets) > 1:
        lines.append("\nWARNING: these rows were scored on different image sets and are not comparable: "
                     + "; ".join(sorted(datasets)))
    notes = sorted({note for s in summaries for note in s.get("notes", [])})
    return "\n".join(lines + ([""] + [f"Note: {n}" for n in notes] if notes and with_notes else []))
