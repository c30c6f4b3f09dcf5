"""The training pack a GPU stretch of the long run carries: ``python -m gan.gpu_pack``.

A lent GPU machine gets only the working tree (at most 64 MiB with what it carries) and has no package registry.
The pack (``.gpupack/``, ignored by git) holds what the tree lacks:

- ``photos/``: the long run's training photos (``data.sharp_dir``) as JPEG tiles at quality 92 without chroma
  subsampling (6.7 MiB for the 306 tiles of ``data/photos-ms/train``, against 27 MB of PNG);
- ``wheels/``: the packages the GPU image lacks (kornia, albumentations and what they need that it lacks), at the
  versions installed here, for its Python (``--python``, 3.12);
- ``pack.json``: what is in it.

``python -m gan.gpu_stretch`` unpacks it there (see its docstring for the one command).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from PIL import Image

PACK = Path(".gpupack")
LIMIT_BYTES = 50 * 2**20
CARRY_LIMIT = 64 * 2**20  # what one call to the GPU machine may carry: the tracked tree and the pack together
# What the GPU image (torch, torchvision, numpy, scipy, scikit-image, OpenCV, PyYAML, tensorboard, tqdm, pillow)
# lacks for training: device/KINDS.md's package list.
WHEELS = ("kornia", "kornia_rs", "albumentations", "albucore", "pydantic", "pydantic_core", "annotated_types",
          "typing_inspection", "simsimd", "stringzilla")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


class PackError(Exception):
    """A pack that cannot be made; the message names the file or value."""


def pack_photos(source: Path, target: Path, quality: int) -> int:
    """Every image of ``source`` as ``target/<stem>.jpg``; returns how many."""
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) if source.is_dir() else []
    if not files:
        raise PackError(f"no training photos in {source}: build them with python -m datasets.photo_sets "
                        "--out data/photos-ms --scales 2 3 4")
    target.mkdir(parents=True)
    for path in files:
        with Image.open(path) as image:
            image.convert("RGB").save(target / f"{path.stem}.jpg", "JPEG", quality=quality, subsampling=0)
    return len(files)


def download_wheels(target: Path, python: str) -> list[str]:
    """The pinned wheels of ``WHEELS`` (the versions installed here) for the GPU image's Python."""
    pins = []
    for name in WHEELS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise PackError(f"{name} is not installed here, so its version cannot be pinned: "
                            'pip install -e ".[dev]" first') from None
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", python, "--implementation", "cp", *platforms, "-d", str(target), *pins]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise PackError(f"pip could not download the wheels for Python {python}: {last}")
    return sorted(p.name for p in target.glob("*.whl"))


def tracked_bytes() -> int | None:
    """The size of the files git tracks here (what travels beside the pack), or None outside a checkout."""
    result = subprocess.run(["git", "ls-files", "-z"], capture_output=True)
    if result.returncode != 0:
        return None
    names = [Path(name) for name in result.stdout.decode().split("\0") if name]
    return sum(path.stat().st_size for path in names if path.is_file())


def build_pack(out: Path, photos: Path, quality: int = 92, python: str = "3.12", wheels: bool = True) -> dict:
    """Write the pack to ``out`` (replacing an earlier pack, never another folder); returns its record."""
    if out.exists():
        if not (out / "pack.json").is_file():
            raise PackError(f"{out} exists and is not a GPU pack (no pack.json): choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    try:
        record = {"photos_from": str(photos), "photos": pack_photos(photos, out / "photos", quality),
                  "jpeg_quality": quality, "python": python,
                  "wheels": download_wheels(out / "wheels", python) if wheels else []}
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        if size > LIMIT_BYTES:
            raise PackError(f"the pack is {size / 2**20:.1f} MiB, over {LIMIT_BYTES / 2**20:.0f} MiB: lower --quality "
                            "or pack fewer photos")
        record["bytes"] = size
        (out / "pack.json").write_text(json.dumps(record, indent=1) + "\n")
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # no half pack that looks whole
        raise
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan.gpu_pack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=Path("data/photos-ms/train"),
                        help="the long run's training photos (default data/photos-ms/train)")
    parser.add_argument("--out", type=Path, default=PACK, help=f"the pack folder (default {PACK})")
    parser.add_argument("--quality", type=int, default=92, help="JPEG quality of the photo tiles (default 92)")
    parser.add_argument("--python", default="3.12", help="the GPU image's Python version (default 3.12)")
    parser.add_argument("--no-wheels", action="store_true", help="photos only (the GPU has every package)")
    args = parser.parse_args(argv)
    if not 50 <= args.quality <= 100:
        parser.error(f"--quality must be in [50, 100], got {args.quality}")
    try:
        record = build_pack(args.out, args.photos, args.quality, args.python, not args.no_wheels)
    except (PackError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {record['photos']} photos, {len(record['wheels'])} wheels, "
          f"{record['bytes'] / 2**20:.1f} MiB")
    tree = tracked_bytes()
    if tree is not None:
        total = tree + record["bytes"]
        print(f"{'warning: ' if total > CARRY_LIMIT else ''}with the tracked tree: {total / 2**20:.1f} MiB of the "
              f"{CARRY_LIMIT / 2**20:.0f} MiB a call to the GPU machine carries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
