"""Datasets: IDX readers for MNIST, EMNIST (every split) and Fashion-MNIST.

``catalog`` (no torch) says what exists and where files belong; ``idx`` reads the file
format; ``download`` fetches missing files; ``loader`` reads a whole split into tensors.
This package imports no torch itself: ``load_split`` and ``DataSplit`` are imported from
``loader`` on first use, so the API can import the catalog and the errors cheaply.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hwmodels.datasets.catalog import (
    DATASETS,
    DatasetInfo,
    DatasetName,
    DatasetStatus,
    Split,
    dataset_status,
    get_dataset,
    resolve_data_dir,
)
from hwmodels.datasets.errors import (
    ChecksumMismatchError,
    DatasetError,
    DatasetUnavailableError,
    IdxFormatError,
    UnknownDatasetError,
)

if TYPE_CHECKING:
    from hwmodels.datasets.loader import DataSplit, load_split

_LAZY = {"DataSplit", "load_split"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("hwmodels.datasets.loader"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "ChecksumMismatchError",
    "DataSplit",
    "DatasetError",
    "DatasetInfo",
    "DatasetName",
    "DatasetStatus",
    "DatasetUnavailableError",
    "IdxFormatError",
    "Split",
    "UnknownDatasetError",
    "dataset_status",
    "get_dataset",
    "load_split",
    "resolve_data_dir",
]
