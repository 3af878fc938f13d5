"""Conv layers on the crossbar: the unrolled matrix, the chip-batched forward, a real study."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from hwmodels.chip_forward import forward_chips
from hwmodels.conv import ConvGeometry, HardwareConv2d
from hwmodels.evaluation import _plan, chip_weights
from hwmodels.layers import set_mode
from hwmodels.mapping import WeightMapper
from hwmodels.network import build_float, calibrate, copy_hardware, to_float, to_hardware
from hwmodels.pipeline import run_study
from hwmodels.profile import HardwareProfile
from hwmodels.specs import NetworkSpec, StudySpec
from hwmodels.surrogates import HARD, Mode

LENET = NetworkSpec(architecture="lenet5")


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 1), (1, 2)])
def test_conv_on_ideal_crossbar_equals_torch_conv2d(stride: int, padding: int) -> None:
    profile = HardwareProfile()
    geometry = ConvGeometry(3, 5, 3, stride, padding)
    layer = HardwareConv2d(geometry, profile, WeightMapper(profile))
    kernel, bias = torch.randn(5, 3, 3, 3), torch.randn(5)
    layer.load_state_dict({"weight": kernel, "bias": bias}, strict=False)
    assert layer.weight.shape == (5, 27)  # the crossbar's unrolled matrix
    x = torch.randn(4, 3, 9, 9)
    for mode in (HARD, Mode("ste")):
        layer.mode = mode
        expected = F.conv2d(x, kernel, bias, stride, padding)
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_conv_on_quantized_crossbar_is_conv2d_with_the_effective_kernel() -> None:
    profile = HardwareProfile.model_validate(
        {"weights": {"bits": 2}, "conductance": {"on_off_ratio": 10, "asymmetry": 0.1}}
    )
    mapper = WeightMapper(profile)
    layer = HardwareConv2d(ConvGeometry(2, 4, 3, 1, 1), profile, mapper)
    torch.nn.init.normal_(layer.weight)
    x = torch.randn(2, 2, 6, 6)
    effective = layer.effective_weight().detach()
    assert not torch.allclose(effective, layer.weight)
    kernel = effective.view(4, 2, 3, 3)
    torch.testing.assert_close(
        layer(x), F.conv2d(x, kernel, layer.bias, 1, 1), rtol=1e-5, atol=1e-5
    )


def test_float_and_hardware_lenet_agree_on_ideal_hardware_and_round_trip() -> None:
    net = build_float(LENET, "mnist", HardwareProfile(), seed=0)
    hardware = to_hardware(net, HardwareProfile())
    x = torch.rand(16, 784)
    calibrate(hardware, x)
    torch.testing.assert_close(hardware(x), net(x))
    torch.testing.assert_close(to_float(hardware)(x), net(x))
    assert [layer.weight.dim() for layer in hardware.hardware_layers()] == [2] * 5


def test_chip_batched_forward_equals_each_chip_run_alone() -> None:
    """Grouped convolutions over chips, with row tiles and a 3-bit ADC, give each chip's
    logits exactly as the module forward does with that chip's weights."""
    profile = HardwareProfile.model_validate(
        {
            "weights": {"bits": 3},
            "activations": {"bits": 3},
            "converters": {"output_bits": 3},
            "array": {"rows": 16, "columns": 8},
            "noise": {"programming": 0.05, "stuck_off": 0.01},
        }
    )
    net = to_hardware(build_float(LENET, "mnist", profile, seed=1), profile)
    x = torch.rand(20, 784)
    calibrate(net, x)
    set_mode(net, HARD)
    chips = 3
    per_chip = [chip_weights(net, chip, seed=5) for chip in range(chips)]
    stacked = [torch.stack([w[i] for w in per_chip]) for i in range(5)]
    with torch.no_grad():
        logits = forward_chips(net, _plan(net, True), stacked, x, chips, torch.float32, None)
        alone = copy_hardware(net)
        set_mode(alone, HARD)
        for chip in range(chips):
            for layer, weight in zip(alone.hardware_layers(), per_chip[chip], strict=True):
                layer.effective_weight = lambda weight=weight: weight  # type: ignore[method-assign]
            torch.testing.assert_close(logits[chip], alone(x), rtol=1e-4, atol=1e-4)
    assert not torch.equal(logits[0], logits[1])


def test_lenet_study_on_real_mnist_runs_end_to_end_and_beats_chance(data_dir: Path) -> None:
    spec = StudySpec.model_validate(
        {
            "network": {"architecture": "lenet5"},
            "profile": {
                "weights": {"bits": 3},
                "activations": {"bits": 3},
                "converters": {"output_bits": 5},
                "array": {"rows": 256, "columns": 256},
                "noise": {"programming": 0.03, "read": 0.01},
            },
            "training": {"epochs": 1, "hw_epochs": 1, "train_samples": 2000},
            "evaluation": {"chips": 3, "test_samples": 500},
        }
    )
    report = run_study(spec, data_dir=data_dir, allow_download=False).report
    assert report.float_accuracy > 0.5
    assert report.naive.mean > 0.3 and report.hardware_aware.mean > 0.3
    assert [layer.arrays for layer in report.layers] == [1, 1, 2, 1, 1]
    assert [(layer.fan_in, layer.fan_out) for layer in report.layers][:2] == [(25, 6), (150, 16)]
    assert report.parameters == 61_706
