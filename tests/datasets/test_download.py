"""Downloads against a real local HTTP server, and the offline path against a dead port."""

from __future__ import annotations

import gzip
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hwmodels.datasets import DATASETS, DatasetUnavailableError, IdxFormatError, load_split
from hwmodels.datasets.download import download_file, ensure_files
from hwmodels.datasets.idx import encode_idx, read_idx
from tests.datasets.helpers import OFFLINE_MIRROR, emnist_images

MNIST = DATASETS["mnist"]
TEST_FILES = ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def _serve_real_mnist_test_split(data_dir: Path, root: Path) -> None:
    for name in TEST_FILES:
        shutil.copy(data_dir / "mnist" / f"{name}.gz", root / f"{name}.gz")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_checksums_then_loads(
    data_dir: Path, tmp_path: Path, mirror: tuple[str, Path]
) -> None:
    url, root = mirror
    _serve_real_mnist_test_split(data_dir, root)
    target = tmp_path / "data"
    ensure_files(MNIST, TEST_FILES, target, mirrors=[OFFLINE_MIRROR, url])
    assert _leftovers(target / "mnist") == [f"{name}.gz" for name in TEST_FILES]
    test = load_split("mnist", "test", data_dir=target, download=False)
    assert test.images.shape == (10_000, 784)


def test_checksum_mismatch_keeps_nothing(
    data_dir: Path, tmp_path: Path, mirror: tuple[str, Path]
) -> None:
    url, root = mirror
    _serve_real_mnist_test_split(data_dir, root)
    labels = read_idx(root / "t10k-labels-idx1-ubyte.gz").copy()
    labels[0] = (labels[0] + 1) % 10  # one wrong label: valid IDX, wrong content
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(encode_idx(labels)))
    target = tmp_path / "data"
    with pytest.raises(DatasetUnavailableError) as caught:
        ensure_files(MNIST, TEST_FILES, target, mirrors=[url])
    message = str(caught.value)
    assert "checksum mismatch" in message and "t10k-labels-idx1-ubyte" in message
    assert caught.value.missing == ["t10k-labels-idx1-ubyte"]
    assert _leftovers(target / "mnist") == ["t10k-images-idx3-ubyte.gz"]  # no partial file


def test_offline_names_files_folder_and_sources(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError) as caught:
        ensure_files(MNIST, TEST_FILES, tmp_path, mirrors=[OFFLINE_MIRROR], timeout=5)
    message = str(caught.value)
    assert OFFLINE_MIRROR in message and "refused" in message.lower()
    assert "t10k-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert f"Put the files in {tmp_path / 'mnist'}" in message
    assert MNIST.mirrors[0] + "t10k-images-idx3-ubyte.gz" in message
    assert _leftovers(tmp_path / "mnist") == []


def test_missing_file_on_mirror_and_non_idx_content(
    tmp_path: Path, mirror: tuple[str, Path]
) -> None:
    url, root = mirror
    with pytest.raises(DatasetUnavailableError, match="HTTP Error 404"):
        ensure_files(MNIST, TEST_FILES, tmp_path, mirrors=[url])
    (root / "page.gz").write_text("<html>mirror moved</html>")
    with pytest.raises(IdxFormatError, match="not an IDX file"):
        download_file(url + "page.gz", tmp_path / "page.gz")
    assert not (tmp_path / "page.gz").exists()


def test_emnist_archive_is_unpacked_for_every_split(
    tmp_path: Path, mirror: tuple[str, Path]
) -> None:
    url, root = mirror
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        for split, labels in {"letters": [1, 26, 13], "digits": [0, 9, 4]}.items():
            for part in ("train", "test"):
                images = emnist_images(3).transpose(0, 2, 1).copy()
                stem = f"gzip/emnist-{split}-{part}"
                archive.writestr(f"{stem}-images-idx3-ubyte.gz", gzip.compress(encode_idx(images)))
                values = np.array(labels, dtype=np.uint8)
                archive.writestr(f"{stem}-labels-idx1-ubyte.gz", gzip.compress(encode_idx(values)))
        archive.writestr(
            "gzip/emnist-letters-mapping.txt",
            "".join(f"{i} {64 + i} {96 + i}\n" for i in range(1, 27)),
        )
    (root / "gzip.zip").write_bytes(packed.getvalue())

    letters = DATASETS["emnist-letters"]
    ensure_files(letters, letters.required_files(("train",)), tmp_path, mirrors=[url])
    unpacked = _leftovers(tmp_path / "emnist")
    assert len(unpacked) == 9 and "emnist-digits-test-labels-idx1-ubyte.gz" in unpacked
    train = load_split("emnist-letters", "train", data_dir=tmp_path, download=False)
    assert train.labels.tolist() == [0, 25, 12] and train.class_names[12] == "M/m"
    digits = load_split("emnist-digits", "test", data_dir=tmp_path, download=False)
    assert digits.labels.tolist() == [0, 9, 4]
