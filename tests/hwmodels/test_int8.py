"""The int8 Monte Carlo path: exact integer GEMMs, weights rounded per row, and nothing
else rounded (the converters' codes are the operands)."""

from __future__ import annotations

import pytest
import torch

from hwmodels import int8, mlp_forward
from hwmodels.chips import NormalPool
from hwmodels.cli.parser import build_parser
from hwmodels.evaluation import COMPUTE_DTYPES, _plan, chip_accuracies
from hwmodels.int8 import quantize_rows
from hwmodels.network import FloatMLP, HardwareMLP, calibrate, to_hardware
from hwmodels.profile import HardwareProfile
from hwmodels.specs import COMPUTE_DTYPE_NAMES
from hwmodels.surrogates import Uniform

from .conftest import Subset


def _profile(**converters: int) -> HardwareProfile:
    return HardwareProfile.model_validate(
        {
            "weights": {"bits": 3},
            "conductance": {"on_off_ratio": 20.0, "nonlinearity": 1.0, "asymmetry": 0.05},
            "activations": {"bits": 4},
            "converters": converters,
            "noise": {"programming": 0.04, "read": 0.02, "stuck_off": 0.01},
        }
    )


PIXELS_IN = _profile()  # first layer: 8-bit pixels (256 codes, shifted by 128)
DAC_IN = _profile(input_bits=6, output_bits=10)  # every input through a 6-bit DAC


def _integers(low: int, high: int, *shape: int) -> torch.Tensor:
    return torch.randint(
        low, high, shape, dtype=torch.int8, generator=torch.Generator().manual_seed(sum(shape))
    )


@pytest.mark.parametrize(
    ("w_shape", "h_shape"),
    [
        ((3, 5, 37), (37, 19)),
        ((3, 5, 37), (3, 37, 19)),
        ((5, 37), (3, 37, 19)),
        ((5, 37), (37, 19)),
    ],
    ids=["stacked-shared", "stacked-per-chip", "shared-per-chip", "shared-shared"],
)
def test_the_integer_gemm_is_exact_in_every_layout(
    w_shape: tuple[int, ...], h_shape: tuple[int, ...]
) -> None:
    w, h = _integers(-127, 128, *w_shape), _integers(-128, 128, *h_shape)
    expected = torch.matmul(w.long(), h.long())
    result = int8.matmul(w, h)
    assert result.dtype == torch.int32
    assert torch.equal(result.long(), expected)


def test_rows_round_to_within_half_a_step_with_their_largest_weight_at_127() -> None:
    weight = torch.randn(4, 6, 50, generator=torch.Generator().manual_seed(0))
    weight[0, 0] = 0.0  # a row of zeros stays zero (no division by zero)
    rounded = quantize_rows(weight)
    assert rounded.codes.dtype == torch.int8
    back = rounded.codes.float() * rounded.scale.unsqueeze(-1)
    assert bool(((back - weight).abs() <= rounded.scale.unsqueeze(-1) / 2 + 1e-7).all())
    assert torch.equal(back[0, 0], torch.zeros(50))
    assert torch.equal(
        rounded.codes[1:].abs().amax(dim=-1), torch.full((3, 6), 127, dtype=torch.int8)
    )
    assert torch.equal(rounded.sums, rounded.codes.float().sum(dim=-1))


def test_the_shift_puts_256_codes_into_int8_and_takes_them_out_exactly() -> None:
    eight_bits = Uniform.over(0.0, 2.0, 8)
    grid = int8.Grid(mlp_forward.numbers(eight_bits), eight_bits.step, int8.shift_for(eight_bits))
    assert grid.shift == 128
    codes = torch.arange(256, dtype=torch.float32).reshape(32, 8)  # every code, 0 and 255 too
    weight = quantize_rows(torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(1)))
    gain, offset = int8.dequantize(weight, grid)
    assert offset is not None
    y = (int8.matmul(weight.codes, (codes - 128).to(torch.int8)).double() + offset) * gain
    exact = (
        weight.codes.double() * weight.scale.double().unsqueeze(-1) @ (codes.double() * grid.step)
    )
    assert torch.allclose(y, exact, rtol=1e-6)


