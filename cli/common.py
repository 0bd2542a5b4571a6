"""What several commands share: the task flags, flags built from a settings dataclass (help with the true
defaults, read from the class's docstring, as HfArgumentParser reads field metadata), ``--set`` pairs and the
generate -> label -> save of a transfer set."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import typing
from collections import Counter
from pathlib import Path

from ..config import parse_assignment, read_json
from ..errors import DfkdError


def doc_help(obj, section: str) -> dict[str, str]:
    """The help of each name in one section of ``obj``'s Google-style docstring (``Attributes:`` of a settings
    dataclass, ``Args:`` of a function): ``name: text`` or ``a / b: text`` for a shared line, first sentence only.
    """
    doc = inspect.getdoc(obj) or ""
    body = doc.split(f"{section}:\n", 1)[1] if f"{section}:\n" in doc else ""
    body = re.split(r"^\S", body, maxsplit=1, flags=re.M)[0]  # up to the next section (Returns:, Raises:, ...)
    out: dict[str, str] = {}
    for match in re.finditer(r"^ {4}([\w /]+?):\s(.*?)(?=^ {4}[\w /]+?:\s|\Z)", body, re.M | re.S):
        text = " ".join(match.group(2).split())
        first = re.split(r"(?<! al)(?<!e\.g)(?<!i\.e)(?<=[a-z0-9)`])\. ", text)[0].rstrip(".")
        for name in match.group(1).split("/"):
            out.setdefault(name.strip(), first)
    return out


def _flag_type(hint):
    """The argparse ``type`` of a dataclass field's annotation (``None``: not a flag)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    for t in (bool, int, float, str):
        if t in args:
            return t
    return None


def dataclass_flags(group, cls, defaults: dict | None = None, only=None, skip=(), prefix: str = "") -> list[str]:
    """Add a ``--<field>`` flag per scalar field of dataclass ``cls`` (all, or ``only``), whose help is the
    field's docstring line and its real default (``defaults`` over the class's); every flag defaults to
    ``None`` so that an unset flag leaves the value to the config file or recipe. Returns the field names."""
    hints = typing.get_type_hints(cls)
    helps = doc_help(cls, "Attributes")
    base = {f.name: (f.default if f.default is not dataclasses.MISSING else None) for f in dataclasses.fields(cls)}
    base.update(defaults or {})
    added = []
    for f in dataclasses.fields(cls):
        if (only is not None and f.name not in only) or f.name in skip:
            continue
        kind = _flag_type(hints[f.name])
        if kind is None:
            continue
        flag = "--" + prefix + f.name.replace("_", "-")
        help_text = f"{helps.get(f.name, f.name.replace('_', ' '))} (default: {base[f.name]})".replace("%", "%%")
        if kind is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            group.add_argument(flag, dest=f.name, type=kind, default=None, help=help_text)
        added.append(f.name)
    return added


def dataclass_values(args, names) -> dict:
    """The flags of :func:`dataclass_flags` that were given."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def task_flags(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("task")
    g.add_argument("--task", required=required, help="GLUE task (cola sst2 mrpc qqp stsb mnli qnli rte wnli) or a "
                   "name for your own task given with --train-file/--dev-file"
                   + ("" if required else "; default: the task recorded in the transfer set's card"))
    g.add_argument("--data-dir", help="local GLUE task folder or asset name (e.g. glue/SST-2); "
                   "default: glue/<TASK> when it is on disk, else the hub. With --train-file/--dev-file: the folder "
                   "those files are in (e.g. data/rotten-tomatoes)")
    g.add_argument("--train-file", help="custom task: CSV/TSV/JSONL/Parquet with the training rows")
    g.add_argument("--dev-file", help="custom task: CSV/TSV/JSONL/Parquet with the dev rows")
    g.add_argument("--text-column", default="text", help="custom task: text column (default: text)")
    g.add_argument("--text-pair-column", help="custom task: second text column, for pair tasks")
    g.add_argument("--label-column", default="label", help="custom task: label column (default: label)")
    g.add_argument("--label-names", help="custom task: comma-separated class names in index order "
                   "(default: the sorted distinct labels of the train file)")
    g.add_argument("--regression", action="store_true", help="custom task: float targets")
    g.add_argument("--metric", help="custom task: the main metric (accuracy, f1, matthews_correlation; pearson, "
                   "spearmanr for regression)")
    g.add_argument("--confirm-generic-labels", action="store_true", help="accept a teacher whose labels are named "
                   "LABEL_0, LABEL_1, ... as the task's label names in their order (nothing can check it)")


def task_of(args, transfer_set: str | None = None, teacher: str | None = None):
    """(TaskSpec, data_dir) from the task flags; a GLUE task without ``--data-dir`` reads the local asset
    ``glue/<TASK>`` when it is on disk (shared assets or the cache), else the hub. Without ``--task`` the task
    recorded in ``transfer_set``'s card is used. With a ``teacher``, the task's classes are put in the teacher's
    order (one printed line) or refused (:func:`dfkd.tasks.align_labels`).

    Raises:
        DfkdError: no task given or recorded; what reading the task or checking its labels raises.
    """
    from ..assets import locate, resolve
    from ..tasks import custom_task, get_task

    files = {k: v for k, v in (("train", args.train_file), ("dev", args.dev_file)) if v}
    if files and args.data_dir:  # a custom task's files inside a folder (an asset name allowed)
        folder = resolve(args.data_dir)
        files = {k: str(Path(folder) / v) for k, v in files.items()}
    if files:
        spec = custom_task(args.task, files, args.text_column, args.label_column, args.text_pair_column,
                           args.label_names.split(",") if args.label_names else None, args.regression,
                           metric=args.metric)
        data_dir = None
    elif args.task is None:
        spec, data_dir = _recorded_task(transfer_set)
    else:
        spec = get_task(args.task)
        if args.data_dir:
            data_dir = resolve(args.data_dir, build=False)
        else:
            local = locate(f"glue/{spec.glue_dir}") if spec.glue_dir else None
            data_dir = local if local is not None and local.is_dir() else None
    if teacher:
        from ..compare.provenance import check_teacher_labels

        spec, note = check_teacher_labels(teacher, spec, args.confirm_generic_labels)
        if note:
            print(note, flush=True)
    return spec, data_dir


def _recorded_task(transfer_set: str | None):
    """The task a transfer set's card records (a custom task in full), and its data folder."""
    from ..assets import resolve
    from ..tasks import get_task
    from ..transfer import CARD

    card_file = Path(transfer_set or "") / CARD
    if transfer_set is None or not card_file.is_file():
        raise DfkdError("no task: expected --task (a GLUE task or your own task's name with --train-file), or a "
                        "transfer set whose card records its task")
    card = json.loads(card_file.read_text())
    spec = get_task(card.get("task_spec") or card["task"])
    folder = card.get("data_dir")
    return spec, (resolve(folder, build=False) if folder and not spec.is_custom else None)


