"""Errors the pipeline reports as one clear line instead of a traceback."""


class SigeoError(Exception):
    """A problem with the user's input (data, config, hardware), not a bug in the code."""


class DataError(SigeoError):
    """Raw input that cannot be used; the message names the file, the line and the cause."""


class ConfigError(SigeoError):
    """A configuration that fails validation; the message names the key."""
