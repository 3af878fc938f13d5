"""Crossbar tiling: partial sums per row tile, an ADC on each, the arrays a layer uses."""

from __future__ import annotations

import pytest
import torch

from hwmodels.conv import ConvGeometry, conv_partials
from hwmodels.evaluation import chip_accuracies
from hwmodels.layers import set_mode
from hwmodels.network import build_float, calibrate, to_hardware
from hwmodels.profile import HardwareProfile
from hwmodels.specs import NetworkSpec
from hwmodels.surrogates import HARD, Mode
from hwmodels.tiling import TileGrid, linear_partials, sum_tiles

LENET = NetworkSpec(architecture="lenet5")
MLP = NetworkSpec(hidden=[256, 64])


def profile(**groups: object) -> HardwareProfile:
    base = {"weights": {"bits": 4}, "activations": {"bits": 4}}
    return HardwareProfile.model_validate({**base, **groups})


def test_grid_counts_arrays_and_row_ranges() -> None:
    grid = TileGrid(784, 256, 256, 100)
    assert (grid.row_tiles, grid.column_tiles, grid.arrays) == (4, 3, 12)
    assert grid.row_ranges() == [(0, 256), (256, 512), (512, 768), (768, 784)]
    assert TileGrid(784, 256).arrays == 1 and not TileGrid(784, 256).splits_sums(4)
    assert grid.splits_sums(4) and not grid.splits_sums(None)


def test_tile_partial_sums_add_up_to_the_untiled_layer() -> None:
    grid = TileGrid(50, 7, 16, 4)
    x, weight = torch.randn(5, 50), torch.randn(7, 50)
    tiled = sum_tiles(linear_partials(x, weight, grid), None, HARD, None)
    torch.testing.assert_close(tiled, x @ weight.t(), rtol=1e-5, atol=1e-5)

    geometry = ConvGeometry(6, 4, 3, 1, 1)  # 54 rows: tiles cut through a channel's block
    conv_grid = TileGrid(54, 4, 20, 4)
    images, kernels = torch.randn(2, 6, 8, 8), torch.randn(4, 54)
    whole = conv_partials(images, kernels, geometry, conv_grid, split=False)[0]
    parts = conv_partials(images, kernels, geometry, conv_grid, split=True)
    assert len(parts) == 3
    torch.testing.assert_close(sum_tiles(parts, None, HARD, None), whole, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("spec", [MLP, LENET], ids=["mlp", "lenet5"])
def test_tiling_without_adc_or_with_a_fine_adc_equals_the_untiled_layer(spec: NetworkSpec) -> None:
    """No ADC: exactly the untiled net. A 12-bit ADC whose range covers every partial sum
    (percentile 100) and float neurons: the untiled net to within the ADC's rounding."""
    x = torch.rand(64, 784)
    net = build_float(spec, "mnist", HardwareProfile(), seed=0)
    tiles = {"rows": 64, "columns": 32}
    fine_adc = {"output_bits": 12, "output_percentile": 100.0}
    for converters, tolerance in [({}, 1e-5), (fine_adc, 0.01)]:
        groups = {"converters": converters, "activations": {"bits": None}}
        untiled = to_hardware(net, profile(**groups))
        tiled = to_hardware(net, profile(**groups, array=tiles))
        calibrate(untiled, x)
        calibrate(tiled, x)
        with torch.no_grad():
            reference = untiled(x)
            difference = (tiled(x) - reference).abs().max()
        assert float(difference) < tolerance * float(reference.abs().max())


@pytest.mark.parametrize("spec", [MLP, LENET], ids=["mlp", "lenet5"])
def test_a_few_bit_adc_per_tile_changes_results_and_training_sees_it(spec: NetworkSpec) -> None:
    x, labels = torch.rand(200, 784), torch.randint(0, 10, (200,))
    net = build_float(spec, "mnist", HardwareProfile(), seed=0)
    few_bits = {"output_bits": 3}
    untiled = to_hardware(net, profile(converters=few_bits))
    tiled = to_hardware(net, profile(converters=few_bits, array={"rows": 64, "columns": 64}))
    for hardware in (untiled, tiled):
        calibrate(hardware, x)
    with torch.no_grad():
        assert not torch.allclose(tiled(x), untiled(x), atol=1e-3)
    expected = [
        -(-layer.in_features // 64) * -(-layer.out_features // 64)
        for layer in tiled.hardware_layers()
    ]
    assert [layer.grid.arrays for layer in tiled.hardware_layers()] == expected
    assert any(layer.grid.splits_sums(3) for layer in tiled.hardware_layers())
    # The Monte Carlo path tiles too: a noisy profile's chips run through chip_forward.
    noisy = profile(converters=few_bits, array={"rows": 64, "columns": 64}, noise={"read": 0.02})
    hardware = to_hardware(net, noisy)
    calibrate(hardware, x)
    accuracies = chip_accuracies(hardware, x, labels, chips=3, seed=0)
    assert len(accuracies) == 3 and all(0.0 <= value <= 1.0 for value in accuracies)
    # Hardware-aware training differentiates through the per-tile ADC (straight-through).
    tiled.train()
    set_mode(tiled, Mode("ste"))
    loss = torch.nn.functional.cross_entropy(tiled(x), labels)
    loss.backward()  # type: ignore[no-untyped-call]
    assert all(layer.weight.grad is not None for layer in tiled.hardware_layers())
