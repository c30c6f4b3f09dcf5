"""Where a photo manifest entry's file lives: a Debian package's absolute path, an installed pip package's data
file, or the copy ``datasets.package_photos`` took out of the package's wheel into a cache."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from core.errors import DataError

MANIFEST = Path(__file__).with_name("photo_manifest.json")


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


def module_name(source: str) -> str:
    """The import name of a pip source (scikit-image imports as skimage)."""
    return source.replace("-", "_").replace("scikit_image", "skimage")


def cached_path(entry: dict) -> Path:
    """Where datasets.package_photos keeps a pip entry's file: ``<cache>/<source>-<version>/<module>/<path>``."""
    return cache_root() / f"{entry['source']}-{entry['version']}" / module_name(entry["source"]) / entry["path"]


def source_path(entry: dict) -> Path:
    """Where an entry's file lives: an absolute path for Debian packages; for pip packages the installed package's
    file, else the cached copy (which may not exist yet: callers check)."""
    if entry["kind"] == "debian":
        return Path(entry["path"])
    spec = importlib.util.find_spec(module_name(entry["source"]))
    if spec is not None and spec.origin is not None:
        return Path(spec.origin).parent / entry["path"]
    return cached_path(entry)  # datasets.package_photos keeps them there
