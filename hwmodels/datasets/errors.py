"""Dataset errors. Each message says what is wrong and what a person can do about it."""

from __future__ import annotations


class DatasetError(Exception):
    """Base class of every dataset problem."""


class UnknownDatasetError(DatasetError, KeyError):
    """A dataset name hwscore does not know; the message lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


class IdxFormatError(DatasetError, ValueError):
    """A file is not a valid IDX file: truncated, corrupt, or something else entirely."""


class ChecksumMismatchError(DatasetError):
    """A file's content differs from the published one (a bad download or a different file)."""


class DatasetUnavailableError(DatasetError):
    """Files of a dataset are missing and could not be fetched (offline, or downloads off).

    ``missing`` names the files, ``folder`` is where they belong.
    """

    def __init__(self, message: str, *, missing: list[str], folder: str) -> None:
        super().__init__(message)
        self.missing = missing
        self.folder = folder


__all__ = [
    "ChecksumMismatchError",
    "DatasetError",
    "DatasetUnavailableError",
    "IdxFormatError",
    "UnknownDatasetError",
]
