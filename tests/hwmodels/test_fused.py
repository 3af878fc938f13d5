"""The fused (compiled) weight transform and fused Adam against the eager reference."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from hwmodels import fused, training
from hwmodels.layers import InjectedNoise, set_mode
from hwmodels.network import (
    FloatMLP,
    HardwareMLP,
    build_float,
    calibrate,
    copy_hardware,
    to_hardware,
)
from hwmodels.profile import HardwareProfile, get_preset
from hwmodels.specs import TrainingSettings
from hwmodels.surrogates import Mode
from hwmodels.training import EpochRecord, train_float, train_hardware_aware

from .conftest import SMALL_NET, Subset

FAMILIES = {
    "calibrated-differential": get_preset("rram-2bit"),
    "linear-differential": HardwareProfile.model_validate(
        {
            "weights": {"bits": 3, "programming": "linear"},
            "conductance": {"on_off_ratio": 20.0, "nonlinearity": 2.0, "asymmetry": 0.1},
            "noise": {"programming": 0.05},
        }
    ),
    "offset-per-column": HardwareProfile.model_validate(
        {
            "weights": {"bits": 2, "mapping": "offset", "scale": "per_column"},
            "conductance": {"on_off_ratio": 10.0, "asymmetry": 0.2},
            "noise": {"programming": 0.02, "stuck_off": 0.01, "stuck_on": 0.01},
        }
    ),
    "percentile-scale": HardwareProfile.model_validate(
        {
            "weights": {"bits": 2, "scale_percentile": 99.0},
            "conductance": {"on_off_ratio": 5.0, "nonlinearity": -1.0},
            "noise": {"programming": 0.5},  # clipping at 0 matters
        }
    ),
    # 5 bits: more thresholds than fused.MAX_STAIRS, so hard weights use the table kernel
    "fine-levels": HardwareProfile.model_validate(
        {
            "weights": {"bits": 5},
            "conductance": {"on_off_ratio": 10.0, "nonlinearity": 3.0, "asymmetry": 0.1},
            "noise": {"programming": 0.03, "stuck_off": 0.01},
        }
    ),
}


def _loss_and_grads(
    net: HardwareMLP, mode: Mode, noisy: bool, images: torch.Tensor, labels: torch.Tensor
) -> tuple[float, list[torch.Tensor]]:
    copy = copy_hardware(net)
    set_mode(copy, mode)
    if noisy:
        noise = InjectedNoise.create(copy.hardware_layers(), copy.profile.noise, seed=3)
        for layer in copy.hardware_layers():
            layer.noise = noise
    loss = F.cross_entropy(copy(images), labels)
    loss.backward()  # type: ignore[no-untyped-call]
    return float(loss.detach()), [p.grad.clone() for p in copy.parameters() if p.grad is not None]


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize(
    ("mode", "noisy"),
    [
        (Mode("ste"), False),
        (Mode("ste"), True),
        (Mode("smooth", 0.3), True),
        (Mode("smooth", 0.01), True),
    ],
)
def test_fused_transform_equals_the_eager_reference(
    compiled_engine: None,
    trained_float: FloatMLP,
    mnist_subset: Subset,
    family: str,
    mode: Mode,
    noisy: bool,
) -> None:
    """The compiled kernels (hard weights for STE, noise-free and noisy; surrogates, noisy
    pairs with clipping and stuck devices) against the eager code, loss and gradients."""
    net = to_hardware(trained_float, FAMILIES[family])
    calibrate(net, mnist_subset.train_images)
    images, labels = mnist_subset.train_images[:256], mnist_subset.train_labels[:256]
    results = {}
    for enabled in (False, True):
        fused.set_enabled(enabled)
        results[enabled] = _loss_and_grads(net, mode, noisy, images, labels)
    (eager_loss, eager_grads), (fused_loss, fused_grads) = results[False], results[True]
    assert fused_loss == pytest.approx(eager_loss, rel=1e-4)
    for eager, fast in zip(eager_grads, fused_grads, strict=True):
        # Float32 rounding of a position on a fine table grid may pick the neighbouring
        # cell (another slope) for a few weights: compare against the largest gradient.
        assert (fast - eager).abs().max() <= 0.02 * eager.abs().max()
        if eager.dim() == 0:
            # A learned clip's gradient sums over every activation, those few weights'
            # included: the check above (2% of itself) is the one that applies to it.
            continue
        assert torch.allclose(fast, eager, rtol=1e-3, atol=1e-3 * float(eager.abs().max()))


def _losses(records: list[EpochRecord]) -> list[float]:
    return [record.loss for record in records]


def test_fused_adam_trains_like_the_unfused(
    monkeypatch: pytest.MonkeyPatch, mnist_subset: Subset
) -> None:
    images, labels = mnist_subset.train_images[:2000], mnist_subset.train_labels[:2000]
    profile = FAMILIES["calibrated-differential"]
    settings = TrainingSettings(epochs=2, hw_epochs=2, stages=2, seed=1, hw_learning_rate=5e-4)

    def run(strategy: str) -> tuple[list[float], list[float]]:
        net = build_float(SMALL_NET, "mnist", profile, settings.seed)
        float_losses = _losses(train_float(net, images, labels, settings))
        hardware = to_hardware(net, profile)
        calibrate(hardware, images)
        run_settings = settings.model_copy(update={"strategy": strategy})
        return float_losses, _losses(train_hardware_aware(hardware, images, labels, run_settings))

    for strategy in ("ste", "annealed"):
        fast = run(strategy)
        with monkeypatch.context() as patch:
            patch.setattr(training, "adam", functools.partial(training.adam, fused=False))
            plain = run(strategy)
        # Float training is smooth: the two Adams agree to rounding. Hardware-aware
        # training rounds weights to levels, so a rounding-level difference may move a
        # weight across a threshold and the losses drift apart a little more.
        assert fast[0] == pytest.approx(plain[0], rel=1e-3)
        assert fast[1] == pytest.approx(plain[1], rel=2e-2)
