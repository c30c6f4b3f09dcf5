"""The one error type the data layer raises for problems a user can fix (a path, a file, a value)."""


class DataError(Exception):
    """Bad data input; the message names the file or value and is shown to the user as one line."""
