"""``dfkd generate``: build a transfer set with a registered generator, optionally labelled by a teacher.

``dfkd augment`` and ``dfkd ood`` are ``generate --generator augment|ood`` with a flag for each of that
generator's own settings (read from its signature and docstring, and for ``augment`` from its methods'), so the
help shows the real defaults and a new setting needs no CLI code.
"""

from __future__ import annotations

import inspect
import typing

from .common import (
    doc_help,
    generators,
    limit_flag,
    output_flags,
    set_pairs,
    task_flags,
    task_of,
    write_transfer_set,
)

HELP = "build a transfer set with a registered generator"
#: the common generator call and objects no flag can give
SKIP = {"self", "task", "data_dir", "seed", "split", "limit", "work_dir", "tokenizer", "device", "tagger",
        "stop_words", "mask_token", "max_length"}


def signature_flags(group, fns, rename: dict | None = None) -> list[str]:
    """A flag per scalar (or list-of-strings) keyword parameter of ``fns`` (first one wins), with the
    parameter's docstring line and default; ``rename`` maps a parameter to another flag name. Returns the
    parameter names."""
    added = []
    for fn in fns:
        helps = doc_help(fn, "Args")
        hints = typing.get_type_hints(fn)
        for name, p in inspect.signature(fn).parameters.items():
            if name in SKIP or name in added or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                continue
            hint = hints.get(name, type(p.default))
            args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
            kind = next((t for t in (bool, int, float, str) if t in args), None)
            many = any(typing.get_origin(a) in (list, tuple) for a in args)
            if kind is None and not many:
                continue
            flag = "--" + (rename or {}).get(name, name).replace("_", "-")
            default = p.default if p.default is not p.empty else None
            text = f"{helps.get(name, name.replace('_', ' '))} (default: {default})".replace("%", "%%")
            if many:
                group.add_argument(flag, dest=name, nargs="+", default=None, help=text)
            elif kind is bool:
                import argparse

                group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
            else:
                group.add_argument(flag, dest=name, type=kind, default=None, help=text)
            added.append(name)
    return added


def _common(p, generator_choice: bool) -> None:
    task_flags(p)
    if generator_choice:
        gens = generators()
        p.add_argument("--generator", default="original", choices=gens.names(),
                       help="the registered generator: " + "; ".join(f"{n}: {gens.get(n).description}" for n in gens))
    p.add_argument("--split", default="train", help="the task split a data-driven generator reads (default: train)")
    limit_flag(p)
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a setting of the generator (repeatable; "
                   "values read as JSON), e.g. --set num_aug=8")
    output_flags(p)


def register(sub) -> None:
    p = sub.add_parser("generate", help=HELP, description=HELP)
    _common(p, generator_choice=True)
    p.set_defaults(func=run, own=[])
    from ..augment import AUGMENTERS

    gens = generators()
    p = sub.add_parser("augment", help="generate --generator augment: the task's rows plus TinyBERT or Tang et al. "
                       "variants (resumable)", description=gens.get("augment").description)
    _common(p, generator_choice=False)
    g = p.add_argument_group("augment settings (defaults: the papers' values)")
    own = signature_flags(g, [gens.get("augment").fn, *(AUGMENTERS.get(m).__init__ for m in AUGMENTERS)])
    p.set_defaults(func=run, generator="augment", own=own)
    p = sub.add_parser("ood", help="generate --generator ood: general text shaped like the task's inputs, no task "
                       "data", description=gens.get("ood").description)
    _common(p, generator_choice=False)
    g = p.add_argument_group("ood settings")
    own = signature_flags(g, [gens.get("ood").fn], rename={"teacher": "select_teacher", "sources": "source"})
    g.add_argument("--pair-mix", dest="pair_mix", help="pair tasks: kind=weight of adjacent, random, perturbed, "
                   "rewritten, spliced, e.g. adjacent=0.4,random=0.3,perturbed=0.3 (default: the task's mix)")
    own.append("pair_mix")
    p.set_defaults(func=run, generator="ood", own=own)


def run(args) -> None:
    from ..errors import DfkdError

    spec, data_dir = task_of(args, teacher=args.teacher)
    settings = {k: getattr(args, k) for k in args.own if getattr(args, k, None) is not None}
    if isinstance(settings.get("pair_mix"), str):
        try:
            settings["pair_mix"] = {k: float(v) for k, v in (kv.split("=") for kv in settings["pair_mix"].split(","))}
        except ValueError:
            raise DfkdError(f"--pair-mix {settings['pair_mix']!r}: expected kind=weight pairs such as "
                            "adjacent=0.4,random=0.3,perturbed=0.3") from None
    settings.update(set_pairs(args.set))
    reads = generators().get(args.generator).reads_task_data
    write_transfer_set(args, spec, data_dir if reads else None, args.generator,
                       {"split": args.split, "limit": args.limit, **settings})
