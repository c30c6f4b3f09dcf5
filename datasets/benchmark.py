"""A fixed, seeded, versioned benchmark: blurred images, their sharp originals and the true kernels.

    python -m datasets.benchmark --out benchmarks/motion-v1 --preset motion-v1     # 21 px kernels, sRGB noise
    python -m datasets.benchmark --out benchmarks/gaussian-v1 --preset gaussian-v1
    python -m datasets.benchmark --out benchmarks/motion-v2 --preset motion-v2     # 15-35 px camera shake
    python -m datasets.benchmark --out benchmarks/motion-sv1 --preset motion-sv1   # shake with roll: varies

Built from held-out photos that no training set uses: by default the validation photos of
``photo_manifest.json`` (scikit-image's coffee and chelsea, sporco's kodim23, monarch, sail, tulips), each
checked against its pinned sha256, with 8 seeded textured 256x256 crops each (a fresh kernel per crop); or any
folder with ``--photos``. Every method evaluate.py scores (learned or classical) sees exactly these files. Layout::

    benchmark.json          version, seed, kernel mix, noise, and per image: source tile, kernel kind, sha256s
    blur/NAME.png           8-bit sRGB, 'valid' linear-light blur (no invented border) plus noise
    sharp/NAME.png          the aligned sharp target
    kernels/NAME.npy        the true kernel (float32, sums to 1) for the non-blind oracles; for a spatially
                            varying image the g x g x k x k field (its kernels at the lattice nodes)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import DataError, os_error_line
from core.hashing import sha256
from core.images import array_to_tensor, list_images, read_array, tensor_to_array

from .degradation import DegradationSpec, add_flags, changed_fields, flag, spec_from_flags
from .kernels import kernel_extent
from .photo_sets import check_pinned, texture
from .photo_sources import MANIFEST, source_path
from .presets import CUSTOM_BASE, LEGACY_KIND_NAMES, PRESETS
from .synthetic import Degradation

FORMAT_VERSION = 1
# The published benchmarks' fingerprints: a folder of that name whose files give another fingerprint is not it.
PUBLISHED = {"motion-v1": "c5fc1678cd8b65a7", "motion-v2": "7d2e86903126357a", "gaussian-v1": "0cdc8a49d6343cfd",
             "motion-sv1": "ea72a1156ae33127"}

@dataclass
class Benchmark:
    """A benchmark folder, checked on load: every listed file present and unchanged."""

    folder: Path
    meta: dict

    @classmethod
    def load(cls, folder: str | Path, verify: bool = True) -> "Benchmark":
        folder = Path(folder)
        meta_path = folder / "benchmark.json"
        if not meta_path.is_file():
            raise DataError(f"{folder} is not a benchmark folder (no benchmark.json); make one with "
                            "python -m datasets.benchmark --out FOLDER")
        meta = _read_meta(meta_path)
        bench = cls(folder, meta)
        found = fingerprint(meta["images"])
        if meta.get("fingerprint") != found:
            raise DataError(f"{meta_path} was edited: it records fingerprint {meta.get('fingerprint')}, its entries "
                            f"give {found}; rebuild the benchmark with python -m datasets.benchmark")
        published = PUBLISHED.get(meta.get("version"))
        if published and found != published:
            raise DataError(f"{folder} calls itself {meta['version']} but its fingerprint is {found}, not the "
                            f"published {published}: its images differ; rebuild it with --preset {meta['version']}")
        if verify:
            for item in meta["images"]:
                for key in ("blur", "sharp"):
                    path = folder / key / f"{item['name']}.png"
                    if not path.is_file():
                        raise DataError(f"benchmark file {path} is missing")
                    if sha256(path) != item[f"{key}_sha256"]:
                        raise DataError(f"benchmark file {path} was changed (sha256 differs from benchmark.json)")
                # Kernels are hashed since motion-v2; a rebuilt motion-v1 has their sums too.
                kernel = folder / "kernels" / f"{item['name']}.npy"
                if "kernel_sha256" in item and (not kernel.is_file() or sha256(kernel) != item["kernel_sha256"]):
                    raise DataError(f"benchmark kernel {kernel} is missing or was changed (sha256 differs from "
                                    "benchmark.json); the oracle rows would score another kernel")
        return bench

    @property
    def names(self) -> list[str]:
        return [item["name"] for item in self.meta["images"]]

    def path(self, kind: str, name: str) -> Path:
        return self.folder / kind / f"{name}.png"

    def kernel(self, name: str) -> np.ndarray:
        return np.load(self.folder / "kernels" / f"{name}.npy")


def benchmark_photos(photos: Path | None) -> list[tuple[str, np.ndarray]]:
    """(name, H x W x 3 float32) of the source photos: a folder's images, or the manifest's validation photos."""
    if photos is not None:
        return [(path.stem, read_array(path)) for path in list_images(photos)]
    found, missing = [], []
    for entry in json.loads(MANIFEST.read_text()):
        if entry["split"] != "val":
            continue
        path = source_path(entry)
        if not path.is_file():
            missing.append(entry["source"])
            continue
        check_pinned(entry, path, "the benchmark would not match published ones")
        found.append((entry["name"], read_array(path)))
    if missing:
        names = " ".join(sorted(set(missing)))
        raise DataError(f"benchmark photos need {names}'s photo files: python -m datasets.package_photos "
                        "(or pass --photos FOLDER)")
    return found


def _textured_positions(photo: np.ndarray, size: int, count: int, min_texture: float, rng) -> list[tuple[int, int]]:
    """Up to ``count`` distinct seeded window positions whose content is not flat (at most 20 draws per window)."""
    height, width = photo.shape[:2]
    positions: list[tuple[int, int]] = []
    for _ in range(20 * count):
        if len(positions) == count:
            break
        top, left = int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))
        if (top, left) not in positions and texture(photo[top : top + size, left : left + size]) >= min_texture:
            positions.append((top, left))
    return positions


def write_benchmark(
    out: Path, photos: list[tuple[str, np.ndarray]], degradation: Degradation, seed: int, tile: int,
    min_texture: float, version: str, crops_per_photo: int = 8,
) -> dict:
    for kind in ("blur", "sharp", "kernels"):
        (out / kind).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    size = tile + degradation.margin
    images = []
    for photo_name, photo in photos:
        height, width = photo.shape[:2]
        if height < size or width < size:
            raise DataError(f"benchmark photo {photo_name} is {width}x{height}, smaller than a tile plus the kernel "
                            f"margin ({size}x{size}); lower --tile")
        for top, left in _textured_positions(photo, size, crops_per_photo, min_texture, rng):
            window = photo[top : top + size, left : left + size]
            name = f"{photo_name}_{top}_{left}"
            pair = degradation(array_to_tensor(window), rng)
            for kind in ("blur", "sharp"):
                array = (tensor_to_array(pair[kind]) * 255).round().astype(np.uint8)
                Image.fromarray(array).save(out / kind / f"{name}.png")
            np.save(out / "kernels" / f"{name}.npy", pair["kernel"].numpy())
            images.append({
                "name": name, "source": photo_name, "top": top, "left": left, "kernel": pair["kind"],
                "extent": kernel_extent(pair["kernel"]),
                "kernel_sha256": sha256(out / "kernels" / f"{name}.npy"),
                "blur_sha256": sha256(out / "blur" / f"{name}.png"),
                "sharp_sha256": sha256(out / "sharp" / f"{name}.png"),
            })
    if not images:
        raise DataError("no textured tiles were found in the benchmark photos; lower --min-texture or --tile")
    meta = {
        "version": version, "format": FORMAT_VERSION, "seed": seed, "tile": tile, "min_texture": min_texture,
        "crops_per_photo": crops_per_photo,
        "kernel_size": degradation.kernel_size, "kernels": degradation.kernels,
        "noise_sigma": degradation.noise_sigma, "poisson_peak": degradation.poisson_peak,
        "saturation": degradation.saturation, "noise_space": degradation.noise_space,
        "blur_extent": list(degradation.blur_extent) if degradation.blur_extent else None, "images": images,
    }
    if degradation.field_probability > 0:  # recorded only where used: older benchmark.json files stay as they were
        meta.update(field_probability=degradation.field_probability, field_grid=degradation.field_grid,
                    max_roll_degrees=degradation.max_roll_degrees)
    meta["fingerprint"] = fingerprint(images)
    (out / "benchmark.json").write_text(json.dumps(meta, indent=1))
    return meta


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m datasets.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="benchmark folder to write (must not exist)")
    parser.add_argument("--photos", type=Path, help="folder of sharp held-out photos (default: the manifest's)")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="a published benchmark's degradation (the degradation flags override its values)")
    parser.add_argument("--tile", type=int, default=256, help="image side (default 256)")
    parser.add_argument("--crops-per-photo", type=int, default=8, help="seeded textured crops per photo (default 8)")
    parser.add_argument("--min-texture", type=float, default=0.006)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--version", help="a name recorded in benchmark.json (default: the preset's name if nothing "
                        "is overridden, else the folder name)")
    add_flags(parser, "the preset's value (without --preset: 21 px trajectory shake, read noise sigma 0.01, linear)")
    return parser.parse_args(argv)


def degradation_spec(args: argparse.Namespace) -> DegradationSpec:
    """The preset (or the custom base) with the given degradation flags laid over it; a DataError names a bad flag."""
    return spec_from_flags(args, PRESETS[args.preset] if args.preset else CUSTOM_BASE)


def changed_from_preset(args: argparse.Namespace, spec: DegradationSpec, preset: str) -> list[str]:
    """The flags in which a build differs from published benchmark ``preset``: its degradation's fields, and the
    other settings' defaults (photos, tile, crops, texture, seed)."""
    defaults = vars(parse_args(["--out", str(args.out)]))
    others = [key for key in ("photos", "tile", "crops_per_photo", "min_texture", "seed")
              if getattr(args, key) != defaults[key]]
    return sorted(changed_fields(spec, PRESETS[preset]) + others)


