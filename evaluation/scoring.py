"""Scoring restorations on a fixed set of images: per-image rows, a summary, a table, and pictures.

Every method, learned or classical, is a function ``(blurred, kernel) -> restored`` on H x W x 3 float32 arrays
in [0, 1] (``kernel`` is the true kernel where the benchmark has one, else None), scored with the conventions of
``evaluation.metrics`` against the sharp image, next to the blurred input's own scores.
"""

from __future__ import annotations

import csv
import json
import math
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from core.errors import DataError
from core.images import array_to_tensor, image_size, list_images, read_array, side_by_side, tensor_to_array
from core.pipeline import read_ahead
from datasets.kernels import kernel_extent
from datasets.paired import HIDE_TEST_SUBSETS

from .metrics import PSNR_CAP, load_lpips, psnr_per_image, ssim_per_image
from .offline_metrics import COLUMN, CVVDP_DISPLAY, LOADERS
from .tables import breakdown, breakdown_table, markdown_table, mean_or_none

CPU = torch.device("cpu")
CONVENTIONS = (
    "PSNR: RGB, 8-bit rounded, no border crop, per image then averaged (identical images count as "
    f"{PSNR_CAP:.0f} dB in the mean). SSIM: 8-bit, Gaussian window 11, sigma 1.5, per channel over valid windows, "
    "averaged. LPIPS: lpips package, AlexNet and VGG, 8-bit inputs scaled to [-1, 1]. JOD: ColorVideoVDP (cvvdp), "
    f"8-bit sRGB on its {CVVDP_DISPLAY} display model, 10 = identical. FLIP: flip-evaluator, LDR, mean of the error "
    "map at 67 pixels per degree, 0 = identical. Seconds: wall time of the method per image after one warm-up "
    "call, on the stated device."
)
Method = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]
METRICS = ("psnr", "ssim", "lpips_alex", "lpips_vgg", "jod", "flip")



@dataclass
class Item:
    name: str
    blurred: Path | None
    sharp: Path
    kernel: Callable[[], np.ndarray] | None = None  # loads the true kernel, where known
    restored: Path | None = None  # folder mode: the restoration already exists on disk
    kind: str | None = None  # the benchmark's kernel kind (trajectory, linear, ...), where known
    subset: str | None = None  # a real test set's part reported apart (HIDE's test-close and test-long)


class Scorer:
    """PSNR and SSIM of one image, and of the optional metrics asked for those that can run here: LPIPS (AlexNet
    and VGG, where their ImageNet backbones are available), ColorVideoVDP and FLIP (where their packages are
    installed). Each one that cannot run leaves a note and n/a, never a value. ``required``: metrics whose absence
    is an error instead (the user named them)."""

    def __init__(self, device: torch.device = CPU, lpips: bool = True,
                 metrics: tuple[str, ...] = ("cvvdp", "flip"), required: tuple[str, ...] = ()):
        self.device = device
        self.lpips: dict[str, Callable] = {}
        self.offline: dict[str, Callable] = {}
        self._baselines: dict[str, dict] = {}
        self.notes: list[str] = []
        for net in ("alex", "vgg") if lpips else ():
            scorer, reason = load_lpips(net, device)
            if scorer is None:
                self.notes.append(reason)
            else:
                self.lpips[net] = scorer
        for name in metrics:
            scorer, reason = LOADERS[name]()
            if scorer is None and name in required:
                raise DataError(reason)
            if scorer is None:
                self.notes.append(reason)
            else:
                self.offline[COLUMN[name]] = scorer

    @torch.no_grad()
    def __call__(self, restored: np.ndarray, sharp: np.ndarray) -> dict[str, float | None]:
        prediction = array_to_tensor(restored)[None].to(self.device)
        target = array_to_tensor(sharp)[None].to(self.device)
        scores = {
            "psnr": psnr_per_image(prediction, target).item(),
            "ssim": ssim_per_image(prediction, target).item(),
        }
        for net in ("alex", "vgg"):
            scores[f"lpips_{net}"] = self.lpips[net](prediction, target).item() if net in self.lpips else None
        for column in ("jod", "flip"):
            scores[column] = self.offline[column](restored, sharp) if column in self.offline else None
        return scores

    def baseline(self, name: str, blurred: np.ndarray, sharp: np.ndarray) -> dict[str, float | None]:
        """The blurred input's scores, computed once per image however many methods are scored."""
        if name not in self._baselines:
            self._baselines[name] = self(blurred, sharp)
        return self._baselines[name]


