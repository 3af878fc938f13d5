"""Reading and writing safetensors files with numpy alone (no torch).

Uploaded weights are read by the API process, which never imports torch, so the file
is parsed here by hand: an 8-byte little-endian header length, a JSON header naming
every tensor's dtype, shape and byte range, then the raw bytes. Nothing in the format
can run code (unlike a pickled PyTorch checkpoint), and every claim the header makes
(sizes, offsets, dtypes) is checked before a byte of data is read, so a hostile file
gets a clear refusal, never an exception deep inside numpy.

Each refusal is a ``WeightsError`` whose ``problem`` names the kind of fault
(``WeightsProblem``); the service turns the kind into an HTTP status.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from safetensors.numpy import save as _save_numpy

MAX_HEADER_BYTES = 16 * 1024 * 1024
"""Far above any network within the parameter limit (a few hundred bytes per tensor)."""

_FLOAT_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
_NUMPY = {"F64": "<f8", "F32": "<f4", "F16": "<f2"}


class WeightsProblem(StrEnum):
    """What is wrong with a weights file: stable codes for programs."""

    NOT_SAFETENSORS = "not_safetensors"
    PICKLED_CHECKPOINT = "pickled_checkpoint"
    MALFORMED_SAFETENSORS = "malformed_safetensors"
    UNSUPPORTED_DTYPE = "unsupported_dtype"
    MISSING_TENSOR = "missing_tensor"
    EXTRA_TENSOR = "extra_tensor"
    WRONG_SHAPE = "wrong_shape"
    NON_FINITE = "non_finite"


@dataclass(frozen=True)
class Issue:
    """One fault, about one tensor when ``tensor`` is set."""

    problem: WeightsProblem
    message: str
    tensor: str | None = None


class WeightsError(ValueError):
    """The file cannot be used; ``issues`` lists every fault found (at least one)."""

    def __init__(self, issues: list[Issue]) -> None:
        messages = [issue.message for issue in issues]
        super().__init__(messages[0] if len(messages) == 1 else "; ".join(messages))
        self.issues = issues

    @property
    def problem(self) -> WeightsProblem:
        """The first fault's kind (a file refused as a whole has only one)."""
        return self.issues[0].problem


def _fail(problem: WeightsProblem, message: str, tensor: str | None = None) -> WeightsError:
    return WeightsError([Issue(problem, message, tensor)])


def sniff_pickle(data: bytes) -> bool:
    """True for a PyTorch checkpoint: a zip of pickles (torch.save) or a bare pickle
    (protocol 2 and up). Asked only of a file that is not safetensors, whose first
    bytes (the header length) may look like a pickle's."""
    return data[:4] == b"PK\x03\x04" or (len(data) > 1 and data[0] == 0x80 and data[1] <= 5)


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a float32 array, after checking the header.

    Floating dtypes (F64, F32, F16, BF16) are accepted and converted to float32, the
    engine's precision; anything else is refused, as is a file that is a pickle.
    """
    header, body = _split(data)
    arrays: dict[str, np.ndarray] = {}
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (begin, end) = _entry(name, entry)
        if end > len(body) or end - begin != math.prod(shape) * _FLOAT_DTYPES[dtype]:
            raise _fail(
                WeightsProblem.MALFORMED_SAFETENSORS,
                f"tensor {name!r}: its byte range [{begin}, {end}) does not match its "
                f"shape {list(shape)} and dtype {dtype}, or lies outside the file",
                name,
            )
        spans.append((begin, end, name))
        arrays[name] = _array(body, dtype, shape, begin)
    _check_spans(spans, len(body))
    return arrays


def _split(data: bytes) -> tuple[dict[str, object], bytes]:
    """The parsed JSON header and the data buffer after it."""
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else 0
    if not 2 <= size <= min(len(data) - 8, MAX_HEADER_BYTES) or data[8:9] != b"{":
        if sniff_pickle(data):
            raise _fail(
                WeightsProblem.PICKLED_CHECKPOINT,
                "this is a pickled PyTorch checkpoint (torch.save), which can run code when "
                "loaded, so it is not accepted; save the state dict with safetensors "
                "(safetensors.torch.save_file(model.state_dict(), 'model.safetensors')), or "
                "let `hwscore submit --weights model.pt` convert it locally",
            )
        raise _fail(
            WeightsProblem.NOT_SAFETENSORS,
            "the weights file is not a safetensors file (it must start with an 8-byte header "
            "length and a JSON header); save it with safetensors.torch.save_file",
        )
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        header = None
    if not isinstance(header, dict):
        raise _fail(
            WeightsProblem.MALFORMED_SAFETENSORS,
            "the safetensors header is not a JSON object; the file is damaged or truncated",
        )
    return header, data[8 + size :]


def _entry(name: str, entry: object) -> tuple[str, tuple[int, ...], tuple[int, int]]:
    """One header entry's dtype, shape and byte range, or a WeightsError naming it."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _fail(
            WeightsProblem.MALFORMED_SAFETENSORS,
            f"tensor {name!r}: its header entry must hold exactly dtype, shape and data_offsets",
            name,
        )
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in _FLOAT_DTYPES:
        raise _fail(
            WeightsProblem.UNSUPPORTED_DTYPE,
            f"tensor {name!r} has dtype {dtype}; weights must be floating point "
            f"({', '.join(_FLOAT_DTYPES)})",
            name,
        )
    whole = [isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in [*shape, *offsets]]
    if (
        not isinstance(shape, list)
        or not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(whole)
        or offsets[0] > offsets[1]
    ):
        raise _fail(
            WeightsProblem.MALFORMED_SAFETENSORS,
            f"tensor {name!r}: shape and data_offsets must be lists of non-negative integers",
            name,
        )
    return dtype, tuple(shape), (offsets[0], offsets[1])


def _array(body: bytes, dtype: str, shape: tuple[int, ...], begin: int) -> np.ndarray:
    count = math.prod(shape)
    if dtype == "BF16":  # numpy has no bfloat16: it is the top half of a float32
        halves = np.frombuffer(body, dtype="<u2", count=count, offset=begin)
        values = (halves.astype(np.uint32) << 16).view(np.float32)
    else:
        values = np.frombuffer(body, dtype=_NUMPY[dtype], count=count, offset=begin)
    with np.errstate(over="ignore"):  # an F64 beyond float32's range becomes inf: refused later
        return values.astype(np.float32).reshape(shape)


def _check_spans(spans: list[tuple[int, int, str]], size: int) -> None:
    """The tensors must tile the data buffer: no overlap, no gap, nothing hidden after."""
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise _fail(
                WeightsProblem.MALFORMED_SAFETENSORS,
                f"tensor {name!r} starts at byte {begin} of the data, expected {position}: "
                "tensors overlap or leave gaps",
                name,
            )
        position = end
    if position != size:
        raise _fail(
            WeightsProblem.MALFORMED_SAFETENSORS,
            f"the data holds {size} bytes but the header accounts for {position}",
        )


def write_safetensors(arrays: dict[str, np.ndarray]) -> bytes:
    """A safetensors file of float32 arrays, the same bytes for the same arrays (so its
    SHA-256 identifies the weights)."""
    ordered = {name: np.ascontiguousarray(arrays[name], np.float32) for name in sorted(arrays)}
    return bytes(_save_numpy(ordered))


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


__all__ = [
    "Issue",
    "WeightsError",
    "WeightsProblem",
    "read_safetensors",
    "sha256",
    "sniff_pickle",
    "write_safetensors",
]
