"""Errors the losses raise for problems a user fixes by placing a file, not by changing code."""


class MissingWeightsError(Exception):
    """Pretrained weights a loss needs are not available; the message says which file and where it goes."""
