"""The exception types users see: bad data, bad recipes, a failed export or a failed training.

Both are ``ValueError`` so callers that already catch that keep working. Messages name the file,
the line or key, and what was expected, so the CLI can print them as one line.
"""


class DataError(ValueError):
    """Malformed or missing data: a point file, an annotation line, an image, a schema file."""


class ConfigError(ValueError):
    """A recipe or override that does not fit the typed recipe schema."""


class ExportError(RuntimeError):
    """The exported graph does not reproduce the model (parity check failed); nothing was written."""


class TrainingError(RuntimeError):
    """Training, exporting or scoring a model in another process failed (the message names the file
    holding that process's traceback)."""


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message, cut to ``limit`` characters; its type name when the
    message is empty (so an error handler never fails on an exception without text)."""
    lines = str(error).strip().splitlines()
    return lines[0][:limit] if lines else type(error).__name__
