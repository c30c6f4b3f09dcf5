"""The one file-hash rule of the project: photos, benchmarks, shipped weights and the scores of them are pinned by
the sha256 of their bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
