"""What a study asks for: dataset, network, training and evaluation settings.

Pydantic models with no torch import, shared by the CLI, the API's request validation
and the workers. Limits live here so that every entry point enforces the same ones.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal, get_args

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from hwmodels.architectures import (
    ARCHITECTURES,
    ArchitectureName,
    LayerShape,
    LayerSpec,
    is_mlp,
    mlp_layers,
    plan_layers,
)
from hwmodels.datasets.catalog import DATASETS, DatasetName, Split
from hwmodels.profile import MAX_DRIFT_TIME_S, HardwareProfile, StrictModel

MAX_PARAMETERS = 5_000_000
MAX_WORK_PER_SAMPLE = 200_000_000
"""Multiply-accumulates per sample: a conv net's cost grows with its maps, not its
parameters, so a few parameters can still mean hours of work per epoch."""
MAX_HIDDEN_LAYERS = 8
MAX_EPOCHS = 100
MAX_CHIPS = 1000
MIN_BATCH_SIZE = 8
"""Below this, each step's fixed cost (the hardware transform maps every weight of the
network once per batch) dominates the run, which the cost estimate (hwmodels.cost) does
not model: a tiny batch would make a job many times slower than estimated."""
MIN_SAMPLES = 100
MAX_DRIFT_TIMES = 12
"""Times after programming one study may evaluate at: each costs one more Monte Carlo
evaluation of both networks (two with drift compensation)."""


class NetworkSpec(StrictModel):
    """The network: the `hidden` MLP shorthand, a list of layers, or a named architecture.

    Input shape and class count come from the dataset. A dump holds only the form that
    was given (``_dump``), so an MLP spec dumps (and hashes) as before layers existed.
    """

    hidden: list[int] = Field(
        default=[256, 128],
        max_length=MAX_HIDDEN_LAYERS,
        description="Hidden layer widths, input to output (an MLP).",
    )
    layers: list[LayerSpec] | None = Field(
        default=None,
        description="The network as layers (conv2d, maxpool, avgpool, flatten, linear), "
        "input to output; the last one is linear with the class count (features null).",
    )
    architecture: ArchitectureName | None = Field(
        default=None,
        description="A named network: lenet5 (LeNet-5 for 28 x 28 images) or mlp-256-128.",
    )

    @model_validator(mode="after")
    def _one_form(self) -> NetworkSpec:
        given = self.model_fields_set
        forms = [name for name in ("hidden", "layers", "architecture") if name in given]
        if len([name for name in forms if getattr(self, name) is not None]) > 1:
            raise ValueError(
                f"give one of network.hidden, network.layers or network.architecture, not "
                f"{' and '.join(forms)}"
            )
        if any(width < 1 or width > 8192 for width in self.hidden):
            raise ValueError("every hidden width must be between 1 and 8192")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        """Only the given form. (No return annotation: pydantic would take it for the
        serialized schema and publish a bare object in the API's documentation.)"""
        data = handler(self)
        for name in ("layers", "architecture"):
            if data.get(name, 0) is None:
                del data[name]
        if "layers" in data or "architecture" in data:
            data.pop("hidden", None)
        return data

    def layer_list(self) -> list[LayerSpec]:
        """The network as layers, whichever form it was given in."""
        if self.architecture is not None:
            return list(ARCHITECTURES[self.architecture])
        if self.layers is not None:
            return list(self.layers)
        return mlp_layers(self.hidden)

    @property
    def is_mlp(self) -> bool:
        """True when the engine runs the network as its MLP (flatten + linear layers)."""
        return is_mlp(self.layer_list())

    def shapes(self, dataset: DatasetName) -> list[LayerShape]:
        """Every layer with its shapes for this dataset; ValueError if they do not fit."""
        info = DATASETS[dataset]
        side = math.isqrt(info.input_size)
        return plan_layers(self.layer_list(), (1, side, side), info.num_classes)

    def layer_sizes(self, dataset: DatasetName) -> list[int]:
        """[inputs, outputs of every conv2d / linear layer (flattened)]."""
        sizes = [DATASETS[dataset].input_size]
        return sizes + [math.prod(s.output_shape) for s in self.shapes(dataset) if s.crossbar]

    def parameter_count(self, dataset: DatasetName) -> int:
        return sum(shape.parameters for shape in self.shapes(dataset))

    def work_per_sample(self, dataset: DatasetName) -> int:
        """Multiply-accumulates per sample, bias additions included (an MLP: its
        parameter count)."""
        return sum(shape.work for shape in self.shapes(dataset))


class TrainingSettings(StrictModel):
    """Float training, then hardware-aware fine-tuning warm-started from it."""

    epochs: int = Field(default=10, ge=1, le=MAX_EPOCHS, description="Float training epochs.")
    hw_epochs: int = Field(
        default=20,
        ge=0,
        le=MAX_EPOCHS,
        description="Hardware-aware epochs (all stages together). The default recipe "
        "(20 epochs at hw_learning_rate 4e-3, cosine decay) is the one measured in the "
        "README's reproduction table.",
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
    hw_learning_rate: float = Field(
        default=4e-3,
        gt=0.0,
        le=1.0,
        description="Peak Adam learning rate of hardware-aware training, decayed to 0 by a "
        "cosine over the phase (over each stage when annealed).",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    validation_fraction: float = Field(
        default=0.1,
        ge=0.0,
        le=0.5,
        description="Share of the training images held out from training: ranges are "
        "calibrated on them and metrics.csv scores them after every epoch (the test set "
        "is only for the final scores). 0 = train and calibrate on all of them.",
    )
    train_samples: int | None = Field(
        default=None,
        ge=MIN_SAMPLES,
        description="Use only the first N training images (null = all); at most the "
        "dataset's training split.",
    )


ComputeDtype = Literal["float32", "bfloat16", "int8"]
"""The Monte Carlo GEMMs' precisions (``evaluation.COMPUTE_DTYPES`` maps them to torch)."""
COMPUTE_DTYPE_NAMES: tuple[str, ...] = get_args(ComputeDtype)


class EvaluationSettings(StrictModel):
    """Monte Carlo over simulated chips: each chip is one draw of programming noise and faults."""

    chips: int = Field(default=100, ge=1, le=MAX_CHIPS)
    test_samples: int | None = Field(
        default=None,
        ge=MIN_SAMPLES,
        description="Use only the first N test images (null = all); at most the dataset's "
        "test split.",
    )
    compute_dtype: ComputeDtype = Field(
        default="float32",
        description="Precision of the Monte Carlo GEMMs: float32 is exact to float rounding; "
        "bfloat16 is 2-3x faster on CPUs with AVX-512 and bf16 instructions and may move "
        "accuracies by about 0.1 pp; on CPUs without AVX-512 it is many times slower. int8 "
        "multiplies the converters' integer codes by each chip's weights rounded to int8 "
        "per row (the only rounding), about 2x faster than float32 on CPUs with VNNI; it "
        "needs an MLP whose every layer input is quantized (activations.bits or "
        "converters.input_bits) and no ADCs on tiled partial sums.",
    )
    drift_times_s: list[float] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_DRIFT_TIMES,
        exclude_if=lambda value: value is None,
        description="Also evaluate both networks at these times after programming (s), "
        "increasing, each at least profile.drift.t0_s, e.g. [1, 3600, 86400, 2592000, "
        "31536000]. null = only at t0. Left out of a dump when null, so stored specs "
        "dump (and hash) as before.",
    )

    @field_validator("drift_times_s")
    @classmethod
    def _times_increase(cls, times: list[float] | None) -> list[float] | None:
        if times is None:
            return None
        if any(t <= 0.0 or t > MAX_DRIFT_TIME_S for t in times):
            raise ValueError(
                f"every drift time must be above 0 and at most {MAX_DRIFT_TIME_S:g} s "
                f"(about 100 years), got {times}"
            )
        if any(later <= earlier for earlier, later in itertools.pairwise(times)):
            raise ValueError(f"drift times must be distinct and increasing, got {times}")
        return times


class StartFrom(StrictModel):
    """Given float weights the study starts from, instead of training in float.

    Only their identity is part of the spec (the weights travel beside it: an uploaded
    model in the service, a file on the command line), so the hash of a spec names the
    exact weights and finished work is never reused across different ones.
    """

    sha256: str = Field(
        pattern="^[0-9a-f]{64}$",
        description="SHA-256 of the weights in hwscore's canonical safetensors form.",
    )
    model_id: str | None = Field(
        default=None, max_length=36, description="The uploaded model (service only)."
    )


class StudySpec(StrictModel):
    """Everything one robustness study needs; a job is one study."""

    dataset: DatasetName = "mnist"
    network: NetworkSpec = NetworkSpec()
    profile: HardwareProfile = HardwareProfile()
    training: TrainingSettings = TrainingSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    start_from: StartFrom | None = Field(
        default=None,
        description="Score these float weights instead of training in float (set by the "
        "service from a job's model_id, or by `hwscore train --weights`).",
    )

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        """Leave start_from out when unset, so a study that trains in float dumps (and
        hashes) as it did before weights could be given. (No return annotation: see
        NetworkSpec._dump.)"""
        data = handler(self)
        if data.get("start_from", 0) is None:
            del data["start_from"]
        return data

    @model_validator(mode="after")
    def _within_budget(self) -> StudySpec:
        self.network.shapes(self.dataset)  # raises, naming the layer, if shapes do not fit
        count = self.network.parameter_count(self.dataset)
        if count > MAX_PARAMETERS:
            raise ValueError(
                f"network has {count:,} parameters on {self.dataset}; the limit is "
                f"{MAX_PARAMETERS:,}: use fewer or narrower layers"
            )
        work = self.network.work_per_sample(self.dataset)
        if work > MAX_WORK_PER_SAMPLE:
            raise ValueError(
                f"network needs {work:,} multiply-accumulates per sample on {self.dataset}; "
                f"the limit is {MAX_WORK_PER_SAMPLE:,}: use fewer channels, a larger stride "
                "or pooling earlier"
            )
        return self

    @model_validator(mode="after")
    def _drift_after_t0(self) -> StudySpec:
        """Drift is measured from t0: the chip before t0 is not modelled."""
        times, t0 = self.evaluation.drift_times_s, self.profile.drift.t0_s
        if times is not None and min(times) < t0:
            raise ValueError(
                f"evaluation.drift_times_s must each be at least profile.drift.t0_s ({t0:g} s): "
                f"got {min(times):g} s"
            )
        return self

    @model_validator(mode="after")
    def _int8_runs(self) -> StudySpec:
        """int8 Monte Carlo multiplies integer codes: each layer's input must have them."""
        if self.evaluation.compute_dtype != "int8":
            return self
        profile, sizes = self.profile, self.network.layer_sizes(self.dataset)
        tiled = profile.array is not None and any(
            fan_in > profile.array.rows for fan_in in sizes[:-1]
        )
        problem = None
        if not self.network.is_mlp:
            problem = "it runs MLPs only"
        elif tiled and profile.converters.output_bits is not None:
            problem = "it does not run ADCs on tiled partial sums (profile.array)"
        elif len(sizes) > 2 and not (profile.activations.bits or profile.converters.input_bits):
            problem = (
                "every layer's input must be quantized: set profile.activations.bits or "
                "profile.converters.input_bits"
            )
        if problem is not None:
            raise ValueError(f"evaluation.compute_dtype int8: {problem}; or use float32")
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
    "COMPUTE_DTYPE_NAMES",
    "DATASETS",
    "MAX_CHIPS",
    "MAX_DRIFT_TIMES",
    "MAX_EPOCHS",
    "MAX_PARAMETERS",
    "MAX_WORK_PER_SAMPLE",
    "MIN_BATCH_SIZE",
    "MIN_SAMPLES",
    "EvaluationSettings",
    "NetworkSpec",
    "StartFrom",
    "StudySpec",
    "TrainingSettings",
]
