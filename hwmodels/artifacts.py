"""The bytes of a study's artifacts (names and media types in report.ARTIFACTS)."""

from __future__ import annotations

import csv
import io

import numpy as np
import torch
from safetensors.torch import save as save_safetensors

from hwmodels.network import HardwareNet, to_float
from hwmodels.training import EpochRecord


def state_bytes(net: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.getvalue()


def hardware_aware_safetensors(net: HardwareNet) -> bytes:
    """The hardware-aware weights as safetensors in the upload convention (float form:
    conv kernels as torch's), so they can be uploaded and scored again; hw_weights.pt
    keeps the calibrated ranges as well."""
    state = {
        name: tensor.detach().contiguous() for name, tensor in to_float(net).state_dict().items()
    }
    return save_safetensors(dict(sorted(state.items())))


def device_levels(net: HardwareNet) -> bytes:
    """The programmed chip as an .npz: per layer the device levels, scale, bias,
    conductance tables and activation range, plus the profile as JSON.

    Keys: ``layer<i>_positive`` / ``layer<i>_negative`` (uint8 levels, differential),
    ``layer<i>_levels`` (offset mapping), ``layer<i>_scale``, ``layer<i>_bias``,
    ``layer<i>_positive_conductance`` etc. (float64 tables), ``layer<i>_a_max``,
    ``profile_json``. Analog profiles store float32 programmed fractions instead of levels.
    """
    arrays: dict[str, np.ndarray] = {"profile_json": np.array(net.profile.model_dump_json())}
    neurons = net.neurons()
    for index, layer in enumerate(net.hardware_layers(), 1):
        weight = layer.weight.detach()
        programmed = net.mapper.program(weight)
        prefix = f"layer{index}_"
        if programmed.negative is None:
            arrays[prefix + "levels"] = programmed.positive
        else:
            arrays[prefix + "positive"] = programmed.positive
            arrays[prefix + "negative"] = programmed.negative
        arrays[prefix + "scale"] = programmed.scale.reshape(-1).numpy().astype(np.float32)
        arrays[prefix + "bias"] = layer.bias.detach().numpy().astype(np.float32)
        for name, table in net.mapper.conductance_tables().items():
            arrays[prefix + name] = table
        if index - 1 < len(neurons):
            clip = float(neurons[index - 1].a_max.detach())
            arrays[prefix + "a_max"] = np.array([clip], np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def metrics_csv(records: list[EpochRecord]) -> bytes:
    """One row per epoch (per epoch and stage when a stage ends inside an epoch)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["phase", "stage", "tau", "epoch", "loss", "train_accuracy", "validation_accuracy"]
    )
    for r in records:
        writer.writerow(
            [
                r.phase,
                "" if r.stage is None else r.stage,
                "" if r.tau is None else f"{r.tau:.6g}",
                r.epoch,
                f"{r.loss:.6f}",
                f"{r.train_accuracy:.6f}",
                "" if r.validation_accuracy is None else f"{r.validation_accuracy:.6f}",
            ]
        )
    return buffer.getvalue().encode()


__all__ = ["device_levels", "hardware_aware_safetensors", "metrics_csv", "state_bytes"]
