"""Helpers for the dataset tests: writing IDX files and EMNIST's layout."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from hwmodels.datasets.idx import encode_idx

OFFLINE_MIRROR = "http://127.0.0.1:9/"  # the discard port: nothing listens, refused at once


def write_idx(path: Path, values: np.ndarray, *, compress: bool = True) -> Path:
    """Write an IDX file, gzip-compressed or raw, creating folders as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = encode_idx(values)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def emnist_images(count: int, seed: int = 0) -> np.ndarray:
    """Images that look different when transposed: pixel (row 2, col 20) lit in each."""
    images = np.random.default_rng(seed).integers(0, 50, size=(count, 28, 28), dtype=np.uint8)
    images[:, 2, 20] = 255
    images[:, 20, 2] = 0
    return images


def write_emnist_split(
    folder: Path, split: str, labels: dict[str, np.ndarray], *, compress: bool = True
) -> dict[str, np.ndarray]:
    """Write emnist-<split>-{train,test} files the way NIST stores them (transposed).

    Returns the images as they should look after loading (not transposed).
    """
    suffix = ".gz" if compress else ""
    upright: dict[str, np.ndarray] = {}
    for part, part_labels in labels.items():
        images = emnist_images(len(part_labels), seed=len(part))
        stem = f"emnist-{split}-{part}"
        write_idx(
            folder / f"{stem}-images-idx3-ubyte{suffix}",
            images.transpose(0, 2, 1).copy(),
            compress=compress,
        )
        write_idx(
            folder / f"{stem}-labels-idx1-ubyte{suffix}",
            part_labels.astype(np.uint8),
            compress=compress,
        )
        upright[part] = images
    return upright
