"""Where dfkd's default data and models come from, offline.

A name such as ``glue/SST-2`` or ``models/teacher-minilm-l6-sst2`` resolves, in order, to

1. ``$DFKD_ASSETS/<name>`` (default: ``../shared/assets`` next to the working directory or next to the
   source checkout, when that folder exists), if present there;
2. ``$DFKD_HOME/<name>`` (default ``~/.cache/dfkd``), the user cache where dfkd builds its default models.

The two default models are not shipped anywhere: :func:`ensure` builds them into the cache on first use
(``dfkd assets build`` builds all that are missing). A build writes into a temporary folder next to the
target and renames it when complete, so an interrupted or concurrent build never leaves a half-written
model where a complete one is expected.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import DfkdError
from .files import atomic_dir
from .registry import Registry

_SOURCE_ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Asset:
    """A known asset: a data file/folder from ``DFKD_ASSETS`` or a model dfkd can build.

    Attributes:
        name: the relative name (``models/mlm-minilm-l6``).
        description: one line for ``dfkd assets``.
        build: ``build(out_dir)`` writes the complete asset into ``out_dir``; ``None`` for data that must
            be provided.
        why: the line printed before building it on first use.
        task: the task a model asset serves (``dfkd assets build --task``), ``None`` for task-agnostic ones.
        optional: no default arm needs it (the general-distilled student): ``dfkd assets build --task`` skips it;
            a bare ``dfkd assets build``, its name, or a preset that names it builds it.
    """

    name: str
    description: str
    build: Callable[[Path], object] | None = None
    why: str = ""
    task: str | None = None
    optional: bool = False


ASSETS: Registry[Asset] = Registry("asset")


def assets_dir() -> Path | None:
    """The shared assets folder: ``$DFKD_ASSETS``, else ``../shared/assets`` beside the cwd or the checkout."""
    env = os.environ.get("DFKD_ASSETS")
    if env:
        return Path(env)
    for base in (Path.cwd(), _SOURCE_ROOT):
        candidate = base.parent / "shared" / "assets"
        if candidate.is_dir():
            return candidate
    return None


def cache_dir() -> Path:
    """The user cache where default models are built: ``$DFKD_HOME`` or ``~/.cache/dfkd``."""
    return Path(os.environ.get("DFKD_HOME") or Path.home() / ".cache" / "dfkd")


def locate(name: str) -> Path:
    """Where ``name`` resolves: the shared assets copy if present, else the cache path (present or not)."""
    shared = assets_dir()
    if shared is not None and (shared / name).exists():
        return shared / name
    return cache_dir() / name


def is_asset_name(name: str) -> bool:
    """Whether ``name`` looks like an asset name (``models/...``, ``glue/...``, ``ood/...``, ``data/...``)."""
    return name.split("/", 1)[0] in {"models", "glue", "ood", "data"} and not Path(name).is_absolute()


def asset_name(path: str | os.PathLike) -> str:
    """``path`` as an asset name when it lies in the shared assets folder or the cache (``glue/SST-2``), else
    as given, so cards and results never record a machine's absolute paths for dfkd's own assets."""
    p = Path(path)
    for root in (assets_dir(), cache_dir()):
        if root is None:
            continue
        try:
            return p.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            continue
    return str(path)


def resolve(name_or_path: str | os.PathLike, build: bool = True) -> Path | str:
    """Resolve a user-given model or data reference.

    An existing path is returned as is. An asset name resolves by :func:`locate`; a missing buildable
    asset is built first when ``build`` is true. Anything else (e.g. ``bert-base-uncased``) is returned
    unchanged as a hub id.

    Raises:
        DfkdError: an asset name that is neither present nor buildable.
    """
    text = str(name_or_path)
    if Path(text).exists() or not is_asset_name(text):
        return Path(text) if Path(text).exists() else text
    path = locate(text)
    if path.exists():
        return path
    if text in ASSETS and ASSETS.get(text).build is not None and build:
        return ensure(text)
    where = f"{assets_dir()}/{text}" if assets_dir() else f"$DFKD_ASSETS/{text}"
    raise DfkdError(f"asset {text!r} not found; expected it at {where} or {cache_dir() / text} "
                    "(set DFKD_ASSETS to the folder holding glue/, ood/ and models/)")


def ensure(name: str) -> Path:
    """Return the asset's path, building it into the cache first if it is missing.

    The build goes to ``<name>.building`` beside the target (so an interrupted build resumes there) and is
    renamed into place when complete; a lock file makes a concurrent build wait for the first one.
    """
    path = locate(name)
    if path.exists():
        return path
    asset = ASSETS.get(name)
    if asset.build is None:
        raise DfkdError(f"asset {name!r} is missing and dfkd cannot build it; expected it at {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():  # built by another process while we waited
            return path
        print(f"dfkd: building {name} into {path} ({asset.why})", file=sys.stderr)
        with atomic_dir(path, ".building", keep=True, fresh=False, create=False) as building:  # kept: a re-run resumes in it
            asset.build(building)
    return path


# Data the shared assets folder provides. Model assets are registered by their builders' modules
# (``dfkd.distill.teacher``, ``dfkd.distill.mlm``), which this base module never imports.
for _name, _what in (("SST-2", "GLUE SST-2"), ("CoLA", "GLUE CoLA"), ("MRPC", "GLUE MRPC"), ("RTE", "GLUE RTE"),
                     ("STS-B", "GLUE STS-B (regression)"), ("WNLI", "GLUE WNLI")):
    ASSETS.add(Asset(f"glue/{_name}", f"{_what} train/dev in the original TSV format"))
ASSETS.add(Asset("ood/agnews.txt", "general English news text, one item per line"))
