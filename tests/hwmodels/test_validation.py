"""Validation and the engine agree: what passes the profile's validators, the engine runs.

Profiles are drawn from the declared ranges of every field (their edges included), so a
new field or a widened range is covered without changing this test.
"""

from __future__ import annotations

import json
import math
import random
import typing
from typing import Any

import annotated_types
import pytest
import torch
from pydantic import BaseModel, ValidationError

from hwmodels.evaluation import chip_accuracies
from hwmodels.layers import set_mode
from hwmodels.network import HardwareMLP, calibrate
from hwmodels.profile import PRESETS, HardwareProfile
from hwmodels.specs import StudySpec
from hwmodels.surrogates import STE

GROUPS = ["weights", "conductance", "activations", "converters", "noise"]
PROFILES = 100
EPSILON = 1e-9


def _bounds(field: Any) -> dict[str, float]:
    limits: dict[str, float] = {}
    for item in field.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if isinstance(item, getattr(annotated_types, name.capitalize())):
                limits[name] = getattr(item, name)
    return limits


def _number(rng: random.Random, limits: dict[str, float], integer: bool) -> float:
    step = 1 if integer else EPSILON
    low = limits["ge"] if "ge" in limits else limits["gt"] + step
    high = limits["le"] if "le" in limits else limits.get("lt", math.inf) - step
    if integer:
        return rng.choice([int(low), int(high), rng.randint(int(low), int(high))])
    if math.isinf(high):  # unbounded above: edges and a log-uniform spread
        return rng.choice([low, low * 1.001, math.exp(rng.uniform(0.0, 30.0)), 1e300])
    return rng.choice([low, high, rng.uniform(low, high)])


def _value(rng: random.Random, field: Any) -> Any:
    args = typing.get_args(field.annotation)
    if typing.get_origin(field.annotation) is typing.Literal:
        return rng.choice(args)
    kinds = set(args) or {field.annotation}
    if type(None) in kinds and rng.random() < 0.3:
        return None
    return _number(rng, _bounds(field), integer=int in kinds)


def _draw(rng: random.Random) -> dict[str, Any]:
    profile: dict[str, Any] = {}
    for group in GROUPS:
        model = HardwareProfile.model_fields[group].annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        profile[group] = {name: _value(rng, f) for name, f in model.model_fields.items()}
    return profile


def valid_profiles(count: int, seed: int = 0) -> list[HardwareProfile]:
    """``count`` profiles that pass validation, drawn from the fields' declared ranges."""
    rng = random.Random(seed)
    profiles: list[HardwareProfile] = []
    while len(profiles) < count:
        try:
            profiles.append(HardwareProfile.model_validate(_draw(rng)))
        except ValidationError:
            continue  # e.g. stuck_off + stuck_on above 0.5: the validators' job
    return profiles


@pytest.mark.parametrize(
    "profile",
    valid_profiles(PROFILES) + list(PRESETS.values()),
    ids=lambda p: p.name if p.name != "custom" else None,
)
def test_every_valid_profile_builds_and_runs_in_the_engine(profile: HardwareProfile) -> None:
    generator = torch.Generator().manual_seed(0)
    net = HardwareMLP([12, 8, 3], profile)
    for layer in net.hardware_layers():
        torch.nn.init.normal_(layer.weight, generator=generator)
    images = torch.rand(64, 12, generator=generator)
    labels = torch.randint(0, 3, (64,), generator=generator)
    calibrate(net, images)
    assert torch.isfinite(net(images)).all()
    set_mode(net, STE)
    net(images).sum().backward()
    assert all(torch.isfinite(layer.weight.grad).all() for layer in net.hardware_layers())
    accuracies = chip_accuracies(net, images, labels, chips=2)
    assert all(0.0 <= value <= 1.0 for value in accuracies)


def test_the_draw_reaches_the_edges_of_the_ranges() -> None:
    profiles = valid_profiles(PROFILES)
    ratios = {p.conductance.on_off_ratio for p in profiles}
    assert None in ratios and min(r for r in ratios if r is not None) < 1.0 + 1e-6
    assert {p.weights.bits for p in profiles} >= {None, 1, 8}
    assert {p.weights.mapping for p in profiles} == {"differential", "offset"}
    assert max(p.conductance.asymmetry for p in profiles) > 0.999


@pytest.mark.parametrize("profile", valid_profiles(20, seed=1) + list(PRESETS.values()))
def test_a_stored_spec_validates_again_as_a_worker_reads_it(profile: HardwareProfile) -> None:
    """Strict types, yet the JSON a job row stores (literals as strings, 10.0 as 10.0 or
    1e+300) comes back as the same spec."""
    spec = StudySpec.model_validate(
        {"profile": profile, "training": {"train_samples": 1000, "strategy": "annealed"}}
    )
    stored = json.loads(json.dumps(spec.model_dump(mode="json")))
    assert StudySpec.model_validate(stored) == spec
    assert StudySpec.model_validate_json(spec.model_dump_json()) == spec
