"""Reuse of float training: one trained float network per key, stored once on disk.

A study trains its float network from the dataset, the network, the float-training
settings and the profile's activation function alone; the hardware profile's other
fields and the hardware-aware settings come later. So studies that repeat one network
on other hardware (or with another hardware-aware recipe) can share one float training:
``FloatCache`` keeps each trained float network as ``<key>.safetensors`` in a folder,
with its training curve (the metrics rows) and the fields the key was made from in the
file's metadata.

The key (``float_training_key``) is the SHA-256 of those fields, the engine version
(``hwmodels.ENGINE_VERSION``) and the torch version; what goes in is ``FLOAT_FIELDS``
of ``TrainingSettings`` (``HARDWARE_AWARE_FIELDS`` stay out). Training is deterministic
for a key (seeded generators), so a reused network is the network a fresh training
would give, and the study's float accuracy is the same.

Nothing here can fail a study: a missing, unreadable, truncated or altered file (the
metadata holds a digest of the tensors) is a miss, and the study trains and writes it
again; a write that fails is logged and forgotten. Writers put the file in place with
an atomic rename of a temporary file in the same folder, so concurrent workers storing
the same key never leave a half-written file, and readers see one whole file or none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as save_safetensors

from hwmodels import ENGINE_VERSION
from hwmodels.network import build_float
from hwmodels.specs import StudySpec
from hwmodels.training import EpochRecord

log = logging.getLogger(__name__)

FORMAT = "hwscore-float-cache-1"
FLOAT_FIELDS = (
    "epochs",
    "learning_rate",
    "batch_size",
    "seed",
    "train_samples",
    "validation_fraction",
)
"""The TrainingSettings fields float training reads: each is part of the key."""
HARDWARE_AWARE_FIELDS = (
    "hw_epochs",
    "strategy",
    "stages",
    "noise_injection",
    "hw_learning_rate",
)
"""The TrainingSettings fields only hardware-aware training reads: not part of the key.
(A test checks that every field is in one of the two lists, so a new setting must be
placed in one of them.)"""


def float_training_key(spec: StudySpec) -> str:
    """SHA-256 (hex) of everything that decides the float network ``spec`` trains."""
    return _digest(key_fields(spec))


def key_fields(spec: StudySpec) -> dict[str, Any]:
    """What the key is made from, as plain JSON values (stored in the file too)."""
    training = {name: getattr(spec.training, name) for name in FLOAT_FIELDS}
    training["train_samples"] = spec.samples("train")  # null (all) and the full count agree
    network = spec.network
    return {
        "format": FORMAT,
        "engine": ENGINE_VERSION,
        "torch": torch.__version__,
        "dataset": spec.dataset,
        "network": (
            {"mlp": network.layer_sizes(spec.dataset)}
            if network.is_mlp
            else {"layers": [layer.model_dump(mode="json") for layer in network.layer_list()]}
        ),
        "activation": spec.profile.activations.function,
        "training": training,
    }


@dataclass(frozen=True)
class CachedFloat:
    """A float network read from the cache: its state dict and float-training rows."""

    key: str
    weights: dict[str, torch.Tensor]
    records: list[EpochRecord]


@dataclass(frozen=True)
class FloatCache:
    """Trained float networks in ``directory``, one safetensors file per key."""

    directory: Path

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.safetensors"

    def load(self, spec: StudySpec) -> CachedFloat | None:
        """The cached float network of ``spec``, or None (none stored, or not usable)."""
        key = float_training_key(spec)
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            weights, metadata = _read(path)
            if metadata.get("key") != key or metadata.get("digest") != _tensor_digest(weights):
                raise ValueError("key or tensor digest does not match")
            records = [EpochRecord(**row) for row in json.loads(metadata["records"])]
            # Names and shapes must fit the network this spec builds (strict load).
            build_float(spec.network, spec.dataset, spec.profile, 0).load_state_dict(weights)
        except Exception as error:  # any fault of the file: train again and overwrite it
            log.warning("float cache %s unusable (%s); training again", path, error)
            return None
        return CachedFloat(key, weights, records)

    def store(
        self, spec: StudySpec, weights: Mapping[str, torch.Tensor], records: list[EpochRecord]
    ) -> bool:
        """Write ``spec``'s float network atomically; False (logged) if it could not be."""
        key = float_training_key(spec)
        tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in weights.items()}
        metadata = {
            "key": key,
            "fields": json.dumps(key_fields(spec), sort_keys=True),
            "digest": _tensor_digest(tensors),
            "records": json.dumps([asdict(record) for record in records]),
        }
        temporary: str | None = None
        try:
            content = save_safetensors(dict(sorted(tensors.items())), metadata=metadata)
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(
                prefix=f".{key[:16]}-", suffix=".tmp", dir=self.directory
            )
            with os.fdopen(handle, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path(key))
            temporary = None
        except Exception as error:  # a full disk, a read-only folder: the study goes on
            log.warning("float cache: could not store %s (%s)", self.path(key), error)
            return False
        finally:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
        return True


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as file:
        metadata = dict(file.metadata() or {})
        names = file.keys()  # a safetensors handle: no dict iteration
        weights = {name: file.get_tensor(name).clone() for name in names}
    return weights, metadata


def _tensor_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _digest(fields: dict[str, Any]) -> str:
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


__all__ = [
    "FLOAT_FIELDS",
    "HARDWARE_AWARE_FIELDS",
    "CachedFloat",
    "FloatCache",
    "float_training_key",
    "key_fields",
]
