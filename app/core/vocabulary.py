"""The words a job's life is told in: statuses and error codes, defined once.

Models, schemas, metrics, the API and the worker all import them from here, so a status
or an error code cannot drift between the row, the JSON a client reads and the metrics.
Both are ``StrEnum``: a member equals its string, so it is stored and sent as plain text.
"""

from __future__ import annotations

from enum import StrEnum

from hwmodels.weights_file import WeightsProblem as WeightsProblem  # re-exported (below)


class JobStatus(StrEnum):
    """Where a job is in its life; terminal statuses never change again."""

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
IN_FLIGHT_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING})
OWNED_STATUSES = frozenset({JobStatus.RUNNING, JobStatus.CANCELLING})
"""Statuses in which a worker holds the job (and must keep its heartbeat fresh)."""


class ErrorCode(StrEnum):
    """Why a job failed: stable for programs; the job's message is written for people."""

    INVALID_SPEC = "invalid_spec"
    DATASET_MISSING = "dataset_missing"
    TIME_LIMIT = "time_limit"
    WORKER_LOST = "worker_lost"
    INFRASTRUCTURE_UNAVAILABLE = "infrastructure_unavailable"
    INTERNAL_ERROR = "internal_error"


class JobKind(StrEnum):
    """What a job row runs: one study, or a whole evaluate-mode sweep (train once, score
    on every point). Retrain-mode sweep points are ordinary studies."""

    STUDY = "study"
    SWEEP_EVALUATE = "sweep-evaluate"


class SweepMode(StrEnum):
    """retrain: one hardware-aware training per point; evaluate: one training, scored on
    every point."""

    RETRAIN = "retrain"
    EVALUATE = "evaluate"


class UploadProblem(StrEnum):
    """Why an uploaded model or a job naming one was refused, beyond the faults of the
    weights themselves (``WeightsProblem``: not_safetensors, pickled_checkpoint,
    malformed_safetensors, unsupported_dtype, missing_tensor, extra_tensor, wrong_shape,
    non_finite; defined by the engine, which finds them, and re-exported here)."""

    TOO_LARGE = "too_large"
    INVALID_ARCHITECTURE = "invalid_architecture"
    MODEL_MISMATCH = "model_mismatch"
