"""The experiment folder: resolved config, checkpoints and TensorBoard events of one run."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Config, save_config
from .errors import ExperimentError


@dataclass
class Experiment:
    folder: Path

    @property
    def checkpoints(self) -> Path:
        return self.folder / "checkpoints"

    @property
    def tensorboard(self) -> Path:
        return self.folder / "tensorboard"


def create_experiment(config: Config, default_stem: str, overwrite: bool = False) -> Experiment:
    """Make a fresh folder for the run. An existing folder is only replaced with ``overwrite``: a user's earlier
    results are never lost by rerunning a command."""
    name = config.experiment.name or f"{default_stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder = Path(config.experiment.root) / name
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise ExperimentError(
                f"experiment folder {folder} already exists and is not empty; choose another experiment.name "
                "or pass --overwrite to replace it"
            )
        shutil.rmtree(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        config.experiment.name = name
        save_config(config, folder / "config.yaml")
    except OSError as error:
        raise ExperimentError(f"cannot write experiment folder {folder}: {error.strerror}") from None
    return Experiment(folder)
