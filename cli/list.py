"""``dfkd list``: what dfkd can be asked for, read from its registries, with one line each."""

from __future__ import annotations

import inspect

from .common import generators

HELP = "list presets, generators, arms, students, losses, strategies, tasks or assets with their descriptions"
KINDS = ("presets", "generators", "arms", "students", "losses", "strategies", "tasks", "assets")


def register(sub) -> None:
    p = sub.add_parser("list", help=HELP, description=HELP)
    p.add_argument("kind", choices=KINDS, help="what to list")
    p.set_defaults(func=run)


def _first_line(obj) -> str:
    return (inspect.getdoc(obj) or "").split("\n\n", 1)[0].replace("\n", " ").strip()


def entries(kind: str) -> list[tuple[str, str]]:
    """``(name, description)`` of every registered part of one kind, in registration order (presets by name)."""
    from .. import distill  # noqa: F401  (registers students, losses, assets)

    generators()
    if kind == "presets":
        from ..compare.config import CompareConfig, list_presets, preset_path

        return [(n, CompareConfig.from_file(preset_path(n)).description or "") for n in list_presets()]
    if kind == "generators":
        gens = generators()
        return [(n, gens.get(n).description) for n in gens]
    if kind == "arms":
        from ..compare.config import arm_names, get_arm

        return [(n, get_arm(n).description) for n in arm_names()]
    if kind == "students":
        from ..distill.students import STUDENTS

        return [(n, _first_line(STUDENTS.get(n))) for n in STUDENTS]
    if kind == "losses":
        from ..distill.losses import LOSSES

        return [(n, _first_line(LOSSES.get(n))) for n in LOSSES]
    if kind == "strategies":
        from ..distill.trainer import STRATEGIES

        return [(n, _first_line(STRATEGIES.get(n).build)) for n in STRATEGIES]
    if kind == "tasks":
        from ..tasks import TASKS

        out = []
        for n in TASKS:
            t = TASKS.get(n)
            kind_of = "regression" if t.is_regression else f"{len(t.label_names)} classes ({', '.join(t.label_names)})"
            out.append((n, f"{'sentence pairs' if t.pair else 'sentences'}, {kind_of}; main metric {t.main_metric}"))
        return out
    from ..assets import ASSETS

    return [(n, ASSETS.get(n).description) for n in ASSETS]


def run(args) -> None:
    rows = entries(args.kind)
    width = max((len(n) for n, _ in rows), default=0)
    for name, description in rows:
        print(f"{name:{width}s}  {description}")
