"""POST /jobs refuses, with 422 and what to change, everything the engine could not run.

Each rule is tried with a value the engine would fail on (or silently change) after the
job had been queued; the API must refuse it at submit instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.examples import JOB_CREATE_EXAMPLES
from app.core.config import Settings
from hwmodels.cost import budget_for
from tests.api.conftest import Caller, assert_problem
from tests.api.factories import study

JOBS = "/api/v1/jobs"


def overrides(**groups: dict[str, Any]) -> dict[str, Any]:
    return {"profile": {"preset": "rram-4bit", "overrides": groups}}


ENGINE_RULES = [
    # What the engine would do with the value is in the comment.
    pytest.param(  # device.py: Gmax = Gmin, ValueError after float training
        overrides(conductance={"on_off_ratio": 1}),
        "profile.overrides.conductance.on_off_ratio must be greater than 1.0 (got 1)",
        id="on_off_ratio=1",
    ),
    pytest.param(
        overrides(conductance={"on_off_ratio": 0.5}),
        "on_off_ratio must be greater than 1.0 (got 0.5)",
        id="on_off_ratio<1",
    ),
    pytest.param(  # device.py: the negative device gets Gmax- = 0, no range
        overrides(conductance={"asymmetry": 1.0}),
        "conductance.asymmetry must be at least 0.0 and less than 1.0 (got 1.0)",
        id="asymmetry=1",
    ),
    pytest.param(  # device.py: L = 0 levels, division by zero
        overrides(weights={"bits": 0}),
        "weights.bits must be between 1 and 8 (got 0)",
        id="weight-bits=0",
    ),
    pytest.param(  # surrogates.Uniform: one level, zero step
        overrides(activations={"bits": 0}),
        "activations.bits must be between 1 and 8 (got 0)",
        id="activation-bits=0",
    ),
    pytest.param(  # surrogates.Uniform: empty quantizer range
        overrides(activations={"clip": 0}),
        "activations.clip must be greater than 0.0 and at most 1000000.0 (got 0)",
        id="clip=0",
    ),
    pytest.param(  # float32 a_max becomes inf, every activation NaN
        overrides(activations={"clip": 1e300}),
        "activations.clip must be greater than 0.0 and at most 1000000.0 (got 1e+300)",
        id="clip-huge",
    ),
    pytest.param(
        {"profile": {"inline": {"activations": {"function": "sigmoid", "clip": 2.0}}}},
        "activations.clip applies to relu only",
        id="sigmoid-with-clip",
    ),
    pytest.param(
        overrides(noise={"stuck_off": 0.3, "stuck_on": 0.3}),
        "noise.stuck_off + noise.stuck_on must be at most 0.5",
        id="mostly-stuck",
    ),
    pytest.param(  # mapping.py: percentile rank 0 of |w|
        overrides(weights={"scale_percentile": 0}),
        "weights.scale_percentile must be greater than 50.0 and at most 100.0 (got 0)",
        id="scale_percentile=0",
    ),
    pytest.param(  # network.check_size: a layer of width 0
        {"network": {"hidden": [32, 0]}}, "every hidden width must be between 1", id="width=0"
    ),
    pytest.param(  # surrogates.geometric_rhos: no stage
        {"training": {"stages": 0}}, "training.stages must be between 1 and 20", id="stages=0"
    ),
    pytest.param(  # evaluation: no chip to evaluate
        {"evaluation": {"chips": 0}}, "evaluation.chips must be between 1 and 1000", id="chips=0"
    ),
    pytest.param(  # training: a step per 2 images is all overhead and noise
        {"training": {"batch_size": 4}},
        "training.batch_size must be between 8 and 8192 (got 4)",
        id="batch_size<8",
    ),
    pytest.param(  # loader: cut silently to 60,000
        {"training": {"train_samples": 70_000}},
        "training.train_samples is 70,000 but mnist has 60,000 training images",
        id="train_samples>dataset",
    ),
    pytest.param(  # loader: cut silently to 10,000
        {"evaluation": {"test_samples": 10_001}},
        "evaluation.test_samples is 10,001 but mnist has 10,000 test images",
        id="test_samples>dataset",
    ),
    pytest.param(
        {"dataset": "emnist-letters", "evaluation": {"test_samples": 20_801}},
        "emnist-letters has 20,800 test images: use at most 20,800",
        id="test_samples>emnist",
    ),
    pytest.param(  # mlp_forward: a float activation has no integer code
        {"profile": {"preset": "ideal"}, "evaluation": {"compute_dtype": "int8"}},
        "compute_dtype int8: every layer's input must be quantized: set "
        "profile.activations.bits or profile.converters.input_bits; or use float32",
        id="int8-float-activations",
    ),
    pytest.param(  # evaluation: conv nets run on chip_forward, in float
        {"network": {"architecture": "lenet5"}, "evaluation": {"compute_dtype": "int8"}},
        "compute_dtype int8: it runs MLPs only",
        id="int8-cnn",
    ),
]


@pytest.mark.parametrize(("change", "expected"), ENGINE_RULES)
def test_what_the_engine_would_reject_is_refused_at_submit(
    client: TestClient, alice: Caller, change: dict[str, Any], expected: str
) -> None:
    response = client.post(JOBS, json=study(**change), headers=alice.headers)
    assert_problem(response, 422, expected)


IDEAL = '"profile": {"preset": "ideal"}'
COERCIONS = [
    pytest.param('{"profile": {"inline": {"weights": {"bits": true}}}}', "true", id="bits-true"),
    pytest.param('{"profile": {"inline": {"weights": {"bits": 3.0}}}}', "3.0", id="bits-float"),
    pytest.param('{"profile": {"inline": {"weights": {"bits": "3"}}}}', '"3"', id="bits-text"),
    pytest.param("{" + IDEAL + ', "fresh": "yes"}', '"yes"', id="fresh-yes"),
    pytest.param("{" + IDEAL + ', "fresh": 1}', "1", id="fresh-1"),
    pytest.param("{" + IDEAL + ', "training": {"epochs": "2"}}', '"2"', id="epochs-text"),
    pytest.param("{" + IDEAL + ', "network": {"hidden": [32, true]}}', "true", id="hidden-true"),
    pytest.param(
        '{"profile": {"preset": "ideal", "overrides": {"noise": {"programming": Infinity}}}}',
        "Infinity",
        id="noise-infinity",
    ),
    pytest.param(
        '{"profile": {"inline": {"conductance": {"on_off_ratio": Infinity}}}}',
        "Infinity",
        id="ratio-infinity",
    ),
    pytest.param("{" + IDEAL + ', "training": {"learning_rate": NaN}}', "NaN", id="rate-nan"),
]


@pytest.mark.parametrize(("body", "shown"), COERCIONS)
def test_values_are_taken_as_typed_not_coerced(
    client: TestClient, alice: Caller, body: str, shown: str
) -> None:
    headers = {**alice.headers, "Content-Type": "application/json"}
    response = client.post(JOBS, content=body, headers=headers)
    problem = assert_problem(response, 422, f"not {shown}")
    types = {"int_type", "bool_type", "float_type", "finite_number"}
    assert problem["errors"][0]["type"] in types


def test_floats_given_as_integers_are_accepted(client: TestClient, alice: Caller) -> None:
    change = overrides(conductance={"on_off_ratio": 10, "nonlinearity": 2})
    response = client.post(JOBS, json=study(**change), headers=alice.headers)
    assert response.status_code == 202, response.text
    assert response.json()["spec"]["profile"]["conductance"]["on_off_ratio"] == 10.0


def test_a_study_over_the_cost_budget_names_its_largest_part(
    client: TestClient, alice: Caller
) -> None:
    change = {"network": {"hidden": [4096]}, "training": {"epochs": 100, "hw_epochs": 50}}
    response = client.post(JOBS, json=study(**change), headers=alice.headers)
    problem = assert_problem(
        response,
        422,
        "over this server's budget",
        "the largest part is float training (60,000 training samples x 100 epochs x "
        "3,256,330 parameters): lower training.epochs or training.train_samples, or use "
        "narrower network.hidden layers",
    )
    assert problem["errors"][0]["loc"] == ["body", "training", "epochs"]

    chips = {"network": {"hidden": [4096]}, "evaluation": {"chips": 1000}}
    response = client.post(JOBS, json=study(**chips), headers=alice.headers)
    assert_problem(response, 422, "the largest part is chip evaluation", "evaluation.chips")


README_EXAMPLE: dict[str, Any] = {
    "dataset": "mnist",
    "network": {"hidden": [256, 128]},
    "profile": {"preset": "rram-2bit", "overrides": {"noise": {"programming": 0.05}}},
    "training": {"epochs": 10, "hw_epochs": 5, "strategy": "annealed", "seed": 0},
    "evaluation": {"chips": 100},
}
EXAMPLES = {"readme": README_EXAMPLE} | {
    name: example["value"] for name, example in JOB_CREATE_EXAMPLES.items()
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_documented_examples_are_accepted(
    client: TestClient, new_caller: Callable[[], Caller], name: str
) -> None:
    body = {**EXAMPLES[name], "fresh": True}
    response = client.post(JOBS, json=body, headers=new_caller().headers)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"


def test_the_cost_budget_follows_the_soft_time_limit_unless_set() -> None:
    hour = Settings(task_soft_time_limit_s=3600)
    assert hour.resolved_max_job_cost() == budget_for(3600)
    assert Settings(max_job_cost=123).resolved_max_job_cost() == 123


def test_a_server_downloads_datasets_only_when_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HWSCORE_DOWNLOAD_DATASETS", raising=False)
    assert Settings().download_datasets is False
    monkeypatch.setenv("HWSCORE_DOWNLOAD_DATASETS", "true")
    assert Settings().download_datasets is True
