"""Building the MLP, float <-> hardware conversion, calibration, clear errors."""

from __future__ import annotations

import pytest
import torch

from hwmodels.layers import NotCalibratedError, set_mode
from hwmodels.network import (
    FloatMLP,
    HardwareMLP,
    NetworkTooLargeError,
    build_float,
    calibrate,
    layer_sizes,
    to_float,
    to_hardware,
)
from hwmodels.profile import HardwareProfile, get_preset
from hwmodels.specs import NetworkSpec
from hwmodels.surrogates import FLOAT, HARD

from .conftest import random_mlp


def test_layer_sizes_come_from_the_dataset() -> None:
    assert layer_sizes(NetworkSpec(hidden=[32]), "emnist-letters") == [784, 32, 26]


def test_oversized_networks_are_refused_with_advice() -> None:
    with pytest.raises(NetworkTooLargeError, match="fewer or narrower hidden layers"):
        HardwareMLP([784, 8192, 8192, 10], HardwareProfile())
    with pytest.raises(ValueError, match="unknown dataset"):
        layer_sizes(NetworkSpec(), "cifar")


def test_same_seed_same_initial_weights() -> None:
    a = build_float(NetworkSpec(hidden=[16]), "mnist", HardwareProfile(), seed=3)
    b = build_float(NetworkSpec(hidden=[16]), "mnist", HardwareProfile(), seed=3)
    c = build_float(NetworkSpec(hidden=[16]), "mnist", HardwareProfile(), seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)


def test_conversion_copies_weights_both_ways() -> None:
    net = random_mlp([784, 32, 10])
    hardware = to_hardware(net, get_preset("rram-4bit"))
    assert torch.equal(hardware.layers[0].weight, net.layers[0].weight)
    assert hardware.layers[0].weight.data_ptr() != net.layers[0].weight.data_ptr()
    back = to_float(hardware)
    x = torch.rand(5, 784)
    assert torch.equal(back(x), net(x))
    set_mode(hardware, FLOAT)
    assert torch.equal(hardware(x), net(x))


def test_the_float_net_must_use_the_profiles_activation() -> None:
    sigmoid = HardwareProfile.model_validate({"activations": {"function": "sigmoid"}})
    with pytest.raises(ValueError, match="sigmoid"):
        to_hardware(random_mlp([784, 8, 10]), sigmoid)


def test_calibration_sets_every_range_from_training_data() -> None:
    profile = HardwareProfile.model_validate(
        {
            "weights": {"bits": 3},
            "activations": {"bits": 4, "clip_percentile": 99.0},
            "converters": {"input_bits": 6, "output_bits": 8},
        }
    )
    hardware = to_hardware(random_mlp([784, 32, 16, 10]), profile)
    x = torch.rand(1000, 784)
    set_mode(hardware, HARD)
    with pytest.raises(NotCalibratedError, match="calibrate"):
        hardware(x)
    calibrate(hardware, x)
    assert float(hardware.layers[0].input_range) == pytest.approx(float(x.max()))
    with torch.no_grad():  # a_max follows the float network's activations
        set_mode(hardware, FLOAT)
        first = torch.relu(hardware.layers[0](x))
        set_mode(hardware, HARD)
    assert float(hardware.neurons()[0].a_max.detach()) == pytest.approx(
        float(torch.quantile(first.flatten(), 0.99)), rel=0.01
    )
    assert all(float(layer.output_range) > 0 for layer in hardware.hardware_layers())
    assert torch.isfinite(hardware(x)).all()


def test_sigmoid_neurons_quantize_over_zero_to_one() -> None:
    profile = HardwareProfile.model_validate({"activations": {"function": "sigmoid", "bits": 2}})
    hardware = to_hardware(FloatMLP([784, 16, 10], "sigmoid"), profile)
    calibrate(hardware, torch.rand(10, 784))
    out = hardware.neurons()[0](torch.linspace(-6, 6, 50))
    assert set(torch.round(out * 3).tolist()) <= {0.0, 1.0, 2.0, 3.0}
