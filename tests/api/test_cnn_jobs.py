"""POST /jobs with conv nets and crossbar tiles: accepted as given, bad shapes refused."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import Caller, assert_problem
from tests.api.factories import study

JOBS = "/api/v1/jobs"
TILES = {"preset": "rram-4bit", "overrides": {"array": {"rows": 256, "columns": 256}}}


def test_a_lenet5_job_on_tiled_arrays_is_accepted_and_stored_as_given(
    client: TestClient, alice: Caller
) -> None:
    body = study(network={"architecture": "lenet5"}, profile=TILES)
    response = client.post(JOBS, json=body, headers=alice.headers)
    assert response.status_code == 202, response.text
    spec = response.json()["spec"]
    assert spec["network"] == {"architecture": "lenet5"}
    assert spec["profile"]["array"] == {"rows": 256, "columns": 256}


def test_a_conv_layer_list_is_accepted(client: TestClient, alice: Caller) -> None:
    layers = [
        {"type": "conv2d", "channels": 4, "kernel": 3, "stride": 2},
        {"type": "avgpool", "kernel": 2},
        {"type": "flatten"},
        {"type": "linear", "features": 10},
    ]
    response = client.post(JOBS, json=study(network={"layers": layers}), headers=alice.headers)
    assert response.status_code == 202, response.text
    assert response.json()["spec"]["network"]["layers"][0]["channels"] == 4


def test_a_conv_net_with_a_bad_shape_is_a_422_naming_the_layer(
    client: TestClient, alice: Caller
) -> None:
    layers = [{"type": "conv2d", "channels": 4, "kernel": 5}, {"type": "linear"}]
    response = client.post(JOBS, json=study(network={"layers": layers}), headers=alice.headers)
    assert_problem(response, 422, "network.layers[1] (linear) gets a 4 x 24 x 24 map", '"flatten"')
    tiny = {"preset": "rram-4bit", "overrides": {"array": {"rows": 0, "columns": 256}}}
    response = client.post(JOBS, json=study(profile=tiny), headers=alice.headers)
    assert_problem(response, 422, "array.rows")