def fingerprint(images: list[dict]) -> str:
    """16 hex digits over every image's entry (its files' sha256s among them). It covers what motion-v1 recorded per
    image, under the names it used then (the extent was added later; its shake kernels were called "trajectory"),
    so a rebuilt preset shows the original's fingerprint."""
    legacy = [{**{k: v for k, v in item.items() if k not in ("extent", "kernel_sha256")},
               "kernel": LEGACY_KIND_NAMES.get(item["kernel"], item["kernel"])} for item in images]
    return hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()[:16]


def _read_meta(path: Path) -> dict:
    """benchmark.json, checked to be a mapping with a list of image entries (else a DataError naming it)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    images = meta.get("images") if isinstance(meta, dict) else None
    entries = isinstance(images, list) and images and all(
        isinstance(item, dict) and {"name", "blur_sha256", "sharp_sha256", "kernel"} <= set(item) for item in images)
    if not entries:
        raise DataError(f"{path} is not a benchmark description (it needs a list of images with names, kernels and "
                        "sha256s); rebuild the benchmark with python -m datasets.benchmark")
    return meta


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        spec = degradation_spec(args)
        problem = _argument_problem(args, spec)
    except DataError as error:
        problem = str(error)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.out.exists():
        print(f"error: {args.out} already exists; a benchmark is never rewritten in place (choose a new name)",
              file=sys.stderr)
        return 2
    if args.version is None:
        unchanged = args.preset and not changed_from_preset(args, spec, args.preset)
        args.version = args.preset if unchanged else args.out.name
    staging = args.out.with_name(args.out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        meta = write_benchmark(staging, benchmark_photos(args.photos), Degradation.of(spec), args.seed, args.tile,
                               args.min_texture, args.version, args.crops_per_photo)
    except (DataError, ValueError, OSError) as error:  # OSError: the folder is a file, or the disk read-only
        shutil.rmtree(staging, ignore_errors=True)
        message = os_error_line(error) if isinstance(error, OSError) else error
        print(f"error: {message}", file=sys.stderr)
        return 2
    staging.rename(args.out)
    kinds = sorted({item["kernel"] for item in meta["images"]})
    print(f"wrote benchmark {meta['version']} ({meta['fingerprint']}): {len(meta['images'])} images of "
          f"{args.tile}x{args.tile}, kernels {', '.join(kinds)}, to {args.out}")
    return 0


def _argument_problem(args: argparse.Namespace, spec: DegradationSpec) -> str:
    """Why these arguments cannot make a benchmark ("" when they can). A folder named like a published benchmark
    must hold exactly that benchmark: its preset, with nothing overridden, so its scores compare with the tables."""
    name = args.out.name
    if name in PRESETS:
        changed = changed_from_preset(args, spec, name)
        if changed:
            return (f"{args.out} is named like the published benchmark {name}, but these settings differ from it: "
                    f"{', '.join(flag(key) for key in changed)}; build it with --preset {name} and nothing else, or "
                    "choose another folder name")
    if args.version in PRESETS and changed_from_preset(args, spec, args.version):
        return (f"--version {args.version} names a published benchmark, but these settings are not its own; leave "
                "--version out (the folder's name is recorded) or build it with --preset and nothing else")
    for key in ("tile", "crops_per_photo"):
        if getattr(args, key) < 1:
            return f"{flag(key)} must be >= 1, got {getattr(args, key)}"
    if not math.isfinite(args.min_texture) or args.min_texture < 0:
        return f"--min-texture must be a finite number >= 0, got {args.min_texture}"
    return ""


if __name__ == "__main__":
    sys.exit(main())
