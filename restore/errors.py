"""Errors of loading a model and restoring images, each turned into one line and a non-zero exit by the tools."""

from datasets.errors import DataError


class ConfigError(Exception):
    """A config file, key or value (or an option of the tools) is wrong; the message names it."""


class ExperimentError(Exception):
    """The experiment folder or a checkpoint cannot be used as asked."""


class CorruptCheckpoint(ExperimentError):
    """A checkpoint file is truncated, corrupt or foreign; ``previous`` is the newest good one beside it, if any."""

    def __init__(self, message: str, previous=None):
        super().__init__(message)
        self.previous = previous


# What the inference tools (infer.py, the demo) report as one line.
RESTORE_ERRORS = (ConfigError, DataError, ExperimentError)
