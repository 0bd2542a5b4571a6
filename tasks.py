"""GLUE tasks and user tasks: one registry, one loader, one dataset schema.

Every loader returns a :class:`datasets.Dataset` with the columns ``text``, ``text_pair`` (pair tasks only)
and ``label`` (``int`` class index, or ``float`` for regression), whatever the source: a local GLUE folder in
the original TSV formats, the Hugging Face hub (``nyu-mll/glue``), or a user's CSV/TSV/JSONL file.

Reference: Wang et al. 2019, "GLUE: A Multi-Task Benchmark and Analysis Platform for NLU"; metric keys
follow the ``evaluate`` GLUE metric (``accuracy``, ``f1``, ``matthews_correlation``, ``pearson``,
``spearmanr``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from datasets import Dataset

from .errors import DfkdError
from .registry import Registry
from .task_data import (
    load_hub_split,
    load_source,
    need_columns,
    read_glue_tsv,
    read_table,
    rows_to_dataset,
    source_name,
)


@dataclass(frozen=True)
class TaskSpec:
    """What dfkd needs to know about a sentence(-pair) classification or regression task.

    Attributes:
        name: registry name (``sst2``) or a user's name for a custom task.
        label_names: class names in class-index order; empty for regression.
        metrics: metric keys as ``evaluate``'s GLUE metric names them.
        main_metric: the one key that ranks models and gives "% of teacher".
        pair: whether examples have a second text (``text_pair``).
        glue_dir: folder name in the GLUE distribution (``SST-2``).
        tsv_columns: GLUE TSV header names (or column indices for header-less files) of
            ``(text, text_pair, label)``; ``text_pair`` is ``None`` for single-sentence tasks.
        tsv_header: whether the GLUE TSV files have a header row (CoLA's do not).
        files: split name -> file name inside the GLUE folder (or, for a custom task, a full path).
        hub_name / hub_columns / hub_splits: the task in a ``datasets`` dataset (``nyu-mll/glue`` for GLUE): its
            config name, its ``(text, text_pair, label)`` column names and dfkd split -> the dataset's split.
        dataset: a ``datasets`` id (``load_dataset(dataset, hub_name)``) the task reads (GLUE: ``nyu-mll/glue``,
            read only without a local folder).
        disk: a ``save_to_disk`` folder the task reads (custom tasks).
        regression: the kind, when it cannot be told from ``label_names`` (a custom task whose class names come
            from the teacher); ``None``: regression exactly when there are no label names.
        file_label_names: the class order integer labels in the data files index, when ``label_names`` were put
            in the teacher's order (:func:`align_labels`); empty: the same as ``label_names``.
    """

    name: str
    label_names: tuple[str, ...]
    metrics: tuple[str, ...]
    main_metric: str
    pair: bool = False
    glue_dir: str | None = None
    tsv_columns: tuple = ()
    tsv_header: bool = True
    files: dict[str, str] = field(default_factory=dict)
    hub_name: str | None = None
    hub_columns: tuple = ()
    hub_splits: dict[str, str] = field(default_factory=dict)
    dataset: str | None = None
    disk: str | None = None
    regression: bool | None = None
    file_label_names: tuple[str, ...] = ()

    @property
    def is_regression(self) -> bool:
        return self.regression if self.regression is not None else not self.label_names

    @property
    def is_custom(self) -> bool:
        """A user's task (not one of the registered GLUE tasks)."""
        return self.glue_dir is None

    @property
    def num_labels(self) -> int:
        """Number of classes, or 1 (one score) for regression."""
        return len(self.label_names) or 1

    @property
    def splits(self) -> list[str]:
        return list(self.files)


TASKS: Registry[TaskSpec] = Registry("task")

_HUB_SPLITS = {"train": "train", "dev": "validation"}
_STD = {"train": "train.tsv", "dev": "dev.tsv"}


def _glue(name, glue_dir, labels, metrics, main, tsv_columns, hub_columns, pair=False, header=True,
          files=None, hub_splits=None):
    TASKS.add(TaskSpec(
        name=name, label_names=tuple(labels), metrics=tuple(metrics), main_metric=main, pair=pair,
        glue_dir=glue_dir, tsv_columns=tuple(tsv_columns), tsv_header=header, files=files or dict(_STD),
        hub_name=name, hub_columns=tuple(hub_columns), hub_splits=hub_splits or dict(_HUB_SPLITS),
        dataset="nyu-mll/glue"))


# CoLA has no header: source, label, original label, sentence.
_glue("cola", "CoLA", ["unacceptable", "acceptable"], ["matthews_correlation"], "matthews_correlation",
      (3, None, 1), ("sentence", None, "label"), header=False)
_glue("sst2", "SST-2", ["negative", "positive"], ["accuracy"], "accuracy",
      ("sentence", None, "label"), ("sentence", None, "label"))
_glue("mrpc", "MRPC", ["not_equivalent", "equivalent"], ["accuracy", "f1"], "f1",
      ("#1 String", "#2 String", "Quality"), ("sentence1", "sentence2", "label"), pair=True)
_glue("qqp", "QQP", ["not_duplicate", "duplicate"], ["accuracy", "f1"], "f1",
      ("question1", "question2", "is_duplicate"), ("question1", "question2", "label"), pair=True)
_glue("stsb", "STS-B", [], ["pearson", "spearmanr"], "pearson",
      ("sentence1", "sentence2", "score"), ("sentence1", "sentence2", "label"), pair=True)
_glue("mnli", "MNLI", ["entailment", "neutral", "contradiction"], ["accuracy"], "accuracy",
      ("sentence1", "sentence2", "gold_label"), ("premise", "hypothesis", "label"), pair=True,
      files={"train": "train.tsv", "dev": "dev_matched.tsv", "dev_mismatched": "dev_mismatched.tsv"},
      hub_splits={"train": "train", "dev": "validation_matched", "dev_mismatched": "validation_mismatched"})
_glue("qnli", "QNLI", ["entailment", "not_entailment"], ["accuracy"], "accuracy",
      ("question", "sentence", "label"), ("question", "sentence", "label"), pair=True)
_glue("rte", "RTE", ["entailment", "not_entailment"], ["accuracy"], "accuracy",
      ("sentence1", "sentence2", "label"), ("sentence1", "sentence2", "label"), pair=True)
_glue("wnli", "WNLI", ["not_entailment", "entailment"], ["accuracy"], "accuracy",
      ("sentence1", "sentence2", "label"), ("sentence1", "sentence2", "label"), pair=True)


def get_task(name: str | TaskSpec | dict) -> TaskSpec:
    """Return a registered task (names are case-insensitive and ignore ``-``: ``SST-2`` is ``sst2``), or a user's
    task described by a dict (:class:`CustomTask`'s fields, as a preset or a transfer-set card writes it).

    Raises:
        DfkdError: unknown task name, or a bad custom-task description.
    """
    if isinstance(name, TaskSpec):
        return name
    if isinstance(name, dict):
        return task_from_dict(name)
    return TASKS.get(name.lower().replace("-", ""))


def column(ds: Dataset, name: str) -> list:
    """One column of ``ds`` as a Python list, read in one call.

    ``datasets`` 4 and later return a lazy ``Column`` for ``ds[name]``, and iterating it fetches one row at a
    time: about 10x slower than this (20,000 pairs: 1.2 s vs 0.1 s), which mattered once per student.
    """
    return ds[name][:]


@dataclass
class CustomTask:
    """A user's task, as a preset's ``task`` (or a ``tasks`` entry) and a transfer-set card write it.

    The data is one of: ``files`` (CSV, TSV, JSONL or Parquet, relative to the run's ``data_dir`` when one is
    given), a ``datasets`` id (``dataset`` with ``dataset_config`` and ``splits``) or a ``save_to_disk`` folder
    (``disk``, with ``splits``); none of them for a zero-shot run, whose label names then come from the teacher.

    Attributes:
        name: the task's name in tables and folders.
        files: dfkd split (``train``, ``dev``) -> file.
        dataset / dataset_config: a ``datasets`` id and its config.
        disk: a folder written by ``Dataset(Dict).save_to_disk``.
        splits: dfkd split -> the dataset's split (default ``{"train": "train", "dev": "validation"}``).
        text / text_pair / label: the column names (``text_pair``: pair tasks only).
        kind: ``"classification"`` or ``"regression"``.
        label_names: class names in index order; default: the dataset's ``ClassLabel`` names, else the sorted
            distinct labels of ``train``, else (no data) the teacher's ``id2label``.
        metric: the main metric: ``accuracy``, ``f1`` (2 classes) or ``matthews_correlation`` for
            classification, ``pearson`` or ``spearmanr`` for regression (default: the first).
    """

    name: str
    files: dict[str, str] | None = None
    dataset: str | None = None
    dataset_config: str | None = None
    disk: str | None = None
    splits: dict[str, str] | None = None
    text: str = "text"
    text_pair: str | None = None
    label: str = "label"
    kind: str = "classification"
    label_names: list[str] | None = None
    metric: str | None = None


_METRICS = {"classification": ("accuracy", "f1", "matthews_correlation"), "regression": ("pearson", "spearmanr")}


def task_from_dict(data: dict, where: str = "task", data_dir: str | Path | None = None) -> TaskSpec:
    """A :class:`TaskSpec` from a :class:`CustomTask` dict (read strictly: unknown keys are refused).

    Raises:
        DfkdError: an unknown key or wrong type, more than one data source, a bad kind or metric, and what
            :func:`custom_task` raises.
    """
    from .config import from_dict

    c = from_dict(CustomTask, data, where)
    return custom_task(c.name, c.files or {}, c.text, c.label, c.text_pair, c.label_names,
                       regression=c.kind == "regression", kind=c.kind, metric=c.metric, dataset=c.dataset,
                       dataset_config=c.dataset_config, disk=c.disk, splits=c.splits, data_dir=data_dir)


def task_to_dict(spec: TaskSpec) -> dict | str:
    """What a card records of a task: a registered task's name, or a custom task as :class:`CustomTask` fields
    (its label names in the order the models use), so :func:`get_task` gives the task back."""
    if not spec.is_custom:
        return spec.name
    text, pair, label = spec.tsv_columns or ("text", None, "label")
    out = {"name": spec.name, "text": text, "text_pair": pair, "label": label,
           "kind": "regression" if spec.is_regression else "classification",
           "label_names": list(spec.label_names) or None, "metric": spec.main_metric}
    if spec.dataset or spec.disk:
        out.update(dataset=spec.dataset, dataset_config=spec.hub_name, disk=spec.disk, splits=dict(spec.files))
    elif spec.files:
        out["files"] = {k: str(Path(v).resolve()) if Path(v).exists() else v for k, v in spec.files.items()}
    return {k: v for k, v in out.items() if v is not None}


def custom_task(name: str, files: dict[str, str], text_column: str = "text", label_column: str = "label",
                text_pair_column: str | None = None, label_names: list[str] | None = None,
                regression: bool = False, kind: str | None = None, metric: str | None = None,
                dataset: str | None = None, dataset_config: str | None = None, disk: str | None = None,
                splits: dict[str, str] | None = None, data_dir: str | Path | None = None) -> TaskSpec:
    """Describe a user's task: files with named columns, a ``datasets`` id, a ``save_to_disk`` folder, or no
    data at all (a zero-shot run; the label names then come from the teacher, :func:`align_labels`).

    Args:
        files: split name -> path (``{"train": "train.csv", "dev": "dev.csv"}``), relative to ``data_dir``
            when given.
        label_names: class names in index order. When omitted: the dataset's ``ClassLabel`` names, else the
            sorted distinct labels of the ``train`` split (or the first split given). Integer labels are read
            as class indices when ``label_names`` is given.
        regression / kind: float targets (``kind="regression"``); ``label_names`` must then be empty.
        metric: the main metric (see :class:`CustomTask`).
        dataset / dataset_config / disk / splits: the ``datasets`` source and dfkd split -> its split.

    Returns:
        A :class:`TaskSpec` whose metrics are ``accuracy`` + ``f1`` (2 classes), ``accuracy`` (more classes) or
        ``pearson`` + ``spearmanr`` (regression), the main one first.

    Raises:
        DfkdError: two data sources, a missing file or column, fewer than two labels, an unknown kind or metric.
    """
    kind = kind or ("regression" if regression else "classification")
    if kind not in _METRICS:
        raise DfkdError(f"task {name!r}: kind {kind!r}; expected 'classification' or 'regression'")
    regression = kind == "regression"
    if sum(bool(x) for x in (files, dataset, disk)) > 1:
        raise DfkdError(f"task {name!r}: give one data source (files, dataset or disk), not several")
    source_files = dict(files or {})
    if dataset or disk:
        source_files = dict(splits or _HUB_SPLITS)
    spec = TaskSpec(name=name, label_names=(), metrics=(), main_metric="", pair=text_pair_column is not None,
                    files=source_files, tsv_columns=(text_column, text_pair_column, label_column),
                    hub_name=dataset_config, dataset=dataset, disk=disk, regression=regression)
    if regression:
        if label_names:
            raise DfkdError(f"task {name!r} is a regression task; expected no label_names, got {label_names}")
        labels: tuple[str, ...] = ()
    elif label_names:
        labels = tuple(str(x) for x in label_names)
    elif source_files:
        split = "train" if "train" in source_files else next(iter(source_files))
        labels = _labels_in_data(spec, split, data_dir)
    else:
        labels = ()  # from the teacher (align_labels)
    if not regression and labels and len(labels) < 2:
        raise DfkdError(f"custom task {name!r} needs at least 2 label names, got {list(labels)}")
    return with_labels(spec, labels, metric)


def with_labels(spec: TaskSpec, labels: tuple[str, ...], metric: str | None = None) -> TaskSpec:
    """``spec`` with these class names and its metrics chosen for them (``metric`` first when given).

    Raises:
        DfkdError: a metric that does not fit the task's kind or number of classes.
    """
    kind = "regression" if spec.is_regression else "classification"
    metrics = ("pearson", "spearmanr") if kind == "regression" else (
        ("accuracy", "f1") if len(labels) == 2 else ("accuracy",))
    metric = metric or (spec.main_metric or metrics[0])
    allowed = _METRICS[kind] if kind == "regression" or len(labels) == 2 else ("accuracy", "matthews_correlation")
    if metric not in allowed:
        raise DfkdError(f"task {spec.name!r}: metric {metric!r} does not fit a {kind} task"
                        f"{'' if kind == 'regression' else f' with {len(labels)} classes'}; expected one of "
                        f"{list(allowed)}")
    metrics = (metric, *[m for m in metrics if m != metric])
    return replace(spec, label_names=tuple(labels), metrics=metrics, main_metric=metric)


def _labels_in_data(spec: TaskSpec, split: str, data_dir) -> tuple[str, ...]:
    """A custom task's class names from its data: ``ClassLabel`` names, else the sorted distinct labels."""
    label_column = spec.tsv_columns[2]
    if spec.dataset or spec.disk:
        raw = load_source(spec, split)
        feature = raw.features.get(label_column)
        if feature is not None and hasattr(feature, "names"):
            return tuple(feature.names)
        if label_column not in raw.column_names:
            raise DfkdError(f"{source_name(spec, split)}: missing column {label_column!r}; it has {raw.column_names}")
        return tuple(sorted({str(v).strip() for v in raw[label_column]}))
    path = _file_path(spec, split, data_dir)
    rows = read_table(path)
    if not rows:
        raise DfkdError(f"{path} has no data rows; expected a non-empty {split} split")
    need_columns(rows[0], [label_column], path)
    return tuple(sorted({str(r[label_column]).strip() for r in rows}))


def _file_path(spec: TaskSpec, split: str, data_dir) -> Path:
    return Path(data_dir) / spec.files[split] if data_dir is not None else Path(spec.files[split])


def load_task(task: str | TaskSpec, split: str, data_dir: str | Path | None = None,
              limit: int | None = None, extra_columns: Sequence[str] = ()) -> Dataset:
    """Load one split of a task as ``text`` [, ``text_pair``], ``label`` [, ``extra_columns``].

    Args:
        task: a registered name or a :class:`TaskSpec` (e.g. from :func:`custom_task`).
        split: ``train``, ``dev`` (MNLI: the matched dev set), or another split the task lists.
        data_dir: a local GLUE task folder (``.../glue/SST-2``). ``None``: the hub (``nyu-mll/glue``)
            for GLUE tasks (needs network), the task's own file paths for custom tasks.
        limit: keep only the first ``limit`` rows.
        extra_columns: more of the file's columns to keep, as strings under their own names (e.g. STS-B's
            ``genre``); the hub's copy is searched for them too.

    Raises:
        DfkdError: unknown split, missing file or column (an extra one included), empty text, label outside the
            label set.
    """
    spec = get_task(task)
    if split not in spec.files:
        raise DfkdError(f"task {spec.name!r} has no split {split!r}; expected one of: {', '.join(spec.splits) or 'none'}"
                        + (" (a task without data files: give files, a dataset or a save_to_disk folder)"
                           if not spec.files else ""))
    if spec.glue_dir is not None and data_dir is None:
        return load_hub_split(spec, split, limit, extra_columns)
    if spec.is_custom and (spec.dataset or spec.disk):
        raw = load_source(spec, split)
        raw = raw.select(range(min(limit, len(raw)))) if limit is not None else raw
        rows = [dict(r, _line=i) for i, r in enumerate(raw.to_list())]
        return rows_to_dataset(spec, rows, Path(source_name(spec, split)), extra_columns)
    path = _file_path(spec, split, data_dir)
    if spec.glue_dir is not None:
        rows = read_glue_tsv(path, header=spec.tsv_header)
    else:
        rows = read_table(path)
    if limit is not None:
        rows = rows[:limit]
    return rows_to_dataset(spec, rows, path, extra_columns)


_GENERIC_LABEL = re.compile(r"^LABEL_\d+$")


def align_labels(spec: TaskSpec, id2label: dict | None, teacher_regression: bool,
                 confirm_generic: bool = False, teacher: str = "teacher") -> tuple[TaskSpec, str | None]:
    """The task with its classes in the teacher's order, so that class ``i`` of every model is the teacher's ``i``.

    The teacher's ``id2label`` (``config.json``) is the reference: a task whose label names are the teacher's in
    another order is remapped (names compared case-insensitively; integer labels in the data keep indexing the
    data's own order through ``file_label_names``), and the mapping is returned as one line to print. A task
    without label names (zero-shot, no data) takes the teacher's. Generic names (``LABEL_0``, ...) say nothing
    about the order, so they are accepted only with ``confirm_generic`` (class ``i`` = the task's ``i``-th name).

    Args:
        id2label: the teacher's ``{index: name}`` (``str`` or ``int`` keys); ``None``: not known (not checked).
        teacher_regression: the teacher predicts one score (``num_labels == 1`` or ``problem_type`` regression).
        teacher: how messages name the teacher.

    Returns:
        ``(task, message)``: ``message`` is ``None`` when nothing was changed.

    Raises:
        DfkdError: a regression teacher with a classification task or the reverse; label names that are not the
            teacher's (listing both sets); generic teacher names without ``confirm_generic``.
    """
    if id2label is None:
        return spec, None
    if teacher_regression != spec.is_regression:
        kinds = ("a regression", "a classification")
        raise DfkdError(f"{teacher} is {kinds[0] if teacher_regression else kinds[1]} model but task {spec.name!r} "
                        f"is {kinds[0] if spec.is_regression else kinds[1]} task; expected a teacher of the task's kind")
    if spec.is_regression:
        return spec, None
    names = tuple(str(id2label[k]) for k in sorted(id2label, key=int))
    if not spec.label_names:
        return with_labels(spec, names), f"task {spec.name}: label names from the {teacher}: {list(names)}"
    if len(names) != len(spec.label_names):
        raise DfkdError(f"{teacher} has {len(names)} classes {list(names)} but task {spec.name!r} has "
                        f"{len(spec.label_names)} {list(spec.label_names)}; expected a teacher of the task's labels")
    if all(_GENERIC_LABEL.match(n) for n in names):
        if not confirm_generic:
            raise DfkdError(f"{teacher} has generic label names {list(names)}, so its class order cannot be checked "
                            f"against task {spec.name!r}'s {list(spec.label_names)}; expected a teacher whose "
                            "config names its labels, or confirm that its class i is the task's i-th label "
                            "(--confirm-generic-labels; preset: confirm_generic_labels: true)")
        return spec, None
    if spec.label_names == tuple(str(i) for i in range(len(names))):  # class indices in the data: no names
        if not confirm_generic:
            raise DfkdError(f"task {spec.name!r} has class indices {list(spec.label_names)} for labels, so they cannot "
                            f"be checked against the {teacher}'s {list(names)}; expected label names, or confirm that "
                            "index i is the teacher's class i (--confirm-generic-labels; preset: "
                            "confirm_generic_labels: true)")
        return with_labels(spec, names), f"task {spec.name}: class indices read as the {teacher}'s {list(names)}"
    lower = [n.strip().lower() for n in names]
    task_lower = [n.strip().lower() for n in spec.label_names]
    if lower == task_lower:
        return spec, None
    if sorted(lower) != sorted(task_lower):
        raise DfkdError(f"task {spec.name!r} has labels {list(spec.label_names)} but the {teacher} knows "
                        f"{list(names)}; expected the same label names (in any order)")
    ordered = tuple(spec.label_names[task_lower.index(n)] for n in lower)
    mapping = ", ".join(f"{n} -> {ordered.index(n)}" for n in spec.label_names)
    aligned = replace(with_labels(spec, ordered), file_label_names=spec.file_label_names or spec.label_names)
    return aligned, f"task {spec.name}: labels put in the {teacher}'s order ({mapping})"


def sample_rows(ds, limit: int | None, seed: int = 0, split: str = "train"):
    """The meaning of ``--limit`` and of a generator's ``limit`` everywhere in dfkd: a seeded random sample of
    ``limit`` rows of a task split (all of it for ``None`` or a limit equal to its size).

    Raises:
        DfkdError: ``limit`` below 1 or larger than the split (naming both sizes).
    """
    if limit is None:
        return ds
    if not 1 <= limit <= len(ds):
        raise DfkdError(f"limit {limit} is larger than the {split} split ({len(ds)} rows); expected at most "
                        f"{len(ds)}" if limit > len(ds) else f"limit {limit}: expected at least 1 row")
    return ds.shuffle(seed=seed).select(range(limit)) if limit < len(ds) else ds



from . import example_tasks  # noqa: E402, F401 - registers the example tasks' data assets
