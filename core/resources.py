"""Where the project's data folders are: weights/ (the shipped models) and configs/ (the experiment recipes).

In a checkout, or an editable install, they sit beside the packages. A built wheel carries them as data files
(pyproject's ``[tool.setuptools.data-files]``), which pip puts under ``<prefix>/share/lightdeblur/``; this is the
one place that knows both, so nothing else builds these paths itself.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
FOLDERS = ("weights", "configs")


def installed_data_roots() -> list[Path]:
    """Where pip may have put the wheel's data files: the environment's data path, then the interpreter's prefix
    (they differ for ``--user`` and some distributions' layouts)."""
    roots = [Path(sysconfig.get_path("data")), Path(sys.prefix)]
    return [root / "share" / "lightdeblur" for root in dict.fromkeys(roots)]


def resource_dir(name: str, checkout: Path = CHECKOUT, installed: list[Path] | None = None) -> Path:
    """The ``weights`` or ``configs`` folder: the checkout's where it has one, else the installed wheel's. When
    neither exists the checkout's path is returned, so an error names where the file was expected."""
    if name not in FOLDERS:
        raise ValueError(f"unknown resource folder {name!r}; known: {', '.join(FOLDERS)}")
    roots = installed_data_roots() if installed is None else installed
    candidates = [checkout / name] + [root / name for root in roots]
    return next((path for path in candidates if path.is_dir()), candidates[0])
