"""The photo files of pip and Debian packages, without installing the packages: ``python -m datasets.package_photos``.

Four of the six benchmark photos ship inside sporco, a sparse-coding library whose dependencies (pyfftw among them)
the project does not need. Installing it with ``--no-deps`` works but leaves pip reporting broken requirements on
every later install. Instead this downloads the pinned release's wheel (``pip download --no-deps``, or reads one
given with ``--wheel``), takes out only the files ``photo_manifest.json`` names, checks each against its pinned
sha256 and keeps them in a cache folder (``$LIGHTDEBLUR_PHOTO_CACHE``, default ``~/.cache/lightdeblur/photos``).
``datasets.photo_sets`` and ``datasets.benchmark`` look there when the package is not installed.

The training photos of Debian packages come the same way with ``--training``: the pinned .deb is downloaded with
``apt-get download`` (no root, nothing installed, none of the package's dependencies: a photo-album program's demo
photos without the program), or read from ``--deb``, and only the named files are taken out of it.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from core.errors import DataError, os_error_line
from core.files import replaced_atomically

from .photo_sources import (
    COLLECTIONS,
    MANIFEST,
    cache_root,
    cached_path,
    collection,
    member_name,
    read_manifest,
    source_path,
)


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


def download_deb(source: str, version: str, folder: Path) -> Path:
    """The .deb of ``source=version``, fetched by apt-get into ``folder`` (no dependencies, no install, no root)."""
    try:
        result = subprocess.run(["apt-get", "download", f"{source}={version}"], cwd=folder, capture_output=True,
                                text=True)
    except FileNotFoundError:
        raise DataError(f"apt-get is not on this machine to download {source} {version}; pass the package as "
                        "--deb FILE") from None
    debs = sorted(folder.glob("*.deb"))
    if result.returncode != 0 or not debs:
        last = (result.stderr.strip().splitlines() or ["no .deb was written"])[-1]
        raise DataError(f"apt-get could not download {source}={version}: {last} (or pass --deb FILE)")
    return debs[0]


def wheel_members(wheel: Path, names: set[str]) -> dict[str, bytes]:
    """The bytes of each of ``names`` found in ``wheel``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            present = names & set(archive.namelist())
            return {name: archive.read(name) for name in present}
    except (OSError, zipfile.BadZipFile) as error:
        raise DataError(f"{wheel} is not a readable wheel: {error}") from None


def deb_members(deb: Path, names: set[str]) -> dict[str, bytes]:
    """The bytes of each of ``names`` (``./usr/...``) found in the files of ``deb``, streamed from dpkg-deb (the
    package's compression, xz or zstd, is dpkg's business); nothing else is unpacked."""
    try:
        process = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise DataError(f"dpkg-deb is not on this machine to read {deb}") from None
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            for member in archive:
                if member.name in names and member.isfile():
                    found[member.name] = archive.extractfile(member).read()
    except tarfile.TarError:
        pass  # dpkg-deb's own message (below) says what is wrong with the file
    finally:
        process.stdout.close()
        error = process.stderr.read().decode(errors="replace").strip()
        process.wait()
    if process.returncode != 0:
        last = (error.splitlines() or ["it exited with status %d" % process.returncode])[-1]
        raise DataError(f"{deb} is not a readable Debian package: {last}")
    return found


def extract(archive: Path, entries: list[dict]) -> list[Path]:
    """Take ``entries``' files out of ``archive`` (a wheel or a .deb) into the cache, each checked against its
    pinned sha256 before it is written (a file in place is never half-written: each is renamed into place whole)."""
    names = {member_name(entry) for entry in entries}
    members = (deb_members if archive.suffix == ".deb" else wheel_members)(archive, names)
    written = []
    for entry in entries:
        member = member_name(entry)
        if member not in members:
            raise DataError(f"{archive} has no {member}: is it {entry['source']} {entry['version']}?")
        data = members[member]
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry["sha256"]:
            raise DataError(f"{member} in {archive} has sha256 {digest}, expected {entry['sha256']} "
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


def package_of(archive: Path) -> str:
    """The package an archive holds, by its file name: ``toy_pics-1.0-py3-none-any.whl`` is toy-pics,
    ``lxqt-themes_1.2.0-1_all.deb`` is lxqt-themes."""
    if archive.suffix == ".deb":
        return archive.name.split("_")[0]
    return archive.name.split("-")[0].lower().replace("_", "-")


def fetch(manifest: Path, archives: list[Path], training: bool = False,
          collections: tuple[str, ...] = ("core",)) -> list[Path]:
    """Every validation (benchmark) photo of ``manifest``, and with ``training`` every training photo of
    ``collections``, found neither installed nor in the cache, from ``archives`` (matched by the package's name)
    or downloaded; returns the files written."""
    wanted: dict[tuple[str, str, str], list[dict]] = {}
    for entry in read_manifest(manifest):
        if entry["split"] == "train" and not (training and collection(entry) in collections):
            continue
        if not source_path(entry).is_file():
            wanted.setdefault((entry["kind"], entry["source"], entry["version"]), []).append(entry)
    given = {package_of(archive): archive for archive in archives}
    written = []
    for (kind, source, version), entries in wanted.items():
        if source in given:
            written += extract(given[source], entries)
            continue
        download = download_deb if kind == "debian" else download_wheel
        with tempfile.TemporaryDirectory() as folder:
            written += extract(download(source, version, Path(folder)), entries)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datasets.package_photos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help="photo manifest (default: the project's)")
    parser.add_argument("--wheel", type=Path, action="append", default=[],
                        help="use this downloaded wheel instead of pip download (repeat for several)")
    parser.add_argument("--deb", type=Path, action="append", default=[],
                        help="use this downloaded Debian package instead of apt-get download (repeat for several)")
    parser.add_argument("--training", action="store_true",
                        help="the training photos too, not only the validation and benchmark photos")
    parser.add_argument("--collections", nargs="+", choices=COLLECTIONS, default=["core"],
                        help="which training photos --training takes (default: core; 'more' adds further packages)")
    args = parser.parse_args(argv)
    try:
        written = fetch(args.manifest, args.wheel + args.deb, args.training, tuple(args.collections))
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(written)} photo file(s) written to {cache_root()}" if written
          else "every package photo is already at hand (installed or cached)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
