"""The experiment folder: resolved config, checkpoints and TensorBoard events of one run."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Config, save_config
from .distributed import Distributed, broadcast_object
from .errors import ExperimentError


@dataclass
class Experiment:
    folder: Path
    overwrite: bool = False

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
                shutil.rmtree(self.folder)
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


# What an experiment folder may hold: train_gan.py writes nothing else there.
EXPERIMENT_ENTRIES = {"config.yaml", "data_split.json", "checkpoints", "tensorboard"}


def why_not_an_experiment(folder: Path, root: Path) -> str:
    """Why ``folder`` is not recognisably a run of ours directly under ``root`` ("" when it is one): the only
    folders ``--overwrite`` may delete."""
    if folder.is_symlink() or folder.resolve().parent != root.resolve():
        return f"it is not a folder directly under experiment.root ({root})"
    if not folder.is_dir():
        return "it is not a folder"
    if not (folder / "config.yaml").is_file():
        return "it has no config.yaml, so it is not an experiment folder of train_gan.py"
    foreign = sorted(entry.name for entry in folder.iterdir() if entry.name not in EXPERIMENT_ENTRIES)
    if foreign:
        return f"it holds {foreign[0]!r}, which train_gan.py never writes; move it away or delete the folder yourself"
    return ""


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
