"""The one error type for bad input: it names the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path


def _printable(text: str) -> str:
    """Control characters escaped (a key may be a user's name with a newline): an error stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class InputError(Exception):
    """Bad input in a file the user gave (scenario, sweep, data); the CLI exits 2 with this message."""

    def __init__(self, path: Path | str, key: str, message: str) -> None:
        path, key, message = _printable(str(path)), _printable(key), _printable(message)
        self.path, self.key, self.message = path, key, message
        location = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(location + message)


class InputErrors(InputError):
    """Several independent mistakes in one file, reported together (one fix-and-rerun, not one per mistake)."""

    def __init__(self, errors: list[InputError]) -> None:
        self.errors = errors
        first = errors[0]
        Exception.__init__(self, "\n".join(str(error) for error in errors))
        self.path, self.key, self.message = first.path, first.key, first.message


class StateError(Exception):
    """A run reached a negative or non-finite stock: a model failure, not a result (the CLI exits 1).

    ``record`` holds the details (run, seed, time, variable, region, value, parameters).
    """

    def __init__(self, message: str, record: dict) -> None:
        self.record = record
        super().__init__(message)
