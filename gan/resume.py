"""Continuing a run: which folder and checkpoint, with which config, and refusing what would not be the same run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.checkpoint import load_checkpoint, step_checkpoints

from .config import Config, load_config, nested_config
from .errors import ConfigError, CorruptCheckpoint, ExperimentError
from .experiment import Experiment
from .long_run import LATER_KEYS

# Keys a resumed run may change: they move work between processes, change what is logged or when this session
# stops (train.max_minutes), never the numbers.
CHANGEABLE_ON_RESUME = (
    "data.num_workers",
    "train.threads",
    "train.max_minutes",
    "train.device",
    "train.channels_last",
    "train.compile",
    "train.checkpoint_every",
    "train.keep_last",
    "log.scalar_every",
    "log.progress_every",
    "log.val_images",
    "log.lpips",
)

# Sections inside sections, compared key by key (other mappings, such as data.degradation.kernels, are one value).
SUBSECTIONS = ("data.degradation",)

# Where the run lives, not what it computes: a run folder may be renamed or moved and still be resumed.
WHERE_KEYS = ("experiment.name", "experiment.root")


def plan_resume(
    target: str, phase: str, overrides: list[str], root: str
) -> tuple[Config, Experiment, dict[str, Any], Path]:
    """The saved config (with allowed ``overrides``), the experiment, and the checkpoint (state, path) to continue
    from. Nothing is written.

    ``target``: a checkpoint file, an experiment folder, or "" for the newest run of ``phase`` under ``root``.
    """
    folder, path, state = _locate(target, phase, root)
    config_path = folder / "config.yaml"
    config = load_config(config_path, overrides)
    saved = load_config(config_path)
    for key in _differences(saved.to_dict(), config.to_dict()):
        if key not in CHANGEABLE_ON_RESUME:
            raise ConfigError(
                f"--set {key} would change the run being resumed; a resumed run may only change "
                f"{', '.join(CHANGEABLE_ON_RESUME)} (start a new run to change anything else)"
            )
    state = state or _load(path)
    if state.get("phase") != phase:
        raise ExperimentError(f"checkpoint {path} is from the {state.get('phase')!r} phase, not {phase!r}: "
                              f"resume it with --{state.get('phase')}")
    if "rng" not in state:
        raise ExperimentError(f"checkpoint {path} has no training position (an exported or older checkpoint)")
    recorded = with_later_keys(nested_config(state["config"]))  # older checkpoints: flat, and without later keys
    for key in _differences(recorded, saved.to_dict()):
        if key not in CHANGEABLE_ON_RESUME:
            raise ExperimentError(
                f"checkpoint {path} does not belong to {config_path}: they differ in {key} "
                f"({_get(recorded, key)!r} vs {_get(saved.to_dict(), key)!r})"
            )
    return config, Experiment(folder), state, path


def with_later_keys(recorded: dict[str, Any]) -> dict[str, Any]:
    """A recorded config with the keys added after it was written (``LATER_KEYS``) at the defaults that compute
    what the code before them did, so a checkpoint written before a key existed still belongs to its run."""
    filled = {section: dict(values) if isinstance(values, dict) else values for section, values in recorded.items()}
    for section, defaults in LATER_KEYS.items():
        if isinstance(filled.get(section), dict):
            for key, default in defaults.items():
                filled[section].setdefault(key, default)
    return filled


def _locate(target: str, phase: str, root: str) -> tuple[Path, Path, dict[str, Any] | None]:
    """(experiment folder, checkpoint to resume from, its state if it had to be read to choose it)."""
    if target:
        path = Path(target)
        if path.is_file():
            return path.parent.parent, path, None
        if not path.is_dir():
            raise ExperimentError(f"--resume {target}: no such checkpoint file or experiment folder")
        if not (path / "config.yaml").is_file():
            raise ExperimentError(f"{path} is not an experiment folder (no config.yaml); nothing to resume")
        return path, _newest_checkpoint(path), None
    newest = {
        folder: found[0] for folder in Path(root).glob("*") if (found := step_checkpoints(folder / "checkpoints"))
    }
    for folder in sorted(newest, key=lambda folder: newest[folder].stat().st_mtime, reverse=True):
        state = _load(newest[folder])
        if state.get("phase") == phase:
            return folder, newest[folder], state
    raise ExperimentError(f"no {phase} run with a checkpoint under {root}/ to resume; name one with --resume FOLDER")


def _load(path: Path) -> dict[str, Any]:
    """``load_checkpoint``, turning its offer of a previous good checkpoint into the command that takes it."""
    try:
        return load_checkpoint(path)
    except CorruptCheckpoint as error:
        if error.previous is None:
            raise
        raise ExperimentError(f"{error}: continue from it with --resume {error.previous}") from None


def _newest_checkpoint(folder: Path) -> Path:
    found = step_checkpoints(folder / "checkpoints")
    if not found:
        raise ExperimentError(f"experiment {folder} has no step checkpoint to resume from")
    return found[0]


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    keys = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict) and (prefix == "" or f"{prefix}{key}" in SUBSECTIONS):
            keys += _differences(left, right, f"{prefix}{key}.")
        elif left != right and f"{prefix}{key}" not in WHERE_KEYS:
            keys.append(f"{prefix}{key}")
    return keys


def _get(tree: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree
