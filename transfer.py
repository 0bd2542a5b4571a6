"""Transfer sets: the data a student is distilled on, and the registry of generators that build them.

A transfer set is a :class:`datasets.Dataset` with

* ``text`` (str), ``text_pair`` (str, pair tasks only),
* ``source``: ``original`` | ``augment`` | ``ood`` | ``adversarial``,
* ``label`` (optional: the gold label where one is known, else -1 / NaN),
* ``origin`` (optional int: the index of the task row a row was derived from, written by the augmenters; model
  selection on held-out task rows keeps their variants out of training with it),
* ``teacher_logits`` (``num_labels`` floats, written by :func:`dfkd.distill.label.label_dataset`).

It is saved with ``save_to_disk`` next to a JSON provenance card (``dfkd_card.json``: generator and its
settings, seed, teacher, row counts per source, dfkd version). Saving writes a temporary folder and
renames it, so a failed run leaves no partial transfer set.

A *generator* is one module and one registration (:func:`register_generator`): a function with the common
call ``generate(task, *, data_dir, seed, split, limit, work_dir, **settings) -> Dataset | (Dataset, dict)``
(rows without ``teacher_logits``). ``split``/``limit`` choose the task rows a data-driven generator reads (a
zero-shot generator reads none and takes ``limit`` as its row count); ``work_dir`` keeps finished parts of a long
job so a re-run resumes. ``dfkd generate --generator X --set key=value``, ``compare`` arms and the distiller
never special-case one. The registry lives here, in the base; generator modules (:mod:`dfkd.augment`,
:mod:`dfkd.zeroshot`) register themselves when imported.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, load_from_disk

from . import __version__
from .config import check_keywords, keyword_defaults, keyword_names
from .errors import DfkdError
from .files import atomic_dir
from .registry import Registry
from .tasks import TaskSpec, column, get_task, load_task, sample_rows, task_to_dict

#: The ``source`` values a transfer-set row may carry; a generator registering a new kind adds it.
SOURCES: list[str] = ["original", "augment", "ood", "adversarial"]
CARD = "dfkd_card.json"

#: Settings every generator takes (the common call); the rest are its own.
COMMON = ("data_dir", "seed", "split", "limit", "work_dir")


@dataclass(frozen=True)
class Generator:
    """A registered transfer-set generator.

    Attributes:
        name: registry name (``dfkd generate --generator <name>``, a compare arm's generator).
        fn: the function with the common call (module docstring).
        source: the ``source`` value of the rows it adds.
        reads_task_data: whether it reads the task's ``split`` (``False``: zero-shot, never opens train).
        description: one line for ``--help`` and tables.
        check: checks the *values* of its own settings without loading or reading anything (called with every
            own setting, defaults filled in; raises :class:`DfkdError`), so ``compare`` refuses a bad value
            before its first arm runs. ``None``: nothing beyond the names.
    """

    name: str
    fn: Callable[..., Dataset | tuple[Dataset, dict]]
    source: str
    reads_task_data: bool
    description: str
    check: Callable[[dict], None] | None = None

    def settings(self) -> list[str] | None:
        """Its own settings (beyond :data:`COMMON`); ``None`` when it passes any on (``**settings``)."""
        return keyword_names(self.fn, skip=("task", *COMMON))


GENERATORS: Registry[Generator] = Registry("generator")


def register_generator(name: str, source: str, reads_task_data: bool = True, description: str = "",
                       check: Callable[[dict], None] | None = None):
    """Decorator: register ``fn`` as the generator ``name`` whose rows carry ``source``; ``check`` validates
    its settings' values cheaply (:attr:`Generator.check`).

    The registry keeps ``fn`` itself (:func:`build_transfer_set` checks the settings once, before the call);
    the name the decorator returns is ``fn`` behind the same ``check`` (defaults filled in), so a direct call
    is refused a bad value as a registry call is, and ``fn`` need not check its settings itself.

    Raises:
        DfkdError: ``fn`` lacks one of the common settings (:data:`COMMON`), or the name is taken.
    """

    def add(fn):
        params = inspect.signature(fn).parameters
        if missing := [c for c in COMMON if c not in params]:
            raise DfkdError(f"generator {name!r} does not take the common setting(s) {missing}; expected "
                            f"generate(task, *, {', '.join(COMMON)}, **settings)")
        if source not in SOURCES:
            SOURCES.append(source)
        GENERATORS.add(Generator(name, fn, source, reads_task_data,
                                            description or (fn.__doc__ or "").strip().splitlines()[0], check))
        if check is None:
            return fn

        @functools.wraps(fn)
        def checked(*args, **kwargs):  # generators take every setting by keyword (COMMON and their own)
            _check_values(fn, check, {k: v for k, v in kwargs.items() if k not in ("task", *COMMON)})
            return fn(*args, **kwargs)

        return checked

    return add


@register_generator("original", "original", description="data-driven KD: the task's own texts")
def original(task: str | TaskSpec, *, data_dir=None, seed: int = 0, split: str = "train", limit: int | None = None,
             work_dir=None) -> Dataset:
    """Data-driven KD: the task's own ``split`` texts (gold labels kept), ``source=original``.

    ``limit`` keeps a seeded random sample of that many rows (the "little data" setting); ``work_dir`` is
    not needed (the job is fast).

    Raises:
        DfkdError: ``limit`` larger than the split (naming both sizes), or a bad task folder.
    """
    ds = sample_rows(load_task(task, split, data_dir), limit, seed, split)
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
                        "teacher_logits [, text_pair, label, origin]")
    if extra := cols - {"text", "text_pair", "source", "label", "teacher_logits", "origin"}:
        raise DfkdError(f"transfer set has unexpected column(s) {sorted(extra)}; expected only text, text_pair, "
                        "source, label, teacher_logits, origin")
    if task.pair != ("text_pair" in cols):
        raise DfkdError(f"task {task.name!r} {'needs' if task.pair else 'has no'} text_pair but the transfer "
                        f"set {'lacks' if task.pair else 'has'} it")
    if bad := set(ds.unique("source")) - set(SOURCES):
        raise DfkdError(f"unknown source(s) {sorted(bad)} in transfer set; expected {list(SOURCES)}")
    for col in ("text", "text_pair") if task.pair else ("text",):
        for i, t in enumerate(column(ds, col)):
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
    card = {**card, "rows": len(ds), "rows_by_source": dict(Counter(ds["source"])), "dfkd_version": __version__}
    with atomic_dir(out_dir, ".saving") as tmp:
        ds.save_to_disk(str(tmp))
        (tmp / CARD).write_text(json.dumps(card, indent=2, default=str))
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


def concatenate_transfer_sets(parts: list[Dataset]) -> Dataset:
    """The rows of several generators' transfer sets, one after another.

    Each part's ``origin`` ids (:mod:`dfkd.transfer` columns) are shifted past the previous parts' so rows of
    different parts never share one; a part without ``origin`` gets one id per row (its rows derive from no
    other row). Without ``origin`` in any part, the parts are joined as they are.
    """
    from datasets import concatenate_datasets

    if len(parts) == 1:
        return parts[0]
    if any("origin" in p.column_names for p in parts):
        shifted, offset = [], 0
        for p in parts:
            ids = [o + offset for o in p["origin"]] if "origin" in p.column_names else \
                [offset + i for i in range(len(p))]
            shifted.append((p.remove_columns("origin") if "origin" in p.column_names else p).add_column("origin", ids))
            offset = max(ids, default=offset - 1) + 1
        parts = shifted
    return concatenate_datasets(parts)


def _check_values(fn: Callable, check: Callable[[dict], None], own: dict) -> None:
    """Run a generator's value ``check`` on its own settings ``own`` with its defaults filled in."""
    check({**keyword_defaults(fn, skip=("task", *COMMON)), **own})


def check_generator_settings(generator: str, settings: dict, where: str) -> Generator:
    """The registered generator ``generator``, after checking its own ``settings`` (the common call's
    ``split``/``limit`` may be among them) against its signature, and their values with its
    :attr:`Generator.check` (defaults filled in from the signature). Nothing is loaded or read.

    Raises:
        DfkdError: unknown generator, a setting it does not take (with a close match suggested), or a value
            its check refuses (prefixed with ``where``).
    """
    gen = GENERATORS.get(generator)
    own = {k: v for k, v in settings.items() if k not in COMMON}
    check_keywords(gen.fn, own, where, skip=("task", *COMMON))
    if gen.check is not None:
        try:
            _check_values(gen.fn, gen.check, own)
        except DfkdError as err:
            raise DfkdError(f"{where}: {err}") from None
    return gen


def build_transfer_set(generator: str, task: str | TaskSpec, data_dir=None, seed: int = 0,
                       work_dir: str | Path | None = None, split: str = "train", limit: int | None = None,
                       **settings) -> tuple[Dataset, dict]:
    """Run a registered generator with the common call and return its rows with a provenance card (unlabelled).

    Args:
        generator: a name in :data:`GENERATORS` (import :mod:`dfkd.augment` / :mod:`dfkd.zeroshot` first to
            have theirs registered; the CLI and ``compare`` do).
        work_dir: where a long generator keeps finished parts so a re-run resumes.
        split / limit: the task rows a data-driven generator reads (see the module docstring).
        settings: the generator's own settings, checked against its signature and recorded in the card.

    Raises:
        DfkdError: unknown generator, or a setting it does not take (with a close match suggested).
    """
    spec = get_task(task)
    gen = check_generator_settings(generator, settings, f"generator {generator!r} settings")
    result = gen.fn(spec, data_dir=data_dir, seed=seed, split=split, limit=limit, work_dir=work_dir, **settings)
    ds, extra = result if isinstance(result, tuple) else (result, {})
    card = {"generator": generator, "settings": settings, "seed": seed, "task": spec.name,
            **({"task_spec": task_to_dict(spec)} if spec.is_custom else {}),
            "num_labels": spec.num_labels, "split": split if gen.reads_task_data else None, "limit": limit,
            "data_dir": _portable(data_dir) if gen.reads_task_data and data_dir else None, **extra}
    return ds, card


def _portable(path) -> str:
    """A folder as an asset name when it is one (``glue/SST-2``), else as given: cards hold no machine paths."""
    from .assets import asset_name

    return asset_name(path)
