"""Errors the command-line tools turn into one line and a non-zero exit (no traceback)."""

from datasets.errors import DataError
from losses.errors import MissingWeightsError


class ConfigError(Exception):
    """A config file, key or value is wrong; the message names it."""


class ExperimentError(Exception):
    """The experiment folder or a checkpoint cannot be used as asked."""


class TrainingDiverged(Exception):
    """Too many consecutive non-finite steps; the run stops keeping its last good checkpoint."""


USER_ERRORS = (ConfigError, DataError, ExperimentError, MissingWeightsError, TrainingDiverged)