def folder_items(restored: Path, sharp: Path, blurred: Path | None = None) -> list[Item]:
    """Restorations matched to sharp images (and optionally blurred inputs) by relative path without suffix.
    Every missing counterpart and size mismatch is an error naming the files."""
    def index(folder: Path, what: str) -> dict[str, Path]:
        return {str(p.relative_to(folder).with_suffix("")): p for p in list_images(folder, f"{what} folder")}

    restored_files, sharp_files = index(restored, "restored"), index(sharp, "sharp")
    blurred_files = index(blurred, "blurred") if blurred is not None else None
    problems = [f"{restored_files[n]} has no sharp counterpart in {sharp}"
                for n in sorted(set(restored_files) - set(sharp_files))]
    problems += [f"{sharp_files[n]} has no restored counterpart in {restored}"
                 for n in sorted(set(sharp_files) - set(restored_files))]
    if blurred_files is not None:
        problems += [f"{sharp_files[n]} has no blurred counterpart in {blurred}"
                     for n in sorted(set(sharp_files) - set(blurred_files))]
    items = []
    for name in sorted(set(restored_files) & set(sharp_files)):
        paths = [restored_files[name],
                 sharp_files[name]] + ([blurred_files[name]] if blurred_files and name in blurred_files else [])
        sizes = {path: image_size(path, verify=True) for path in paths}  # verify: a truncated file fails here
        if len(set(sizes.values())) > 1:
            problems.append("sizes differ: " + ", ".join(f"{p} is {w}x{h}" for p, (w, h) in sizes.items()))
            continue
        items.append(Item(name, blurred_files.get(name) if blurred_files else None, sharp_files[name],
                          restored=restored_files[name]))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DataError(problems[0] + more)
    return items


def benchmark_items(benchmark) -> list[Item]:
    return [
        Item(name, benchmark.path("blur", name), benchmark.path("sharp", name),
             kernel=lambda n=name: benchmark.kernel(n),
             kind=item["kernel"])
        for name, item in zip(benchmark.names, benchmark.meta["images"])
    ]


def pair_items(pairs, root: Path) -> list[Item]:
    """Items from ``datasets.paired.Pair``s (a real dataset's test split), named by path below ``root``."""
    def name(path: Path) -> str:
        try:
            return str(path.relative_to(root).with_suffix(""))
        except ValueError:
            return str(path.with_suffix("")).lstrip("/")
    # HIDE's groups are its subsets; other layouts' groups (GoPro sequences, RealBlur scenes) are not reported apart.
    subsets = {p.group for p in pairs} <= {"train", *HIDE_TEST_SUBSETS}
    return [Item(name(p.blur), p.blur, p.sharp, subset=p.group if subsets else None) for p in pairs]


def _save_png(array: np.ndarray, path: Path) -> None:
    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(path)


