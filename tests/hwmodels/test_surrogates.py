"""Staircases and their stand-ins: hard, straight-through, smooth(tau)."""

from __future__ import annotations

import pytest
import torch

from hwmodels.layers import HardwareLinear, QuantizedActivation
from hwmodels.mapping import WeightMapper
from hwmodels.profile import ActivationConfig, HardwareProfile
from hwmodels.surrogates import (
    HARD,
    STE,
    Mode,
    Staircase,
    Uniform,
    geometric_rhos,
    quantize,
    quantize_hard,
    unit_table,
)

PROFILE = HardwareProfile.model_validate(
    {"weights": {"bits": 3}, "conductance": {"on_off_ratio": 10.0, "nonlinearity": 2.0}}
)


def test_uniform_quantizer_rounds_to_levels_and_clips() -> None:
    q = Uniform.over(0.0, 3.0, 2)  # levels 0, 1, 2, 3
    x = torch.tensor([-1.0, 0.4, 0.6, 2.49, 2.51, 7.0])
    assert quantize_hard(x, q).tolist() == [0.0, 0.0, 1.0, 2.0, 3.0, 3.0]


def test_tabulated_surrogate_matches_the_exact_sum_of_sigmoids() -> None:
    stair = Staircase(
        torch.tensor([-0.5, 0.1, 0.3]).double(), torch.tensor([1.0, -2.0, 0.5]).double(), 0.2
    )
    tau = 0.05
    table = stair.tabulate(tau, -1.0, 1.0)
    x = torch.rand(10_000, dtype=torch.float64) * 2 - 1
    exact = stair.smooth(x, tau)
    assert torch.allclose(table(x.float()).double(), exact, atol=2e-3 * 2.0)


def test_windowed_sum_equals_the_full_sum() -> None:
    thresholds = torch.linspace(-0.9, 0.9, 200, dtype=torch.float64)
    heights = torch.rand(200, dtype=torch.float64)
    stair = Staircase(thresholds, heights, 0.0)
    x = torch.rand(500, dtype=torch.float64) * 2 - 1
    tau = 0.01
    full = (heights * torch.sigmoid((x[:, None] - thresholds) / tau)).sum(1)
    assert torch.allclose(stair.smooth(x, tau), full, atol=1e-7)


@pytest.mark.parametrize("kind", ["weights", "activations"])
def test_surrogate_approaches_the_hard_model_as_tau_shrinks(kind: str) -> None:
    generator = torch.Generator().manual_seed(0)
    if kind == "weights":
        m = WeightMapper(PROFILE)
        x = torch.rand(20_000, generator=generator) * 2 - 1
        hard = m.nominal_effective(x, HARD)
        errors = [
            float((m.nominal_effective(x, Mode("smooth", r)) - hard).abs().mean())
            for r in (1.0, 0.1, 0.01)
        ]
    else:
        q = Uniform.over(0.0, 2.0, 3)
        x = torch.rand(20_000, generator=generator) * 2.5 - 0.25
        hard = quantize_hard(x, q)
        errors = [
            float((quantize(x, q, Mode("smooth", r)) - hard).abs().mean()) for r in (1.0, 0.1, 0.01)
        ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.05 * errors[0]


def test_smooth_gradient_is_the_surrogates_derivative() -> None:
    rho = 0.3
    x = torch.linspace(-0.2, 7.2, 301, dtype=torch.float64)
    exact = x.clone().requires_grad_()
    Staircase(
        torch.arange(1, 8, dtype=torch.float64) - 0.5, torch.ones(7, dtype=torch.float64), 0.0
    ).smooth(exact, rho).sum().backward()
    tabulated = x.float().requires_grad_()
    unit_table(8, rho)(tabulated).sum().backward()
    assert exact.grad is not None and tabulated.grad is not None
    assert torch.allclose(tabulated.grad.double(), exact.grad, atol=0.02 * float(exact.grad.max()))


def test_ste_weight_gradient_is_identity() -> None:
    layer = HardwareLinear(20, 5, PROFILE, WeightMapper(PROFILE))
    torch.nn.init.normal_(layer.weight, generator=torch.Generator().manual_seed(0))
    layer.mode = STE
    upstream = torch.randn(5, 20)
    w_eff = layer.effective_weight()
    layer.mode = HARD
    assert torch.equal(w_eff.detach(), layer.effective_weight())  # forward is the hardware
    w_eff.backward(upstream)
    grad = layer.weight.grad
    assert grad is not None
    top = int(layer.weight.detach().abs().argmax())
    others = torch.ones(100, dtype=torch.bool)
    others[top] = False
    assert torch.equal(grad.flatten()[others], upstream.flatten()[others])
    # the weight that sets s = max|w| also gets the scale's (LSQ) gradient sum g (Q(v) - v)
    w = layer.weight.detach()
    s = w.abs().max()
    scale_term = float((upstream * (w_eff.detach() - w)).sum() / s) * float(w.flatten()[top].sign())
    expected = float(upstream.flatten()[top]) + scale_term
    assert float(grad.flatten()[top]) == pytest.approx(expected, rel=1e-4)


def test_ste_activation_gradient_is_identity_inside_the_range() -> None:
    neuron = QuantizedActivation(ActivationConfig(bits=3, clip=2.0))
    neuron.mode = STE
    x = torch.tensor([-1.0, 0.3, 1.1, 1.9, 2.5], requires_grad=True)
    y = neuron(x)
    assert y.tolist() == pytest.approx([0.0, 2 / 7, 8 / 7, 2.0, 2.0], abs=1e-6)
    y.sum().backward()
    assert x.grad is not None
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_annealing_schedule_goes_from_the_spacing_to_a_hundredth() -> None:
    rhos = geometric_rhos(4)
    assert rhos[0] == pytest.approx(1.0) and rhos[-1] == pytest.approx(0.01)
    assert rhos[1] / rhos[0] == pytest.approx(rhos[2] / rhos[1])
    assert geometric_rhos(1) == [0.01]


def test_smooth_mode_needs_a_positive_tau() -> None:
    with pytest.raises(ValueError, match="rho"):
        Mode("smooth", 0.0)


@pytest.mark.parametrize("scale", ["per_layer", "per_column"])
def test_smooth_weight_gradient_matches_finite_differences(scale: str) -> None:
    """Including the path through s = max|w|: the scale is part of the hardware function."""
    profile = HardwareProfile.model_validate(
        {
            "weights": {"bits": 2, "scale": scale},
            "conductance": {"on_off_ratio": 10.0, "asymmetry": 0.2, "nonlinearity": 2.0},
        }
    )
    layer = HardwareLinear(6, 4, profile, WeightMapper(profile))
    torch.nn.init.normal_(layer.weight, generator=torch.Generator().manual_seed(0))
    layer.mode = Mode("smooth", 0.5)
    probe = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))

    def loss() -> torch.Tensor:
        return (layer.effective_weight() * probe).sum()

    loss().backward()
    assert layer.weight.grad is not None
    numeric = torch.zeros(4, 6)
    with torch.no_grad():
        for i in range(4):
            for j in range(6):
                layer.weight[i, j] += 1e-3
                up = float(loss())
                layer.weight[i, j] -= 2e-3
                down = float(loss())
                layer.weight[i, j] += 1e-3
                numeric[i, j] = (up - down) / 2e-3
    assert torch.allclose(layer.weight.grad, numeric, atol=5e-3)
