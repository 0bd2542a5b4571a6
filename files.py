"""Write-then-rename: the one way dfkd writes an output, so an interrupted job never leaves a partial one.

:func:`atomic_dir` yields a temporary sibling folder; when the block finishes, the folder is renamed onto the
target (replacing an older one). :func:`atomic_file` does the same for one file. On an error the temporary
is removed, unless ``keep`` asks to keep it for the next run to resume from.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_dir(target: str | os.PathLike, suffix: str = ".tmp", keep: bool = False,
               fresh: bool = True, create: bool = True) -> Iterator[Path]:
    """Yield ``<target><suffix>`` to write into; rename it to ``target`` when the block ends without error.

    Args:
        target: the folder that must appear only when complete.
        suffix: the temporary folder's suffix (``.building`` for resumable asset builds).
        keep: keep the temporary folder when the block raises (a resumable job continues in it).
        fresh: empty a temporary folder left by an earlier run before yielding it (``False`` to resume in it).
        create: create the temporary folder (``False``: the block creates it, e.g. by renaming into it).

    Raises:
        Whatever the block raises; ``target`` is then untouched.
    """
    target = Path(target)
    tmp = target.with_name(target.name + suffix)
    if fresh:
        shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if create:
        tmp.mkdir(exist_ok=True)
    try:
        yield tmp
    except BaseException:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)


@contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (same suffix) to write; ``os.replace`` it onto ``target`` after."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.tmp{target.suffix}")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def weights_sha256(folder: str | os.PathLike) -> str | None:
    """SHA-256 over a model folder's weight files (``*.safetensors``, ``*.bin``; names and bytes, in name order).

    Two folders with the same digest hold the same weights, whatever their path or the JSON beside them; a
    rebuilt or replaced model gets another digest unless its build is byte-identical.

    Returns:
        64 hex digits, or ``None`` when ``folder`` is not a local folder with weight files (e.g. a hub id).
    """
    import hashlib

    folder = Path(folder)
    files = sorted(p for p in folder.glob("*") if p.suffix in (".safetensors", ".bin")) if folder.is_dir() else []
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()
