"""Monte Carlo over chips: batched evaluation equals chip-by-chip, seeded, bf16 close."""

from __future__ import annotations

import pytest
import torch

from hwmodels import evaluation, fused, mlp_forward
from hwmodels.evaluation import (
    GEMM_COLUMNS,
    _image_chunk,
    accuracy,
    chip_accuracies,
    chip_statistics,
    chip_weights,
)
from hwmodels.layers import set_mode
from hwmodels.network import HardwareMLP, calibrate, to_hardware
from hwmodels.profile import IDEAL, HardwareProfile
from hwmodels.surrogates import HARD

from .conftest import Subset

NOISY = HardwareProfile.model_validate(
    {
        "weights": {"bits": 3},
        "conductance": {"on_off_ratio": 20.0, "nonlinearity": 1.0, "asymmetry": 0.05},
        "activations": {"bits": 4},
        "converters": {"output_bits": 10},
        "noise": {"programming": 0.04, "stuck_off": 0.01, "stuck_on": 0.005},
    }
)


@pytest.fixture(scope="module")
def noisy_net(trained_float: torch.nn.Module, mnist_subset: Subset) -> HardwareMLP:
    net = to_hardware(trained_float, NOISY)  # type: ignore[arg-type]
    calibrate(net, mnist_subset.train_images)
    return net


def test_batched_chips_equal_chip_by_chip_module_forward(
    noisy_net: HardwareMLP, mnist_subset: Subset
) -> None:
    images, labels = mnist_subset.test_images[:500], mnist_subset.test_labels[:500]
    batched = chip_accuracies(noisy_net, images, labels, chips=4, seed=11)
    for chip in range(4):
        copy = HardwareMLP(noisy_net.sizes, NOISY)
        copy.load_state_dict(noisy_net.state_dict())
        set_mode(copy, HARD)
        weights = chip_weights(noisy_net, chip, seed=11)
        for layer, weight in zip(copy.hardware_layers(), weights, strict=True):
            layer.effective_weight = lambda weight=weight: weight  # type: ignore[method-assign]
        one_by_one = accuracy(copy, images, labels)
        assert batched[chip] == pytest.approx(one_by_one, abs=2 / 500)  # float order only


def test_same_seed_same_chips_whatever_the_chunking(
    noisy_net: HardwareMLP, mnist_subset: Subset
) -> None:
    images, labels = mnist_subset.test_images[:300], mnist_subset.test_labels[:300]
    first = chip_accuracies(noisy_net, images, labels, chips=5, seed=2)
    chunked = chip_accuracies(noisy_net, images, labels, chips=5, seed=2, memory_mb=1)
    other = chip_accuracies(noisy_net, images, labels, chips=5, seed=3)
    assert first == chunked
    assert first != other
    assert len(set(first)) > 1  # chips differ


def test_bfloat16_stays_close_to_float32(noisy_net: HardwareMLP, mnist_subset: Subset) -> None:
    images, labels = mnist_subset.test_images, mnist_subset.test_labels
    exact = chip_accuracies(noisy_net, images, labels, chips=3, seed=0)
    fast = chip_accuracies(noisy_net, images, labels, chips=3, seed=0, compute_dtype=torch.bfloat16)
    assert max(abs(a - b) for a, b in zip(exact, fast, strict=True)) < 0.01


def test_read_noise_makes_identical_chips_differ(
    trained_float: torch.nn.Module, mnist_subset: Subset
) -> None:
    profile = HardwareProfile.model_validate({"weights": {"bits": 4}, "noise": {"read": 0.05}})
    net = to_hardware(trained_float, profile)  # type: ignore[arg-type]
    calibrate(net, mnist_subset.train_images)
    values = chip_accuracies(
        net, mnist_subset.test_images, mnist_subset.test_labels, chips=6, seed=0
    )
    assert len(set(values)) > 1


def test_ideal_chips_all_score_the_float_accuracy(
    trained_float: torch.nn.Module, mnist_subset: Subset
) -> None:
    net = to_hardware(trained_float, IDEAL)  # type: ignore[arg-type]
    calibrate(net, mnist_subset.train_images)
    expected = accuracy(trained_float, mnist_subset.test_images, mnist_subset.test_labels)
    values = chip_accuracies(net, mnist_subset.test_images, mnist_subset.test_labels, chips=7)
    assert values == [expected] * 7


def test_statistics_over_chips() -> None:
    stats = chip_statistics([0.9, 0.8, 1.0, 0.7])
    assert stats.chips == 4
    assert stats.mean == pytest.approx(0.85)
    assert stats.worst == 0.7 and stats.best == 1.0
    assert 0.7 <= stats.p5 <= 0.75
    assert stats.std == pytest.approx(0.129, abs=1e-3)


@pytest.mark.parametrize(("chips", "memory_mb"), [(1, 512), (25, 512), (32, 64), (7, 3), (100, 1)])
def test_image_chunks_are_whole_gemm_column_blocks(
    noisy_net: HardwareMLP, chips: int, memory_mb: int
) -> None:
    size = _image_chunk(noisy_net, chips, memory_mb)
    assert size >= GEMM_COLUMNS and size % GEMM_COLUMNS == 0


