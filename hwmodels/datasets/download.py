"""Fetch missing dataset files from their public mirrors, or explain how to get them.

A download goes to a temporary file next to its destination, is checked (SHA-256 of the
uncompressed content where the catalog knows it, IDX structure always), and only then
renamed into place, so a half-written or wrong file never looks like a dataset. Without
network every mirror fails and ``DatasetUnavailableError`` says which files are missing,
the exact folder to put them in, and where to get them. Standard library only.
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

from hwmodels.datasets.catalog import (
    DATA_DIR_ENV,
    DOWNLOAD_ENV,
    DatasetInfo,
    find_file,
    target_folder,
)
from hwmodels.datasets.errors import (
    ChecksumMismatchError,
    DatasetError,
    DatasetUnavailableError,
    IdxFormatError,
)
from hwmodels.datasets.idx import check_idx_file, content_sha256

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
_CHUNK = 1 << 20
_NETWORK_ERRORS = (OSError, http.client.HTTPException)  # URLError and timeouts are OSErrors


def missing_files(
    info: DatasetInfo, file_names: Sequence[str], data_dir: str | Path | None = None
) -> list[str]:
    """The names among ``file_names`` found in none of the dataset's folders."""
    return [name for name in file_names if find_file(info, name, data_dir) is None]


def ensure_files(
    info: DatasetInfo,
    file_names: Sequence[str],
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Make sure the files exist, downloading missing ones when allowed.

    Raises DatasetUnavailableError when a file is still missing afterwards.
    """
    missing = missing_files(info, file_names, data_dir)
    if not missing:
        return
    folder = target_folder(info, data_dir)
    if not download:
        raise unavailable_error(
            info, missing, folder, [f"downloads are turned off (by the caller or {DOWNLOAD_ENV})"]
        )
    bases = list(mirrors) if mirrors is not None else list(info.mirrors)
    reasons: list[str] = []
    for base in bases:
        try:
            _fetch_from(info, base, missing, folder, timeout)
        except (*_NETWORK_ERRORS, DatasetError, zipfile.BadZipFile) as exc:
            reasons.append(f"{base}: {exc}")
            log.info("dataset %s: mirror %s failed: %s", info.name, base, exc)
        missing = missing_files(info, missing, data_dir)
        if not missing:
            return
    raise unavailable_error(info, missing, folder, reasons or ["no mirror is known"])


def _fetch_from(
    info: DatasetInfo, base: str, missing: list[str], folder: Path, timeout: float
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if info.archive is not None:
        download_archive(base + info.archive, folder, info, timeout=timeout)
        return
    for name in missing:
        download_file(
            f"{base}{name}.gz", folder / f"{name}.gz", sha256=info.sha256.get(name), timeout=timeout
        )


def download_file(
    url: str, dest: Path, *, sha256: str | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> Path:
    """Download ``url`` to ``dest`` via a checked temporary file and an atomic rename.

    ``sha256`` is the digest of the uncompressed content; a mismatch raises
    ChecksumMismatchError and leaves nothing behind.
    """
    log.info("downloading %s", url)
    part = _temp_path(dest.parent, dest.name)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, part.open("wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
        verify_file(part, sha256, source=url)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def download_archive(
    url: str, folder: Path, info: DatasetInfo, *, timeout: float = DEFAULT_TIMEOUT_S
) -> list[Path]:
    """Download a zip archive and unpack the files it holds for this dataset family.

    Every member whose file name starts with the family prefix (``emnist-``) is unpacked
    flat into ``folder``, so one download serves every split. The archive is deleted.
    """
    log.info("downloading %s", url)
    prefix = info.name.split("-", 1)[0] + "-"
    archive = _temp_path(folder, "archive.zip")
    unpacked: list[Path] = []
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, archive.open("wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.infolist():
                name = Path(member.filename).name
                if member.is_dir() or not name.startswith(prefix):
                    continue
                unpacked.append(_unpack_member(zipped, member, folder / name, info, url))
    finally:
        archive.unlink(missing_ok=True)
    if not unpacked:
        raise DatasetError(f"{url}: the archive holds no {prefix}* files")
    return unpacked


def _unpack_member(
    zipped: zipfile.ZipFile, member: zipfile.ZipInfo, dest: Path, info: DatasetInfo, url: str
) -> Path:
    part = _temp_path(dest.parent, dest.name)
    try:
        with zipped.open(member) as source, part.open("wb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
        if "-ubyte" in dest.name:
            stem = dest.name.removesuffix(".gz")
            verify_file(part, info.sha256.get(stem), source=f"{url}:{member.filename}")
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return dest


def verify_file(path: Path, sha256: str | None, *, source: str) -> None:
    """Check a downloaded file: its content digest if known, and its IDX structure."""
    if sha256 is not None:
        actual = content_sha256(path)
        if actual != sha256:
            raise ChecksumMismatchError(
                f"{source}: checksum mismatch: SHA-256 of the uncompressed content is "
                f"{actual}, expected {sha256}; the mirror serves a different or damaged file"
            )
    try:
        check_idx_file(path)
    except IdxFormatError as exc:
        raise IdxFormatError(f"{source}: downloaded file is not valid IDX: {exc}") from exc


def _temp_path(folder: Path, name: str) -> Path:
    handle, path = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    os.close(handle)
    return Path(path)


def unavailable_error(
    info: DatasetInfo, missing: Sequence[str], folder: Path, reasons: Sequence[str]
) -> DatasetUnavailableError:
    """The error for missing files: which ones, the folder they belong in, where to get them."""
    lines = [f"dataset {info.name!r} is missing {len(missing)} file(s) (gzip or uncompressed):"]
    lines += [f"  {name}.gz" for name in missing]
    lines.append("download failed: " + "; ".join(reasons))
    lines.append(
        f"Put the files in {folder} (or set {DATA_DIR_ENV} to a folder whose "
        f"{info.folder}/ subfolder holds them)."
    )
    if info.archive is not None:
        archive_urls = " or ".join(base + info.archive for base in info.mirrors)
        lines.append(f"Get them from {archive_urls}: unpack its gzip/ folder into {folder}.")
    else:
        lines.append("Get them from:")
        base = info.mirrors[0] if info.mirrors else ""
        lines += [f"  {base}{name}.gz" for name in missing]
    if info.source:
        lines.append(info.source)
    return DatasetUnavailableError("\n".join(lines), missing=list(missing), folder=str(folder))


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "download_archive",
    "download_file",
    "ensure_files",
    "missing_files",
    "unavailable_error",
    "verify_file",
]
