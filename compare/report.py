"""Reporting a ``compare`` run: markdown tables, PNG charts and the one writer of ``results.json`` /
``results.md`` / a chart, for a task, a multi-task summary and a data-efficiency curve."""

from __future__ import annotations

import json
from pathlib import Path

from ..files import atomic_file


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_results(out: Path, results: dict, table: str, plot, chart: str = "chart.png") -> dict:
    """Write ``results.json`` (atomically), ``results.md`` (the table) and the chart (``plot(results, path)``)
    into ``out``; return the results with ``table``."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(table + "\n")
    plot(results, out / chart)
    return {**results, "table": table}


def write_task_results(results: dict, out: Path) -> dict:
    """One task's outputs: :func:`format_compare_table` and :func:`plot_compare`; with a size sweep also the
    frontier's table (in ``results.md``) and ``frontier.png`` (:func:`plot_frontier`)."""
    table = format_compare_table(results)
    if frontier_rows(results):
        table += "\n\n" + format_frontier_table(results)
        plot_frontier(results, out / "frontier.png")
        if pairs := pruning_pairs(results):
            table += "\n\n" + format_pruning_table(results, pairs)
            plot_pruning(results, pairs, out / "pruning.png")
    return write_results(out, results, table, plot_compare)


def pruning_pairs(results: dict) -> list[tuple[str, str]]:
    """``(one-shot, gradual)`` student names of a size sweep that prune the teacher to the same shape
    (``teacher_pruned`` and ``gradual_pruned`` specs whose four sizes agree, defaults filled in), both run in at
    least one arm."""
    from ..distill.students import student_shape
    from .config import student_spec

    specs = {}
    for name, value in ((results.get("config") or {}).get("students") or {}).items():
        spec = student_spec(value, f"students.{name}")
        kind = spec.get("type", "config")
        if kind in ("teacher_pruned", "gradual_pruned"):
            specs[name] = (kind, tuple(student_shape(spec).values()))
    run = [dict(rows) for rows in frontier_rows(results).values()]
    return [(one, grad) for grad, (kg, sg) in specs.items() if kg == "gradual_pruned"
            for one, (ko, so) in specs.items() if ko == "teacher_pruned" and so == sg
            and any(one in arm and grad in arm for arm in run)]


def format_pruning_table(results: dict, pairs: list[tuple[str, str]]) -> str:
    """One-shot against gradual pruning to the same shape, per arm: gap recovered (mean ± std over seeds), κ and
    distillation seconds."""
    lines = ["One-shot vs gradual pruning (the same target shape):", "",
             "| arm | one-shot | gap recovered % | κ | gradual | gap recovered % | κ | distill s one-shot / gradual |",
             "|---|---|---|---|---|---|---|---|"]
    for arm, rows in frontier_rows(results).items():
        by_name = dict(rows)
        for one, grad in pairs:
            if one in by_name and grad in by_name:
                a, b = by_name[one], by_name[grad]
                lines.append("| " + " | ".join([arm, one, _gap(a), _num(a.get("kappa"), ".2f"), grad, _gap(b),
                                                _num(b.get("kappa"), ".2f"),
                                                f"{_num(a['stages_s'].get('distill_s'), '.0f')} / "
                                                f"{_num(b['stages_s'].get('distill_s'), '.0f')}"]) + " |")
    return "\n".join(lines)


def _gap(a: dict) -> str:
    if a.get("gap_recovered") is None:
        return "–"
    return f"{a['gap_recovered']:.1f}" + ("" if a.get("gap_recovered_std") is None else f" ± {a['gap_recovered_std']:.1f}")