@dataclass
class Evaluation:
    label: str
    out: Path
    dataset: dict
    device: str = "cpu"
    extremes: int = 3
    save_images: bool = False
    weights: dict | None = None  # a model's weights file: path and sha256

    def run(self, items: list[Item], method: Method | None, scorer: Scorer, needs_kernel: bool = False) -> dict:
        """Score ``method`` on every item (or the restorations already on disk when ``method`` is None)."""
        if not items:
            raise DataError("nothing to evaluate: no images")
        if needs_kernel and any(item.kernel is None for item in items):
            raise DataError(f"method {self.label} needs the true kernels, which only a benchmark folder has")
        self.out.mkdir(parents=True, exist_ok=True)
        if method is not None:  # warm-up: allocator, oneDNN primitives, lazy imports; not timed
            first = items[0]
            method(read_array(first.blurred), first.kernel() if first.kernel else None)
        rows, failures = [], []
        kept: dict[str, np.ndarray] = {}  # restorations of the current best and worst images, for the pictures
        interactive = sys.stderr.isatty()

        def load(item: Item):  # on a reading thread, one image ahead of the scoring (core/pipeline.py)
            sharp = read_array(item.sharp)
            blurred = read_array(item.blurred) if item.blurred is not None else None
            restored = read_array(item.restored) if method is None else None
            return sharp, blurred, restored, item.kernel() if item.kernel else None

        progress = tqdm(total=len(items), desc=self.label, unit="image", disable=not interactive)
        for item, loaded in read_ahead(items, load):
            progress.update()
            try:
                if isinstance(loaded, Exception):
                    raise loaded
                sharp, blurred, restored, kernel = loaded
                seconds = None
                if method is not None:
                    start = time.perf_counter()
                    restored = method(blurred, kernel)
                    seconds = time.perf_counter() - start
                if restored.shape != sharp.shape:
                    raise DataError(f"{item.name}: restored {restored.shape[:2]} and sharp {sharp.shape[:2]} differ "
                                    "in size")
            except DataError as error:
                failures.append(str(error))
                print(f"skipped: {error}", file=sys.stderr)
                continue
            row = {"name": item.name, **scorer(restored, sharp), "seconds": seconds}
            if item.kernel is not None:
                row.update(kernel=item.kind, extent=kernel_extent(torch.from_numpy(kernel)))  # read once, in load
            if item.subset is not None:
                row["subset"] = item.subset
            if blurred is not None:
                row.update({f"blurred_{k}": v for k, v in scorer.baseline(item.name, blurred, sharp).items()})
            rows.append(row)
            kept[item.name] = restored
            ranked = sorted(rows, key=lambda r: r["psnr"])
            extremes = {r["name"] for r in ranked[: self.extremes] + ranked[-self.extremes :]}
            kept = {name: array for name, array in kept.items() if name in extremes}
            if self.save_images and method is not None:
                target = self.out / "images" / f"{item.name}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                _save_png(restored, target)
        progress.close()
        summary = self._summary(rows, len(items), failures, scorer.notes)
        summary["breakdown"] = breakdown(rows)
        self._write(rows, summary, items, kept)
        return summary

    def _summary(self, rows: list[dict], total: int, failures: list[str], notes: list[str]) -> dict:
        metrics = {m: mean_or_none([r.get(m) for r in rows]) for m in METRICS} if rows else {}
        blurred = ({m: mean_or_none([r.get(f"blurred_{m}") for r in rows]) for m in METRICS}
                   if rows and "blurred_psnr" in rows[0] else None)
        seconds = [r["seconds"] for r in rows if r["seconds"] is not None]
        return {
            "label": self.label,
            "dataset": self.dataset,
            "images_total": total,
            "images_scored": len(rows),
            "complete": len(rows) == total,  # a partial result is never reported as complete
            "failures": failures,
            "metrics": metrics,
            "blurred": blurred,
            "psnr_identical_images": sum(1 for r in rows if math.isinf(r["psnr"])),
            "seconds_per_image_median": statistics.median(seconds) if seconds else None,
            "device": self.device,
            "torch": torch.__version__,
            "conventions": CONVENTIONS,
            "notes": notes,
            "weights": self.weights,
            "command": shlex.join(sys.argv),  # quoted: it can be pasted back into a shell
        }

    def _write(self, rows: list[dict], summary: dict, items: list[Item], kept: dict[str, np.ndarray]) -> None:
        columns = ["name", *METRICS,
                   "seconds"] + ([f"blurred_{m}" for m in METRICS] if rows and "blurred_psnr" in rows[0] else [])
        columns += ["kernel", "extent"] if rows and "extent" in rows[0] else []
        columns += ["subset"] if rows and "subset" in rows[0] else []
        with open(self.out / "per_image.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        (self.out / "table.md").write_text(markdown_table([summary]) + "\n")
        if rows:
            self._histogram(rows)
            self._extremes(rows, {item.name: item for item in items}, kept)
        if summary["breakdown"]:
            (self.out / "breakdown.md").write_text(breakdown_table(self.label, summary["breakdown"]) + "\n")
            if "extent" in rows[0]:  # the plot is gain against blur extent
                self._breakdown_plot(rows)

    def _breakdown_plot(self, rows: list[dict]) -> None:
        """PSNR gain over the blurred input against blur extent, one colour per kernel kind."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
        for kind in sorted({r["kernel"] or "unknown" for r in rows}):
            mine = [r for r in rows if (r["kernel"] or "unknown") == kind and r.get("blurred_psnr") is not None]
            axes.scatter([r["extent"] for r in mine], [min(r["psnr"], PSNR_CAP) - min(r["blurred_psnr"], PSNR_CAP)
                                                       for r in mine], s=14, label=kind)
        axes.axhline(0, color="grey", linewidth=0.8)
        axes.set_xlabel("blur extent (px, longer side of the kernel's support)")
        axes.set_ylabel("PSNR gain over blurred (dB)")
        axes.set_title(f"{self.label}: gain by kernel kind and extent")
        axes.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(self.out / "breakdown.png")
        plt.close(figure)

    def _histogram(self, rows: list[dict]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
        restored = [min(r["psnr"], PSNR_CAP) for r in rows]
        bins = np.linspace(min(restored + [r.get("blurred_psnr") or min(restored) for r in rows]) - 0.5,
                           max(restored + [r.get("blurred_psnr") or max(restored) for r in rows]) + 0.5, 25)
        if "blurred_psnr" in rows[0]:
            axes.hist([r["blurred_psnr"] for r in rows], bins=bins, alpha=0.5, label="blurred input")
        axes.hist(restored, bins=bins, alpha=0.7, label=self.label)
        axes.set_xlabel("PSNR (dB, 8-bit RGB)")
        axes.set_ylabel("images")
        axes.set_title(f"{self.label}: {len(rows)} images")
        axes.legend()
        figure.tight_layout()
        figure.savefig(self.out / "psnr_hist.png")
        plt.close(figure)

    def _extremes(self, rows: list[dict], items: dict[str, Item], kept: dict[str, np.ndarray]) -> None:
        """blurred | restored | sharp of the best and worst images by PSNR (the seed report's extreme cases)."""
        ranked = sorted(rows, key=lambda r: r["psnr"], reverse=True)
        count = min(self.extremes, len(ranked))
        picks = [("best", i, r) for i, r in enumerate(ranked[:count], 1)]
        picks += [("worst", i, r) for i, r in enumerate(reversed(ranked[-count:]), 1)]
        for tag, rank, row in picks:
            item = items[row["name"]]
            panels = [read_array(item.blurred)] if item.blurred is not None else []
            panels += [kept[item.name], read_array(item.sharp)]
            safe = item.name.replace("/", "_").replace("\\", "_")
            canvas = side_by_side([array_to_tensor(panel) for panel in panels])
            _save_png(tensor_to_array(canvas), self.out / f"{tag}_{rank}_{safe}.png")


def load_runs(paths: list[Path]) -> list[tuple[Path, dict]]:
    """(run folder, its summary.json) for each run folder given; a folder holding run folders contributes all of
    them, in name order."""
    runs = []
    for path in paths:
        if (path / "summary.json").is_file():
            runs.append((path, read_summary(path / "summary.json")))
            continue
        found = sorted(path.glob("*/summary.json")) if path.is_dir() else []
        if not found:
            raise DataError(f"{path} has no summary.json (nor do its sub-folders): is it an evaluate.py output?")
        runs += [(p.parent, read_summary(p)) for p in found]
    return runs


def read_summary(path: Path) -> dict:
    """An evaluate.py summary.json, checked to hold what the tables and comparisons read (else a DataError)."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("label"), str) \
            or not isinstance(summary.get("metrics"), dict):
        raise DataError(f"{path} is not an evaluate.py summary (it needs a label and metrics); rerun evaluate.py")
    return summary
