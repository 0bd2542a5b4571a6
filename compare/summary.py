"""The multi-task summary of a ``compare`` run: per task and arm the figures a person compares, and per arm
their averages over the tasks (WNLI shown, not averaged)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from ..errors import DfkdError
from ..metrics import gap_recovered, speedup
from . import provenance
from .config import EXCLUDED_FROM_AVERAGE, CompareConfig, task_name
from .report import run_machines, write_summary_results


def time_split(res: dict) -> dict | None:
    """Where one task's compare time went, in seconds, from its ``results.json``: ``transfer_sets`` (generating
    and labelling each distinct transfer set once, as recorded when it was built, in this run or an earlier one),
    ``students`` (setting up, distilling and scoring every row's seeds; a row recorded before dfkd timed the
    set-up counts its loop and scoring only) and ``teacher`` (scoring the teacher on dev).

    Returns:
        ``{"transfer_sets", "students", "teacher"}``, or None for a result recorded without per-stage times.
    """
    arms = res.get("arms") or {}
    if not arms or not all("stages_s" in a for a in arms.values()):
        return None
    sets = {a.get("transfer_set", name): a["stages_s"].get("generate_s", 0.0) + a["stages_s"].get("label_s", 0.0)
            for name, a in arms.items()}
    students = sum(a["stages_s"].get(k, 0.0) for a in arms.values() for k in ("setup_s", "distill_s", "eval_s"))
    teacher = (res.get("teacher", {}).get("stages_s") or {}).get("eval_s") or 0.0
    return {"transfer_sets": round(sum(sets.values()), 1), "students": round(students, 1),
            "teacher": round(teacher, 1)}


def summarise(per_task: dict[str, dict]) -> dict:
    """The multi-task summary: per task and arm ``mean``/``std``/``pct_of_teacher``, and per arm the average
    % of the teacher over the tasks outside :data:`EXCLUDED_FROM_AVERAGE` (and the average main score x 100).

    A classification task also carries ``majority_baseline`` (``label``, ``main``, ``pct_of_teacher``: the dev
    score of answering one class everywhere, the floor its rows are read against) when its run recorded one.
    """
    tasks = {}
    for task, res in per_task.items():
        arms = {arm: _summary_arm(res, a) for arm, a in res["arms"].items()}
        tasks[task] = {"main_metric": res["main_metric"], "teacher": {"main": res["teacher"]["main"]},
                       "arms": arms, "wall_seconds": res.get("wall_seconds"), "seconds": time_split(res),
                       "machines": run_machines(res), **task_student(res, arms)}
        if floor := res.get("majority_baseline"):
            tasks[task]["majority_baseline"] = {k: floor[k] for k in ("label", "main", "pct_of_teacher")}
    arms = list(dict.fromkeys(a for t in tasks.values() for a in t["arms"]))
    counted = [t for t in tasks if t not in EXCLUDED_FROM_AVERAGE]
    summary = {}
    for arm in arms:
        have = [t for t in counted if arm in tasks[t]["arms"] and tasks[t]["arms"][arm]["pct_of_teacher"] is not None]
        summary[arm] = {"avg_pct_of_teacher": statistics.fmean(tasks[t]["arms"][arm]["pct_of_teacher"] for t in have)
                        if have else None,
                        "avg_score": statistics.fmean(100 * tasks[t]["arms"][arm]["mean"] for t in have) if have else None,
                        "tasks": have}
        for key in ("gap_recovered", "kappa", "speedup", "speedup_b32"):
            values = [v for t in have if (v := tasks[t]["arms"][arm].get(key)) is not None]
            summary[arm][f"avg_{key}"] = statistics.fmean(values) if values and len(values) == len(have) else None
    teacher_avg = statistics.fmean(100 * tasks[t]["teacher"]["main"] for t in counted) if counted else None
    timed = [t["seconds"] for t in tasks.values() if t["seconds"]]
    seconds = {k: round(sum(t[k] for t in timed), 1) for k in ("transfer_sets", "students", "teacher")} \
        if timed else None
    return {"tasks": tasks, "summary": summary, "teacher_avg_score": teacher_avg,
            "excluded_from_average": [t for t in tasks if t in EXCLUDED_FROM_AVERAGE], "seconds": seconds}


def student_label(spec) -> str | None:
    """A task's student as a person reads it in a table: the name of a file in ``configs/students/``, or an
    inline spec's type and shape, its builder's defaults filled in (``teacher_pruned 4x256, FFN 1024``); the type
    alone for a student without sizes (``checkpoint``) or of a type not registered here; ``None`` where none was
    recorded."""
    if spec is None or isinstance(spec, str):
        return spec
    from ..distill.students import STUDENTS, student_shape

    kind = spec.get("type", "config")
    shape = student_shape(spec) if kind in STUDENTS else None  # a type registered by code this process lacks
    if shape is None:
        return kind
    return f"{kind} {shape['num_hidden_layers']}x{shape['hidden_size']}, FFN {shape['intermediate_size']}"


def task_student(res: dict, arms: dict[str, dict]) -> dict:
    """One task's student for the summary: ``student`` (:func:`student_label`), ``student_params`` (the first
    recorded arm's parameter count) and ``speedup`` / ``speedup_b32`` (the mean over ``arms``, the task's
    summarised arms (:func:`_summary_arm`), of the teacher's CPU latency over the student's, batch 1 and 32;
    ``None`` where no arm has one). Tasks of one preset may distil into different students, so the arms'
    averages over tasks do not say how fast each task's is. A size sweep's task (``students`` in its config) has
    no one student: every field is ``None``."""
    config = res.get("config") or {}
    if config.get("students"):  # a size sweep: each row names its own student (the frontier table has them)
        return {"student": None, "student_params": None, "speedup": None, "speedup_b32": None}
    out = {"student": student_label(config.get("student")),
           "student_params": next((a["params"] for a in (res.get("arms") or {}).values() if a.get("params")), None)}
    for key in ("speedup", "speedup_b32"):
        values = [a[key] for a in arms.values() if a.get(key) is not None]
        out[key] = statistics.fmean(values) if values else None
    return out


def _floor_of(res: dict) -> float | None:
    """The floor a task's recorded results are read against: ``floor``, else (results recorded before it was)
    the majority answer's main score, or 0 for a regression task (no ``majority_baseline``)."""
    if "floor" in res:
        return res["floor"]
    floor = res.get("majority_baseline")
    return floor["main"] if floor else 0.0 if res.get("main_metric") == "pearson" else None


