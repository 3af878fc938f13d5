"""Test data for the API: jobs in any state, with results, events and artifacts.

The API never runs a study itself, so to test what it serves once a worker is done, a
test writes that state straight into the real database, as a worker would.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.core.vocabulary import JobStatus
from app.db.models import Artifact, Job, JobEvent, utcnow
from app.schemas import JobCreate
from app.services.jobs import build_spec, request_hash, spec_hash
from hwmodels.report import ChipStatistics, LayerMapping, RobustnessReport
from hwmodels.specs import StudySpec


def study(seed: int | None = None, **fields: Any) -> dict[str, Any]:
    """A small valid POST /jobs body; a random seed keeps it unlike every other test's."""
    body: dict[str, Any] = {
        "dataset": "mnist",
        "network": {"hidden": [32]},
        "profile": {"preset": "rram-4bit"},
        "training": {
            "epochs": 1,
            "hw_epochs": 1,
            "seed": secrets.randbelow(2**31) if seed is None else seed,
        },
        "evaluation": {"chips": 3},
    }
    body.update(fields)
    return body


def sample_report(spec: StudySpec) -> dict[str, Any]:
    """A RobustnessReport shaped exactly as the engine writes one (values made up)."""

    def chips(accuracies: list[float]) -> ChipStatistics:
        mean = sum(accuracies) / len(accuracies)
        return ChipStatistics(
            chips=len(accuracies),
            mean=mean,
            std=0.01,
            worst=min(accuracies),
            p5=min(accuracies),
            best=max(accuracies),
            accuracies=accuracies,
        )

    naive, aware = chips([0.81, 0.83, 0.85]), chips([0.95, 0.955, 0.96])
    sizes = spec.network.layer_sizes(spec.dataset)
    return RobustnessReport(
        dataset=spec.dataset,
        layer_sizes=sizes,
        parameters=spec.network.parameter_count(spec.dataset),
        profile=spec.profile,
        training=spec.training,
        evaluation=spec.evaluation,
        float_accuracy=0.97,
        naive=naive,
        hardware_aware=aware,
        naive_drop_pp=(0.97 - naive.mean) * 100,
        hardware_aware_drop_pp=(0.97 - aware.mean) * 100,
        recovered_fraction=((0.97 - naive.mean) - (0.97 - aware.mean)) / (0.97 - naive.mean),
        layers=[
            LayerMapping(
                name=f"layer{i}",
                fan_in=fan_in,
                fan_out=fan_out,
                scale=0.5,
                levels=16,
                clipped_fraction=0.0,
                mean_abs_error=0.02,
                level_histogram=[fan_in * fan_out] + [0] * 15,
            )
            for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes))
        ],
        timings_s={"float_training": 1.5, "hardware_aware_training": 2.5},
    ).model_dump(mode="json")


def make_job(
    session: Session,
    owner: str,
    *,
    status: str = "queued",
    body: dict[str, Any] | None = None,
    created_at: datetime | None = None,
    artifacts: dict[str, bytes] | None = None,
    events: int = 0,
    duration_s: float = 42.0,
    error: tuple[str, str] | None = None,
) -> Job:
    """Insert a job for ``owner`` in ``status``; succeeded jobs get a report."""
    request = JobCreate.model_validate(body or study())
    spec = build_spec(request)
    created = created_at or utcnow()
    job = Job(
        owner_key=owner,
        status=status,
        spec=spec.model_dump(mode="json"),
        spec_hash=spec_hash(spec),
        request_hash=request_hash(request),
        created_at=created,
        updated_at=created,
    )
    if status in ("running", "cancelling", "succeeded", "failed"):
        job.started_at = created + timedelta(seconds=1)
        job.attempts = 1
    if status in ("succeeded", "failed", "cancelled"):
        job.finished_at = created + timedelta(seconds=1 + duration_s)
    if status == JobStatus.SUCCEEDED:
        job.result = sample_report(spec)
        job.progress_phase, job.progress_fraction = "done", 1.0
    if error is not None:
        job.error_code, job.error_message = error
    session.add(job)
    session.flush()
    for name, content in (artifacts or {}).items():
        session.add(
            Artifact(
                job_id=job.id,
                name=name,
                media_type="text/csv" if name.endswith(".csv") else "application/octet-stream",
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                content=content,
            )
        )
    for seq in range(1, events + 1):
        session.add(
            JobEvent(
                job_id=job.id,
                seq=seq,
                kind="epoch",
                phase="float_training",
                data={"epoch": seq, "loss": 1.0 / seq, "fraction": seq / (events + 1)},
            )
        )
    session.commit()
    return job
