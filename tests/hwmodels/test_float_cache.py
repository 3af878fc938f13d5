"""The float-training cache: what its key depends on, and studies that reuse, skip or
repair a stored float network (real MNIST, a small network, seconds)."""

from __future__ import annotations

import csv
import io
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from hwmodels.float_cache import (
    FLOAT_FIELDS,
    HARDWARE_AWARE_FIELDS,
    FloatCache,
    float_training_key,
)
from hwmodels.network import build_float
from hwmodels.pipeline import run_study
from hwmodels.profile import ActivationConfig, HardwareProfile, get_preset
from hwmodels.specs import (
    EvaluationSettings,
    NetworkSpec,
    StartFrom,
    StudySpec,
    TrainingSettings,
)
from hwmodels.training import EpochRecord

SPEC = StudySpec(
    network=NetworkSpec(hidden=[32]),
    profile=get_preset("rram-4bit"),
    training=TrainingSettings(epochs=1, hw_epochs=1, train_samples=2000),
    evaluation=EvaluationSettings(chips=2, test_samples=500),
)


def changed(spec: StudySpec, **fields: Any) -> StudySpec:
    """``spec`` with dotted fields replaced, validated again."""
    data = spec.model_dump(mode="json")
    for dotted, value in fields.items():
        *parents, name = dotted.split("__")
        target = data
        for parent in parents:
            target = target[parent]
        target[name] = value
    return StudySpec.model_validate(data)


def test_every_training_setting_is_placed_on_one_side_of_the_key() -> None:
    assert set(FLOAT_FIELDS) | set(HARDWARE_AWARE_FIELDS) == set(TrainingSettings.model_fields)
    assert not set(FLOAT_FIELDS) & set(HARDWARE_AWARE_FIELDS)


@pytest.mark.parametrize(
    "change",
    [
        {"training__epochs": 2},
        {"training__learning_rate": 2e-3},
        {"training__batch_size": 64},
        {"training__seed": 1},
        {"training__train_samples": 3000},
        {"dataset": "fashion-mnist"},
        {"network": {"hidden": [64]}},
        {"network": {"architecture": "lenet5"}},
        {"profile": HardwareProfile(activations=ActivationConfig(function="sigmoid"))},
    ],
    ids=lambda change: next(iter(change)),
)
def test_the_key_changes_with_each_float_setting(change: dict[str, Any]) -> None:
    if "profile" in change:
        change = {"profile": change["profile"].model_dump(mode="json")}
    assert float_training_key(changed(SPEC, **change)) != float_training_key(SPEC)


@pytest.mark.parametrize(
    "change",
    [
        {"training__hw_epochs": 5},
        {"training__strategy": "annealed"},
        {"training__stages": 2},
        {"training__noise_injection": False},
        {"training__hw_learning_rate": 1e-3},
        {"evaluation__chips": 7},
        {"evaluation__test_samples": 1000},
        {"profile": get_preset("pcm-3bit").model_dump(mode="json")},
        {"profile": HardwareProfile().model_dump(mode="json")},
    ],
    ids=lambda change: next(iter(change)),
)
def test_the_key_ignores_hardware_and_hardware_aware_settings(change: dict[str, Any]) -> None:
    assert float_training_key(changed(SPEC, **change)) == float_training_key(SPEC)


def test_all_training_images_and_their_count_are_one_key() -> None:
    everything = changed(SPEC, training__train_samples=None)
    assert float_training_key(everything) == float_training_key(
        changed(SPEC, training__train_samples=60_000)
    )


