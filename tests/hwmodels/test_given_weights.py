"""Scoring weights trained elsewhere: a plain PyTorch model scores the same in hwscore."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from hwmodels.pipeline import run_study
from hwmodels.profile import get_preset
from hwmodels.specs import EvaluationSettings, NetworkSpec, StartFrom, StudySpec, TrainingSettings
from hwmodels.weights_check import canonical_weights
from hwmodels.weights_file import WeightsError, WeightsProblem, read_safetensors
from hwmodels.weights_load import read_weights_file, state_dict
from tests.hwmodels.conftest import Subset


def _plain_pytorch_mlp(subset: Subset) -> nn.Sequential:
    """A 784-64-10 MLP trained 2 epochs in plain PyTorch, knowing nothing of hwscore."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(2):
        order = torch.randperm(len(subset.train_labels))
        for start in range(0, len(order), 128):
            batch = order[start : start + 128]
            loss = nn.functional.cross_entropy(
                model(subset.train_images[batch]), subset.train_labels[batch]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


def test_a_pytorch_model_scores_the_same_float_accuracy(
    mnist_subset: Subset, data_dir: Path, tmp_path: Path
) -> None:
    model = _plain_pytorch_mlp(mnist_subset)
    with torch.no_grad():
        predicted = model(mnist_subset.test_images).argmax(1)
    correct = int((predicted == mnist_subset.test_labels).sum())
    tested = len(mnist_subset.test_labels)
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), str(path))  # names 1.weight, 1.bias, 3.weight, 3.bias

    network = NetworkSpec(hidden=[64])
    weights = canonical_weights(read_weights_file(path), network, "mnist")
    spec = StudySpec(
        network=network,
        profile=get_preset("rram-4bit"),
        training=TrainingSettings(hw_epochs=1, train_samples=1000),
        evaluation=EvaluationSettings(chips=2, test_samples=tested),
        start_from=StartFrom(sha256=weights.sha256),
    )
    result = run_study(
        spec,
        data_dir=data_dir,
        allow_download=False,
        float_weights=state_dict(read_safetensors(weights.content)),
    )
    assert correct > 0.8 * tested  # it learned something: the comparison means something
    # The same test images classified the same: the same count right, to the image.
    assert round(result.report.float_accuracy * tested) == correct
    phases = {line.split(",")[0] for line in result.artifacts["metrics.csv"].decode().split()[1:]}
    assert phases == {"hardware_aware"}  # no float training: the given weights were used
    # The hardware-aware weights come back as safetensors, uploadable again as they are.
    back = read_safetensors(result.artifacts["hw_weights.safetensors"])
    assert canonical_weights(back, network, "mnist").parameters == weights.parameters
    float_back = read_safetensors(weights.content)
    assert np.array_equal(float_back["layers.0.weight"], model[1].weight.detach().numpy())


def test_a_pytorch_state_dict_is_read_with_weights_only(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(784, 8), nn.ReLU(), nn.Linear(8, 10))
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    arrays = read_weights_file(path)
    assert (
        canonical_weights(arrays, NetworkSpec(hidden=[8]), "mnist").parameters == 784 * 8 + 8 + 90
    )


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("this must never run",))


def test_a_pickle_that_runs_code_is_refused_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "evil.pt"
    buffer = io.BytesIO()
    torch.save({"layers.0.weight": _RunsCode()}, buffer)
    path.write_bytes(buffer.getvalue())
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps({"x": _RunsCode()}, protocol=2))
    for file in (path, raw):
        with pytest.raises(WeightsError) as caught:
            read_weights_file(file)
        assert caught.value.problem == WeightsProblem.PICKLED_CHECKPOINT
        assert "weights_only=True" in str(caught.value)
    assert "must never run" not in capsys.readouterr().out
