"""Zoomed crops of one benchmark image, side by side: blurred | each method | sharp, each titled with its PSNR.

    python evaluate.py --benchmark benchmarks/motion-v1 --methods model --label pretrain --save-images
    python evaluate.py --benchmark benchmarks/motion-v1 --methods model --model gan --label gan --save-images
    python -m release.crops --benchmark benchmarks/motion-v1 --runs evaluations/motion-v1/pretrain \\
        evaluations/motion-v1/gan --out docs/crops.png

Nothing is picked by eye: unless --image names one, the image is the one whose PSNR gain under the first run is the
median gain (a typical image, neither the best nor the worst), and the crop is the square window with the most
gradient energy in the sharp image (where blur and restoration differ most). It also prints each method's gradient
energy relative to the sharp image's (median over the benchmark): how much fine structure, detail or grain, it puts
back.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core.images import read_array

TITLE_HEIGHT = 14


def _rows(run: Path) -> dict[str, dict[str, str]]:
    path = run / "per_image.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {run} is not an evaluate.py run folder")
    with path.open(newline="") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


def _label(run: Path) -> str:
    """The method's label from the run's summary.json, else the folder's name."""
    summary = run / "summary.json"
    return json.loads(summary.read_text()).get("label", run.name) if summary.is_file() else run.name


def _rgb(path: Path) -> np.ndarray:
    """8-bit RGB through the project's one image reader (EXIF orientation, modes and bit depths handled there)."""
    return (read_array(path) * 255).round().astype(np.uint8)


def typical_image(rows: dict[str, dict[str, str]]) -> str:
    """The image whose PSNR gain over the blurred input is the median gain (the lower middle one for an even count)."""
    gains = sorted((float(r["psnr"]) - float(r["blurred_psnr"]), name) for name, r in rows.items())
    return gains[(len(gains) - 1) // 2][1]


def gradient_energy_map(image: np.ndarray) -> np.ndarray:
    """Squared horizontal plus vertical differences of the grey image, per pixel."""
    gray = image.astype(np.float64).mean(axis=2)
    energy = np.zeros_like(gray)
    energy[:, 1:] += np.diff(gray, axis=1) ** 2
    energy[1:, :] += np.diff(gray, axis=0) ** 2
    return energy


def relative_gradient_energy(benchmark: Path, runs: list[Path]) -> dict[str, float]:
    """Median over the images every run restored of (gradient energy of the image) / (that of the sharp image),
    for the blurred input and each run: 1 is as much fine structure as the truth, whether it is detail or grain."""
    names = sorted(set.intersection(*(set(_rows(run)) for run in runs)))
    sources = {"blurred": benchmark / "blur", **{_label(run): run / "images" for run in runs}}
    ratios: dict[str, list[float]] = {label: [] for label in sources}
    for name in names:
        sharp = gradient_energy_map(_rgb(benchmark / "sharp" / f"{name}.png")).mean()
        for label, folder in sources.items():
            ratios[label].append(gradient_energy_map(_rgb(folder / f"{name}.png")).mean() / sharp)
    return {label: float(np.median(values)) for label, values in ratios.items()}


def busiest_window(sharp: np.ndarray, size: int, stride: int = 4) -> tuple[int, int]:
    """(top, left) of the size x size window with the most gradient energy."""
    energy = gradient_energy_map(sharp)
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best, where = -1.0, (0, 0)
    for top in range(0, energy.shape[0] - size + 1, stride):
        for left in range(0, energy.shape[1] - size + 1, stride):
            total = (integral[top + size, left + size] - integral[top, left + size]
                     - integral[top + size, left] + integral[top, left])
            if total > best:
                best, where = total, (top, left)
    return where


def _panel(image: np.ndarray, top: int, left: int, size: int, zoom: int, title: str) -> Image.Image:
    crop = Image.fromarray(image[top : top + size, left : left + size])
    crop = crop.resize((size * zoom, size * zoom), Image.NEAREST)
    panel = Image.new("RGB", (crop.width, crop.height + TITLE_HEIGHT), "white")
    panel.paste(crop, (0, TITLE_HEIGHT))
    ImageDraw.Draw(panel).text((2, 1), title, fill="black")
    return panel


def make_crops(benchmark: Path, runs: list[Path], image: str | None, size: int, zoom: int) -> tuple[Image.Image, str]:
    all_rows = [_rows(run) for run in runs]
    name = image or typical_image(all_rows[0])
    for run, rows in zip(runs, all_rows):
        if name not in rows:
            raise FileNotFoundError(f"{run} has not scored {name}")
    sharp = _rgb(benchmark / "sharp" / f"{name}.png")
    if min(sharp.shape[:2]) < size:
        raise ValueError(f"crop size {size} is larger than {name} ({sharp.shape[1]}x{sharp.shape[0]})")
    top, left = busiest_window(sharp, size)
    panels = [(_rgb(benchmark / "blur" / f"{name}.png"),
               f"blurred {float(all_rows[0][name]['blurred_psnr']):.2f} dB")]
    for run, rows in zip(runs, all_rows):
        restored = run / "images" / f"{name}.png"
        if not restored.is_file():
            raise FileNotFoundError(f"{restored} is missing: run evaluate.py with --save-images")
        panels.append((_rgb(restored), f"{_label(run)} {float(rows[name]['psnr']):.2f} dB"))
    panels.append((sharp, "sharp"))
    tiles = [_panel(array, top, left, size, zoom, title) for array, title in panels]
    gap = 6
    canvas = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), tiles[0].height), "white")
    for index, tile in enumerate(tiles):
        canvas.paste(tile, (index * (tile.width + gap), 0))
    return canvas, f"{name}, {size}x{size} at ({top}, {left}), x{zoom} nearest-neighbour"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", type=Path, required=True, help="a benchmark folder (blur/, sharp/)")
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="evaluate.py run folders (--save-images)")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--image", help="benchmark image name (default: the first run's median-gain image)")
    parser.add_argument("--size", type=int, default=64, help="crop side in pixels (default 64)")
    parser.add_argument("--zoom", type=int, default=3, help="nearest-neighbour magnification (default 3)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    try:
        if args.out.exists() and not args.overwrite:
            raise FileExistsError(f"{args.out} exists; pass --overwrite to replace it")
        canvas, what = make_crops(args.benchmark, args.runs, args.image, args.size, args.zoom)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        canvas.save(args.out)
        energy = relative_gradient_energy(args.benchmark, args.runs)
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {what}")
    print("gradient energy relative to the sharp image (median over the benchmark): "
          + ", ".join(f"{label} {ratio:.2f}" for label, ratio in energy.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
