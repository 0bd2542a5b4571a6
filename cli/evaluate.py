"""``dfkd eval``: score checkpoints on a task's dev split against their teacher."""

from __future__ import annotations

import json
from pathlib import Path

from .common import task_flags, task_of

HELP = "score checkpoints on a task's dev split against the teacher"


def register(sub) -> None:
    p = sub.add_parser("eval", help=HELP, description=HELP)
    task_flags(p)
    p.add_argument("models", nargs="+", help="checkpoint folders (or asset names / hub ids)")
    p.add_argument("--teacher", help="reference for %% of teacher, gap recovered, agreement, kappa and speed-up")
    p.add_argument("--split", default="dev", help="the split scored (default: dev)")
    p.add_argument("--no-latency", action="store_true", help="skip the CPU latency measurement")
    p.add_argument("--out", help="also write the rows as JSON to this file")
    p.set_defaults(func=run)


def run(args) -> None:
    from ..eval.scoring import evaluate_models, format_eval_table

    spec, data_dir = task_of(args, teacher=args.teacher)
    rows = evaluate_models(spec, args.models, data_dir, teacher=args.teacher, split=args.split,
                           latency=not args.no_latency)
    print(format_eval_table(spec, rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
