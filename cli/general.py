"""``dfkd general``: task-agnostic (general) distillation of the base encoder into a small student."""

from __future__ import annotations

import json

from .common import dataclass_flags, dataclass_values

HELP = ("general distillation (TinyBERT stage 1, offline): the base encoder into a small student on general text; "
        "use it as a 'checkpoint' student")


def register(sub) -> None:
    from ..distill.task_agnostic import GeneralConfig

    p = sub.add_parser("general", help=HELP, description=HELP)
    p.add_argument("--base", default="minilm-l6", help="the encoder distilled (default: minilm-l6)")
    p.add_argument("--source", nargs="+", default=["ood/general"], help="general text: corpus folders, text files "
                   "(default: ood/general)")
    p.add_argument("--student", help="start from this student folder (default: the base pruned to the shape)")
    p.add_argument("--out", required=True, help="folder of the general student")
    g = p.add_argument_group("settings (GeneralConfig)")
    p.set_defaults(func=run, own=dataclass_flags(g, GeneralConfig))


def run(args) -> None:
    from ..distill.task_agnostic import GeneralConfig, general_distill

    config = GeneralConfig.from_dict(dataclass_values(args, args.own))
    card = general_distill(args.base, args.source, args.out, config, student=args.student)
    print(json.dumps({k: card[k] for k in ("sentences", "layers", "held_out_before", "held_out_after", "params",
                                           "wall_seconds")}, indent=2))
