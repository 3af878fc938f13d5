"""OpenAPI examples that run as they are on a fresh server.

Every example uses MNIST, the dataset a fresh server has (``GET /api/v1/datasets`` says
which are present); the first one finishes in seconds. The response examples are a real
run of the quick example (2 CPU cores), not made-up numbers.
"""

from __future__ import annotations

from typing import Any

from app.schemas import API_PREFIX, ResultSummary
from hwmodels.profile import get_preset
from hwmodels.specs import StudySpec

QUICK: dict[str, Any] = {
    "dataset": "mnist",
    "network": {"hidden": [32]},
    "profile": {"preset": "rram-4bit"},
    "training": {
        "epochs": 1,
        "hw_epochs": 1,
        "strategy": "ste",
        "train_samples": 2000,
        "batch_size": 32,
        "learning_rate": 0.005,
    },
    "evaluation": {"chips": 5, "test_samples": 1000},
}

JOB_CREATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "quick": {
        "summary": "Quick: about 15 seconds on part of MNIST",
        "description": "A 784-32-10 MLP, one float and one hardware-aware epoch on 2,000 "
        "training images, scored on 5 simulated 4-bit RRAM chips with 1,000 test images. "
        "Small enough to finish in seconds; the numbers are rough.",
        "value": QUICK,
    },
    "preset": {
        "summary": "Full study on a preset: a few minutes",
        "description": "Score a 784-256-128-10 MLP on all of MNIST for 4-bit RRAM, "
        "100 simulated chips.",
        "value": {
            "dataset": "mnist",
            "network": {"hidden": [256, 128]},
            "profile": {"preset": "rram-4bit"},
            "training": {"epochs": 10, "hw_epochs": 5, "strategy": "ste"},
            "evaluation": {"chips": 100},
        },
    },
    "many-chips-int8": {
        "summary": "1,000 chips scored in integer arithmetic: a few minutes",
        "description": "The preset study over 1,000 simulated chips, with the Monte Carlo "
        "GEMMs in int8 (each chip's weights rounded to int8 per row; the converters' codes "
        "are exact): about 2x faster than float32 on CPUs with VNNI.",
        "value": {
            "dataset": "mnist",
            "network": {"hidden": [256, 128]},
            "profile": {"preset": "rram-4bit"},
            "evaluation": {"chips": 1000, "compute_dtype": "int8"},
        },
    },
    "preset-with-overrides": {
        "summary": "A preset with some fields changed: about a minute",
        "description": "PCM with twice the programming noise and a poorer on/off ratio, "
        "on part of MNIST.",
        "value": {
            "dataset": "mnist",
            "network": {"hidden": [128]},
            "profile": {
                "preset": "pcm-4bit",
                "overrides": {"noise": {"programming": 0.08}, "conductance": {"on_off_ratio": 20}},
            },
            "training": {"epochs": 3, "hw_epochs": 2, "strategy": "ste", "train_samples": 10000},
            "evaluation": {"chips": 20, "test_samples": 2000},
        },
    },
    "inline": {
        "summary": "A complete profile of your own device: a few minutes",
        "value": {
            "dataset": "mnist",
            "network": {"hidden": [200]},
            "profile": {
                "inline": {
                    "name": "our-array-v2",
                    "source": "wafer 7 measurements, March",
                    "weights": {"bits": 3, "mapping": "differential"},
                    "conductance": {"on_off_ratio": 50, "nonlinearity": 2.0, "asymmetry": 0.05},
                    "activations": {"bits": 4},
                    "noise": {"programming": 0.02, "read": 0.01, "stuck_off": 0.001},
                }
            },
            "evaluation": {"chips": 50},
            "fresh": True,
        },
    },
}

_ID = "0b7f3c1e-5d2a-4c8e-9f61-2a4d8e7c5b10"
_BASE = f"{API_PREFIX}/jobs/{_ID}"
_QUICK_REPORT = {  # the quick example as the engine ran it
    "float_accuracy": 0.811,
    "naive": {"mean": 0.7552, "std": 0.036486, "worst": 0.694, "p5": 0.707},
    "hardware_aware": {"mean": 0.7946, "std": 0.010877, "worst": 0.78, "p5": 0.7818},
    "naive_drop_pp": 5.58,
    "hardware_aware_drop_pp": 1.64,
    "recovered_fraction": 0.706093,
}
_SPEC = StudySpec(
    dataset="mnist",
    network=QUICK["network"],
    profile=get_preset("rram-4bit"),
    training=QUICK["training"],
    evaluation=QUICK["evaluation"],
).model_dump(mode="json")
_LINKS = {
    "self": _BASE,
    "report": f"{_BASE}/report",
    "events": f"{_BASE}/events",
    "result": f"{_BASE}/result",
    "artifacts": f"{_BASE}/artifacts",
    "cancel": f"{_BASE}/cancel",
}

JOB_SUCCEEDED_EXAMPLE: dict[str, Any] = {
    "id": _ID,
    "status": "succeeded",
    "reused": False,
    "progress": {"phase": "done", "epoch": None, "fraction": 1.0},
    "result": ResultSummary.from_report(_QUICK_REPORT).model_dump(mode="json"),
    "error": None,
    "links": _LINKS,
    "attempts": 1,
    "created_at": "2026-12-01T13:40:02.114Z",
    "started_at": "2026-12-01T13:40:02.391Z",
    "finished_at": "2026-12-01T13:40:18.020Z",
    "updated_at": "2026-12-01T13:40:18.020Z",
    "spec": _SPEC,
}
"""GET /jobs/{id} of the quick example once it has succeeded."""

JOB_QUEUED_EXAMPLE: dict[str, Any] = {
    **JOB_SUCCEEDED_EXAMPLE,
    "status": "queued",
    "progress": {"phase": None, "epoch": None, "fraction": 0.0},
    "result": None,
    "attempts": 0,
    "started_at": None,
    "finished_at": None,
    "updated_at": "2026-12-01T13:40:02.114Z",
}
"""POST /jobs answer for the quick example."""
