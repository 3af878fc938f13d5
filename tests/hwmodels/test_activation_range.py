"""The activation clip a_max: calibrated on the float network, then learned."""

from __future__ import annotations

import torch

from hwmodels.activation import QuantizedActivation
from hwmodels.layers import set_mode
from hwmodels.network import FloatMLP, calibrate, to_hardware
from hwmodels.profile import ActivationConfig, HardwareProfile
from hwmodels.ranges import percentile
from hwmodels.surrogates import HARD, STE, Mode
from tests.hwmodels.conftest import Subset

OFFSET_PROFILE = HardwareProfile.model_validate(
    {
        "weights": {"bits": 2},
        "activations": {"bits": 3},
        "conductance": {"on_off_ratio": 10.0, "asymmetry": 0.2},
    }
)
"""Asymmetric pairs with a finite on/off ratio: every naive weight carries an offset."""


def test_calibrated_clip_follows_the_float_network_not_the_inflated_hardware_one(
    trained_float: FloatMLP, mnist_subset: Subset
) -> None:
    images = mnist_subset.train_images[:2000]
    hardware = to_hardware(trained_float, OFFSET_PROFILE)
    calibrate(hardware, images)
    clips = [float(neuron.a_max.detach()) for neuron in hardware.neurons()]

    with torch.no_grad():
        float_first = torch.relu(trained_float.linear_layers()[0](images))
        set_mode(hardware, HARD)
        hardware_first = torch.relu(hardware.hardware_layers()[0](images))
    float_clip = percentile(float_first, 99.9)
    hardware_clip = percentile(hardware_first, 99.9)

    # The hardware pre-activations are inflated by the offset (what the old calibration
    # took) while the calibrated clip is the float network's own percentile.
    assert hardware_clip > 1.25 * float_clip
    assert abs(clips[0] - float_clip) <= 1e-5 * float_clip


def test_straight_through_clip_gradient_is_the_lsq_one() -> None:
    """y = a Q(x / a): dy/da = Q(v) - v inside [0, a], 1 above it, 0 below it."""
    neuron = QuantizedActivation(ActivationConfig(bits=2))
    with torch.no_grad():
        neuron.a_max.fill_(3.0)
    neuron.mode = STE
    x = torch.tensor([-1.0, 0.4, 1.4, 2.6, 5.0], requires_grad=True)
    neuron(x).sum().backward()
    v = x.detach() / 3.0
    quantized = torch.round(v * 3.0) / 3.0
    expected = torch.where(v > 1.0, 1.0, torch.where(v < 0.0, 0.0, quantized - v))
    assert neuron.a_max.grad is not None
    assert torch.allclose(neuron.a_max.grad, expected.sum(), atol=1e-6)
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))


def test_only_a_calibrated_clip_in_front_of_a_quantizer_is_learned() -> None:
    learned = QuantizedActivation(ActivationConfig(bits=3))
    fixed = QuantizedActivation(ActivationConfig(bits=3, clip=4.0))
    float_relu = QuantizedActivation(ActivationConfig())
    assert [p.numel() for p in learned.parameters()] == [1]
    assert list(fixed.parameters()) == [] and list(float_relu.parameters()) == []
    smooth = Mode("smooth", 0.1)
    learned.a_max.data.fill_(2.0)
    learned.mode = smooth
    learned(torch.linspace(-1, 3, 20)).sum().backward()
    assert learned.a_max.grad is not None and float(learned.a_max.grad) != 0.0