def plot_pruning(results: dict, pairs: list[tuple[str, str]], path: Path) -> None:
    """Gap recovered by one-shot and by gradual pruning to the same shape, side by side per arm (seeds' std as
    error bars)."""
    plt = pyplot()
    rows = frontier_rows(results)
    arms = [arm for arm in rows if any(o in dict(rows[arm]) and g in dict(rows[arm]) for o, g in pairs)]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(arms) * len(pairs)), 3.6), dpi=120)
    width = 0.38
    for k, (one, grad) in enumerate(pairs):
        for j, (name, label) in enumerate(((one, f"one-shot ({one})"), (grad, f"gradual ({grad})"))):
            xs, ys, errs = [], [], []
            for i, arm in enumerate(arms):
                a = dict(rows[arm]).get(name)
                if a and a.get("gap_recovered") is not None:
                    xs.append(i * len(pairs) + k + (j - 0.5) * width)
                    ys.append(a["gap_recovered"])
                    errs.append(a.get("gap_recovered_std") or 0.0)
            ax.bar(xs, ys, width, yerr=errs, capsize=3, label=label)
    ax.set_xticks([i * len(pairs) + k for i in range(len(arms)) for k in range(len(pairs))],
                  [arm for arm in arms for _ in pairs], fontsize=8)
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(100, ls=":", color="#c44e52", lw=1)
    ax.set_ylabel("gap recovered over the majority answer, %")
    ax.set_title(f"{results['task']}: one-shot vs gradual pruning", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def frontier_rows(results: dict) -> dict[str, list[tuple[str, dict]]]:
    """A size sweep's rows by arm: ``{arm: [(student name, row), ...]}`` in the sweep's order (empty without)."""
    out: dict = {}
    for name, a in results["arms"].items():
        if a.get("student_name"):
            out.setdefault(name.split("@", 1)[0], []).append((a["student_name"], a))
    return out


def format_frontier_table(results: dict) -> str:
    """The size-speed frontier as markdown: per arm and student, size, speed-ups over the teacher, gap recovered
    (mean ± std over seeds) and kappa, and the same after int8 dynamic quantization when it was scored."""
    head = ["arm", "student", "params (M)", "speed-up b1", "speed-up b32", "gap recovered %", "κ",
            "int8 gap recovered %", "int8 speed-up b1 / b32"]
    lines = ["Size-speed frontier:", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, rows in frontier_rows(results).items():
        for student, a in rows:
            sd = "" if a.get("gap_recovered_std") is None else f" ± {a['gap_recovered_std']:.1f}"
            q = a.get("int8") or {}
            q_sd = "" if q.get("gap_recovered_std") is None else f" ± {q['gap_recovered_std']:.1f}"
            q_gap = "–" if q.get("gap_recovered") is None else f"{q['gap_recovered']:.1f}{q_sd}"
            q_speed = "–" if q.get("speedup") is None else f"{q['speedup']:.2f} / {_num(q.get('speedup_b32'), '.2f')}"
            gap = "–" if a.get("gap_recovered") is None else f"{a['gap_recovered']:.1f}{sd}"
            lines.append("| " + " | ".join([arm, student, f"{a['params'] / 1e6:.2f}", _num(a.get("speedup"), ".2f"),
                                            _num(a.get("speedup_b32"), ".2f"), gap, _num(a.get("kappa"), ".2f"),
                                            q_gap, q_speed]) + " |")
    return "\n".join(lines)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The ``(speed-up, gap recovered)`` points that no other point beats in both (at least as fast and at least
    as good, better in one), sorted by speed-up."""
    front, best = [], float("-inf")
    for x, y in sorted(points, key=lambda p: (-p[0], -p[1])):  # fastest first: keep a point better than every faster one
        if y > best:
            front.append((x, y))
            best = y
    return front[::-1]


def plot_frontier(results: dict, path: Path) -> None:
    """Gap recovered against speed-up over the teacher, at batch 1 and at batch 32 side by side: each arm's students
    as markers (seeds' std as error bars), int8-quantized students hollow, and a line (dashed for int8) through the
    arm's frontier, the students no other student beats in both speed-up and gap recovered; the speed-up axis is
    logarithmic."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.0), dpi=120, sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key, title in ((axes[0], "speedup", "batch 1"), (axes[1], "speedup_b32", "batch 32")):
        for i, (arm, rows) in enumerate(frontier_rows(results).items()):
            colour = colours[i % len(colours)]
            for which, style in ((lambda a: a, "-o"), (lambda a: a.get("int8") or {}, "--o")):
                pts = sorted((which(a)[key], which(a)["gap_recovered"], which(a).get("gap_recovered_std") or 0.0, s)
                             for s, a in rows if which(a).get(key) and which(a).get("gap_recovered") is not None)
                if not pts:
                    continue
                label = arm if style == "-o" else f"{arm} (int8)"
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], fmt="o",
                            color=colour, capsize=3, label=label, mfc="none" if style == "--o" else colour)
                front = pareto_front([(p[0], p[1]) for p in pts])
                ax.plot([p[0] for p in front], [p[1] for p in front], style[:-1], color=colour)
                if style == "-o" and i == 0:  # sizes named once, on the first arm's line
                    for x, y, _, s in pts:
                        ax.annotate(s, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=6)
        ax.axhline(100, ls=":", color="#c44e52", lw=1)
        ax.axhline(0, ls=":", color="black", lw=1)
        ax.set_xscale("log")  # speed-ups span 1x to 20x; equal steps read as equal ratios
        lo, hi = ax.get_xlim()
        ax.set_xticks([t for t in (0.5, 1, 1.5, 2, 3, 5, 10, 20, 50, 100) if lo <= t <= hi])
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xlabel(f"speed-up over the teacher, {title} (CPU, log scale)")
        ax.set_title(f"{results['task']}: {title}", fontsize=9)
    axes[0].set_ylabel("gap recovered over the majority answer, %")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def write_summary_results(results: dict, out: Path) -> dict:
    """A multi-task summary's outputs: :func:`format_summary_table` and :func:`plot_summary`."""
    return write_results(out, results, format_summary_table(results), plot_summary)


def write_curve_results(results: dict, out: Path) -> dict:
    """A curve's outputs: :func:`format_curve_table` and :func:`plot_curve` (``curve.png``)."""
    return write_results(out, results, format_curve_table(results), plot_curve, "curve.png")


METRIC_SHORT = {"matthews_correlation": "mcc", "accuracy": "acc", "f1": "F1", "pearson": "Pearson",
                "spearmanr": "Spearman"}


def format_compare_table(results: dict) -> str:
    """The markdown table of a compare run: one row for the teacher, one per arm."""
    t = results["teacher"]
    key = results["main_metric"]
    head = [f"arm ({key})", "mean ± std", "% of teacher", "gap recovered %", "agreement", "κ", "params (M)",
            "ms @ b1", "ms @ b32", "speed-up b1", "speed-up b32", "rows", "generate s", "label s", "setup s",
            "distill s", "eval s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def f(v, spec=".1f"):
        return "–" if v is None else format(v, spec)

    lines.append("| " + " | ".join(["teacher", f"{t['main']:.4f}", "100.0", "100.0", "1.0000", "1.00",
                                    f(t["params"] / 1e6, ".2f"), f(t["latency_ms_b1"]), f(t["latency_ms_b32"]),
                                    "1.0", "1.0", "–", "–", "–", "–", "–", f(t["stages_s"].get("eval_s"))]) + " |")
    for name, a in results["arms"].items():
        st = a["stages_s"]
        lines.append("| " + " | ".join([
            name, f"{a['mean']:.4f} (1 seed)" if a["std"] is None else f"{a['mean']:.4f} ± {a['std']:.4f}",
            f(a["pct_of_teacher"]), f(a.get("gap_recovered")), f"{a['agreement']:.4f}", f(a.get("kappa"), ".2f"),
            f(a["params"] / 1e6, ".2f"), f(a["latency_ms_b1"]), f(a["latency_ms_b32"]), f(a.get("speedup"), ".2f"),
            f(a.get("speedup_b32"), ".2f"), str(a["transfer_rows"]),
            f(st.get("generate_s")), f(st.get("label_s")), f(st.get("setup_s")), f(st.get("distill_s")),
            f(st.get("eval_s"))]) + " |")
    if intervals := {name: a["ci95"] for name, a in results["arms"].items() if a.get("ci95")}:
        lines += ["", "95% interval of the mean over seeds (Student's t): " + "; ".join(
            f"{name} {lo:.4f} to {hi:.4f}" for name, (lo, hi) in intervals.items()) + "."]
    if results.get("notes"):
        lines += [""] + [f"{note}." for note in results["notes"]]
    if floor := results.get("majority_baseline"):
        pct = "" if floor["pct_of_teacher"] is None else f" ({floor['pct_of_teacher']:.1f}% of the teacher)"
        names = results.get("label_names") or []
        label = names[floor["label"]] if isinstance(floor["label"], int) and floor["label"] < len(names) else floor["label"]
        lines += ["", f"Answering the majority class ({label}) to every dev row scores {floor['main']:.4f}"
                  f"{pct}: the floor every row is read against."]
    lines += ["", "gap recovered: (student − floor) / (teacher − floor) × 100 (floor: the majority answer, 0 for MCC "
              "and Pearson); κ: Cohen's kappa with the teacher's dev predictions (Pearson r for regression); "
              "speed-up: the teacher's CPU latency over the first seed's student's, at batch 1 and 32, the two timed "
              "in turns on the same dev batches (rows without a teacher latency of their own: over the teacher's "
              "\"ms\" above)."]
    shares = {name: a["teacher_label_shares"] for name, a in results["arms"].items() if a.get("teacher_label_shares")}
    if shares:
        first = next(iter(shares.values()))
        bins = ", ".join(map(str, first["bins"]))
        lines += ["", f"Teacher's predicted classes, % of rows ({bins}): dev gold "
                  f"{_pcts(first['dev_gold'])}; teacher on dev {_pcts(first['dev_teacher'])}; on each transfer set: "
                  + "; ".join(f"{name} {_pcts(v['transfer_set'])}" for name, v in shares.items()) + "."]
    students = {name: [s["dev_label_shares"] for s in a["per_seed"]] for name, a in results["arms"].items()
                if a.get("per_seed") and all("dev_label_shares" in s for s in a["per_seed"])}
    if students:
        lines += ["", "Students' predicted classes on dev, % of rows, per seed: " + "; ".join(
            f"{name} {', '.join(map(_pcts, per_seed))}" for name, per_seed in students.items()) + "."]
    if machines := run_machines(results):
        from ..eval.scoring import machine_line

        lines += ["", machine_line(machines)]
    return "\n".join(lines)


def run_machines(results: dict) -> list[dict]:
    """The distinct machines (:func:`dfkd.eval.scoring.machine_info`) that one task's results were timed on: the
    teacher's scoring and each row's, in that order (a row reused from another machine's results keeps its own;
    results recorded before machines were, none)."""
    found = [results.get("teacher", {}).get("machine"), *(a.get("machine") for a in results.get("arms", {}).values())]
    out = []
    for m in found:
        if m and m not in out:
            out.append(m)
    return out


def _pcts(shares: list[float]) -> str:
    return "/".join(f"{100 * x:.1f}" for x in shares)


def plot_compare(results: dict, path: Path) -> None:
    """Bar chart of each arm's mean main score with ± std error bars, each seed's score as a dot (a bimodal row
    shows as two clusters), and the teacher as a dashed line."""
    plt = pyplot()

    names = list(results["arms"])
    means = [results["arms"][n]["mean"] for n in names]
    stds = [results["arms"][n]["std"] or 0.0 for n in names]  # one seed: no error bar
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 + 1.4 * len(names)), 3.8), dpi=120)
    seeds = [[x for x in results["arms"][n]["scores"] if x is not None] for n in names]
    bars = ax.bar(names, means, yerr=stds, capsize=6, color="#4c72b0")
    ax.plot([i for i, xs in enumerate(seeds) for _ in xs], [x for xs in seeds for x in xs], "o", ms=4,
            color="black", alpha=0.6, label="seeds")
    tops = [max([m + sd, *xs]) for m, sd, xs in zip(means, stds, seeds)]
    for b, n, top in zip(bars, names, tops):  # label above the error bar and the seeds
        ax.annotate(f"{results['arms'][n]['pct_of_teacher']:.1f}%", (b.get_x() + b.get_width() / 2, top),
                    xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8)
    t = results["teacher"]["main"]
    ax.axhline(t, ls="--", color="#c44e52", label=f"teacher {t:.3f}")
    floor = (results.get("majority_baseline") or {}).get("main")
    if floor is not None:
        ax.axhline(floor, ls=":", color="black", lw=1.5, label=f"majority answer {floor:.3f}")
    lowest = min([t, *([] if floor is None else [floor]), *(m - sd for m, sd in zip(means, stds)),
                  *(x for xs in seeds for x in xs)])
    ax.set_ylim(max(0.0, lowest - 0.05) if lowest >= 0 else lowest - 0.05, max([t, *tops]) + 0.1)
    if any(len(n) > 14 for n in names):  # long variant names would overlap their neighbours
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right", rotation_mode="anchor")
    ax.set_ylabel(f"dev {results['main_metric']}")
    ax.set_title(f"{results['task']}: student score by transfer set ({len(results['arms'][names[0]]['scores'])} seeds)"
                 if names else results["task"], fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the axes
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def format_summary_table(results: dict) -> str:
    """Markdown table laid out like the papers': rows teacher and arms, columns the tasks (official metric,
    x 100, mean ± std over seeds, % of teacher) then the averages (WNLI shown but not averaged)."""
    tasks = results["tasks"]
    head = ["", *[f"{t} ({METRIC_SHORT.get(v['main_metric'], v['main_metric'])})" for t, v in tasks.items()],
            "avg", "avg % of teacher"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    t_avg = results["teacher_avg_score"]
    lines.append("| " + " | ".join(["teacher", *[f"{100 * v['teacher']['main']:.1f}" for v in tasks.values()],
                                    "–" if t_avg is None else f"{t_avg:.1f}", "100.0"]) + " |")
    for arm, s in results["summary"].items():
        cells = []
        for v in tasks.values():
            a = v["arms"].get(arm)
            if a is None:
                cells.append("–")
                continue
            sd = "" if a["std"] is None else f" ± {100 * a['std']:.1f}"
            pct = "–" if a["pct_of_teacher"] is None else f"{a['pct_of_teacher']:.1f}%"
            cells.append(f"{100 * a['mean']:.1f}{sd} ({pct})")
        avg = "–" if s["avg_score"] is None else f"{s['avg_score']:.1f}"
        pct = "–" if s["avg_pct_of_teacher"] is None else f"{s['avg_pct_of_teacher']:.1f}"
        lines.append("| " + " | ".join([arm, *cells, avg, pct]) + " |")
    floors = [v.get("majority_baseline") for v in tasks.values()]
    if any(floors):
        cells = ["–" if f is None else f"{100 * f['main']:.1f} ({f['pct_of_teacher']:.1f}%)" for f in floors]
        lines.append("| " + " | ".join(["majority answer (floor)", *cells, "–", "–"]) + " |")
    lines += ["", *format_gap_table(results)]
    counted = [t for t in tasks if t not in results["excluded_from_average"]]
    partial = [f"{arm}: averaged over {', '.join(s['tasks'])} only" for arm, s in results["summary"].items()
               if s["tasks"] != counted]
    if partial:
        lines.append(f"\n{'; '.join(partial)} (no figure for the other tasks).")
    if results["excluded_from_average"]:
        lines.append(f"\n{', '.join(results['excluded_from_average'])}: shown, not averaged (as BERT and TinyBERT).")
    if results.get("seconds"):
        total = results["seconds"]
        per = "; ".join(f"{t} {v['seconds']['transfer_sets'] / 60:.1f} / {v['seconds']['students'] / 60:.1f}"
                        for t, v in tasks.items() if v.get("seconds"))
        lines.append(f"\nTime, minutes: transfer sets {total['transfer_sets'] / 60:.1f} (generating and labelling "
                     f"each once, as recorded when it was built), students {total['students'] / 60:.1f} (setting up, "
                     f"distilling and scoring every seed), teacher scoring {total['teacher'] / 60:.1f}; per task (transfer sets "
                     f"/ students): {per}.")
        if untimed := [t for t, v in tasks.items() if not v.get("seconds")]:
            lines[-1] += f" Not in these sums: {', '.join(untimed)} (recorded without stage times)."
    if machines := [m for v in tasks.values() for m in v.get("machines", [])]:
        from ..eval.scoring import machine_line

        lines.append("\n" + machine_line(machines))
    if any(floors):
        lines.append("\nmajority answer: the dev score of answering the most frequent dev class to every row, "
                     "the floor a classification task's rows are read against (none for regression).")
    return "\n".join(lines)


def _num(v, spec: str = ".1f") -> str:
    return "–" if v is None else format(v, spec)


def format_gap_table(results: dict) -> list[str]:
    """The summary's second table, the one to read small tasks by: per task and arm the gap over the floor the
    student recovers (:func:`dfkd.metrics.gap_recovered`, %, mean ± std over seeds) and its kappa with the
    teacher (:func:`dfkd.metrics.kappa`), then the averages and the speed-ups over the teacher (batch 1 / 32)."""
    tasks = results["tasks"]
    head = ["gap recovered % (κ)", *tasks, "avg gap recovered %", "avg κ", "speed-up b1 / b32"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, s in results["summary"].items():
        cells = []
        for v in tasks.values():
            a = v["arms"].get(arm)
            if a is None or a.get("gap_recovered") is None:
                cells.append("–")
                continue
            sd = "" if a.get("gap_recovered_std") is None else f" ± {a['gap_recovered_std']:.1f}"
            kappa = "" if a.get("kappa") is None else f" (κ {a['kappa']:.2f})"
            cells.append(f"{a['gap_recovered']:.1f}{sd}{kappa}")
        speed = "–" if s.get("avg_speedup") is None else f"{s['avg_speedup']:.1f}x / {_num(s.get('avg_speedup_b32'))}x"
        lines.append("| " + " | ".join([arm, *cells, _num(s.get("avg_gap_recovered")), _num(s.get("avg_kappa"), ".2f"),
                                        speed]) + " |")
    lines += ["", "Gap recovered: (student − floor) / (teacher − floor) × 100, the floor being the majority answer's "
              "dev score (0 for MCC and Pearson); κ: Cohen's kappa between the student's and the teacher's dev "
              "predictions (Pearson r for regression), 0 for a student that answers one class everywhere; speed-up: "
              "the teacher's CPU latency over the student's, the mean of the tasks'"]
    students = format_students_table(results)
    lines[-1] += " (each task's below)." if students else "."
    return lines + students


def format_students_table(results: dict) -> list[str]:
    """The summary's third table: per task, the student it distils into, its size and its speed-ups over the
    teacher at batch 1 / 32 (the mean over the task's arms); nothing for a summary recorded without them."""
    tasks = results["tasks"]
    if not any(v.get("student") or v.get("speedup") for v in tasks.values()):
        return []
    params = [_num(v["student_params"] / 1e6) if v.get("student_params") else "–" for v in tasks.values()]
    speed = ["–" if v.get("speedup") is None else f"{v['speedup']:.1f}x / {_num(v.get('speedup_b32'))}x"
             for v in tasks.values()]
    rows = [["student", *[v.get("student") or "–" for v in tasks.values()]], ["params (M)", *params],
            ["speed-up b1 / b32", *speed]]
    head = ["", *tasks]
    return ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *["| " + " | ".join(r) + " |" for r in rows]]


def plot_summary(results: dict, path: Path) -> None:
    """Grouped bars: gap recovered over the majority answer per task and arm, % (± the seeds' std), the teacher at
    100 and the majority answer at 0. The axis reaches down to the lowest bar's error bar (at least to -10, at most
    to -100); a bar below -100 is cut there and labelled with its value."""
    plt = pyplot()

    tasks = list(results["tasks"])
    arms = list(results["summary"])
    # each task's bars are packed side by side (an arm a task has no row for leaves no gap); the colour names the arm
    present = {t: [arm for arm in arms if arm in results["tasks"][t]["arms"]] for t in tasks}
    width = 0.8 / max(1, *(len(p) for p in present.values()))
    bars = {}  # arm -> (xs, ys, errors)
    for arm in arms:
        xs, ys, es = [], [], []
        for i, t in enumerate(tasks):
            a = results["tasks"][t]["arms"].get(arm) if arm in present[t] else None
            if a is None or a.get("gap_recovered") is None:
                continue
            xs.append(i + (present[t].index(arm) - (len(present[t]) - 1) / 2) * width)
            ys.append(a["gap_recovered"])
            es.append(a.get("gap_recovered_std") or 0.0)
        bars[arm] = (xs, ys, es)
    lowest = min((y - e for xs, ys, es in bars.values() for y, e in zip(ys, es)), default=0.0)
    bottom = max(-100.0, min(-10.0, 10.0 * ((lowest - 5.0) // 10.0)))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(tasks) + 2), 4.0), dpi=120)
    # matplotlib's default cycle repeats after 10 colours; a sweep's arm@student rows can be more
    palette = plt.get_cmap("tab20").colors if len(bars) > 10 else plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (arm, (xs, ys, es)) in enumerate(bars.items()):
        ax.bar(xs, [max(y, bottom) for y in ys], width, yerr=es, capsize=3, label=arm,
               color=palette[i % len(palette)])
        for x, y in zip(xs, ys):
            if y < bottom:
                ax.annotate(f"{y:.0f}", (x, bottom), xytext=(0, 3), textcoords="offset points", ha="center",
                            fontsize=7, rotation=90, bbox={"fc": "white", "ec": "none", "pad": 0.5})
    ax.axhline(100, ls="--", color="#c44e52", lw=1, label="teacher")
    ax.axhline(0, ls=":", color="black", lw=1.5, label="majority answer")
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylabel("gap recovered over the majority answer, %")
    ax.set_ylim(bottom, 115)
    ax.set_title(f"{results.get('name') or 'compare'}: students by transfer set", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the axes
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def format_curve_table(results: dict) -> str:
    """One markdown table per task: rows arms, columns the numbers of task examples (% of teacher, mean ± std)."""
    blocks = []
    for task, t in results["curve"].items():
        limits = t["limits"]
        head = ["arm", *["0 (zero-shot)" if x == 0 else "all" if x is None else str(x) for x in limits]]
        lines = [f"**{task}** ({t['main_metric']}; teacher {t['teacher']:.4f}; % of teacher, dev score mean ± std, "
                 "gap recovered over the majority answer)", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for arm, points in t["arms"].items():
            by = {p["limit"]: p for p in points}
            cells = []
            for x in limits:
                p = by.get(x)
                if p is None:
                    cells.append("–")
                else:
                    sd = "" if p["std"] is None else f" ± {p['std']:.4f}"
                    pct = "–" if p["pct_of_teacher"] is None else f"{p['pct_of_teacher']:.1f}%"
                    gap = "" if p.get("gap_recovered") is None else f"; gap {p['gap_recovered']:.1f}%"
                    cells.append(f"{pct} ({p['mean']:.4f}{sd}{gap})")
            lines.append("| " + " | ".join([arm, *cells]) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def plot_curve(results: dict, path: Path) -> None:
    """One panel per task: % of the teacher against task examples (log x), one line per arm with the seeds'
    std as error bars; zero-shot arms as dashed horizontal lines."""
    plt = pyplot()

    tasks = list(results["curve"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.0 * len(tasks), 3.8), dpi=120, squeeze=False)
    for ax, task in zip(axes[0], tasks):
        t = results["curve"][task]
        for arm, points in t["arms"].items():
            pts = [p for p in points if p["pct_of_teacher"] is not None]
            err = [100 * (p["std"] or 0.0) / abs(t["teacher"] or 1.0) for p in pts]
            if all(p["limit"] == 0 for p in pts):
                for p in pts:
                    ax.axhline(p["pct_of_teacher"], ls="--", lw=1.2, color="#55a868", label=f"{arm} (0 examples)")
                continue
            pts_err = sorted(zip(pts, err), key=lambda pe: pe[0]["examples"])
            ax.errorbar([p["examples"] for p, _ in pts_err], [p["pct_of_teacher"] for p, _ in pts_err],
                        yerr=[e for _, e in pts_err], marker="o", capsize=4, label=arm)
        ax.axhline(100, ls=":", color="#c44e52", lw=1, label="teacher")
        ax.set_xscale("log")
        ax.set_xlabel("task examples (log)")
        ax.set_ylabel("% of the teacher's dev score")
        ax.set_title(f"{task} ({t['main_metric']})", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
