"""load_split on real MNIST and Fashion-MNIST, and on EMNIST-layout files written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hwmodels.datasets import (
    DatasetError,
    DatasetUnavailableError,
    IdxFormatError,
    UnknownDatasetError,
    dataset_status,
    load_split,
    loader,
    resolve_data_dir,
)
from tests.conftest import skip_or_fail
from tests.datasets.helpers import write_emnist_split, write_idx

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_mnist_train_is_the_real_set(data_dir: Path) -> None:
    train = load_split("mnist", "train", data_dir=data_dir, download=False)
    assert train.images.shape == (60_000, 784) and train.images.dtype == torch.float32
    assert train.labels.dtype == torch.int64 and len(train) == 60_000
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    assert float(train.images.mean()) == pytest.approx(0.1307, abs=5e-5)
    assert float(train.images.std()) == pytest.approx(0.3081, abs=5e-5)
    counts = torch.bincount(train.labels).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert train.num_classes == 10 and train.class_names[7] == "7"


def test_mnist_test_split_limit_and_cache(data_dir: Path) -> None:
    full = load_split("mnist", "test", data_dir=data_dir, download=False)
    assert full.images.shape == (10_000, 784)
    reads = loader._read_arrays.cache_info().misses
    head = load_split("mnist", "test", data_dir=data_dir, limit=500, download=False)
    assert loader._read_arrays.cache_info().misses == reads, "second load must not read files"
    assert torch.equal(head.images, full.images[:500]) and torch.equal(
        head.labels, full.labels[:500]
    )
    head.images.zero_()  # callers own their tensors: the cache must not change
    again = load_split("mnist", "test", data_dir=data_dir, limit=500, download=False)
    assert torch.equal(again.images, full.images[:500])


def test_fashion_mnist_falls_back_to_debian_folder(tmp_path: Path) -> None:
    if not (DEBIAN_FASHION / "t10k-images-idx3-ubyte.gz").exists():
        skip_or_fail(
            f"Fashion-MNIST not in {DEBIAN_FASHION}: apt-get install dataset-fashion-mnist"
        )
    assert dataset_status("fashion-mnist", tmp_path).path == DEBIAN_FASHION
    test = load_split("fashion-mnist", "test", data_dir=tmp_path, download=False)
    assert test.images.shape == (10_000, 784)
    assert torch.bincount(test.labels).tolist() == [1000] * 10  # balanced by design
    assert float(test.images.mean()) == pytest.approx(0.2868, abs=1e-3)
    assert test.class_names[9] == "Ankle boot"


def test_emnist_letters_layout_is_transposed_shifted_and_named(tmp_path: Path) -> None:
    folder = tmp_path / "emnist" / "gzip"  # where NIST's gzip.zip unpacks
    labels = {"train": np.array([1, 2, 26, 5]), "test": np.array([26, 1, 3])}
    upright = write_emnist_split(folder, "letters", labels)
    mapping = "".join(f"{i} {64 + i} {96 + i}\n" for i in range(1, 27))
    (folder / "emnist-letters-mapping.txt").write_text(mapping)

    train = load_split("emnist-letters", "train", data_dir=tmp_path, download=False)
    assert train.labels.tolist() == [0, 1, 25, 4]
    pictures = train.images.reshape(-1, 28, 28)
    assert torch.all(pictures[:, 2, 20] == 1.0) and torch.all(pictures[:, 20, 2] == 0.0)
    np.testing.assert_array_equal(
        (pictures * 255).round().to(torch.uint8).numpy(), upright["train"]
    )
    assert train.num_classes == 26 and len(train.class_names) == 26
    assert train.class_names[0] == "A/a" and train.class_names[25] == "Z/z"
    assert load_split(
        "emnist-letters", "test", data_dir=tmp_path, download=False
    ).labels.tolist() == [25, 0, 2]


def test_emnist_raw_files_in_folder_root_and_builtin_names(tmp_path: Path) -> None:
    labels = {"train": np.array([0, 9, 10, 61]), "test": np.array([35, 36])}
    write_emnist_split(tmp_path / "emnist", "byclass", labels, compress=False)
    assert dataset_status("emnist-byclass", tmp_path).present
    assert not dataset_status("emnist-balanced", tmp_path).present
    train = load_split("emnist-byclass", "train", data_dir=tmp_path, download=False)
    assert train.labels.tolist() == [0, 9, 10, 61]
    assert [train.class_names[i] for i in (0, 10, 36, 61)] == ["0", "A", "a", "z"]


def test_labels_outside_the_dataset_are_rejected(tmp_path: Path) -> None:
    write_emnist_split(tmp_path / "emnist", "letters", {"train": np.array([0, 3])})
    with pytest.raises(DatasetError, match=r"labels range over 0\.\.3.*expects 1\.\.26"):
        load_split("emnist-letters", "train", data_dir=tmp_path, download=False)


def test_bad_mapping_file_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "emnist"
    write_emnist_split(folder, "digits", {"test": np.array([1, 2])})
    (folder / "emnist-digits-mapping.txt").write_text("0 48\n1 x49\n")
    with pytest.raises(DatasetError, match=r"mapping.txt:2: expected 'label ascii-code"):
        load_split("emnist-digits", "test", data_dir=tmp_path, download=False)


def test_images_and_labels_of_different_sizes(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28), dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(4, dtype=np.uint8))
    with pytest.raises(IdxFormatError, match=r"4 labels but .* 3 images"):
        load_split("mnist", "test", data_dir=tmp_path, download=False)


def test_missing_files_say_what_and_where(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(1, dtype=np.uint8), compress=False)
    with pytest.raises(DatasetUnavailableError) as caught:
        load_split("mnist", "train", data_dir=tmp_path, download=False)
    message = str(caught.value)
    assert "train-images-idx3-ubyte.gz" in message and "train-labels" not in message
    assert f"Put the files in {folder}" in message and "HWSCORE_DATA_DIR" in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" in message
    assert caught.value.missing == ["train-images-idx3-ubyte"] and caught.value.folder == str(
        folder
    )
    status = dataset_status("mnist", tmp_path)
    assert not status.present and status.path == folder
    assert status.missing == (
        "train-images-idx3-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )


def test_emnist_missing_message_points_to_the_archive(tmp_path: Path) -> None:
    with pytest.raises(DatasetUnavailableError) as caught:
        load_split("emnist-balanced", "test", data_dir=tmp_path, download=False)
    message = str(caught.value)
    assert "emnist-balanced-test-images-idx3-ubyte.gz" in message
    assert f"unpack its gzip/ folder into {tmp_path / 'emnist'}" in message
    assert "EMNIST/gzip.zip" in message


def test_download_setting_off_fails_without_touching_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HWSCORE_DOWNLOAD_DATASETS", "false")
    with pytest.raises(DatasetUnavailableError) as caught:
        load_split("mnist", "test", data_dir=tmp_path / "nothing-here")
    assert "downloads are turned off (by the caller or HWSCORE_DOWNLOAD_DATASETS)" in str(
        caught.value
    )
    assert caught.value.folder == str(tmp_path / "nothing-here" / "mnist")


def test_data_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWSCORE_DATA_DIR", str(tmp_path / "from-env"))
    assert resolve_data_dir(tmp_path / "given") == tmp_path / "given"
    assert resolve_data_dir() == tmp_path / "from-env"
    monkeypatch.delenv("HWSCORE_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "hwscore" / "data"


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(
        UnknownDatasetError, match="unknown dataset 'kmnist'; valid datasets: mnist"
    ):
        load_split("kmnist", "train", data_dir=tmp_path)
    with pytest.raises(ValueError, match="split must be one of train, test"):
        load_split("mnist", "validation", data_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit must be a positive"):
        load_split("mnist", "test", data_dir=tmp_path, limit=0)
