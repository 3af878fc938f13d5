"""Straight-through training as one compiled graph against the per-layer path."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from hwmodels import fused, ste_graph
from hwmodels.layers import InjectedNoise, set_mode
from hwmodels.network import FloatMLP, HardwareMLP, calibrate, copy_hardware, to_hardware
from hwmodels.profile import HardwareProfile, get_preset
from hwmodels.surrogates import Mode

from .conftest import Subset
from .test_fused import FAMILIES

TAKEN = {
    "rram-2bit": get_preset("rram-2bit"),  # uniform codes, noise, stuck devices, read noise
    "pcm-3bit": get_preset("pcm-3bit"),  # thresholds of calibrated programming
    "converters-fixed-clip": HardwareProfile.model_validate(
        {
            "weights": {"bits": 3},
            "activations": {"bits": 4, "clip": 6.0},
            "converters": {"input_bits": 6, "output_bits": 8},
            "conductance": {"on_off_ratio": 20.0, "asymmetry": 0.1},
            "noise": {"programming": 0.02, "read": 0.02},
        }
    ),
}
LEFT_TO_THE_LAYERS = ["offset-per-column", "percentile-scale", "fine-levels"]


@pytest.fixture
def graph_switch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    if not fused.enabled():
        pytest.skip("no C compiler for torch.compile")
    yield
    assert fused.enabled(), "the graph failed to compile and the engine fell back to eager"


def _step(
    net: HardwareMLP, images: torch.Tensor, labels: torch.Tensor, graph: bool
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits and gradients of one straight-through step on a fresh noise draw."""
    copy = copy_hardware(net)
    set_mode(copy, Mode("ste"))
    copy.train()
    noise = InjectedNoise.create(copy.hardware_layers(), copy.profile.noise, seed=3)
    for layer in copy.hardware_layers():
        layer.noise = noise
    with pytest.MonkeyPatch.context() as patch:
        if not graph:
            patch.setattr(ste_graph, "takes", lambda net: False)
        logits = copy(images)
    F.cross_entropy(logits, labels).backward()  # type: ignore[no-untyped-call]
    return logits.detach(), [p.grad.clone() for p in copy.parameters() if p.grad is not None]


@pytest.mark.parametrize("name", sorted(TAKEN))
def test_the_graph_equals_the_per_layer_path(
    graph_switch: None, trained_float: FloatMLP, mnist_subset: Subset, name: str
) -> None:
    """Values and gradients (weights, biases, learned clips), with the same chip drawn."""
    net = to_hardware(trained_float, TAKEN[name])
    calibrate(net, mnist_subset.train_images)
    copy = copy_hardware(net)
    set_mode(copy, Mode("ste"))
    copy.train()
    assert ste_graph.takes(copy)
    images, labels = mnist_subset.train_images[:256], mnist_subset.train_labels[:256]
    layer_logits, layer_grads = _step(net, images, labels, graph=False)
    graph_logits, graph_grads = _step(net, images, labels, graph=True)
    scale = float(layer_logits.abs().max())
    assert torch.allclose(graph_logits, layer_logits, atol=1e-5 * scale)
    assert len(graph_grads) == len(layer_grads)
    for graph, layers in zip(graph_grads, layer_grads, strict=True):
        # A clip's gradient sums over every activation: a value exactly on a rounding
        # boundary may round the other way in one path, so allow a little more there.
        assert torch.allclose(graph, layers, rtol=1e-3, atol=1e-4 * float(layers.abs().max()))


@pytest.mark.parametrize("family", LEFT_TO_THE_LAYERS)
def test_what_the_graph_does_not_implement_stays_on_the_layers(
    graph_switch: None, trained_float: FloatMLP, family: str
) -> None:
    net = to_hardware(trained_float, FAMILIES[family])
    set_mode(net, Mode("ste"))
    net.train()
    assert not ste_graph.takes(net)


def test_only_straight_through_training_takes_the_graph(
    graph_switch: None, trained_float: FloatMLP, mnist_subset: Subset
) -> None:
    net = to_hardware(trained_float, TAKEN["rram-2bit"])
    calibrate(net, mnist_subset.train_images)
    set_mode(net, Mode("ste"))
    net.train()
    assert ste_graph.takes(net)
    with torch.no_grad():
        assert not ste_graph.takes(net)  # evaluation
    net.eval()
    assert not ste_graph.takes(net)
    net.train()
    set_mode(net, Mode("smooth", 0.1))
    assert not ste_graph.takes(net)
