"""Hardware-aware training as one compiled graph against the per-layer path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hwmodels import train_graph
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
    "noise-clipped-at-zero": HardwareProfile.model_validate(
        {
            "weights": {"bits": 2},
            "activations": {"bits": 3},
            "conductance": {"on_off_ratio": 5.0, "nonlinearity": -1.0},
            "noise": {"programming": 0.5, "stuck_off": 0.02, "stuck_on": 0.02},
        }
    ),
}
MODES = [Mode("ste"), Mode("smooth", 0.3), Mode("smooth", 0.01)]
LEFT_TO_THE_LAYERS = ["offset-per-column", "percentile-scale", "fine-levels"]


@pytest.fixture
def graph_switch(compiled_engine: None) -> None:
    """Every test here needs the compiled engine: the graph runs only where it is on."""


def _step(
    net: HardwareMLP, mode: Mode, images: torch.Tensor, labels: torch.Tensor, graph: bool
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits and gradients of one training step on a fresh noise draw."""
    copy = copy_hardware(net)
    set_mode(copy, mode)
    copy.train()
    noise = InjectedNoise.create(copy.hardware_layers(), copy.profile.noise, seed=3)
    for layer in copy.hardware_layers():
        layer.noise = noise
    with pytest.MonkeyPatch.context() as patch:
        if not graph:
            patch.setattr(train_graph, "takes", lambda net: False)
        logits = copy(images)
    F.cross_entropy(logits, labels).backward()  # type: ignore[no-untyped-call]
    return logits.detach(), [p.grad.clone() for p in copy.parameters() if p.grad is not None]


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("name", sorted(TAKEN))
def test_the_graph_equals_the_per_layer_path(
    graph_switch: None, trained_float: FloatMLP, mnist_subset: Subset, name: str, mode: Mode
) -> None:
    """Values and gradients (weights, biases, learned clips), with the same chip drawn:
    straight-through, and smooth surrogates from wide (annealing's first stage) to sharp."""
    net = to_hardware(trained_float, TAKEN[name])
    calibrate(net, mnist_subset.train_images)
    copy = copy_hardware(net)
    set_mode(copy, mode)
    copy.train()
    assert train_graph.takes(copy)
    images, labels = mnist_subset.train_images[:256], mnist_subset.train_labels[:256]
    layer_logits, layer_grads = _step(net, mode, images, labels, graph=False)
    graph_logits, graph_grads = _step(net, mode, images, labels, graph=True)
    assert len(graph_grads) == len(layer_grads)
    # The converters' surrogates (256 ADC levels) are steep: the float rounding of the
    # two paths (the GEMMs' among them) can put a rare value on the other side of one
    # of their steps, which moves that value and its row's gradient a little. A sharp
    # surrogate's slope (up to 1 / (4 tau)) makes the move visible in the whole tensor,
    # so there only the count of such values is held, logits included.
    sharp = mode.kind == "smooth" and mode.rho < 0.1
    scale = float(layer_logits.abs().max())
    close = torch.isclose(graph_logits, layer_logits, rtol=1e-5, atol=1e-5 * scale)
    assert int((~close).sum()) <= (max(1, close.numel() // 100) if sharp else 0)
    for graph, layers in zip(graph_grads, layer_grads, strict=True):
        close = torch.isclose(graph, layers, rtol=1e-3, atol=1e-4 * float(layers.abs().max()))
        if mode.kind == "ste":
            assert bool(close.all())
            continue
        assert int((~close).sum()) <= max(1, close.numel() // 100)
        if not sharp:
            assert torch.linalg.norm(graph - layers) <= 1e-3 * torch.linalg.norm(layers)


@pytest.mark.parametrize("family", LEFT_TO_THE_LAYERS)
def test_what_the_graph_does_not_implement_stays_on_the_layers(
    graph_switch: None, trained_float: FloatMLP, family: str
) -> None:
    net = to_hardware(trained_float, FAMILIES[family])
    set_mode(net, Mode("ste"))
    net.train()
    assert not train_graph.takes(net)


def test_analog_devices_stay_on_the_layers_in_smooth_mode(
    graph_switch: None, trained_float: FloatMLP
) -> None:
    """Analog weights (no levels) have a differentiable curve, not a surrogate table."""
    analog = HardwareProfile.model_validate(
        {"weights": {"bits": None}, "conductance": {"on_off_ratio": 10.0, "nonlinearity": 2.0}}
    )
    net = to_hardware(trained_float, analog)
    set_mode(net, Mode("smooth", 0.1))
    net.train()
    assert not train_graph.takes(net)


def test_only_training_takes_the_graph(
    graph_switch: None, trained_float: FloatMLP, mnist_subset: Subset
) -> None:
    net = to_hardware(trained_float, TAKEN["rram-2bit"])
    calibrate(net, mnist_subset.train_images)
    set_mode(net, Mode("ste"))
    net.train()
    assert train_graph.takes(net)
    with torch.no_grad():
        assert not train_graph.takes(net)  # evaluation
    net.eval()
    assert not train_graph.takes(net)
    net.train()
    set_mode(net, Mode("smooth", 0.1))
    assert train_graph.takes(net)
    set_mode(net, Mode("hard"))
    assert not train_graph.takes(net)
    set_mode(net, Mode("float"))
    assert not train_graph.takes(net)
    set_mode(net, Mode("ste"))
    net.neurons()[0].mode = Mode("smooth", 0.1)  # modes mixed within the network
    assert not train_graph.takes(net)
