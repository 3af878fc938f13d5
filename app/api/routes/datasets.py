"""Datasets a study can use, and whether this server has their files."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import StateDep
from app.schemas import API_PREFIX, DatasetOut
from hwmodels.datasets.catalog import DATASETS, dataset_status

router = APIRouter(prefix=f"{API_PREFIX}/datasets", tags=["datasets"])


@router.get("", response_model=list[DatasetOut])
def list_datasets(state: StateDep) -> list[DatasetOut]:
    """Every dataset with its input size, class count and presence on this server."""
    items = []
    for info in DATASETS.values():
        status = dataset_status(info.name, state.settings.data_dir)
        items.append(
            DatasetOut(
                name=info.name,
                description=info.description,
                input_size=info.input_size,
                num_classes=info.num_classes,
                samples=dict(info.samples),
                present=status.present,
                missing=list(status.missing),
                source=info.source,
            )
        )
    return items
