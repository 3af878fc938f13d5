"""A reader for the IDX format of MNIST-like datasets, raw or gzip-compressed.

IDX layout: two zero bytes, a type code, the number of dimensions n, then n big-endian
uint32 sizes, then the values in row-major order. Compression is detected from the
file's magic bytes, never from its name. Reading is one decompress and one
``numpy.frombuffer``: no Python work per sample. Standard library and numpy only.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from hwmodels.datasets.errors import IdxFormatError

GZIP_MAGIC = b"\x1f\x8b"

IDX_TYPES: dict[int, np.dtype[np.generic]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type code -> numpy dtype (multi-byte values are big-endian)."""

_CODES = {dtype: code for code, dtype in IDX_TYPES.items()}


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def read_bytes(path: Path) -> bytes:
    """The file's uncompressed content; a damaged gzip stream raises IdxFormatError."""
    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise IdxFormatError(
            f"{path}: damaged gzip data ({exc}); delete the file and download it again"
        ) from exc


def parse_header(
    data: bytes, source: str = "<bytes>"
) -> tuple[np.dtype[np.generic], tuple[int, ...], int]:
    """Decode an IDX header: (dtype, shape, header length in bytes). Checks only the header."""
    if len(data) < 4:
        raise IdxFormatError(f"{source}: {len(data)} bytes is too short for an IDX header")
    if data[0] != 0 or data[1] != 0:
        raise IdxFormatError(
            f"{source}: not an IDX file (the first two bytes must be zero, found "
            f"{data[:2].hex()}); is it another format, or a download error page?"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        raise IdxFormatError(f"{source}: unknown IDX type code 0x{code:02x}")
    if ndim == 0:
        raise IdxFormatError(f"{source}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxFormatError(f"{source}: truncated inside the IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    return IDX_TYPES[code], shape, header


def _check_size(
    dtype: np.dtype[np.generic], shape: tuple[int, ...], found: int, source: str
) -> None:
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if found != expected:
        problem = "truncated" if found < expected else "has trailing bytes"
        raise IdxFormatError(
            f"{source}: {problem}: the header declares shape {shape} ({expected:,} bytes of "
            f"data) but {found:,} bytes follow it; delete the file and download it again"
        )


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array in native byte order, checking header and size."""
    dtype, shape, header = parse_header(data, source)
    _check_size(dtype, shape, len(data) - header, source)
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a numpy array of its declared shape."""
    return parse_idx(read_bytes(path), str(path))


def check_idx_file(path: Path) -> tuple[int, ...]:
    """Check an IDX file's header and size by streaming it (little memory); its shape."""
    try:
        with gzip.open(path) if is_gzip(path) else path.open("rb") as handle:
            head = handle.read(4)
            if len(head) == 4:
                head += handle.read(4 * head[3])
            dtype, shape, _ = parse_header(head, str(path))
            size = 0
            while chunk := handle.read(1 << 20):
                size += len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise IdxFormatError(f"{path}: damaged gzip data ({exc})") from exc
    _check_size(dtype, shape, size, str(path))
    return shape


def encode_idx(values: np.ndarray) -> bytes:
    """IDX bytes for an array: the inverse of ``parse_idx`` (used to write test data)."""
    dtype = values.dtype.newbyteorder(">") if values.dtype.itemsize > 1 else values.dtype
    if dtype not in _CODES:
        raise ValueError(f"IDX cannot store dtype {values.dtype}")
    header = bytes([0, 0, _CODES[dtype], values.ndim])
    dims = np.asarray(values.shape, dtype=">u4").tobytes()
    return header + dims + np.ascontiguousarray(values, dtype=dtype).tobytes()


def content_sha256(path: Path) -> str:
    """SHA-256 of the uncompressed content: stable however the file was compressed."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path) if is_gzip(path) else path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise IdxFormatError(f"{path}: damaged gzip data ({exc})") from exc
    return digest.hexdigest()


__all__ = [
    "IDX_TYPES",
    "check_idx_file",
    "content_sha256",
    "encode_idx",
    "is_gzip",
    "parse_header",
    "parse_idx",
    "read_bytes",
    "read_idx",
]
