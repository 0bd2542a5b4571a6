"""Transfer sets: the data a student is distilled on, and the registry of generators that build them.

A transfer set is a :class:`datasets.Dataset` with

* ``text`` (str), ``text_pair`` (str, pair tasks only),
* ``source``: ``original`` | ``augment`` | ``ood`` | ``adversarial``,
* ``label`` (optional: the gold label where one is known, else -1 / NaN),
* ``teacher_logits`` (``num_labels`` floats, written by :func:`dfkd.distill.label.label_dataset`).

It is saved with ``save_to_disk`` next to a JSON provenance card (``dfkd_card.json``: generator and its
settings, seed, teacher, row counts per source, dfkd version). Saving writes a temporary folder and
renames it, so a failed run leaves no partial transfer set.

A *generator* is a function ``generate(task, data_dir, seed, work_dir, **settings) -> Dataset`` (rows
without ``teacher_logits``) registered in :data:`GENERATORS` by name; ``compare`` and the distiller never
special-case one. Generators living in other packages (``dfkd.augment``, ...) register themselves when
imported; :func:`load_generators` imports them.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from datasets import Dataset, load_from_disk

from .. import __version__
from ..errors import DfkdError
from ..eval.tasks import TaskSpec, get_task, load_task
from ..registry import Registry

SOURCES = ("original", "augment", "ood", "adversarial")
CARD = "dfkd_card.json"

GENERATORS: Registry[Callable[..., Dataset]] = Registry("generator")


@GENERATORS.register("original")
def original(task: str | TaskSpec, data_dir=None, seed: int = 0, split: str = "train",
             limit: int | None = None, **_) -> Dataset:
    """Data-driven KD: the task's own ``split`` texts (gold labels kept), ``source=original``.

    ``limit`` keeps a seeded random sample of that many rows (the "little data" setting).
    """
    ds = load_task(task, split, data_dir)
    if limit is not None and limit < len(ds):
        ds = ds.shuffle(seed=seed).select(range(limit))
    return ds.add_column("source", ["original"] * len(ds))


def validate(ds: Dataset, task: TaskSpec, labelled: bool = True) -> None:
    """Check a transfer set's schema against the task.

    Raises:
        DfkdError: missing ``text``/``source``/``teacher_logits`` or unexpected columns, a ``text_pair``
            mismatch with the task,
            an unknown source, empty text, or logits of the wrong width.
    """
    cols = set(ds.column_names)
    need = {"text", "source"} | ({"teacher_logits"} if labelled else set())
    if missing := need - cols:
        hint = " (run dfkd label first)" if "teacher_logits" in missing else ""
        raise DfkdError(f"transfer set lacks column(s) {sorted(missing)}{hint}; expected text, source, "
                        "teacher_logits [, text_pair, label]")
    if extra := cols - {"text", "text_pair", "source", "label", "teacher_logits"}:
        raise DfkdError(f"transfer set has unexpected column(s) {sorted(extra)}; expected only text, text_pair, "
                        "source, label, teacher_logits")
    if task.pair != ("text_pair" in cols):
        raise DfkdError(f"task {task.name!r} {'needs' if task.pair else 'has no'} text_pair but the transfer "
                        f"set {'lacks' if task.pair else 'has'} it")
    if bad := set(ds.unique("source")) - set(SOURCES):
        raise DfkdError(f"unknown source(s) {sorted(bad)} in transfer set; expected {list(SOURCES)}")
    for col in ("text", "text_pair") if task.pair else ("text",):
        for i, t in enumerate(ds[col]):
            if not t or not t.strip():
                raise DfkdError(f"transfer set row {i}: empty {col}; expected non-empty text")
    if labelled and len(ds) and len(ds[0]["teacher_logits"]) != task.num_labels:
        raise DfkdError(f"teacher_logits have {len(ds[0]['teacher_logits'])} values but task {task.name!r} has "
                        f"{task.num_labels} label(s)")


def save_transfer_set(ds: Dataset, out_dir: str | Path, card: dict) -> Path:
    """Save ``ds`` with ``save_to_disk`` and its provenance card, atomically (temporary folder + rename).

    The card gains ``rows``, ``rows_by_source`` and ``dfkd_version``.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".saving")
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp))
    card = {**card, "rows": len(ds), "rows_by_source": dict(Counter(ds["source"])), "dfkd_version": __version__}
    (tmp / CARD).write_text(json.dumps(card, indent=2, default=str))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def load_transfer_set(path: str | Path) -> tuple[Dataset, dict]:
    """Load a saved transfer set and its card.

    Raises:
        DfkdError: the folder is missing or is not a saved transfer set.
    """
    path = Path(path)
    if not (path / CARD).is_file():
        raise DfkdError(f"{path} is not a transfer set; expected a folder written by dfkd (with {CARD})")
    return load_from_disk(str(path)), json.loads((path / CARD).read_text())


#: Packages whose import registers more generators (imported on first use, to avoid import cycles).
PLUGINS = ("dfkd.augment", "dfkd.zeroshot")


def load_generators() -> Registry[Callable[..., Dataset]]:
    """:data:`GENERATORS` with every built-in generator registered."""
    import importlib

    for name in PLUGINS:
        importlib.import_module(name)
    return GENERATORS


def build_transfer_set(generator: str, task: str | TaskSpec, data_dir=None, seed: int = 0,
                       work_dir: str | Path | None = None, **settings) -> tuple[Dataset, dict]:
    """Run a registered generator and return its rows with a provenance card (unlabelled).

    Args:
        work_dir: where a long generator keeps finished parts so a re-run resumes (generators that finish
            quickly ignore it).
        settings: the generator's own settings, recorded in the card.

    A generator returns a :class:`Dataset`, or ``(Dataset, dict)`` whose dict is added to the card (e.g.
    the resolved settings of its model).
    """
    spec = get_task(task)
    result = load_generators().get(generator)(spec, data_dir=data_dir, seed=seed, work_dir=work_dir, **settings)
    ds, extra = result if isinstance(result, tuple) else (result, {})
    card = {"generator": generator, "settings": settings, "seed": seed, "task": spec.name,
            "num_labels": spec.num_labels, "data_dir": str(data_dir) if data_dir else None, **extra}
    return ds, card
