"""Errors the command-line tools turn into one line and a non-zero exit (no traceback)."""

from core.errors import ConfigError, CorruptCheckpoint, DataError, ExperimentError, MissingWeightsError

__all__ = ["ConfigError", "CorruptCheckpoint", "DataError", "ExperimentError", "Interrupted", "MissingWeightsError",
           "TrainingDiverged", "USER_ERRORS"]


class TrainingDiverged(Exception):
    """Too many consecutive non-finite steps; the run stops keeping its last good checkpoint."""


USER_ERRORS = (ConfigError, DataError, ExperimentError, MissingWeightsError, TrainingDiverged)


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped a run after a checkpoint was saved; ``exit_code`` is the shell's 128 + signal (0
    for the planned stop of ``train.max_minutes``)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
