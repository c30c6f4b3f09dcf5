"""Where a photo manifest entry's file lives: a Debian package's installed file (an absolute path), an installed pip
package's data file, or the copy ``datasets.package_photos`` took out of the package's .deb or wheel into a cache.

Each entry pins one file: ``name``, ``source`` (the package), ``version``, ``kind`` (``debian`` or ``pip``), ``path``,
``split`` (``train`` or ``val``: validation and benchmark photos), ``sha256``, ``licence`` (as the package's copyright
file or documentation states it for that file) and optionally ``collection`` (``core``, the default set every
recipe trains on, or ``more``: further photos a set is built with on request).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from core.errors import DataError

MANIFEST = Path(__file__).with_name("photo_manifest.json")
COLLECTIONS = ("core", "more")
# Import names that are not the package's name with dashes made underscores.
IMPORT_NAMES = {"scikit-image": "skimage", "scikit-learn": "sklearn"}


def read_manifest(manifest: Path) -> list[dict]:
    """The manifest's entries; a DataError naming the file when it cannot be read."""
    try:
        return json.loads(Path(manifest).read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read photo manifest {manifest}: {error}") from None


def cache_root() -> Path:
    """Where package photos are kept: ``$LIGHTDEBLUR_PHOTO_CACHE`` or ``~/.cache/lightdeblur/photos``."""
    configured = os.environ.get("LIGHTDEBLUR_PHOTO_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lightdeblur" / "photos"


def collection(entry: dict) -> str:
    """The collection an entry belongs to (entries written before collections existed are ``core``)."""
    return entry.get("collection", "core")


def module_name(source: str) -> str:
    """The import name of a pip source (scikit-image imports as skimage)."""
    return IMPORT_NAMES.get(source, source.replace("-", "_"))


def member_name(entry: dict) -> str:
    """The entry's file inside its package's archive: ``<module>/<path>`` in a wheel, ``./<path>`` in a .deb."""
    if entry["kind"] == "debian":
        return "./" + entry["path"].lstrip("/")
    return f"{module_name(entry['source'])}/{entry['path']}"


def cached_path(entry: dict) -> Path:
    """Where datasets.package_photos keeps an entry's file: ``<cache>/<source>-<version>/<member>``."""
    # Debian versions may hold an epoch ("4:5.27.5-2"): a colon is no folder name on every system.
    version = entry["version"].replace(":", "_")
    return cache_root() / f"{entry['source']}-{version}" / member_name(entry).removeprefix("./")


def source_path(entry: dict) -> Path:
    """Where an entry's file lives: for Debian packages the installed file, else the cached copy; for pip packages
    the installed package's file, else the cached copy (which may not exist yet: callers check)."""
    if entry["kind"] == "debian":
        installed = Path(entry["path"])
        # An entry without a version (a manifest of one's own files) can only be the file at its path.
        return installed if installed.is_file() or "version" not in entry else cached_path(entry)
    spec = importlib.util.find_spec(module_name(entry["source"]))
    if spec is not None and spec.origin is not None:
        return Path(spec.origin).parent / entry["path"]
    return cached_path(entry)  # datasets.package_photos keeps them there