def test_a_study_on_another_profile_reuses_the_float_network(
    data_dir: Path, tmp_path: Path
) -> None:
    cache = FloatCache(tmp_path / "cache")
    first = run_study(SPEC, data_dir=data_dir, allow_download=False, float_cache=cache)
    other = changed(SPEC, profile=get_preset("pcm-3bit").model_dump(mode="json"))
    second = run_study(other, data_dir=data_dir, allow_download=False, float_cache=cache)

    key = float_training_key(SPEC)
    assert first.report.float_training is not None and second.report.float_training is not None
    assert (first.report.float_training.reused, first.report.float_training.key) == (False, key)
    assert (second.report.float_training.reused, second.report.float_training.key) == (True, key)
    assert list((tmp_path / "cache").iterdir()) == [cache.path(key)]  # no temporary left
    assert second.report.float_accuracy == first.report.float_accuracy
    assert second.artifacts["float_weights.pt"] == first.artifacts["float_weights.pt"]
    # The float curve is stored with the weights: the reused run's metrics show it too.
    float_rows = [row for row in _metrics(second) if row["phase"] == "float"]
    assert float_rows == [row for row in _metrics(first) if row["phase"] == "float"]
    assert len(float_rows) == SPEC.training.epochs
    assert second.report.figures is not None
    assert [p.phase for p in second.report.figures.training].count("float") == 1


def test_a_corrupt_cache_file_is_trained_again_and_overwritten(
    data_dir: Path, tmp_path: Path
) -> None:
    cache = FloatCache(tmp_path)
    fresh = run_study(SPEC, data_dir=data_dir, allow_download=False)
    path = cache.path(float_training_key(SPEC))
    for damage in (b"not a safetensors file", _flipped_byte):
        if callable(damage):
            cache.store(SPEC, _weights(fresh), [])
            damage = damage(path.read_bytes())
        path.write_bytes(damage)
        assert cache.load(SPEC) is None
        again = run_study(SPEC, data_dir=data_dir, allow_download=False, float_cache=cache)
        assert again.report.float_training is not None
        assert not again.report.float_training.reused
        assert again.report.float_accuracy == fresh.report.float_accuracy
        assert cache.load(SPEC) is not None  # written whole again


def test_weights_that_do_not_fit_the_network_are_a_miss(tmp_path: Path) -> None:
    cache = FloatCache(tmp_path)
    wrong = build_float(NetworkSpec(hidden=[16]), "mnist", HardwareProfile(), 0).state_dict()
    cache.store(SPEC, wrong, [])
    assert cache.path(float_training_key(SPEC)).is_file() and cache.load(SPEC) is None


def test_given_weights_never_touch_the_cache(data_dir: Path, tmp_path: Path) -> None:
    weights = build_float(SPEC.network, "mnist", HardwareProfile(), 3).state_dict()
    given = SPEC.model_copy(update={"start_from": StartFrom(sha256="0" * 64)})
    cache = FloatCache(tmp_path / "cache")
    result = run_study(
        given, data_dir=data_dir, allow_download=False, float_weights=weights, float_cache=cache
    )
    assert result.report.float_training is not None
    assert (result.report.float_training.reused, result.report.float_training.key) == (False, None)
    assert not (tmp_path / "cache").exists()


def test_concurrent_writers_of_one_key_leave_one_whole_file(tmp_path: Path) -> None:
    cache = FloatCache(tmp_path)
    weights = build_float(SPEC.network, "mnist", HardwareProfile(), 0).state_dict()
    records = [EpochRecord("float", None, None, 1, 0.5, 0.9)]
    threads = [
        threading.Thread(target=cache.store, args=(SPEC, weights, records)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [p.name for p in tmp_path.iterdir()] == [cache.path(float_training_key(SPEC)).name]
    loaded = cache.load(SPEC)
    assert loaded is not None and loaded.records == records
    assert all(torch.equal(loaded.weights[name], weights[name]) for name in weights)


def test_an_unwritable_folder_is_logged_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    weights = build_float(SPEC.network, "mnist", HardwareProfile(), 0).state_dict()
    assert not FloatCache(blocker / "cache").store(SPEC, weights, [])


def _weights(result: Any) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(
        io.BytesIO(result.artifacts["float_weights.pt"]), weights_only=True
    )
    return state


def _flipped_byte(content: bytes) -> bytes:
    """The file with one byte of its last tensor changed: parses, but its digest fails."""
    position = len(content) - 3
    return content[:position] + bytes([content[position] ^ 0x40]) + content[position + 1 :]


def _metrics(result: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(result.artifacts["metrics.csv"].decode())))
