"""The one error type the data layer raises for problems a user can fix (a path, a file, a value)."""


class DataError(Exception):
    """Bad data input; the message names the file or value and is shown to the user as one line."""


def os_error_line(error: OSError) -> str:
    """An operating-system failure (an output folder that is a file, a read-only or full disk) as one line that
    names the path."""
    where = error.filename if error.filename is not None else "a file"
    if isinstance(error, (FileExistsError, NotADirectoryError)):
        return f"cannot write {where}: a file stands where a folder is needed"
    return f"cannot write {where}: {error.strerror or error}"
