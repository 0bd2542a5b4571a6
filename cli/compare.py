"""``dfkd compare``: the main job, every transfer set with the same student and budget, one table."""

from __future__ import annotations

import json

from ..errors import DfkdError

HELP = "the main job: every transfer set, same student and budget, one table"


def register(sub) -> None:
    p = sub.add_parser("compare", help=HELP, description=HELP)
    p.add_argument("--preset", help="a preset name (dfkd list presets, e.g. glue-quick) or a JSON file; default: "
                   "the built-in single-task settings")
    p.add_argument("--task", help="the task of a single-task run (replaces the preset's)")
    p.add_argument("--data-dir", help="the task's local folder or asset name, e.g. glue/SST-2 (replaces the preset's)")
    p.add_argument("--teacher", help="teacher folder, asset name or hub id (replaces the preset's)")
    p.add_argument("--seeds", type=int, help="student seeds per row (replaces the preset's)")
    p.add_argument("--arms", nargs="+", help="the arms of the run (replaces the preset's; variant rows still run)")
    p.add_argument("--rows", nargs="+", help="run only these rows (arm or variant names) of the preset; the others "
                   "stay in results.json as recorded")
    p.add_argument("--tasks", nargs="+", help="run only these tasks of a multi-task preset (the summary covers them)")
    p.add_argument("--out", help="output folder (replaces the preset's)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="change any preset value, dotted keys reaching inside (repeatable; values read as JSON), "
                   "e.g. --set training.max_steps=300 --set tasks.rte.seeds=5")
    p.add_argument("--dry-run", action="store_true", help="print the resolved, validated plan as JSON and stop "
                   "(nothing is written)")
    p.add_argument("--summary-only", action="store_true",
                   help="run nothing: write the multi-task summary from the tasks' recorded results.json")
    p.add_argument("--retime", action="store_true",
                   help="time the recorded rows' students again, each in turns with the teacher, and rewrite their "
                   "speed-ups (nothing is trained); rows not yet recorded run as usual")
    p.set_defaults(func=run)


def resolve_config(args):
    """The :class:`~dfkd.compare.CompareConfig` the flags ask for: the preset, the flags over it, then ``--set``."""
    from ..compare import CompareConfig, set_value
    from ..compare.config import preset_path

    config = CompareConfig.from_file(preset_path(args.preset)) if args.preset else CompareConfig()
    overrides = {k: getattr(args, k) for k in ("task", "data_dir", "teacher", "seeds", "arms", "rows", "out")
                 if getattr(args, k, None) is not None}
    config = config.replace(**overrides)
    for assignment in args.set:
        config = set_value(config, assignment)
    if args.tasks:
        if config.tasks is None:
            raise DfkdError("--tasks picks tasks of a multi-task preset; expected a preset with a tasks list")
        known = list(config.tasks)
        if unknown := [t for t in args.tasks if t not in known]:
            raise DfkdError(f"--tasks: {unknown} not in the preset; expected some of {known}")
        picked = ({t: config.tasks[t] for t in args.tasks} if isinstance(config.tasks, dict) else list(args.tasks))
        config = config.replace(tasks=picked)
    return config


def run(args) -> None:
    from ..compare import make_plan, run_plan, summarise_runs

    config = resolve_config(args)
    if args.summary_only:
        result = summarise_runs(config)
    else:
        plan = make_plan(config)
        if args.dry_run:
            print(json.dumps(plan.describe(), indent=2, default=str))
            return
        result = run_plan(plan, retime=args.retime)
    print(result["table"])
    print(f"results in {config.out}")
