"""``dfkd compare``, the main job: how close to the teacher does each kind of transfer set get?

For one task and one teacher, each *arm* (a transfer-set recipe: a generator, or a registered
:class:`~dfkd.compare.config.Arm`) is built once and labelled by the teacher; the same student config is distilled
from it with the same budget (optimizer steps x batch size) over N seeds; every student is scored on the dev
split. Output, in ``out``:

* ``results.json``: settings, the teacher's scores, and per arm (``arms.<name>``) the per-seed scores (with the
  selected checkpoint's ``best_step`` and held-out ``best_val_agreement``), ``mean``, ``std`` (sample standard
  deviation over seeds; ``null`` for one seed), ``pct_of_teacher``, ``gap_recovered`` (the share of the teacher's
  lead over the majority answer the student recovers, %), ``agreement`` and ``kappa`` with the teacher, params,
  size, latency, ``speedup`` / ``speedup_b32`` over the teacher and the wall time of each stage;
* ``results.md``: the same as a markdown table; ``chart.png``: main score per arm (mean ± std) against the teacher.

A preset with ``tasks`` runs each task into ``out/<task>/`` and adds a summary in ``out``: ``results.json`` with
``tasks.<task>.arms.<arm>.{mean,std,pct_of_teacher,gap_recovered,kappa,speedup,speedup_b32}`` and
``summary.<arm>.avg_<each>`` (WNLI shown but not averaged, as BERT and TinyBERT do), a table laid out like the
papers' and one chart.

The package is layered as the run is: :mod:`~dfkd.compare.config` (the preset), :mod:`~dfkd.compare.plan` (the
whole run read and checked, then frozen, before any work), :mod:`~dfkd.compare.provenance` (what an earlier run
left and whether it resumes), :mod:`~dfkd.compare.runner` (a task's rows), :mod:`~dfkd.compare.curve`,
:mod:`~dfkd.compare.summary` and :mod:`~dfkd.compare.report` (tables, charts, the one results writer).
"""

from __future__ import annotations

from .. import augment, zeroshot  # noqa: F401  (the built-in generators and strategies register themselves)
from ..errors import DfkdError
from .config import ARMS, EXCLUDED_FROM_AVERAGE, Arm, CompareConfig, Variant, get_arm, set_value
from .plan import Plan, make_plan
from .report import format_compare_table, format_summary_table
from .summary import summarise, summarise_runs, time_split

__all__ = ["ARMS", "EXCLUDED_FROM_AVERAGE", "Arm", "CompareConfig", "Plan", "Variant", "format_compare_table",
           "format_summary_table", "get_arm", "make_plan", "run_compare", "run_plan", "set_value", "summarise",
           "summarise_runs", "time_split"]


def run_plan(plan: Plan, retime: bool = False) -> dict:
    """Run a validated plan (see :func:`run_compare`).

    Args:
        retime: time every recorded row's student again in turns with the teacher
            (:meth:`~dfkd.compare.runner.TaskRunner.retimed`) instead of keeping its recorded speed-ups.

    Raises:
        DfkdError: ``retime`` with a data-efficiency curve (its rows are not timed).
    """
    from .curve import run_curve
    from .runner import TaskRunner
    from .summary import run_tasks

    if plan.kind == "curve":
        if retime:
            raise DfkdError("--retime: a data-efficiency curve times no students; expected a compare preset")
        return run_curve(plan)
    runners = [TaskRunner(task, retime=retime) for task in plan.tasks]
    if plan.kind == "single":
        return runners[0].run()
    return run_tasks(plan.config, runners)


def run_compare(config: CompareConfig) -> dict:
    """Run every task's arms and write the outputs (see the module docstring).

    The whole run is read and checked first (:func:`make_plan`), so bad input leaves no output folder.

    Returns:
        Single task: its results plus ``table``. Several: the summary (``tasks``, ``summary``) plus ``table``.
        A curve: ``curve`` plus ``table``.

    Raises:
        DfkdError: any problem :func:`make_plan` finds, as one line.
    """
    return run_plan(make_plan(config))
