"""The experiment folder: resolved config, checkpoints and TensorBoard events of one run."""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config, save_config
from .distributed import Distributed, broadcast_object
from .errors import ExperimentError


@dataclass
class Experiment:
    folder: Path
    overwrite: bool = False
    _lock: int | None = field(default=None, repr=False)

    def lock(self) -> None:
        """Hold an exclusive lock on this run for the life of the process, so a second train_gan.py on the same
        folder (a new run or a resume) stops with one line instead of interleaving checkpoints with this one.
        The lock file sits beside the folder (``.<name>.lock``), where ``--overwrite`` never deletes it."""
        path = self.folder.parent / f".{self.folder.name}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise ExperimentError(f"cannot write experiment folder {self.folder}: {error.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 32).decode(errors="replace").strip() or "another process"
            os.close(descriptor)
            raise ExperimentError(f"experiment folder {self.folder} is in use by a running train_gan.py (pid "
                                  f"{holder}); wait for it to finish or choose another experiment.name") from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, str(os.getpid()).encode())
        self._lock = descriptor  # released by the operating system when the process ends

    @property
    def checkpoints(self) -> Path:
        return self.folder / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.folder / "tensorboard"

    def start(self, config: Config, data_split: dict | None = None) -> None:
        """Create the folder and write the resolved config. Called only once setup has succeeded, so a command
        that fails validation (even with ``--overwrite``) leaves every existing run untouched."""
        try:
            if self.overwrite and self.folder.exists():
                remove_run(self.folder)
            self.folder.mkdir(parents=True, exist_ok=True)
            save_config(config, self.folder / "config.yaml")
            if data_split is not None:  # which files (or sequences) trained and which validated
                (self.folder / "data_split.json").write_text(json.dumps(data_split, indent=1))
        except OSError as error:
            raise ExperimentError(f"cannot write experiment folder {self.folder}: {error.strerror}") from None

    def check_same_data(self, split: dict) -> None:
        """A resumed run must see the files its predecessor saw (``data_split.json``), or it is another run."""
        path = self.folder / "data_split.json"
        if not path.is_file():
            return
        saved = json.loads(path.read_text())
        current = json.loads(json.dumps(split))  # tuples and paths as JSON has them
        for key in sorted(set(saved) | set(current)):
            if saved.get(key) != current.get(key):
                raise ExperimentError(
                    f"the data changed since {self.folder} began ({key!r} differs from {path}); "
                    "restore the files or start a new run"
                )


def plan_experiment(config: Config, default_stem: str, overwrite: bool = False) -> Experiment:
    """Choose the run's folder and check it is free; nothing is written yet (see ``Experiment.start``).

    An existing non-empty folder is only replaced with ``overwrite``: rerunning a command never loses results.
    """
    name = config.experiment.name or f"{default_stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    if Path(name).name != name or name in (".", ".."):
        raise ExperimentError(
            f"experiment name {name!r} must be a plain folder name (no '/', '..' or absolute path); runs live under "
            f"experiment.root ({config.experiment.root}), set that to put them elsewhere"
        )
    folder = Path(config.experiment.root) / name
    occupied = folder.exists() and any(folder.iterdir())
    if overwrite and occupied:
        problem = why_not_an_experiment(folder, Path(config.experiment.root))
        if problem:
            raise ExperimentError(f"--overwrite refuses to delete {folder}: {problem}")
    if occupied and not overwrite:
        raise ExperimentError(
            f"experiment folder {folder} already exists and is not empty; choose another experiment.name, "
            "pass --resume to continue it or --overwrite to replace it"
        )
    config.experiment.name = name
    return Experiment(folder, overwrite)


# What an experiment folder may hold: train_gan.py writes nothing else there, and --overwrite deletes nothing else.
EXPERIMENT_ENTRIES = {"config.yaml", "data_split.json", "checkpoints", "tensorboard"}
RUN_FILES = {
    "checkpoints": re.compile(r"(step-\d{8}\.pt|best\.pt|\..+\.pt\..+\.tmp)"),
    "tensorboard": re.compile(r"events\.out\.tfevents\..+"),
}


def why_not_an_experiment(folder: Path, root: Path) -> str:
    """Why ``folder`` is not recognisably a run of ours directly under ``root`` ("" when it is one): the only
    folders ``--overwrite`` may delete. Files nested in its checkpoints/ and tensorboard/ count too."""
    if folder.is_symlink() or folder.resolve().parent != root.resolve():
        return f"it is not a folder directly under experiment.root ({root})"
    if not folder.is_dir():
        return "it is not a folder"
    if not (folder / "config.yaml").is_file():
        return "it has no config.yaml, so it is not an experiment folder of train_gan.py"
    foreign = sorted(entry.name for entry in folder.iterdir() if entry.name not in EXPERIMENT_ENTRIES)
    for sub, pattern in RUN_FILES.items():
        if (folder / sub).is_dir():
            foreign += sorted(f"{sub}/{entry.name}" for entry in (folder / sub).iterdir()
                              if not (entry.is_file() and not entry.is_symlink() and pattern.fullmatch(entry.name)))
    if foreign:
        return f"it holds {foreign[0]!r}, which train_gan.py never writes; move it away or delete the folder yourself"
    return ""


def remove_run(folder: Path) -> None:
    """Delete what train_gan.py wrote in ``folder`` (checked by ``why_not_an_experiment`` when the run was
    planned), and the folder itself once nothing else is left in it."""
    for sub, pattern in RUN_FILES.items():
        if (folder / sub).is_dir():
            for entry in (folder / sub).iterdir():
                if entry.is_file() and pattern.fullmatch(entry.name):
                    entry.unlink()
            _remove_if_empty(folder / sub)
    for name in ("config.yaml", "data_split.json"):
        (folder / name).unlink(missing_ok=True)
    _remove_if_empty(folder)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # something was put there after the plan was checked: it stays


def plan_shared_experiment(config: Config, default_stem: str, overwrite: bool, world: Distributed) -> Experiment:
    """``plan_experiment`` for every torchrun rank: rank 0 picks the folder (each rank's clock may read another
    second) and checks it is free; the others take its answer, or raise its error."""
    if not world.enabled:
        return plan_experiment(config, default_stem, overwrite)
    outcome = ("ok", "")
    if world.is_main:
        try:
            plan_experiment(config, default_stem, overwrite)
            outcome = ("ok", config.experiment.name)
        except ExperimentError as error:
            outcome = ("error", str(error))
    kind, value = broadcast_object(outcome, world)
    if kind == "error":
        raise ExperimentError(value)
    config.experiment.name = value
    return Experiment(Path(config.experiment.root) / value, overwrite)
