"""What a study asks for: dataset, network, training and evaluation settings.

Pydantic models with no torch import, shared by the CLI, the API's request validation
and the workers. Limits live here so that every entry point enforces the same ones.
"""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, model_validator

from hwmodels.datasets.catalog import DATASETS, DatasetName, Split
from hwmodels.profile import HardwareProfile, StrictModel

MAX_PARAMETERS = 5_000_000
MAX_HIDDEN_LAYERS = 8
MAX_EPOCHS = 100
MAX_CHIPS = 1000
MIN_BATCH_SIZE = 8
"""Below this, each step's fixed cost (the hardware transform maps every weight of the
network once per batch) dominates the run, which the cost estimate (hwmodels.cost) does
not model: a tiny batch would make a job many times slower than estimated."""
MIN_SAMPLES = 100


class NetworkSpec(StrictModel):
    """A multi-layer perceptron; input size and class count come from the dataset."""

    hidden: list[int] = Field(
        default=[256, 128],
        max_length=MAX_HIDDEN_LAYERS,
        description="Hidden layer widths, input to output.",
    )

    @model_validator(mode="after")
    def _positive_widths(self) -> NetworkSpec:
        if any(width < 1 or width > 8192 for width in self.hidden):
            raise ValueError("every hidden width must be between 1 and 8192")
        return self

    def layer_sizes(self, dataset: DatasetName) -> list[int]:
        info = DATASETS[dataset]
        return [info.input_size, *self.hidden, info.num_classes]

    def parameter_count(self, dataset: DatasetName) -> int:
        sizes = self.layer_sizes(dataset)
        return sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(sizes))


class TrainingSettings(StrictModel):
    """Float training, then hardware-aware fine-tuning warm-started from it."""

    epochs: int = Field(default=10, ge=1, le=MAX_EPOCHS, description="Float training epochs.")
    hw_epochs: int = Field(
        default=5, ge=0, le=MAX_EPOCHS, description="Hardware-aware epochs (all stages together)."
    )
    strategy: Literal["ste", "annealed"] = Field(
        default="ste",
        description="ste: straight-through estimator on the hard model (the default: it "
        "beat annealing in every setting of bench/reproduce.py); annealed: smooth sigmoid "
        "staircases sharpened stage by stage (Obradovic et al. 2018).",
    )
    stages: int = Field(
        default=4, ge=1, le=20, description="Annealing stages (strategy 'annealed')."
    )
    noise_injection: bool = Field(
        default=True, description="Draw programming noise per batch during hardware-aware training."
    )
    batch_size: int = Field(
        default=128,
        ge=MIN_BATCH_SIZE,
        le=8192,
        description=f"Training batch size, at least {MIN_BATCH_SIZE}.",
    )
    learning_rate: float = Field(default=1e-3, gt=0.0, le=1.0)
    hw_learning_rate: float = Field(default=5e-4, gt=0.0, le=1.0)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    train_samples: int | None = Field(
        default=None,
        ge=MIN_SAMPLES,
        description="Use only the first N training images (null = all); at most the "
        "dataset's training split.",
    )


class EvaluationSettings(StrictModel):
    """Monte Carlo over simulated chips: each chip is one draw of programming noise and faults."""

    chips: int = Field(default=100, ge=1, le=MAX_CHIPS)
    test_samples: int | None = Field(
        default=None,
        ge=MIN_SAMPLES,
        description="Use only the first N test images (null = all); at most the dataset's "
        "test split.",
    )
    compute_dtype: Literal["float32", "bfloat16"] = Field(
        default="float32",
        description="Precision of the Monte Carlo GEMMs: float32 is exact to float rounding; "
        "bfloat16 is 2-3x faster on CPUs with bf16 instructions and may move accuracies "
        "by about 0.1 pp.",
    )


class StudySpec(StrictModel):
    """Everything one robustness study needs; a job is one study."""

    dataset: DatasetName = "mnist"
    network: NetworkSpec = NetworkSpec()
    profile: HardwareProfile = HardwareProfile()
    training: TrainingSettings = TrainingSettings()
    evaluation: EvaluationSettings = EvaluationSettings()

    @model_validator(mode="after")
    def _within_budget(self) -> StudySpec:
        count = self.network.parameter_count(self.dataset)
        if count > MAX_PARAMETERS:
            raise ValueError(
                f"network has {count:,} parameters on {self.dataset}; the limit is "
                f"{MAX_PARAMETERS:,}: use fewer or narrower hidden layers"
            )
        return self

    @model_validator(mode="after")
    def _samples_exist(self) -> StudySpec:
        """A sample count above the split's size would be cut silently by the loader."""
        asked: list[tuple[Split, str, str, int | None]] = [
            ("train", "training.train_samples", "training", self.training.train_samples),
            ("test", "evaluation.test_samples", "test", self.evaluation.test_samples),
        ]
        for split, field, words, count in asked:
            available = DATASETS[self.dataset].samples[split]
            if count is not None and count > available:
                raise ValueError(
                    f"{field} is {count:,} but {self.dataset} has {available:,} {words} "
                    f"images: use at most {available:,}, or null for all of them"
                )
        return self

    def samples(self, split: Split) -> int:
        """How many images of a split the study uses."""
        count = self.training.train_samples if split == "train" else self.evaluation.test_samples
        return count if count is not None else DATASETS[self.dataset].samples[split]


__all__ = [
    "DATASETS",
    "MAX_CHIPS",
    "MAX_EPOCHS",
    "MAX_PARAMETERS",
    "MIN_BATCH_SIZE",
    "MIN_SAMPLES",
    "EvaluationSettings",
    "NetworkSpec",
    "StudySpec",
    "TrainingSettings",
]
