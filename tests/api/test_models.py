"""Uploaded models: every kind of bad upload refused with a clear 4xx; ownership; jobs.

The files are made with numpy and safetensors.numpy, as the API reads them: no torch.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from safetensors.numpy import save

from tests.api.conftest import MAX_MODEL_BYTES, Caller, assert_problem, queued_job_ids
from tests.api.factories import study

NETWORK = {"hidden": [32]}  # 784-32-10


def _tensors(**changes: Any) -> dict[str, np.ndarray]:
    """An nn.Sequential-named 784-32-10 MLP; ``changes`` replace (None: drop) tensors."""
    rng = np.random.default_rng(0)
    tensors = {
        "1.weight": rng.normal(0, 0.05, (32, 784)).astype(np.float32),
        "1.bias": np.zeros(32, np.float32),
        "3.weight": rng.normal(0, 0.2, (10, 32)).astype(np.float32),
        "3.bias": np.zeros(10, np.float32),
    }
    tensors.update(changes)
    return {name: value for name, value in tensors.items() if value is not None}


def _upload(client: TestClient, caller: Caller, content: bytes, network: Any = NETWORK) -> Any:
    return client.post(
        "/api/v1/models",
        headers=caller.headers,
        files={"weights": ("model.safetensors", content, "application/octet-stream")},
        data={"architecture": json.dumps(network), "dataset": "mnist", "name": "tiny"},
    )


def _codes(body: dict[str, Any]) -> set[str]:
    return {error["type"] for error in body["errors"]}


def test_a_valid_upload_is_stored_under_hwscores_names(client: TestClient, alice: Caller) -> None:
    response = _upload(client, alice, save(_tensors()))
    assert response.status_code == 201, response.text
    model = response.json()
    assert response.headers["Location"] == model["url"] == f"/api/v1/models/{model['id']}"
    assert model["parameters"] == 784 * 32 + 32 + 32 * 10 + 10
    assert model["network"] == NETWORK and model["dataset"] == "mnist"
    # The same numbers under hwscore's own names are the same weights: the same hash.
    renamed = {f"layers.{'0' if k[0] == '1' else '1'}.{k[2:]}": v for k, v in _tensors().items()}
    again = _upload(client, alice, save(renamed)).json()
    assert again["sha256"] == model["sha256"] and again["id"] != model["id"]
    listed = client.get("/api/v1/models", headers=alice.headers).json()["models"]
    assert {m["id"] for m in listed} == {model["id"], again["id"]}


def test_each_kind_of_mismatch_is_refused_naming_the_tensor(
    client: TestClient, alice: Caller
) -> None:
    cases = [
        (_tensors(**{"3.bias": None}), "missing_tensor", "missing tensor 'layers.1.bias'"),
        (_tensors(**{"5.weight": np.ones((10, 10), np.float32)}), "extra_tensor", "'5.weight'"),
        (_tensors(**{"1.weight": np.ones((32, 700), np.float32)}), "wrong_shape", "[32, 784]"),
        (
            _tensors(**{"1.bias": np.full(32, np.nan, np.float32)}),
            "non_finite",
            "32 non-finite values",
        ),
        (_tensors(**{"1.bias": np.zeros(32, np.int32)}), "unsupported_dtype", "dtype I32"),
    ]
    for tensors, code, fragment in cases:
        body = assert_problem(_upload(client, alice, save(tensors)), 422, fragment)
        assert code in _codes(body), body
    # A file with faults of several kinds lists them all.
    both = _tensors(**{"3.bias": None, "1.weight": np.ones((1, 1), np.float32)})
    body = assert_problem(_upload(client, alice, save(both)), 422)
    assert _codes(body) == {"missing_tensor", "wrong_shape"}


def test_an_overflowing_float64_is_non_finite(client: TestClient, alice: Caller) -> None:
    huge = _tensors(**{"3.bias": np.full(10, 1e300, np.float64)})
    body = assert_problem(_upload(client, alice, save(huge)), 422, "non-finite")
    assert _codes(body) == {"non_finite"}


def test_malformed_and_pickled_files_are_refused(client: TestClient, alice: Caller) -> None:
    good = save(_tensors())
    body = assert_problem(_upload(client, alice, b"not a model at all"), 415, "not a safetensors")
    assert _codes(body) == {"not_safetensors"}
    body = assert_problem(_upload(client, alice, good[:-100]), 422, "lies outside the file")
    assert _codes(body) == {"malformed_safetensors"}
    body = assert_problem(_upload(client, alice, good + b"hidden"), 422, "header accounts for")
    assert _codes(body) == {"malformed_safetensors"}
    broken_header = len(b"{oops").to_bytes(8, "little") + b"{oops"
    assert_problem(_upload(client, alice, broken_header), 422, "not a JSON object")
    for pickled in (
        pickle.dumps({"1.weight": [1.0]}, protocol=2),  # what torch.save's legacy format holds
        b"PK\x03\x04" + b"\x00" * 100,  # torch.save's zip of pickles
    ):
        body = assert_problem(_upload(client, alice, pickled), 415, "can run code")
        assert _codes(body) == {"pickled_checkpoint"}


def test_a_bad_architecture_or_dataset_is_a_422(client: TestClient, alice: Caller) -> None:
    good = save(_tensors())
    assert_problem(_upload(client, alice, good, network="[1, 2"), 422, "JSON object")
    body = assert_problem(_upload(client, alice, good, network={"hidden": [0]}), 422)
    assert body["errors"][0]["loc"][:2] == ["body", "architecture"]
    response = client.post(
        "/api/v1/models",
        headers=alice.headers,
        files={"weights": ("m.safetensors", good)},
        data={"architecture": json.dumps(NETWORK), "dataset": "cifar"},
    )
    assert_problem(response, 422)


def test_oversized_uploads_are_refused_by_the_models_own_limit(
    client: TestClient, alice: Caller
) -> None:
    wide = save(_tensors(**{"1.weight": np.zeros((32, 784 * 3), np.float32)}))
    assert MAX_MODEL_BYTES < len(wide) < 20 * MAX_MODEL_BYTES
    assert_problem(_upload(client, alice, wide), 413, "HWSCORE_MAX_MODEL_BYTES")
    huge = b"\x00" * (MAX_MODEL_BYTES + 1_100_000)  # past the route's body limit too
    assert_problem(_upload(client, alice, huge), 413, "HWSCORE_MAX_MODEL_BYTES")
    # Every other route keeps its small limit.
    response = client.post(
        "/api/v1/jobs", headers=alice.headers, content=b"{" + b" " * 30_000 + b"}"
    )
    assert_problem(response, 413, "HWSCORE_MAX_REQUEST_BYTES")


def test_another_key_can_neither_see_nor_use_the_model(
    client: TestClient, alice: Caller, bob: Caller
) -> None:
    model = _upload(client, alice, save(_tensors())).json()
    assert_problem(client.get(model["url"], headers=bob.headers), 404, "not found")
    assert model["id"] not in {
        m["id"] for m in client.get("/api/v1/models", headers=bob.headers).json()["models"]
    }
    body = study(model_id=model["id"])
    del body["network"]
    assert_problem(client.post("/api/v1/jobs", headers=bob.headers, json=body), 404, "not found")
    assert_problem(client.delete(model["url"], headers=bob.headers), 404)
    assert client.get(model["url"], headers=alice.headers).status_code == 200


def test_a_job_naming_a_model_carries_its_hash(
    client: TestClient, alice: Caller, broker_url: str
) -> None:
    model = _upload(client, alice, save(_tensors())).json()
    body = study(model_id=model["id"])
    del body["network"], body["dataset"]  # both come from the model
    response = client.post("/api/v1/jobs", headers=alice.headers, json=body)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["spec"]["network"] == NETWORK
    assert job["spec"]["start_from"] == {"sha256": model["sha256"], "model_id": model["id"]}
    assert job["id"] in queued_job_ids(broker_url)
    # Other weights, same study otherwise: new work, never the first job's results.
    other = _upload(client, alice, save(_tensors(**{"3.bias": np.ones(10, np.float32)}))).json()
    second = client.post(
        "/api/v1/jobs", headers=alice.headers, json={**body, "model_id": other["id"]}
    ).json()
    assert second["spec"]["start_from"]["sha256"] != model["sha256"]
    # A network that is not the model's is refused, naming the field.
    clash = {**body, "network": {"hidden": [64]}}
    result = assert_problem(client.post("/api/v1/jobs", headers=alice.headers, json=clash), 422)
    assert _codes(result) == {"model_mismatch"}


def test_a_deleted_model_is_gone(client: TestClient, alice: Caller) -> None:
    model = _upload(client, alice, save(_tensors())).json()
    assert client.delete(model["url"], headers=alice.headers).status_code == 204
    assert_problem(client.get(model["url"], headers=alice.headers), 404)