def limit_flag(p) -> None:
    """``--limit``, one meaning everywhere (:func:`dfkd.tasks.sample_rows`)."""
    p.add_argument("--limit", type=int, help="a seeded random sample of N task rows (a zero-shot generator: N rows); "
                   "default: all")


def training_flags(p: argparse.ArgumentParser, **defaults) -> None:
    """``--config`` plus one flag per :class:`~dfkd.distill.trainer.TrainingConfig` field (``defaults``: the
    command's own, shown in the help)."""
    from ..distill.trainer import TrainingConfig

    g = p.add_argument_group("training (TrainingConfig)")
    g.add_argument("--config", help="JSON file with TrainingConfig fields (flags override it)")
    dataclass_flags(g, TrainingConfig, defaults)


def training_config(args, **defaults):
    """The :class:`~dfkd.distill.trainer.TrainingConfig`: ``defaults``, then ``--config``, then the flags."""
    from ..distill.trainer import TrainingConfig

    values = dict(defaults)
    where = "training settings"
    if args.config:
        values.update(read_json(args.config))
        where = f"--config {args.config}"
    for name in TrainingConfig.__dataclass_fields__:
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    return TrainingConfig.from_dict(values, where)


def set_pairs(pairs: list[str] | None) -> dict:
    """``--set key=value`` pairs -> a dict; values are read as JSON when they parse (numbers, lists, true)."""
    return dict(parse_assignment(pair, "num_aug=8") for pair in pairs or [])


def generators():
    """The generator registry with every built-in generator registered."""
    from .. import augment, zeroshot  # noqa: F401  (they register themselves)
    from ..transfer import GENERATORS

    return GENERATORS


def write_transfer_set(args, spec, data_dir, generator: str, settings: dict) -> None:
    """Build one generator's transfer set, label it with ``--teacher`` when given, save it to ``--out`` and
    print its rows per source (:func:`dfkd.distill.label.make_transfer_set`)."""
    from ..distill.label import make_transfer_set

    teacher = tokenizer = None
    if args.teacher:
        from ..distill.label import load_teacher

        teacher, tokenizer = load_teacher(args.teacher, spec.num_labels)
    out = Path(args.out)
    ds, card = make_transfer_set([(generator, settings)], spec, data_dir, out, teacher, tokenizer, seed=args.seed,
                                 card={"teacher": args.teacher} if args.teacher else None)
    extra = f" (of {card['ood']['available_sentences']} usable sentences)" if "ood" in card else ""
    print(f"wrote {len(ds)} rows to {out}: {dict(Counter(ds['source']))}{extra}")


def output_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by the commands that write a transfer set."""
    p.add_argument("--seed", type=int, default=0, help="seed of the generator's sampling (default: 0)")
    p.add_argument("--teacher", help="also label the rows with this teacher (folder, asset name or hub id)")
    p.add_argument("--out", required=True, help="folder of the saved transfer set")
