"""Errors every layer raises for bad input: each message names the file and the row or key."""


class DataError(ValueError):
    """Input data that cannot be used; the message names the file and the row."""
