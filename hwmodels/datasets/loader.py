"""Load a whole dataset split into memory as torch tensors, once per process.

Reading a split is one decompress and a few numpy operations, seconds for a large
split. The decoded uint8 arrays are cached per process, keyed on the
resolved file paths and their size and modification time, so a pipeline that asks for
the same split again does not touch the disk; every call returns fresh float tensors,
so a caller may modify them without corrupting the cache.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from hwmodels.datasets.catalog import (
    SPLITS,
    DatasetInfo,
    downloads_allowed,
    find_file,
    get_dataset,
    target_folder,
)
from hwmodels.datasets.download import ensure_files, unavailable_error
from hwmodels.datasets.errors import DatasetError, IdxFormatError
from hwmodels.datasets.idx import read_idx

log = logging.getLogger(__name__)

CACHE_SIZE = 8


@dataclass(frozen=True)
class DataSplit:
    """One split of one dataset: images flattened to rows in [0, 1], labels 0..C-1."""

    name: str
    split: Literal["train", "test"]
    images: torch.Tensor
    """float32, shape (N, input_size), values in [0, 1]."""
    labels: torch.Tensor
    """int64, shape (N,), values 0..num_classes-1."""
    num_classes: int
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load_split(
    name: str,
    split: Literal["train", "test"],
    data_dir: Path | None = None,
    limit: int | None = None,
    download: bool | None = None,
) -> DataSplit:
    """The whole split (or its first ``limit`` samples) of a dataset, as tensors.

    Files are looked for in ``<data_dir>/<folder>`` (data_dir: the argument, else
    $HWSCORE_DATA_DIR, else ~/.cache/hwscore/data) and in system folders such as
    Debian's; missing files are downloaded when ``download`` is true (None: as
    $HWSCORE_DOWNLOAD_DATASETS says, default yes). Raises
    DatasetUnavailableError when they cannot be had, IdxFormatError for damaged files.
    """
    info = get_dataset(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of samples, not {limit}")
    files = info.split_files(split)
    allowed = downloads_allowed() if download is None else download
    ensure_files(info, [files.images, files.labels], data_dir, download=allowed)
    images_path = _located(info, files.images, data_dir)
    labels_path = _located(info, files.labels, data_dir)
    images, labels = _read_arrays(info.name, _stamp(images_path), _stamp(labels_path))
    count = len(labels) if limit is None else min(limit, len(labels))
    pixels = images[:count].astype(np.float32)
    np.divide(pixels, 255.0, out=pixels)
    return DataSplit(
        name=info.name,
        split=split,
        images=torch.from_numpy(pixels),
        labels=torch.from_numpy(labels[:count].copy()),
        num_classes=info.num_classes,
        class_names=class_names(info.name, data_dir),
    )


def class_names(name: str, data_dir: Path | None = None) -> tuple[str, ...]:
    """Class names: from the dataset's mapping file when present (EMNIST), else built in."""
    info = get_dataset(name)
    if info.mapping_file is not None:
        path = find_file(info, info.mapping_file, data_dir)
        if path is not None:
            return _read_mapping(info, path)
    return info.class_names


def clear_cache() -> None:
    """Forget every split read so far (frees its memory)."""
    _read_arrays.cache_clear()


_Stamp = tuple[Path, int, int]


def _stamp(path: Path) -> _Stamp:
    """Path plus size and mtime, so a file replaced on disk is read again."""
    stat = path.stat()
    return (path, stat.st_size, stat.st_mtime_ns)


def _located(info: DatasetInfo, file_name: str, data_dir: Path | None) -> Path:
    path = find_file(info, file_name, data_dir)
    if path is None:  # removed between the check and now
        raise unavailable_error(info, [file_name], target_folder(info, data_dir), ["file vanished"])
    return path.resolve()


@functools.lru_cache(maxsize=CACHE_SIZE)
def _read_arrays(name: str, images_at: _Stamp, labels_at: _Stamp) -> tuple[np.ndarray, np.ndarray]:
    """Decoded uint8 images (N, input_size) and int64 labels (N,), read-only."""
    info = get_dataset(name)
    images = read_idx(images_at[0])
    labels = read_idx(labels_at[0])
    _check_shapes(info, images, labels, images_at[0], labels_at[0])
    if info.transposed:
        images = images.transpose(0, 2, 1)
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    classes = labels.astype(np.int64) - info.label_offset
    _check_labels(info, classes, labels_at[0])
    flat.setflags(write=False)
    classes.setflags(write=False)
    log.info("read %s: %d samples from %s", name, len(classes), images_at[0])
    return flat, classes


def _check_shapes(
    info: DatasetInfo, images: np.ndarray, labels: np.ndarray, images_path: Path, labels_path: Path
) -> None:
    if images.dtype != np.uint8 or images.ndim != 3:
        raise IdxFormatError(
            f"{images_path}: expected uint8 images of shape (N, rows, cols), "
            f"found {images.dtype} {images.shape}"
        )
    if images.shape[1] * images.shape[2] != info.input_size:
        raise IdxFormatError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, "
            f"but {info.name} has {info.input_size} pixels per image"
        )
    if labels.ndim != 1:
        raise IdxFormatError(f"{labels_path}: expected one label per sample, shape {labels.shape}")
    if len(labels) != len(images):
        raise IdxFormatError(
            f"{labels_path} holds {len(labels)} labels but {images_path} holds "
            f"{len(images)} images: the files belong to different splits or datasets"
        )


def _check_labels(info: DatasetInfo, classes: np.ndarray, path: Path) -> None:
    if len(classes) and (classes.min() < 0 or classes.max() >= info.num_classes):
        low = int(classes.min()) + info.label_offset
        high = int(classes.max()) + info.label_offset
        raise DatasetError(
            f"{path}: labels range over {low}..{high}, but {info.name} expects "
            f"{info.label_offset}..{info.num_classes - 1 + info.label_offset}: "
            "is this file from another dataset or split?"
        )


def _read_mapping(info: DatasetInfo, path: Path) -> tuple[str, ...]:
    """Parse 'label ascii [ascii ...]' lines into one name per class ('A/a' for letters)."""
    names: dict[int, str] = {}
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        if not line.strip():
            continue
        try:
            label, *codes = (int(field) for field in line.split())
            names[label - info.label_offset] = "/".join(chr(code) for code in codes)
        except ValueError as exc:
            raise DatasetError(
                f"{path}:{number}: expected 'label ascii-code ...', found {line!r}"
            ) from exc
    if sorted(names) != list(range(info.num_classes)) or not all(names.values()):
        raise DatasetError(
            f"{path}: the mapping must name each of {info.num_classes} classes once "
            f"(labels {info.label_offset}..{info.num_classes - 1 + info.label_offset})"
        )
    return tuple(names[label] for label in range(info.num_classes))


__all__ = ["CACHE_SIZE", "DataSplit", "class_names", "clear_cache", "load_split"]
