"""``dfkd mlm``: fit a masked-LM head on the base encoder (the TinyBERT augmenter's and the rewriter's model)."""

from __future__ import annotations

import json

from .common import dataclass_flags, dataclass_values

HELP = "fit a masked-LM head on the base encoder (vocabulary shared with the teacher)"


def register(sub) -> None:
    from ..distill.mlm import MLMConfig

    p = sub.add_parser("mlm", help=HELP, description=HELP)
    p.add_argument("--base", default="minilm-l6", help="base encoder: minilm-l6 (shipped), a folder or a hub id "
                   "(default: minilm-l6)")
    p.add_argument("--text", nargs="+", default=["ood/agnews.txt"], help="text files, one item per line "
                   "(default: ood/agnews.txt)")
    p.add_argument("--out", required=True, help="folder of the masked LM")
    g = p.add_argument_group("settings (MLMConfig; --layers 0: every layer of the base)")
    p.set_defaults(func=run, own=dataclass_flags(g, MLMConfig))


def run(args) -> None:
    from ..distill.mlm import MLMConfig, train_mlm

    settings = dataclass_values(args, args.own)
    if settings.get("layers") == 0:
        settings["layers"] = None  # every layer of the base
    card = train_mlm(args.base, args.text, args.out, MLMConfig(**settings))
    for ex in card["examples"]:
        print(f"  {ex['masked']}\n    answer: {ex['answer']!r}  top-5: {ex['predictions']}")
    print(json.dumps({k: card[k] for k in ("top1", "top5", "top1_before", "top5_before", "wall_seconds")}, indent=2))
