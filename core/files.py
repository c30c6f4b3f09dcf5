"""Writing a file so that it is never half-written: a temporary beside it, renamed over it in one step."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def replaced_atomically(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers pick the same format); on success it is
    renamed over ``path`` in one step, so an interrupted or failed write never leaves a half-written or emptied
    file where the old one was. A hard link or symbolic link at ``path`` is replaced, not written through."""
    partial = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
