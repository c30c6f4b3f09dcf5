"""Every error a user can fix, each turned into one line and a non-zero exit by the tools (no traceback)."""


class DataError(Exception):
    """Bad data input; the message names the file or value and is shown to the user as one line."""


class ConfigError(Exception):
    """A config file, key or value (or an option of the tools) is wrong; the message names it."""


class ExperimentError(Exception):
    """The experiment folder or a checkpoint cannot be used as asked."""


class CorruptCheckpoint(ExperimentError):
    """A checkpoint file is truncated, corrupt or foreign; ``previous`` is the newest good one beside it, if any."""

    def __init__(self, message: str, previous=None):
        super().__init__(message)
        self.previous = previous


class MissingWeightsError(Exception):
    """Pretrained weights a loss needs are not available; the message says which file and where it goes."""


# What the inference tools (infer.py, the demo) report as one line.
RESTORE_ERRORS = (ConfigError, DataError, ExperimentError)


def os_error_line(error: OSError) -> str:
    """An operating-system failure (an output folder that is a file, a read-only or full disk) as one line that
    names the path."""
    where = error.filename if error.filename is not None else "a file"
    if isinstance(error, (FileExistsError, NotADirectoryError)):
        return f"cannot write {where}: a file stands where a folder is needed"
    return f"cannot write {where}: {error.strerror or error}"
