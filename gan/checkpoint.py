"""Checkpoints that are never half-written, and loading that says what is wrong with a bad file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from nets import build_network

from .errors import ExperimentError

FORMAT_VERSION = 1


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``: a crash at any moment
    leaves either the old complete file or the new complete file, never a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save({"format_version": FORMAT_VERSION, **state}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ExperimentError(f"checkpoint {path} does not exist")
    try:
        # weights_only: a checkpoint is data; loading one must not be able to run code.
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several unrelated types for truncated or foreign files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExperimentError(f"checkpoint {path} is corrupt or truncated ({reason})") from None
    if not isinstance(state, dict) or "generator" not in state or "model" not in state:
        raise ExperimentError(f"checkpoint {path} is not a checkpoint of this project (no generator/model entries)")
    return state


def generator_from_checkpoint(state: dict[str, Any], path: str | Path = "checkpoint") -> torch.nn.Module:
    """Rebuild the generator a checkpoint was trained with and load its weights."""
    options = dict(state["model"])
    name = options.pop("name")
    try:
        model = build_network(name, **options)
        model.load_state_dict(state["generator"])
    except (ValueError, RuntimeError) as error:
        raise ExperimentError(f"checkpoint {path} does not match network {name!r}: {str(error).splitlines()[0]}") from None
    return model
