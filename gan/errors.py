"""Errors the command-line tools turn into one line and a non-zero exit (no traceback)."""

from datasets.errors import DataError
from losses.errors import MissingWeightsError


class ConfigError(Exception):
    """A config file, key or value is wrong; the message names it."""


class ExperimentError(Exception):
    """The experiment folder or a checkpoint cannot be used as asked."""


class CorruptCheckpoint(ExperimentError):
    """A checkpoint file is truncated, corrupt or foreign; ``previous`` is the newest good one beside it, if any."""

    def __init__(self, message: str, previous=None):
        super().__init__(message)
        self.previous = previous


class TrainingDiverged(Exception):
    """Too many consecutive non-finite steps; the run stops keeping its last good checkpoint."""


USER_ERRORS = (ConfigError, DataError, ExperimentError, MissingWeightsError, TrainingDiverged)


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped a run after a checkpoint was saved; ``exit_code`` is the shell's 128 + signal."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
