"""Layer-list specs: shapes worked out at spec time, clear refusals, unchanged MLP dumps."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hwmodels.cost import CONV_WORK_FACTOR, estimate_cost
from hwmodels.profile import HardwareProfile
from hwmodels.specs import NetworkSpec, StudySpec


def test_mlp_specs_dump_as_before_so_their_hash_is_unchanged() -> None:
    assert NetworkSpec().model_dump(mode="json") == {"hidden": [256, 128]}
    dumped = StudySpec().model_dump(mode="json")
    assert dumped["network"] == {"hidden": [256, 128]} and "array" not in dumped["profile"]
    assert "array" not in HardwareProfile().model_dump()


def test_named_and_listed_networks_round_trip_in_the_form_given() -> None:
    lenet = NetworkSpec(architecture="lenet5")
    assert lenet.model_dump(mode="json") == {"architecture": "lenet5"}
    assert NetworkSpec.model_validate(lenet.model_dump(mode="json")) == lenet
    assert NetworkSpec(architecture="mlp-256-128").layer_sizes("mnist") == [784, 256, 128, 10]
    assert NetworkSpec(architecture="mlp-256-128").is_mlp and not lenet.is_mlp
    listed = NetworkSpec.model_validate(
        {
            "layers": [
                {"type": "conv2d", "channels": 4, "kernel": 3},
                {"type": "flatten"},
                {"type": "linear"},
            ]
        }
    )
    assert "hidden" not in listed.model_dump(mode="json")
    assert NetworkSpec.model_validate(listed.model_dump(mode="json")) == listed


def test_lenet5_shapes_parameters_and_work() -> None:
    lenet = NetworkSpec(architecture="lenet5")
    shapes = [s.output_shape for s in lenet.shapes("mnist")]
    assert shapes == [
        (6, 28, 28),
        (6, 14, 14),
        (16, 10, 10),
        (16, 5, 5),
        (400,),
        (120,),
        (84,),
        (10,),
    ]
    assert lenet.parameter_count("mnist") == 156 + 2416 + 48120 + 10164 + 850
    conv = 28 * 28 * (6 * 25 + 6) + 10 * 10 * (16 * 150 + 16)
    assert lenet.work_per_sample("mnist") == conv + 48120 + 10164 + 850
    spec = StudySpec(
        network=lenet,
        training={"train_samples": 1000, "epochs": 1, "hw_epochs": 0},
        evaluation={"chips": 1, "test_samples": 100},
    )
    weighted = CONV_WORK_FACTOR * conv + 48120 + 10164 + 850
    assert estimate_cost(spec).total == (1000 + 100) * weighted
    assert NetworkSpec(architecture="lenet5").shapes("emnist-balanced")[-1].output_shape == (47,)


def conv_net(*layers: dict[str, object]) -> dict[str, object]:
    return {"network": {"layers": list(layers)}}


CONV = {"type": "conv2d", "channels": 4, "kernel": 5}
FLAT, OUT = {"type": "flatten"}, {"type": "linear"}
WIDE = {"type": "conv2d", "channels": 64, "kernel": 3, "padding": 1}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (conv_net(CONV, OUT), "network.layers[1] (linear) gets a 4 x 24 x 24 map: insert"),
        (
            conv_net(CONV, {"type": "maxpool", "kernel": 8}, CONV, FLAT, OUT),
            "network.layers[2] (conv2d): its 5 x 5 kernel does not fit the 4 x 3 x 3 input",
        ),
        (conv_net(FLAT, CONV, OUT), "network.layers[1] (conv2d) needs a channels x height x"),
        (
            conv_net(CONV, FLAT, {"type": "linear", "features": 7}),
            "its features must be the dataset's 10 classes (or null), got 7",
        ),
        (conv_net(CONV, FLAT), "network.layers must end with a linear layer"),
        (conv_net(CONV, FLAT, {"type": "linear"}, OUT), "features may be null only in the last"),
        (conv_net({**CONV, "padding": 5}, FLAT, OUT), "padding 5 must be less than the kernel"),
        (
            conv_net(WIDE, {**WIDE, "channels": 256}, {**WIDE, "channels": 256}, FLAT, OUT),
            "multiply-accumulates per sample on mnist; the limit is",
        ),
        (
            {"network": {"hidden": [32], "architecture": "lenet5"}},
            "give one of network.hidden, network.layers or network.architecture",
        ),
        ({"network": {"architecture": "resnet50"}}, "architecture"),
    ],
)
def test_bad_shapes_are_refused_naming_the_layer(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=None) as caught:
        StudySpec.model_validate(body)
    assert message in str(caught.value)