@pytest.mark.parametrize("every_pixel", [False, True])
def test_chunked_images_give_the_same_chips_and_leave_the_images_alone(
    mnist_subset: Subset, trained_float: torch.nn.Module, every_pixel: bool
) -> None:
    # 17 images: with a DAC and chunks of 16, the last chunk holds one image. With every
    # pixel non-zero no column is dropped (no copy of the images), so that chunk's
    # transpose is a view of the caller's tensor, which the in-place DAC must not modify.
    profile = HardwareProfile.model_validate(
        {"weights": {"bits": 3}, "converters": {"input_bits": 4}, "noise": {"programming": 0.03}}
    )
    net = to_hardware(trained_float, profile)  # type: ignore[arg-type]
    calibrate(net, mnist_subset.train_images)
    images, labels = mnist_subset.test_images[:17].clone(), mnist_subset.test_labels[:17]
    if every_pixel:
        images = images * 0.9 + 0.05
    before = images.clone()
    whole = chip_accuracies(net, images, labels, chips=3, seed=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluation, "_image_chunk", lambda *_: GEMM_COLUMNS)
        chunked = chip_accuracies(net, images, labels, chips=3, seed=4)
    assert chunked == whole
    assert torch.equal(images, before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int8], ids=str)
def test_the_compiled_stage_between_gemms_scores_the_chips_as_the_eager_one(
    compiled_engine: None, mnist_subset: Subset, trained_float: torch.nn.Module, dtype: torch.dtype
) -> None:
    """mlp_forward.epilogue (read noise, ADC, bias, neuron, DAC, cast and column norms in one
    compiled loop; int8: the dequantization and the next GEMM's codes) against its eager
    arithmetic, on every stage it runs."""
    profile = HardwareProfile.model_validate(
        {
            "weights": {"bits": 3},
            "activations": {"bits": 3},
            "converters": {"input_bits": 5, "output_bits": 6},
            "noise": {"programming": 0.03, "read": 0.05, "stuck_off": 0.01},
        }
    )
    net = to_hardware(trained_float, profile)  # type: ignore[arg-type]
    calibrate(net, mnist_subset.train_images)
    images, labels = mnist_subset.test_images[:600], mnist_subset.test_labels[:600]
    results = {}
    for enabled in (False, True):
        fused.set_enabled(enabled)
        results[enabled] = chip_accuracies(
            net, images, labels, chips=6, seed=5, compute_dtype=dtype
        )
    assert results[True] == results[False]
    assert len(set(results[True])) > 1  # the chips differ: the noise reached them


def test_operands_made_again_per_chip_chunk_give_the_same_chips(
    noisy_net: HardwareMLP, mnist_subset: Subset
) -> None:
    """A test set too large to keep its first-layer operands is made again for every
    chunk of chips (memory_mb=1: many chunks), and scores the same chips."""
    images, labels = mnist_subset.test_images[:300], mnist_subset.test_labels[:300]
    kept = chip_accuracies(noisy_net, images, labels, chips=5, seed=2, memory_mb=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mlp_forward, "KEPT_OPERAND_BYTES", 0)
        remade = chip_accuracies(noisy_net, images, labels, chips=5, seed=2, memory_mb=1)
    assert remade == kept


def test_a_process_scores_its_first_chip_images_eagerly_then_compiles_the_stage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mlp_forward.compiles_stage: the ski-rental rule, counted over the process."""
    monkeypatch.setattr(mlp_forward, "COMPILE_AFTER", 10)
    monkeypatch.setattr(mlp_forward, "_scored_eagerly", [0])
    monkeypatch.setattr(fused, "enabled", lambda: False)
    assert not mlp_forward.compiles_stage(100)  # no compiler: eager, and nothing counted
    monkeypatch.setattr(fused, "enabled", lambda: True)
    assert [mlp_forward.compiles_stage(4) for _ in range(3)] == [False, False, True]
    assert mlp_forward.compiles_stage(1)  # and from then on, small calls too
    monkeypatch.setattr(mlp_forward, "_scored_eagerly", [0])
    assert mlp_forward.compiles_stage(10)  # a call that is worth it alone compiles at once


def test_monte_carlo_calls_switch_to_the_compiled_stage_and_score_the_same_chips(
    monkeypatch: pytest.MonkeyPatch, noisy_net: HardwareMLP, mnist_subset: Subset
) -> None:
    """Two calls' chip-images reach COMPILE_AFTER: the first runs eagerly, the second
    through the compiled stage (here a spy running the same arithmetic, nothing compiled)."""
    images, labels = mnist_subset.test_images[:200], mnist_subset.test_labels[:200]
    compiled_calls: list[int] = []

    def spy(*args: object) -> tuple[torch.Tensor, torch.Tensor | None]:
        compiled_calls.append(1)
        return mlp_forward._epilogue(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(mlp_forward, "_compiled_epilogue", spy)
    monkeypatch.setattr(mlp_forward, "COMPILE_AFTER", 2 * 3 * 200)
    monkeypatch.setattr(mlp_forward, "_scored_eagerly", [0])
    monkeypatch.setattr(fused, "enabled", lambda: True)
    eager = chip_accuracies(noisy_net, images, labels, chips=3, seed=4)
    assert compiled_calls == []
    compiled = chip_accuracies(noisy_net, images, labels, chips=3, seed=4)
    assert len(compiled_calls) == len(noisy_net.hardware_layers())  # one chunk, each layer
    assert compiled == eager
