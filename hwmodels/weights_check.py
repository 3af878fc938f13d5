"""Checking given float weights against a network spec, without torch.

The expected tensors are worked out from the spec's resolved layers (architectures.py),
so the API can refuse a file whose tensors do not fit before any job is queued.

Naming convention (what hwscore writes, and what it reads back):
``layers.<i>.weight`` and ``layers.<i>.bias``, where i counts the conv2d and linear
layers from 0, input to output. Linear weights are (out, in), conv2d kernels torch's
(out channels, in channels, k, k), biases (out,). The names of a plain PyTorch
``nn.Sequential`` (``1.weight``, ``3.bias``..., optionally under a common prefix such
as ``net.``) are accepted too: the distinct indices, in increasing order, are the
layers 0, 1, 2... (activations, pooling and flatten hold no tensors, so they are
skipped in the numbering).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from hwmodels.architectures import Conv2dLayer
from hwmodels.datasets.catalog import DatasetName
from hwmodels.specs import NetworkSpec
from hwmodels.weights_file import Issue, WeightsError, WeightsProblem, sha256, write_safetensors

PREFIX = "layers."
_NAME = re.compile(r"^(?P<prefix>(?:[A-Za-z_]\w*\.)*?)(?P<index>\d+)\.(?P<kind>weight|bias)$")


@dataclass(frozen=True)
class ExpectedTensor:
    """One tensor the network needs, and the layer it belongs to (for messages)."""

    name: str
    shape: tuple[int, ...]
    layer: str


def expected_tensors(network: NetworkSpec, dataset: DatasetName) -> list[ExpectedTensor]:
    """Every parameter of the float network, in hwscore's names and torch's shapes."""
    expected = []
    crossbar = [shape for shape in network.shapes(dataset) if shape.crossbar]
    for index, shape in enumerate(crossbar):
        spec = shape.spec
        if isinstance(spec, Conv2dLayer):
            channels = shape.input_shape[0]
            weight: tuple[int, ...] = (spec.channels, channels, spec.kernel, spec.kernel)
            words = f"conv2d {channels}->{spec.channels}, {spec.kernel}x{spec.kernel}"
        else:
            weight = (shape.fan_out, shape.fan_in)
            words = f"linear {shape.fan_in}->{shape.fan_out}"
        layer = f"layer {index} ({words})"
        expected.append(ExpectedTensor(f"{PREFIX}{index}.weight", weight, layer))
        expected.append(ExpectedTensor(f"{PREFIX}{index}.bias", (shape.fan_out,), layer))
    return expected


def canonical_names(names: list[str]) -> dict[str, str]:
    """Map each given name to hwscore's name; names that fit no convention map to
    themselves (and are then reported as extra tensors)."""
    matches = {name: _NAME.match(name) for name in names}
    prefixes = {m.group("prefix") for m in matches.values() if m is not None}
    if len(prefixes) != 1 or PREFIX in prefixes:
        return {name: name for name in names}  # hwscore's own names, or no one convention
    order = sorted({int(m.group("index")) for m in matches.values() if m is not None})
    position = {index: rank for rank, index in enumerate(order)}
    mapping = {}
    for name, m in matches.items():
        if m is None:
            mapping[name] = name
        else:
            mapping[name] = f"{PREFIX}{position[int(m.group('index'))]}.{m.group('kind')}"
    return mapping


def check_weights(
    arrays: dict[str, np.ndarray], network: NetworkSpec, dataset: DatasetName
) -> dict[str, np.ndarray]:
    """The arrays under hwscore's names, or a WeightsError listing every missing, extra,
    misshapen and non-finite tensor (in the names the file used)."""
    mapping = canonical_names(list(arrays))
    original = {canonical: name for name, canonical in mapping.items()}
    expected = {tensor.name: tensor for tensor in expected_tensors(network, dataset)}
    issues: list[Issue] = []
    for name, needed in expected.items():
        if name not in original:
            issues.append(
                Issue(
                    WeightsProblem.MISSING_TENSOR,
                    f"missing tensor {name!r}: {needed.layer} needs a "
                    f"{name.rsplit('.')[-1]} of shape {list(needed.shape)}",
                    name,
                )
            )
    for name, canonical in mapping.items():
        tensor = expected.get(canonical)
        if tensor is None:
            issues.append(_extra(name, canonical, len(expected) // 2))
            continue
        given = arrays[name]
        if given.shape != tensor.shape:
            issues.append(
                Issue(
                    WeightsProblem.WRONG_SHAPE,
                    f"tensor {name!r} ({tensor.layer}) has shape {list(given.shape)}, "
                    f"expected {list(tensor.shape)}",
                    name,
                )
            )
        elif not np.isfinite(given).all():
            bad = int(given.size - np.isfinite(given).sum())
            issues.append(
                Issue(
                    WeightsProblem.NON_FINITE,
                    f"tensor {name!r} holds {bad} non-finite values (NaN or infinite, after "
                    "conversion to float32)",
                    name,
                )
            )
    if issues:
        raise WeightsError(issues)
    return {mapping[name]: array for name, array in arrays.items()}


def _extra(name: str, canonical: str, layers: int) -> Issue:
    where = f" (read as {canonical!r})" if canonical != name else ""
    return Issue(
        WeightsProblem.EXTRA_TENSOR,
        f"unexpected tensor {name!r}{where}: the network has {layers} conv2d/linear layers, "
        f"named {PREFIX}0 to {PREFIX}{layers - 1} (or nn.Sequential indices), each with "
        "only a weight and a bias",
        name,
    )


@dataclass(frozen=True)
class CanonicalWeights:
    """Checked weights in hwscore's form: float32 safetensors under hwscore's names.

    ``sha256`` is the weights' identity: the same numbers under Sequential or hwscore
    names, or saved as float32 or float64 that round to the same float32, hash the same.
    """

    content: bytes
    sha256: str
    parameters: int


def canonical_weights(
    arrays: dict[str, np.ndarray], network: NetworkSpec, dataset: DatasetName
) -> CanonicalWeights:
    """Check the arrays against the network (WeightsError if they do not fit) and write
    them in hwscore's form."""
    checked = check_weights(arrays, network, dataset)
    content = write_safetensors(checked)
    return CanonicalWeights(content, sha256(content), sum(a.size for a in checked.values()))


__all__ = [
    "PREFIX",
    "CanonicalWeights",
    "ExpectedTensor",
    "canonical_names",
    "canonical_weights",
    "check_weights",
    "expected_tensors",
]
