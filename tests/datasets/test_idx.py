"""The IDX reader: real MNIST, every type code, raw versus gzip, and damaged files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from hwmodels.datasets.catalog import DATASETS
from hwmodels.datasets.errors import IdxFormatError
from hwmodels.datasets.idx import (
    check_idx_file,
    content_sha256,
    encode_idx,
    parse_idx,
    read_idx,
)
from tests.datasets.helpers import write_idx


def test_reads_real_mnist_files(data_dir: Path) -> None:
    mnist = data_dir / "mnist"
    images = read_idx(mnist / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(mnist / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and set(np.unique(labels)) == set(range(10))
    assert read_idx(mnist / "train-labels-idx1-ubyte.gz").shape == (60_000,)
    assert check_idx_file(mnist / "train-images-idx3-ubyte.gz") == (60_000, 28, 28)


def test_catalog_checksums_match_real_mnist(data_dir: Path) -> None:
    info = DATASETS["mnist"]
    for name, digest in info.sha256.items():
        assert content_sha256(data_dir / "mnist" / f"{name}.gz") == digest, name


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_every_type_code_round_trips(dtype: type) -> None:
    values = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    decoded = parse_idx(encode_idx(values))
    assert decoded.dtype == np.dtype(dtype) and decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, values)


def test_compression_is_told_by_content_not_name(tmp_path: Path) -> None:
    values = np.arange(60, dtype=np.int32).reshape(3, 20)
    raw_named_gz = write_idx(tmp_path / "raw.gz", values, compress=False)
    gzip_named_raw = write_idx(tmp_path / "packed-ubyte", values, compress=True)
    np.testing.assert_array_equal(read_idx(raw_named_gz), values)
    np.testing.assert_array_equal(read_idx(gzip_named_raw), values)
    assert content_sha256(raw_named_gz) == content_sha256(gzip_named_raw)


_GOOD = encode_idx(np.ones((5, 4), dtype=np.uint8))
_DAMAGED = {
    "truncated data": (_GOOD[:-3], "truncated"),
    "trailing bytes": (_GOOD + b"\x00", "trailing bytes"),
    "html page": (b"<html>Not found</html>", "not an IDX file"),
    "unknown type": (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown IDX type"),
    "header cut": (_GOOD[:6], "truncated inside the IDX header"),
    "empty": (b"", "too short"),
    "gzip cut": (gzip.compress(_GOOD)[:-10], "damaged gzip"),
}


@pytest.mark.parametrize("case", sorted(_DAMAGED))
def test_damaged_files_raise_clear_errors(tmp_path: Path, case: str) -> None:
    content, expected = _DAMAGED[case]
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(IdxFormatError, match=expected) as caught:
        read_idx(path)
    assert str(path) in str(caught.value)
    with pytest.raises(IdxFormatError, match=expected):
        check_idx_file(path)
