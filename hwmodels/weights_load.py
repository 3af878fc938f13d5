"""Weights files on the engine side (torch): a local file, and weights for run_study.

A safetensors file is read as the API reads it (weights_file.py). A PyTorch state dict
(``torch.save(model.state_dict(), "model.pt")``) is read only with
``torch.load(weights_only=True)``, whose restricted unpickler builds tensors and plain
containers and refuses everything else, so a file that would run code is an error,
never executed. Only the command line reads .pt files; the service takes safetensors.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from hwmodels.weights_file import (
    Issue,
    WeightsError,
    WeightsProblem,
    read_safetensors,
    sniff_pickle,
)


def read_weights_file(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file or a PyTorch state dict, as float32 arrays."""
    data = path.read_bytes()
    if not sniff_pickle(data) or data[8:9] == b"{":
        return read_safetensors(data)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # the restricted unpickler's refusals are plain exceptions
        raise _refused(
            f"{path} could not be loaded as a state dict with weights_only=True "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]  # a checkpoint dict that wraps the state dict
    if not isinstance(state, Mapping) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise _refused(f"{path} holds no state dict (a mapping of names to tensors)")
    return {name: tensor.detach().to(torch.float32).cpu().numpy() for name, tensor in state.items()}


def _refused(message: str) -> WeightsError:
    return WeightsError([Issue(WeightsProblem.PICKLED_CHECKPOINT, message)])


def state_dict(arrays: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Arrays as the float net's state dict (copies: the arrays may be read-only views)."""
    return {name: torch.from_numpy(np.array(array, np.float32)) for name, array in arrays.items()}


__all__ = ["read_weights_file", "state_dict"]
