"""``dfkd assets``: list the default data and models, or build the missing models."""

from __future__ import annotations

from ..errors import DfkdError
from .common import generators

HELP = "list the default assets, or build the missing models"


def register(sub) -> None:
    p = sub.add_parser("assets", help=HELP, description=HELP)
    p.add_argument("action", nargs="?", choices=["list", "build"], default="list",
                   help="list (default): each asset, present or missing, and where; build: build missing models")
    p.add_argument("names", nargs="*", help="build only these assets (e.g. ood/general models/mlm-minilm-l6)")
    p.add_argument("--task", help="build only what this task's default arms need: its teacher, the masked LM and "
                                  "ood/general (not the general-distilled student)")
    p.set_defaults(func=run)


def run(args) -> None:
    from .. import distill  # noqa: F401  (registers the model builders in ASSETS)

    generators()  # dfkd.zeroshot registers ood/general
    from ..assets import ASSETS, ensure, locate

    if args.names and args.action != "build":
        raise DfkdError(f"asset names ({' '.join(args.names)}) go with `dfkd assets build`; expected "
                        "`dfkd assets build NAME ...`")
    if args.action == "build":
        if args.names and args.task is not None:
            raise DfkdError("give asset names or --task, not both")
        if args.task is not None:
            from ..tasks import get_task

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