def _summary_arm(res: dict, a: dict) -> dict:
    """One arm of one task in the summary: scores, % of the teacher, gap recovered (per seed and mean), kappa
    and speed-ups (``None`` where a row was recorded before dfkd measured them)."""
    floor, teacher = _floor_of(res), res["teacher"]["main"]
    out = {k: a[k] for k in ("mean", "std", "pct_of_teacher", "scores", "transfer_rows")}
    out["gap_recovered"] = a.get("gap_recovered", gap_recovered(a["mean"], teacher, floor))
    gaps = [gap_recovered(x, teacher, floor) for x in a["scores"]]
    out["gap_recovered_std"] = statistics.stdev(gaps) if len(gaps) > 1 and None not in gaps else None
    out["kappa"] = a.get("kappa")
    teacher_row = res.get("teacher", {})
    for key, latency in (("speedup", "latency_ms_b1"), ("speedup_b32", "latency_ms_b32")):  # recorded, or from the
        out[key] = a.get(key, speedup(teacher_row.get(latency), a.get(latency)))            # latencies of one run
    return out


def write_summary(config: CompareConfig, per_task: dict[str, dict], seconds: float) -> dict:
    """Write the multi-task ``results.json``, ``results.md`` (papers' layout) and ``chart.png`` into ``config.out``."""
    results = {"name": config.name, **summarise(per_task), "config": provenance.portable_config(config),
               "wall_seconds": round(seconds, 1)}
    return write_summary_results(results, Path(config.out))


def summarise_runs(config: CompareConfig) -> dict:
    """The multi-task summary from the tasks' recorded ``out/<task>/results.json`` alone, running nothing: for
    tables assembled from tasks run one by one (on other days or machines, or committed and copied back).

    Returns:
        The summary (as :func:`dfkd.compare.run_compare` returns it for several tasks), also written to
        ``config.out``; its ``wall_seconds`` is the sum of the tasks' recorded wall times.

    Raises:
        DfkdError: a preset without ``tasks``; a task with no recorded results, or recorded with other settings
            than the preset's (naming them).
    """
    if config.tasks is None:
        raise DfkdError("a summary needs a multi-task preset; expected a preset with a tasks list")
    per_task = {}
    for task in config.task_configs():
        name, path = task_name(task.task), Path(task.out) / "results.json"
        if not path.is_file():
            raise DfkdError(f"task {name}: no results at {path}; expected a finished run of that task "
                            f"(dfkd compare --preset ... --tasks {name})")
        res = json.loads(path.read_text())
        if differ := provenance.differing_settings(task, res.get("config", {})):
            raise DfkdError(f"task {name}: {path} was run with other settings ({', '.join(differ)}); expected "
                            "the preset's, or run that task again")
        res["arms"], other = provenance.matching_rows(task, res)
        if other:
            print(f"{name}: rows {other} were recorded with other arm settings; left out", flush=True)
        if missing := [a for a in task.arms if a not in res["arms"]]:
            print(f"{name}: no recorded rows for {missing}; shown as '–'", flush=True)
        per_task[name] = res
    seconds = sum(r.get("wall_seconds") or 0.0 for r in per_task.values())
    return write_summary(config, per_task, seconds)


def run_tasks(config: CompareConfig, runners) -> dict:
    """Run each task's runner, then write the summary."""
    started = time.perf_counter()
    per_task = {runner.plan.spec.name: runner.run() for runner in runners}
    return write_summary(config, per_task, time.perf_counter() - started)
