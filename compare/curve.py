"""The data-efficiency curve (``limits``): the same student and budget with each number of task examples, one
compare run per task and limit, then per task a line of % of the teacher against the examples."""

from __future__ import annotations

import time
from pathlib import Path

from . import provenance


def run_curve(plan) -> dict:
    """Run every task x limit of a curve plan, then write ``results.json`` (``curve``), ``results.md`` and
    ``curve.png`` into the preset's ``out``.

    Returns:
        ``{"curve": {task: {"main_metric", "teacher", "limits", "arms": {arm: [{"limit", "examples", "mean",
        "std", "pct_of_teacher", "gap_recovered", "kappa", "scores", "transfer_rows"}, ...]}}}, ...}`` plus
        ``table``.
    """
    from .report import write_curve_results
    from .runner import TaskRunner

    config = plan.config
    started = time.perf_counter()
    curve: dict = {}
    for task_plan, limit in zip(plan.tasks, plan.limits):
        res = TaskRunner(task_plan).run()
        task = task_plan.spec.name
        entry = curve.setdefault(task, {"main_metric": res["main_metric"], "teacher": res["teacher"]["main"],
                                        "limits": [], "arms": {}})
        entry["limits"].append(limit)
        for arm in (row.name for row in task_plan.rows):  # (not rows recorded for other arms in the same folder)
            a = res["arms"][arm]
            examples = limit if limit is not None else a["transfer_rows"] if arm == "original" else None
            entry["arms"].setdefault(arm, []).append(
                {"limit": limit, "examples": examples, "mean": a["mean"], "std": a["std"],
                 "pct_of_teacher": a["pct_of_teacher"], "gap_recovered": a.get("gap_recovered"),
                 "kappa": a.get("kappa"), "scores": a["scores"], "transfer_rows": a["transfer_rows"]})
    for task in curve.values():  # "all" for the augment arm: the same task rows as original's
        n_all = next((p["examples"] for p in task["arms"].get("original", []) if p["limit"] is None), None)
        for points in task["arms"].values():
            for p in points:
                if p["examples"] is None:
                    p["examples"] = n_all
    results = {"name": config.name, "limits": config.limits, "curve": curve,
               "config": provenance.portable_config(config), "wall_seconds": round(time.perf_counter() - started, 1)}
    return write_curve_results(results, Path(config.out))
