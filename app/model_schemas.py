"""Response bodies of the uploaded-models endpoints (the upload itself is a form)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.db.models import UploadedModel
from app.schemas import API_PREFIX, as_utc
from hwmodels.datasets.catalog import DatasetName
from hwmodels.specs import NetworkSpec


class ModelOut(BaseModel):
    """An uploaded model as its owner sees it (the weights are not sent back)."""

    id: str = Field(description='Name it in a job as "model_id".')
    name: str | None
    dataset: DatasetName
    network: NetworkSpec
    parameters: int
    size: int = Field(description="Bytes of the stored weights (float32 safetensors).")
    sha256: str = Field(
        description="SHA-256 of the stored weights; part of a job's identity, so finished "
        "work is reused only for the same weights."
    )
    created_at: datetime
    url: str

    @classmethod
    def from_model(cls, model: UploadedModel) -> ModelOut:
        return cls(
            id=model.id,
            name=model.name,
            dataset=model.dataset,
            network=NetworkSpec.model_validate(model.network),
            parameters=model.parameters,
            size=model.size,
            sha256=model.sha256,
            created_at=as_utc(model.created_at) or model.created_at,
            url=f"{API_PREFIX}/models/{model.id}",
        )


class ModelList(BaseModel):
    models: list[ModelOut]
