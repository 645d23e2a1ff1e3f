"""The one error type for bad input: it names the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input in a file the user gave (scenario, sweep, data); the CLI exits 2 with this message."""

    def __init__(self, path: Path | str, key: str, message: str) -> None:
        self.path, self.key, self.message = str(path), key, message
        location = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(location + message)


class StateError(Exception):
    """A run reached a negative or non-finite stock: a model failure, not a result (the CLI exits 1).

    ``record`` holds the details (run, seed, time, variable, region, value, parameters).
    """

    def __init__(self, message: str, record: dict) -> None:
        self.record = record
        super().__init__(message)
