"""``dfkd distill``: train a student on a labelled transfer set from any generator."""

from __future__ import annotations

import json

from ..config import read_json
from .common import (
    dataclass_flags,
    dataclass_values,
    generators,
    set_pairs,
    task_flags,
    task_of,
    training_config,
    training_flags,
)

HELP = "distil a student from a labelled transfer set"


def register(sub) -> None:
    from ..distill.losses import DistillationConfig
    from ..distill.trainer import STRATEGIES

    generators()  # registers the adversarial strategy too
    p = sub.add_parser("distill", help=HELP, description=HELP)
    task_flags(p, required=False)
    p.add_argument("transfer_set", help="a labelled transfer set folder (dfkd generate --teacher, dfkd label)")
    p.add_argument("--teacher", required=True, help="teacher (its tokenizer is shared with the student)")
    p.add_argument("--student", required=True, help="student spec JSON (configs/students/) or a checkpoint folder")
    p.add_argument("--out", required=True, help="folder of the distilled student")
    p.add_argument("--val-size", type=float, default=0.05, help="held-out slice of the transfer set for model "
                   "selection: rows, or a fraction below 1 (default: 0.05)")
    p.add_argument("--stages", help="JSON list of stages, e.g. configs/students/tinybert-two-stage.json "
                   "(intermediate layers, then prediction layer; each resumable)")
    g = p.add_argument_group("losses (DistillationConfig)")
    losses = dataclass_flags(g, DistillationConfig)
    p.add_argument("--strategy", default="plain", choices=STRATEGIES.names(),
                   help="training strategy (default: plain)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a setting of the strategy (repeatable)")
    own = []
    for name in STRATEGIES:
        kind = STRATEGIES.get(name).settings_type
        if kind is not None:
            g = p.add_argument_group(f"{name} strategy settings ({kind.__name__})")
            own += dataclass_flags(g, kind)
    p.add_argument("--adversarial", action="store_true", help="short for --strategy adversarial: add inputs "
                   "rewritten by a masked LM to maximise teacher-student divergence (MATE-KD style)")
    training_flags(p)
    p.set_defaults(func=run, losses=losses, strategy_fields=own)


def run(args) -> None:
    from ..distill.distiller import distill, read_stages
    from ..distill.losses import DistillationConfig, check_losses
    from ..distill.trainer import STRATEGIES

    spec, _ = task_of(args, args.transfer_set, args.teacher)
    config = training_config(args)
    losses = DistillationConfig(**dataclass_values(args, args.losses))
    check_losses(losses, "losses")
    student = (read_json(args.student, "student spec") if args.student.endswith(".json")
               else {"type": "checkpoint", "path": args.student})
    strategy = "adversarial" if args.adversarial else args.strategy
    runner = STRATEGIES.get(strategy)
    settings = set_pairs(args.set)
    if runner.settings_type is not None:  # the strategy's own flags (e.g. --rewriter), when given
        fields = [f for f in args.strategy_fields if f in runner.settings_type.__dataclass_fields__]
        settings = {**dataclass_values(args, fields), **settings}
    stages = None
    if args.stages:
        stages = read_stages(read_json(args.stages, "stage schedule", list), f"--stages {args.stages}")
    summary = distill(args.transfer_set, spec, args.teacher, student, args.out, config, losses,
                      val_size=args.val_size, strategy=strategy, strategy_settings=settings, stages=stages)
    print(json.dumps({k: summary[k] for k in ("steps", "best_val", "train_seconds")}, indent=2))
