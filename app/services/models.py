"""Uploaded models: check trained float weights against their network, store, look up.

Everything is checked in the API process without torch (hwmodels.weights_file parses
safetensors with numpy), before anything is stored: the size, the network and dataset,
the file format, then every tensor's name, shape and values. The service takes
safetensors only: a PyTorch .pt is a pickle, and reading one safely needs torch's
restricted unpickler, which the API process does not load; ``hwscore submit --weights
model.pt`` converts one locally (weights_only=True) and uploads safetensors.

A model belongs to the key that uploaded it; another key gets 404, as for jobs.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from app.core.vocabulary import UploadProblem, WeightsProblem
from app.db.models import UploadedModel, new_id, utcnow
from app.schemas import API_PREFIX, JobCreate
from app.services.errors import InvalidRequest, NotFound, UnsupportedUpload, UploadTooLarge
from app.services.messages import describe_errors, issue
from hwmodels.specs import NetworkSpec, StartFrom, StudySpec
from hwmodels.weights_check import CanonicalWeights, canonical_weights
from hwmodels.weights_file import WeightsError, read_safetensors

_WHOLE_FILE = frozenset({WeightsProblem.NOT_SAFETENSORS, WeightsProblem.PICKLED_CHECKPOINT})
"""Faults of the file's format (415); every other fault is about its content (422)."""


def create_model(
    session: Session,
    *,
    owner: str,
    content: bytes,
    architecture: str,
    dataset: str,
    name: str | None,
    max_bytes: int,
) -> UploadedModel:
    """Check the upload and store it; raise UploadTooLarge, InvalidRequest or
    UnsupportedUpload naming the fault."""
    if len(content) > max_bytes:
        raise UploadTooLarge(
            f"the weights file has {len(content):,} bytes; this server accepts at most "
            f"{max_bytes:,} (HWSCORE_MAX_MODEL_BYTES)"
        )
    spec = _study(architecture, dataset)
    weights = _checked(content, spec)
    model = UploadedModel(
        id=new_id(),
        owner_key=owner,
        name=name,
        dataset=spec.dataset,
        network=spec.network.model_dump(mode="json"),
        parameters=weights.parameters,
        size=len(weights.content),
        sha256=weights.sha256,
        content=weights.content,
        created_at=utcnow(),
    )
    session.add(model)
    session.commit()
    return model


def _study(architecture: str, dataset: str) -> StudySpec:
    """The network and dataset as a (default) study, so every limit of a job applies."""
    try:
        network_data: Any = json.loads(architecture)
    except ValueError:
        network_data = None
    if not isinstance(network_data, dict):
        raise InvalidRequest(
            "architecture must be a JSON object in the network language of jobs, e.g. "
            '{"hidden": [256, 128]}, {"architecture": "lenet5"} or {"layers": [...]}',
            [
                issue(
                    ["body", "architecture"],
                    "not a JSON object",
                    UploadProblem.INVALID_ARCHITECTURE,
                )
            ],
        )
    try:
        network = NetworkSpec.model_validate(network_data)
    except ValidationError as exc:
        errors = describe_errors(exc.errors(), NetworkSpec, prefix=["body", "architecture"])
        raise InvalidRequest("; ".join(e["message"] for e in errors), errors) from None
    try:
        return StudySpec.model_validate({"dataset": dataset, "network": network})
    except ValidationError as exc:  # shapes or size that do not fit the dataset
        errors = describe_errors(exc.errors(), StudySpec, prefix=["body", "architecture"])
        raise InvalidRequest("; ".join(e["message"] for e in errors), errors) from None


def _checked(content: bytes, spec: StudySpec) -> CanonicalWeights:
    try:
        return canonical_weights(read_safetensors(content), spec.network, spec.dataset)
    except WeightsError as exc:
        if exc.problem in _WHOLE_FILE:
            raise UnsupportedUpload(str(exc), exc.problem) from None
        errors = [
            issue(["body", "weights", *([i.tensor] if i.tensor else [])], i.message, i.problem)
            for i in exc.issues
        ]
        raise InvalidRequest(str(exc), errors) from None


def start_from_model(
    session: Session, owner: str, request: JobCreate
) -> tuple[JobCreate, StartFrom]:
    """The job request with the model's network and dataset, and the weights it starts
    from; InvalidRequest if the request names a different network or dataset."""
    assert request.model_id is not None
    model = get_owned_model(session, owner, request.model_id)
    given = request.model_fields_set
    mismatched = [
        issue(
            ["body", field],
            f"{field} differs from the model's ({json.dumps(theirs)}), which its weights "
            f"were checked against; leave {field} out to use the model's",
            UploadProblem.MODEL_MISMATCH,
        )
        for field, ours, theirs in (
            ("dataset", request.dataset, model.dataset),
            ("network", request.network.model_dump(mode="json"), model.network),
        )
        if field in given and ours != theirs
    ]
    if mismatched:
        raise InvalidRequest("; ".join(e["message"] for e in mismatched), mismatched)
    update = {"dataset": model.dataset, "network": NetworkSpec.model_validate(model.network)}
    start_from = StartFrom(sha256=model.sha256, model_id=model.id)
    return request.model_copy(update=update), start_from


def get_owned_model(session: Session, owner: str, model_id: str) -> UploadedModel:
    """The caller's model, or NotFound (also for another key's: ids do not leak)."""
    model = session.scalar(
        select(UploadedModel).where(UploadedModel.id == model_id, UploadedModel.owner_key == owner)
    )
    if model is None:
        raise NotFound(
            f"model {model_id!r} not found; GET {API_PREFIX}/models lists your uploaded models"
        )
    return model


def list_models(session: Session, owner: str, limit: int) -> list[UploadedModel]:
    """The caller's models, newest first (without loading their weights)."""
    query = (
        select(UploadedModel)
        .where(UploadedModel.owner_key == owner)
        .options(defer(UploadedModel.content))
        .order_by(UploadedModel.created_at.desc(), UploadedModel.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def delete_model(session: Session, owner: str, model_id: str) -> None:
    """Delete the caller's model; a queued job naming it then fails with invalid_spec."""
    session.delete(get_owned_model(session, owner, model_id))
    session.commit()
