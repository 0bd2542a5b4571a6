"""Reading a task's rows: GLUE TSV files, a user's CSV/TSV/JSONL/Parquet files, a ``datasets`` id (the hub, or its
local cache when offline) and ``save_to_disk`` folders, into dfkd's schema (``text`` [, ``text_pair``], ``label``).
:mod:`dfkd.tasks` says which source a task reads; this module reads it, checking columns, texts and labels.
Every function takes the task as ``spec`` (a :class:`dfkd.tasks.TaskSpec`, which this module never imports)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from datasets import Dataset

from .errors import DfkdError

csv.field_size_limit(sys.maxsize)


def load_hub_split(spec, split: str, limit: int | None, extra_columns: Sequence[str] = ()) -> Dataset:
    """A GLUE task's split from the hub (``nyu-mll/glue``), for users online; offline, from the local cache."""
    raw = load_source(replace(spec, files=dict(spec.hub_splits)), split,
                       hint="pass a local GLUE folder with --data-dir (e.g. glue/SST-2)")
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


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (a few seconds at most, not the hub's retries)."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_source(spec, split: str, hint: str = "expected a cached dataset, data files or a save_to_disk "
                                                        "folder"):
    """One split of a custom task's ``datasets`` id or ``save_to_disk`` folder, as a :class:`Dataset`.

    Offline (the hub unreachable), a ``datasets`` id is read from the local cache only, and a miss is one line
    saying so instead of the hub's retries and traceback.
    """
    import datasets

    name = spec.files[split]
    if spec.disk:
        try:
            data = datasets.load_from_disk(spec.disk)
        except FileNotFoundError:
            raise DfkdError(f"task {spec.name!r}: {spec.disk} is not a save_to_disk folder; expected a folder "
                            "written by Dataset.save_to_disk or DatasetDict.save_to_disk") from None
        if isinstance(data, datasets.DatasetDict):
            if name not in data:
                raise DfkdError(f"task {spec.name!r}: {spec.disk} has no split {name!r}; it has {list(data)} "
                                "(map dfkd's splits to them with splits)")
            return data[name]
        return data
    online = hub_reachable()
    try:
        if online:
            return datasets.load_dataset(spec.dataset, spec.hub_name, split=name)
        with offline():
            return datasets.load_dataset(spec.dataset, spec.hub_name, split=name)
    except Exception as err:  # noqa: BLE001 - any datasets failure becomes one line
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        if not online:
            raise DfkdError(f"task {spec.name!r}: dataset {spec.dataset!r} is not in the local cache and this "
                            f"machine is offline (the Hugging Face hub is unreachable); {hint}") from None
        raise DfkdError(f"task {spec.name!r}: could not load {source_name(spec, split)}: {why}; {hint}") from None


class offline:
    """Within the block, ``datasets`` and ``huggingface_hub`` read their caches only."""

    def __enter__(self):
        import datasets
        import huggingface_hub.constants as hub

        self.saved = datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE
        datasets.config.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE = True

    def __exit__(self, *exc):
        import datasets
        import huggingface_hub.constants as hub

        datasets.config.HF_HUB_OFFLINE, hub.HF_HUB_OFFLINE = self.saved


def read_glue_tsv(path: Path, header: bool) -> list[dict]:
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


def read_table(path: Path) -> list[dict]:
    """Rows of a user's CSV, TSV or JSONL file (chosen by extension), keyed by column name."""
    if not path.is_file():
        raise DfkdError(f"missing data file {path}; expected a .csv, .tsv, .jsonl or .parquet file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return [dict(r, _line=i) for i, r in enumerate(pq.read_table(path).to_pylist(), start=1)]
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
        raise DfkdError(f"unsupported data file {path}; expected a .csv, .tsv, .jsonl or .parquet file")
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t" if suffix != ".csv" else ",")
        return [dict(r, _line=i) for i, r in enumerate(reader, start=2)]


def need_columns(row: dict, columns: list, path) -> None:
    missing = [c for c in columns if c is not None and c not in row]
    if missing:
        have = [c for c in row if c != "_line"]
        raise DfkdError(f"{path}: missing column(s) {missing}; the file has {have}")


def rows_to_dataset(spec, rows: list[dict], path: Path, extra_columns: Sequence[str] = ()) -> Dataset:
    text_c, pair_c, label_c = spec.tsv_columns
    if not rows:
        raise DfkdError(f"{path} has no data rows")
    need_columns(rows[0], [text_c, pair_c, label_c, *extra_columns], path)
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
        labels.append(parse_label(spec, index, r.get(label_c), where))
    out = {"text": texts}
    if pair_c is not None:
        out["text_pair"] = pairs
    out["label"] = labels
    out.update({str(c): [str(r[c]) for r in rows] for c in extra_columns})
    return Dataset.from_dict(out)


def parse_label(spec, index: dict[str, int], raw, where: str):
    value = "" if raw is None else str(raw).strip()
    if spec.is_regression:
        try:
            return float(value)
        except ValueError:
            raise DfkdError(f"{where}: label {value!r} is not a number; task {spec.name!r} is a regression task") from None
    if value in index:
        return index[value]
    if value.lstrip("-").isdigit() and 0 <= int(value) < len(spec.label_names):
        # an integer label indexes the data's own class order (file_label_names, when the models' differs)
        return index[spec.file_label_names[int(value)]] if spec.file_label_names else int(value)
    raise DfkdError(f"{where}: label {value!r} is outside the label set of {spec.name!r}; expected one of "
                    f"{list(spec.label_names)} or an index 0..{len(spec.label_names) - 1}")


def source_name(spec, split: str) -> str:
    if spec.disk:
        return f"save_to_disk folder {spec.disk} split {spec.files[split]!r}"
    return f"dataset {spec.dataset!r}" + (f" ({spec.hub_name})" if spec.hub_name else "") + \
        f" split {spec.files[split]!r}"
