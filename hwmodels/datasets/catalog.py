"""The datasets hwscore knows: names, shapes, class counts and files. No torch import.

CONTRACT (filled in by the datasets work): every name in DatasetName has a DatasetInfo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    input_size: int
    num_classes: int


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", 784, 10),
    "fashion-mnist": DatasetInfo("fashion-mnist", 784, 10),
    "emnist-byclass": DatasetInfo("emnist-byclass", 784, 62),
    "emnist-bymerge": DatasetInfo("emnist-bymerge", 784, 47),
    "emnist-balanced": DatasetInfo("emnist-balanced", 784, 47),
    "emnist-letters": DatasetInfo("emnist-letters", 784, 26),
    "emnist-digits": DatasetInfo("emnist-digits", 784, 10),
    "emnist-mnist": DatasetInfo("emnist-mnist", 784, 10),
}
