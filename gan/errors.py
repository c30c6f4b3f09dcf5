"""Errors the command-line tools turn into one line and a non-zero exit (no traceback)."""

from datasets.errors import DataError


class ConfigError(Exception):
    """A config file, key or value is wrong; the message names it."""


class ExperimentError(Exception):
    """The experiment folder or a checkpoint cannot be used as asked."""


USER_ERRORS = (ConfigError, DataError, ExperimentError)