def test_converters_that_do_not_fit_a_byte_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 256 levels"):
        int8.shift_for(Uniform(lo=0.0, step=0.1, n=512))
    with pytest.raises(ValueError, match=r"\[0, hi\]"):
        int8.shift_for(Uniform.over(-1.0, 1.0, 4))
    assert int8.shift_for(Uniform.over(0.0, 1.0, 7)) == 0


@pytest.fixture(scope="module", params=["pixels-in", "dac-in"])
def int8_net(
    request: pytest.FixtureRequest, trained_float: FloatMLP, mnist_subset: Subset
) -> HardwareMLP:
    profile = PIXELS_IN if request.param == "pixels-in" else DAC_IN
    net = to_hardware(trained_float, profile)
    calibrate(net, mnist_subset.train_images)
    return net


def test_int8_computes_what_float32_computes_on_the_rounded_weights(
    int8_net: HardwareMLP, mnist_subset: Subset
) -> None:
    """Given weights already on each row's int8 grid, the integer path (codes, shift,
    dequantization, read noise from the codes' norms) gives float32's logits: the weight
    rounding is its only difference."""
    images = mnist_subset.test_images[:512]
    layers = _plan(int8_net, per_chip=False)
    chips = 3
    on_grid = [quantize_rows(layer.weight) for layer in layers if layer.weight is not None]
    floats = [w.codes.float() * w.scale.unsqueeze(-1) for w in on_grid]
    logits = {}
    for dtype, weights in (
        (torch.float32, floats),
        (torch.int8, [quantize_rows(w) for w in floats]),
    ):
        prepared = mlp_forward.prepare(
            int8_net, layers, images, None, 512, dtype, noisy=True, chips=chips
        )
        pool = NormalPool(torch.Generator().manual_seed(5))
        logits[dtype] = mlp_forward.forward(layers, weights, prepared, 0, chips, pool)
    exact, integer = logits[torch.float32], logits[torch.int8]
    assert integer.shape == exact.shape == (chips, 512, 10)
    close = torch.isclose(integer, exact, rtol=1e-4, atol=1e-4 * float(exact.abs().max()))
    # A value within float rounding of a quantizer's step may land on the other side.
    assert int((~close).sum()) <= close.numel() // 100
    assert float(exact.std()) > 0.1  # the logits carry signal


def test_int8_chips_stay_close_to_float32(int8_net: HardwareMLP, mnist_subset: Subset) -> None:
    images, labels = mnist_subset.test_images, mnist_subset.test_labels
    exact = chip_accuracies(int8_net, images, labels, chips=4, seed=0)
    fast = chip_accuracies(int8_net, images, labels, chips=4, seed=0, compute_dtype=torch.int8)
    assert fast != [0.1] * 4 and min(fast) > 0.5
    assert max(abs(a - b) for a, b in zip(exact, fast, strict=True)) < 0.01
    assert abs(sum(exact) - sum(fast)) / 4 < 0.003


def test_int8_refuses_a_hidden_layer_whose_input_is_not_quantized(
    trained_float: FloatMLP, mnist_subset: Subset
) -> None:
    profile = HardwareProfile.model_validate({"weights": {"bits": 3}, "noise": {"read": 0.02}})
    net = to_hardware(trained_float, profile)
    calibrate(net, mnist_subset.train_images)
    images, labels = mnist_subset.test_images[:64], mnist_subset.test_labels[:64]
    with pytest.raises(ValueError, match=r"activations\.bits or profile\.converters\.input_bits"):
        chip_accuracies(net, images, labels, chips=2, compute_dtype=torch.int8)


def test_int8_refuses_images_that_are_not_8_bit_without_a_dac(
    trained_float: FloatMLP, mnist_subset: Subset
) -> None:
    net = to_hardware(trained_float, PIXELS_IN)
    calibrate(net, mnist_subset.train_images)
    images = mnist_subset.test_images[:64] * 0.999  # off the 1/255 grid
    with pytest.raises(ValueError, match="8-bit images or a DAC"):
        chip_accuracies(
            net, images, mnist_subset.test_labels[:64], chips=2, compute_dtype=torch.int8
        )


def test_every_precision_a_spec_accepts_maps_to_torch_and_to_the_cli() -> None:
    assert tuple(COMPUTE_DTYPES) == COMPUTE_DTYPE_NAMES
    assert COMPUTE_DTYPES["int8"] == torch.int8
    args = build_parser().parse_args(["train", "--compute-dtype", "int8"])
    assert args.compute_dtype == "int8"
