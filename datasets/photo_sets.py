"""Build the installable sharp-photo sets: ``python -m datasets.photo_sets --out data/photos``.

Training photos come from Debian wallpaper packages (real photographs, many megapixels) and scikit-image (the
embedded source's training photos, with fine natural texture), validation and benchmark photos from pip packages
(scikit-image's coffee and chelsea, sporco), and the two splits never share a photo. Every source file is checked
against the sha256 pinned in ``photo_manifest.json`` (Debian releases change files; a changed file changes every
result). JPEG sources (and lossless ones above 2 MP) are downscaled by 2, which averages away JPEG blocking and
sensor noise so the "sharp" targets really are sharp; small lossless sources are kept at full size. ``--scales 2 3
4`` adds tiles of the same photos reduced by 3 and 4: a wallpaper reduced by 2 is mostly smooth at the pixel level
(median tile texture 0.008 against 0.024 for the benchmark photos, which are whole scenes at 768x512), and stronger
reductions pack more scene detail into each pixel, as those photos do. Photos are cut into square tiles and flat
tiles (sky, fog, out-of-focus background, whose pairs teach nothing about deblurring) are dropped, and so are tiny
or heavily compressed training photos (``datasets/photo_rules.py``, which also refuses a training photo that looks
like a validation photo). ``--collections core more`` adds the photos of further pinned packages to the training
split. The output folder gets ``train/``, ``val/`` and a ``manifest.json`` of what was used, dropped and why; train
with ``configs/photos.yaml``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import DataError
from core.hashing import sha256
from core.images import open_image

from .photo_rules import MIN_JPEG_QUALITY, MIN_SIDE, drop_reason, lookalike, reductions, thumbnail
from .photo_sources import COLLECTIONS, MANIFEST, collection, read_manifest, source_path

INSTALL_HINTS = {
    "debian": "install it (apt-get install -y --no-install-recommends {source}) or get its photo files without "
              "installing it: python -m datasets.package_photos --training --collections core more",
    "pip": "get its photo files (no install) with: python -m datasets.package_photos",
}


def texture(tile: np.ndarray) -> float:
    """Mean absolute luminance gradient in [0, 1] units per pixel: near 0 for flat regions."""
    luminance = tile[..., :3] @ np.array([0.299, 0.587, 0.114])
    return float((np.abs(np.diff(luminance, axis=0)).mean() + np.abs(np.diff(luminance, axis=1)).mean()) / 2)


def check_pinned(entry: dict, path: Path, hint: str) -> None:
    """A DataError naming the file and both hashes when ``path`` is not the file the manifest pinned."""
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise DataError(
            f"{path} has sha256 {digest}, expected {entry['sha256']} (a different {entry['source']} release?); {hint}"
        )


def tiles_of(image: np.ndarray, size: int) -> list[tuple[int, int, np.ndarray]]:
    """Non-overlapping ``size`` tiles, centred so the unused border is split evenly."""
    height, width = image.shape[:2]
    top0, left0 = (height % size) // 2, (width % size) // 2
    return [
        (top, left, image[top : top + size, left : left + size])
        for top in range(top0, height - size + 1, size)
        for left in range(left0, width - size + 1, size)
    ]


def build_photo_sets(
    out: Path, tile: int, min_texture: float, check_hashes: bool = True, manifest: Path = MANIFEST,
    scales: tuple[int, ...] = (2,), collections: tuple[str, ...] = ("core",), min_side: int = MIN_SIDE,
    min_quality: float = MIN_JPEG_QUALITY,
) -> dict:
    entries = [entry for entry in read_manifest(manifest)
               if entry["split"] != "train" or collection(entry) in collections]
    record = {"tile": tile, "min_texture": min_texture, "scales": list(scales), "collections": list(collections),
              "sources": [], "missing": [], "dropped_photos": [], "tiles": {"train": [], "val": []},
              "dropped_flat": []}
    missing_packages: dict[str, str] = {}
    benchmark_looks: dict[str, np.ndarray] = {}
    for entry in sorted(entries, key=lambda entry: entry["split"] != "val"):  # validation photos first
        path = source_path(entry)
        if not path.is_file():
            missing_packages[entry["source"]] = INSTALL_HINTS[entry["kind"]].format(source=entry["source"])
            record["missing"].append(str(path))
            continue
        if check_hashes:
            check_pinned(entry, path,
                         "pass --no-hash-check to accept it, knowing results will not match published ones")
        full = open_image(path).convert("RGB")  # upright: EXIF orientation applied
        with Image.open(path) as encoded:  # the file as stored: its format and JPEG tables
            factors = reductions(encoded, entry["split"], scales)
            reason = drop_reason(encoded, min_side, min_quality) if entry["split"] == "train" else None
        if entry["split"] == "val":
            benchmark_looks[entry["name"]] = thumbnail(full)
        elif (twin := lookalike(full, benchmark_looks)) is not None:
            raise DataError(f"training photo {path} looks like the validation photo {twin}: the benchmarks are "
                            "cut from the validation photos, which are never trained on")
        if reason is not None:
            record["dropped_photos"].append({"name": entry["name"], "file": str(path), "why": reason})
            continue
        for factor in factors:
            image = full.reduce(factor) if factor > 1 else full  # box filter: averages JPEG blocks and noise away
            record["sources"].append({**entry, "file": str(path), "downscale": factor, "size": list(image.size)})
            # The first scale keeps the names of a single-scale set, so --scales 2 rebuilds it file for file.
            suffix = "" if factor == factors[0] else f"_x{factor}"
            _write_tiles(np.asarray(image), tile, min_texture, out / entry["split"], entry["name"] + suffix,
                         record, entry["split"])
    for source, hint in missing_packages.items():
        print(f"warning: {source} is not installed, its photos are left out; {hint}", file=sys.stderr)
    for split in ("train", "val"):
        if not record["tiles"][split]:
            raise DataError(f"no {split} photos were found; install: " + "; ".join(missing_packages.values()))
    (out / "manifest.json").write_text(json.dumps(record, indent=1))
    return record


def _write_tiles(array: np.ndarray, tile: int, min_texture: float, split_dir: Path, stem: str, record: dict,
                 split: str) -> None:
    split_dir.mkdir(parents=True, exist_ok=True)
    for top, left, crop in tiles_of(array, tile):
        name = f"{stem}_{top}_{left}.png"
        score = texture(crop.astype(np.float32) / 255)
        if score < min_texture:
            record["dropped_flat"].append({"name": name, "texture": round(score, 5)})
            continue
        Image.fromarray(crop).save(split_dir / name)
        record["tiles"][split].append({"name": name, "texture": round(score, 5)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets.photo_sets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/photos"), help="output folder (default data/photos)")
    parser.add_argument("--tile", type=int, default=256, help="square tile side in pixels (default 256)")
    parser.add_argument("--min-texture", type=float, default=0.006,
                        help="drop tiles whose mean luminance gradient is below this (default 0.006)")
    parser.add_argument("--manifest", type=Path, default=MANIFEST,
                        help="JSON list of pinned source photos (default: the bundled one); use your own to pin "
                        "your own collection")
    parser.add_argument("--scales", type=int, nargs="+", default=[2], metavar="FACTOR",
                        help="reductions of the JPEG training photos, each cut into tiles (default 2; e.g. 2 3 4)")
    parser.add_argument("--collections", nargs="+", choices=COLLECTIONS, default=["core"],
                        help="which training photos (default: core, the set the shipped models trained on; "
                        "'more' adds further pinned packages' photos)")
    parser.add_argument("--min-side", type=int, default=MIN_SIDE,
                        help=f"drop training photos whose shorter side is under this (default {MIN_SIDE} px)")
    parser.add_argument("--min-jpeg-quality", type=float, default=MIN_JPEG_QUALITY,
                        help=f"drop training JPEGs saved below this IJG quality (default {MIN_JPEG_QUALITY})")
    parser.add_argument("--no-hash-check", action="store_true", help="accept source files whose sha256 changed")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    args = parser.parse_args(argv)
    if args.tile < 32:
        print(f"error: --tile must be >= 32, got {args.tile}", file=sys.stderr)
        return 2
    if any(factor < 1 for factor in args.scales) or len(set(args.scales)) != len(args.scales):
        print(f"error: --scales must be distinct whole factors >= 1, got {args.scales}", file=sys.stderr)
        return 2
    if args.min_side < 0 or not 0 <= args.min_jpeg_quality <= 100:
        print(f"error: --min-side must be >= 0 and --min-jpeg-quality in [0, 100], got {args.min_side} and "
              f"{args.min_jpeg_quality:g}", file=sys.stderr)
        return 2
    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        print(f"error: {args.out} already exists and is not empty; pass --overwrite to rebuild it", file=sys.stderr)
        return 2
    staging = args.out.with_name(args.out.name + ".partial")
    try:
        if staging.exists():
            shutil.rmtree(staging)
        record = build_photo_sets(staging, args.tile, args.min_texture, not args.no_hash_check, args.manifest,
                                  tuple(args.scales), tuple(args.collections), args.min_side, args.min_jpeg_quality)
    except DataError as error:
        shutil.rmtree(staging, ignore_errors=True)
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.out.exists():
        shutil.rmtree(args.out)
    staging.rename(args.out)  # the old set is replaced only once the new one is complete
    counts = {split: len(tiles) for split, tiles in record["tiles"].items()}
    print(f"wrote {counts['train']} training and {counts['val']} validation tiles of {args.tile}x{args.tile} to "
          f"{args.out} from {len({s['name'] for s in record['sources']})} photos "
          f"({len(record['dropped_photos'])} photos and {len(record['dropped_flat'])} flat tiles dropped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
