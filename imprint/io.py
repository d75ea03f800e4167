"""Atomic, checksummed file I/O: nothing half-written survives a crash."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_arrays(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write arrays to an ``.npz`` file atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file; a missing or unreadable file names itself."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        # .npz members carry CRC-32 checksums: truncation or flipped bytes end up here.
        raise ValueError(
            f"{path}: corrupt or truncated .npz file ({error}); delete it and rerun to recreate it"
        ) from error


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_table(frame, path: str | os.PathLike) -> None:
    """Write a pandas DataFrame as CSV atomically, with a fixed float format for stable bytes."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(manifest: str | os.PathLike, files: list[str], info: Mapping[str, Any]) -> None:
    """Record the sha256 of ``files`` (relative to the manifest's folder) and ``info``."""
    root = Path(manifest).parent
    entry = {name: sha256_file(root / name) for name in sorted(files)}
    write_json(manifest, {"files": entry, **info})


def read_manifest(manifest: str | os.PathLike, verify: bool = True) -> dict[str, Any]:
    """Read a manifest; with ``verify`` check that every listed file still has its checksum."""
    manifest = Path(manifest)
    content = json.loads(manifest.read_text())
    if verify:
        for name, expected in content["files"].items():
            path = manifest.parent / name
            if not path.exists():
                raise FileNotFoundError(f"{path}: listed in {manifest} but missing")
            if sha256_file(path) != expected:
                raise ValueError(
                    f"{path}: checksum differs from {manifest}; the file is corrupt or was "
                    "changed. Delete the folder and rerun to obtain it again."
                )
    return content


def files_size_mb(paths) -> float:
    """Total size of the files among ``paths`` that exist, in MiB.

    For sizing a job's memory from its inputs. Snakemake's own ``input.size_mb`` prints
    "coroutine ... was never awaited" warnings when resources are first evaluated (snakemake
    issue #4280); this reads the sizes directly. Snakemake evaluates resources again once a
    job's inputs exist, so a job is sized from its real inputs when it is scheduled.
    """
    return sum(os.path.getsize(path) for path in map(str, paths) if os.path.exists(path)) / 2**20
