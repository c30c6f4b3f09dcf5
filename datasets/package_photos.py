"""The photo files of pip packages, without installing the packages: ``python -m datasets.package_photos``.

Four of the six benchmark photos ship inside sporco, a sparse-coding library whose dependencies (pyfftw among them)
the project does not need. Installing it with ``--no-deps`` works but leaves pip reporting broken requirements on
every later install. Instead this downloads the pinned release's wheel (``pip download --no-deps``, or reads one
given with ``--wheel``), takes out only the files ``photo_manifest.json`` names, checks each against its pinned
sha256 and keeps them in a cache folder (``$LIGHTDEBLUR_PHOTO_CACHE``, default ``~/.cache/lightdeblur/photos``).
``datasets.photo_sets`` and ``datasets.benchmark`` look there when the package is not installed.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from core.errors import DataError, os_error_line
from core.files import replaced_atomically

from .photo_sources import MANIFEST, cache_root, cached_path, module_name, read_manifest, source_path


def download_wheel(source: str, version: str, folder: Path) -> Path:
    """The wheel of ``source==version``, fetched by pip into ``folder`` (no dependencies, no install)."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               f"{source}=={version}", "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(folder.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["no wheel was written"])[-1]
        raise DataError(f"pip could not download {source}=={version}: {last} (or pass --wheel FILE)")
    return wheels[0]


def extract(wheel: Path, entries: list[dict]) -> list[Path]:
    """Take ``entries``' files out of ``wheel`` into the cache, each checked against its pinned sha256 before it
    is written (a file in place is never half-written: each is renamed into place whole)."""
    written = []
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as error:
        raise DataError(f"{wheel} is not a readable wheel: {error}") from None
    with archive:
        for entry in entries:
            member = f"{module_name(entry['source'])}/{entry['path']}"
            try:
                data = archive.read(member)
            except KeyError:
                raise DataError(f"{wheel} has no {member}: is it {entry['source']} {entry['version']}?") from None
            digest = hashlib.sha256(data).hexdigest()
            if digest != entry["sha256"]:
                raise DataError(f"{member} in {wheel} has sha256 {digest}, expected {entry['sha256']} "
                                f"(not {entry['source']} {entry['version']}?)")
            target = cached_path(entry)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with replaced_atomically(target) as partial:
                    partial.write_bytes(data)
            except OSError as error:
                raise DataError(os_error_line(error)) from None
            written.append(target)
    return written


def fetch(manifest: Path, wheels: list[Path]) -> list[Path]:
    """Every pip entry of ``manifest`` found neither in its installed package nor in the cache, from ``wheels``
    (matched by the package's name) or downloaded; returns the files written."""
    wanted: dict[tuple[str, str], list[dict]] = {}
    for entry in read_manifest(manifest):
        if entry["kind"] == "pip" and not source_path(entry).is_file():
            wanted.setdefault((entry["source"], entry["version"]), []).append(entry)
    given = {wheel.name.split("-")[0].lower().replace("_", "-"): wheel for wheel in wheels}
    written = []
    for (source, version), entries in wanted.items():
        if source in given:
            written += extract(given[source], entries)
            continue
        with tempfile.TemporaryDirectory() as folder:
            written += extract(download_wheel(source, version, Path(folder)), entries)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets.package_photos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="photo manifest (default: the project's)")
    parser.add_argument("--wheel", type=Path, action="append", default=[],
                        help="use this downloaded wheel instead of pip download (repeat for several)")
    args = parser.parse_args(argv)
    try:
        written = fetch(args.manifest, args.wheel)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(written)} photo file(s) written to {cache_root()}" if written
          else "every package photo is already at hand (installed or cached)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
