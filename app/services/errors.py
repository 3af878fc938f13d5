"""Failures a use case reports; the API turns each kind into one HTTP problem.

Services know nothing of HTTP, so each error names what went wrong, and
``app.api.errors`` decides the status code.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base class: ``message`` is written for the person who sent the request."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    """The thing does not exist, or belongs to another API key (same answer, on purpose)."""


class InvalidRequest(ServiceError):
    """The request is well-formed JSON but asks for something impossible."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class StateConflict(ServiceError):
    """The job is in a state where this action makes no sense (e.g. cancel a finished job)."""


class TooManyJobsInFlight(ServiceError):
    """The API key already has its maximum number of unfinished jobs."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class SubmitRateExceeded(ServiceError):
    """The API key created its burst of jobs faster than the per-minute rate allows."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnsupportedUpload(ServiceError):
    """An uploaded file is not in an accepted format (e.g. a pickle, which can run code)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class UploadTooLarge(ServiceError):
    """An uploaded file is over its size limit."""
