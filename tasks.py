"""GLUE tasks and user tasks: one registry, one loader, one dataset schema.

Every loader returns a :class:`datasets.Dataset` with the columns ``text``, ``text_pair`` (pair tasks only)
and ``label`` (``int`` class index, or ``float`` for regression), whatever the source: a local GLUE folder in
the original TSV formats, the Hugging Face hub (``nyu-mll/glue``), or a user's CSV/TSV/JSONL file.

Reference: Wang et al. 2019, "GLUE: A Multi-Task Benchmark and Analysis Platform for NLU"; metric keys
follow the ``evaluate`` GLUE metric (``accuracy``, ``f1``, ``matthews_correlation``, ``pearson``,
``spearmanr``).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset

from .errors import DfkdError
from .registry import Registry

csv.field_size_limit(sys.maxsize)


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
        hub_name / hub_columns / hub_splits: the task on the hub (``nyu-mll/glue``) and its column/split names.
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

    @property
    def is_regression(self) -> bool:
        return not self.label_names

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
        hub_name=name, hub_columns=tuple(hub_columns), hub_splits=hub_splits or dict(_HUB_SPLITS)))


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


def get_task(name: str | TaskSpec) -> TaskSpec:
    """Return a registered task (names are case-insensitive and ignore ``-``: ``SST-2`` is ``sst2``).

    Raises:
        DfkdError: unknown task name.
    """
    if isinstance(name, TaskSpec):
        return name
    return TASKS.get(name.lower().replace("-", ""))


def column(ds: Dataset, name: str) -> list:
    """One column of ``ds`` as a Python list, read in one call.

    ``datasets`` 4 and later return a lazy ``Column`` for ``ds[name]``, and iterating it fetches one row at a
    time: about 10x slower than this (20,000 pairs: 1.2 s vs 0.1 s), which mattered once per student.
    """
    return ds[name][:]


def custom_task(name: str, files: dict[str, str], text_column: str, label_column: str,
                text_pair_column: str | None = None, label_names: list[str] | None = None,
                regression: bool = False) -> TaskSpec:
    """Describe a user's task stored in CSV, TSV or JSONL files with named columns.

    Args:
        files: split name -> path (``{"train": "train.csv", "dev": "dev.csv"}``).
        label_names: class names in index order. When omitted, they are the sorted distinct labels of the
            ``train`` file (or the first file given). Integer labels are read as class indices when
            ``label_names`` is given.
        regression: float targets; ``label_names`` must then be empty.

    Returns:
        A :class:`TaskSpec` whose metrics are ``accuracy`` + ``f1`` (2 classes, main ``accuracy``),
        ``accuracy`` (more classes) or ``pearson`` + ``spearmanr`` (regression).

    Raises:
        DfkdError: missing file, missing column, fewer than two labels.
    """
    if not files:
        raise DfkdError("a custom task needs at least one data file (e.g. --train-file)")
    if regression:
        labels: tuple[str, ...] = ()
    elif label_names:
        labels = tuple(label_names)
    else:
        first = files.get("train") or next(iter(files.values()))
        rows = _read_table(Path(first))
        _need_columns(rows[0] if rows else {}, [label_column], first)
        labels = tuple(sorted({str(r[label_column]).strip() for r in rows}))
    if not regression and len(labels) < 2:
        raise DfkdError(f"custom task {name!r} needs at least 2 label names, got {list(labels)}")
    metrics = ("pearson", "spearmanr") if regression else (("accuracy", "f1") if len(labels) == 2 else ("accuracy",))
    return TaskSpec(name=name, label_names=labels, metrics=metrics, main_metric=metrics[0],
                    pair=text_pair_column is not None, files=dict(files),
                    tsv_columns=(text_column, text_pair_column, label_column))


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
        raise DfkdError(f"task {spec.name!r} has no split {split!r}; expected one of: {', '.join(spec.splits)}")
    if spec.glue_dir is not None and data_dir is None:
        return _load_hub(spec, split, limit, extra_columns)
    path = Path(data_dir) / spec.files[split] if data_dir is not None else Path(spec.files[split])
    if spec.glue_dir is not None:
        rows = _read_glue_tsv(path, header=spec.tsv_header)
    else:
        rows = _read_table(path)
    if limit is not None:
        rows = rows[:limit]
    return _to_dataset(spec, rows, path, extra_columns)


def _load_hub(spec: TaskSpec, split: str, limit: int | None, extra_columns: Sequence[str] = ()) -> Dataset:
    from datasets import load_dataset  # network path, kept for users online

    try:
        raw = load_dataset("nyu-mll/glue", spec.hub_name, split=spec.hub_splits[split])
    except Exception as err:  # noqa: BLE001 - any hub failure becomes one line
        raise DfkdError(f"could not load {spec.name!r} from the hub (nyu-mll/glue): {str(err).splitlines()[0]}; "
                        "pass a local GLUE folder with --data-dir (e.g. glue/SST-2)") from None
    if limit is not None:
        raw = raw.select(range(min(limit, len(raw))))
    text, pair, label = spec.hub_columns
    out = {"text": list(raw[text])}
    if pair:
        out["text_pair"] = list(raw[pair])
    out["label"] = [float(v) for v in raw[label]] if spec.is_regression else list(raw[label])
    if missing := [c for c in extra_columns if c not in raw.column_names]:
        raise DfkdError(f"the hub's {spec.name!r} has no column(s) {missing}; it has {raw.column_names}")
    out.update({c: [str(v) for v in raw[c]] for c in extra_columns})
    return Dataset.from_dict(out)


def _read_glue_tsv(path: Path, header: bool) -> list[dict]:
    """Rows of a GLUE TSV (tab-separated, no quoting; MRPC's BOM stripped) keyed by header name or index."""
    if not path.is_file():
        raise DfkdError(f"missing data file {path}; expected a GLUE task folder with {path.name}")
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        lines = list(reader)
    if not lines:
        raise DfkdError(f"{path} is empty; expected a GLUE TSV file")
    if not header:
        return [dict(enumerate(r), _line=i + 1) for i, r in enumerate(lines)]
    names = [h.strip() for h in lines[0]]
    rows = []
    for i, r in enumerate(lines[1:], start=2):
        if len(r) < len(names):  # GLUE's QQP/MNLI have a handful of truncated lines; they carry no label
            continue
        row = dict(zip(names, r))
        row["_line"] = i
        rows.append(row)
    return rows


def _read_table(path: Path) -> list[dict]:
    """Rows of a user's CSV, TSV or JSONL file (chosen by extension), keyed by column name."""
    if not path.is_file():
        raise DfkdError(f"missing data file {path}; expected a .csv, .tsv or .jsonl file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = []
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, start=1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        raise DfkdError(f"{path} line {i} is not valid JSON; expected one JSON object per line") from None
                    row["_line"] = i
                    rows.append(row)
        return rows
    if suffix not in (".csv", ".tsv", ".txt"):
        raise DfkdError(f"unsupported data file {path}; expected a .csv, .tsv or .jsonl file")
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t" if suffix != ".csv" else ",")
        return [dict(r, _line=i) for i, r in enumerate(reader, start=2)]


def _need_columns(row: dict, columns: list, path) -> None:
    missing = [c for c in columns if c is not None and c not in row]
    if missing:
        have = [c for c in row if c != "_line"]
        raise DfkdError(f"{path}: missing column(s) {missing}; the file has {have}")


def _to_dataset(spec: TaskSpec, rows: list[dict], path: Path, extra_columns: Sequence[str] = ()) -> Dataset:
    text_c, pair_c, label_c = spec.tsv_columns
    if not rows:
        raise DfkdError(f"{path} has no data rows")
    _need_columns(rows[0], [text_c, pair_c, label_c, *extra_columns], path)
    index = {name: i for i, name in enumerate(spec.label_names)}
    texts, pairs, labels = [], [], []
    for r in rows:
        where = f"{path} line {r['_line']}"
        t = (r.get(text_c) or "").strip()
        if not t:
            raise DfkdError(f"{where}: empty text in column {text_c!r}; expected a non-empty sentence")
        texts.append(t)
        if pair_c is not None:
            p = (r.get(pair_c) or "").strip()
            if not p:
                raise DfkdError(f"{where}: empty text in column {pair_c!r}; expected a non-empty sentence")
            pairs.append(p)
        labels.append(_parse_label(spec, index, r.get(label_c), where))
    out = {"text": texts}
    if pair_c is not None:
        out["text_pair"] = pairs
    out["label"] = labels
    out.update({str(c): [str(r[c]) for r in rows] for c in extra_columns})
    return Dataset.from_dict(out)


def _parse_label(spec: TaskSpec, index: dict[str, int], raw, where: str):
    value = "" if raw is None else str(raw).strip()
    if spec.is_regression:
        try:
            return float(value)
        except ValueError:
            raise DfkdError(f"{where}: label {value!r} is not a number; task {spec.name!r} is a regression task") from None
    if value in index:
        return index[value]
    if value.lstrip("-").isdigit() and 0 <= int(value) < len(spec.label_names):
        return int(value)
    raise DfkdError(f"{where}: label {value!r} is outside the label set of {spec.name!r}; expected one of "
                    f"{list(spec.label_names)} or an index 0..{len(spec.label_names) - 1}")


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

