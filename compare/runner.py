"""Running a validated task plan (:class:`~dfkd.compare.plan.TaskPlan`): the teacher's scores, each transfer set
once, every row's seeds, and the task's ``results.json`` / ``results.md`` / ``chart.png`` after every row."""

from __future__ import annotations

import copy
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DfkdError
from ..files import atomic_file
from ..metrics import floor_score, gap_recovered, majority_baseline, mean_interval, pct_of_teacher, speedup
from ..tasks import load_task
from . import provenance
from .plan import RowPlan, TaskPlan, with_seed


@dataclass(frozen=True)
class TeacherContext:
    """The loaded teacher of one task and what its students are scored against.

    Attributes:
        model / tokenizer: the teacher; ``dev``: the dev split; ``logits``: ``(n_dev, num_labels)`` its dev logits;
        main: its main dev score; latency: ms at batch 1 and 32 (``None`` without latency); floor: the score a
        student must beat (:func:`dfkd.metrics.floor_score`); sha256: its weights' digest; row: its results entry.
    """

    model: object
    tokenizer: object
    dev: object
    logits: np.ndarray
    main: float
    latency: tuple
    floor: float
    sha256: str | None
    row: dict


def load_teacher_context(plan: TaskPlan) -> TeacherContext:
    """Load (building a default teacher on first use) and score the teacher on dev, cached in
    ``out/teacher_eval.json``; a teacher built since the plan was made is checked as the plan checks one.

    Raises:
        DfkdError: outputs of another teacher in ``out``; a student shape the new teacher cannot give.
    """
    from ..assets import asset_name, resolve
    from ..distill.label import load_teacher
    from ..eval.scoring import evaluate_model, machine_info

    config, spec = plan.config, plan.spec
    t = time.perf_counter()
    model, tokenizer = load_teacher(config.teacher, spec.num_labels)
    stages = {"load_s": round(time.perf_counter() - t, 1)}
    sha = plan.teacher_sha256
    if sha is None:  # built since the plan was made (or a hub teacher): checked now, before any transfer set
        sha = provenance.teacher_sha256(config.teacher)
        if problem := provenance.other_teachers_outputs(plan.out, plan.rows, config.teacher, sha):
            raise DfkdError(f"task {spec.name}: {problem}")
    if plan.teacher_shape is None:
        from ..distill.students import check_student_against

        for row in plan.rows:
            check_student_against(row.student, model.config.to_dict(), f"task {spec.name}: row {row.name!r} student")
    plan.out.mkdir(parents=True, exist_ok=True)  # only once the teacher and the task are known to be good
    dev = load_task(spec, "dev", plan.data_dir) if "dev" in spec.files else held_out_dev(plan, model, tokenizer)

    def teacher_eval():
        t = time.perf_counter()
        row = evaluate_model(spec, model, tokenizer, dev, latency=config.latency,
                             folder=resolve(config.teacher, build=False), max_length=plan.training.max_length)
        return {**row, "logits": row["logits"].tolist(), "eval_seconds": round(time.perf_counter() - t, 1),
                "machine": machine_info(), "teacher_sha256": sha}

    row = provenance.json_cache(plan.out / "teacher_eval.json", teacher_eval)
    stages["eval_s"] = row.pop("eval_seconds")
    logits = np.asarray(row.pop("logits"))
    row.pop("model", None)
    return TeacherContext(model, tokenizer, dev, logits, row["main"], (row.get("latency_ms_b1"),
                          row.get("latency_ms_b32")), floor_score(spec, np.asarray(dev["label"])), sha,
                          {**row, "model": asset_name(config.teacher), "stages_s": stages})


#: rows of the held-out slice a task without dev is scored on, and the seed it is drawn with (the arms draw with 0)
HELD_OUT_ROWS, HELD_OUT_SEED = 1000, 9973


def held_out_dev(plan: TaskPlan, model, tokenizer):
    """A task without dev data is scored on a slice of out-of-domain rows (the ``ood`` generator with the ood arm's
    text sources and word limits, seed :data:`HELD_OUT_SEED`) labelled by the teacher, its answers as gold: a
    student's accuracy there is its agreement with the teacher. No transfer set trains on these texts
    (:meth:`TaskRunner.transfer_set` drops them). Kept in ``out/held_out_dev``.
    """
    from datasets import load_from_disk

    from ..distill.label import make_transfer_set

    folder = plan.out / "held_out_dev"
    # the text the ood arm reads (its sources and filters), without the teacher-guided selection
    arm = next((dict(s) for row in plan.all_rows for g, s in row.generators if g == "ood"), {})
    settings = {k: v for k, v in arm.items() if k in ("sources", "min_words", "max_words", "mix")}
    if (folder / "dfkd_card.json").is_file():
        ds = load_from_disk(str(folder))
    else:
        ds, _ = make_transfer_set([("ood", {**settings, "size": HELD_OUT_ROWS})], plan.spec, None, folder, model,
                                  tokenizer, seed=HELD_OUT_SEED, max_length=plan.training.max_length,
                                  card={"role": "held-out slice a task without dev is scored on"})
    logits = np.asarray(ds["teacher_logits"])
    gold = logits[:, 0].astype(float).tolist() if plan.spec.is_regression else logits.argmax(-1).tolist()
    keep = [c for c in ("text", "text_pair") if c in ds.column_names]
    return ds.select_columns(keep).add_column("label", gold)


class TaskRunner:
    """Runs one :class:`TaskPlan`: every attribute is set here, and :meth:`run` is the one entry point."""

    def __init__(self, plan: TaskPlan, retime: bool = False):
        self.plan = plan
        self.retime = retime  # time the recorded rows' students again (:meth:`retimed`)
        self.built: dict[str, tuple] = {}  # transfer sets built or loaded in this run, by generator settings

    def run(self) -> dict:
        """Every row of the plan; writes the task's results after each and returns them (with ``table``)."""
        from .report import write_task_results

        plan = self.plan
        started = time.perf_counter()
        for note in plan.notes:
            print(note, flush=True)
        teacher = load_teacher_context(plan)
        results = {"name": plan.config.name, "task": plan.spec.name, "main_metric": plan.spec.main_metric,
                   "config": provenance.portable_config(plan.config), "teacher": teacher.row, "arms": {}}
        if plan.spec.is_custom:
            notes = list(plan.notes)
            if "dev" not in plan.spec.files:
                notes.append(f"no dev data: every score is agreement with the teacher on {len(teacher.dev)} held-out "
                             "out-of-domain rows that no transfer set trains on (the teacher's answers as gold)")
            results.update(label_names=list(plan.spec.label_names), max_length=plan.training.max_length,
                           lengths=plan.lengths, notes=notes, dev_source="dev" if "dev" in plan.spec.files
                           else "held-out out-of-domain rows labelled by the teacher")
        if (floor := majority_baseline(plan.spec, teacher.dev["label"])) is not None:
            main = floor["metrics"][plan.spec.main_metric]
            results["majority_baseline"] = {**floor, "main": main, "pct_of_teacher": pct_of_teacher(main, teacher.main)}
        results["floor"] = teacher.floor
        recorded = provenance.recorded_rows(plan.config, plan.out, teacher.main, teacher.sha256)
        # rows recorded with the same settings stay in results.json until they are reached, and rows this run
        # does not pick stay for good: an interrupted run, or a run of some rows, loses no figure
        order = [row.name for row in plan.all_rows]
        order += [name for name in recorded if name not in order]
        done, written = {}, None
        for row in plan.rows:
            if row.name in recorded:
                done[row.name] = self.retimed(row, recorded[row.name], teacher) if self.retime else recorded[row.name]
                results.setdefault("reused_rows", []).append(row.name)
                print(f"{plan.spec.name}/{row.name}: reused from {plan.out / 'results.json'} (same settings and "
                      "teacher score)", flush=True)
            else:
                done[row.name] = self.run_row(row, teacher)
            results["arms"] = {name: done.get(name, recorded.get(name)) for name in order
                               if name in done or name in recorded}
            results["wall_seconds"] = round(time.perf_counter() - started, 1)
            written = write_task_results(results, plan.out)  # after every row: a run whose students are gone resumes
        return written

    def retimed(self, row: RowPlan, entry: dict, teacher: TeacherContext) -> dict:
        """A recorded row with its speed-ups measured again: its first seed's saved student (and its int8 copy,
        when the run quantizes) timed in turns with the teacher now (:func:`dfkd.eval.scoring.measure_latency`),
        nothing trained or scored again. Latencies taken hours apart on a machine whose speed drifts make
        speed-ups that do not compare; this puts every row of a table on the same minutes. A row whose student
        is not on disk keeps its recorded figures (one printed line says so)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from ..eval.scoring import machine_info, measure_latency, quantize_int8

        plan, s_dir = self.plan, self.plan.out / row.name / "seed-0"
        if not plan.config.latency or not (s_dir / "student").is_dir():
            print(f"{plan.spec.name}/{row.name}: no student at {s_dir / 'student'} to time; its recorded speed-ups "
                  "stay", flush=True)
            return entry
        model = AutoModelForSequenceClassification.from_pretrained(s_dir / "student")
        tokenizer = AutoTokenizer.from_pretrained(s_dir / "student")
        reference, length = (teacher.model, teacher.tokenizer), plan.training.max_length
        timed = {"": measure_latency(model, tokenizer, teacher.dev, reference, length)}
        if "int8" in entry:
            timed["int8"] = measure_latency(quantize_int8(model), tokenizer, teacher.dev, reference, length)
        entry = copy.deepcopy(entry)
        first = entry["per_seed"][0]
        for key, lat in timed.items():
            target, seed_row = (entry, first) if not key else (entry[key], first[key])
            seed_row.update(lat)
            target.update(speed_fields(seed_row, teacher))
        entry["machine"] = machine_info()
        cache = s_dir / "eval.json"
        if cache.is_file():  # the seed's cached scores carry the new timing too
            scores = json.loads(cache.read_text())
            scores.update(timed[""])
            if "int8" in timed and "int8" in scores:
                scores["int8"].update(timed["int8"])
            with atomic_file(cache) as tmp:
                tmp.write_text(json.dumps(scores, indent=2))
        print(f"{plan.spec.name}/{row.name}: timed again, speed-up {entry['speedup']:.2f} / {entry['speedup_b32']:.2f}",
              flush=True)
        return entry

    def transfer_set(self, row: RowPlan, teacher: TeacherContext) -> tuple[str, object, dict]:
        """A row's labelled transfer set, built once per generator settings and kept in
        ``out/<home>/transfer_set``: ``(home, dataset, stage times)``."""
        from ..distill.label import make_transfer_set
        from ..transfer import load_transfer_set

        if row.transfer_key in self.built:
            return self.built[row.transfer_key]
        ts_dir = provenance.transfer_set_dir(self.plan.out, row)
        if (ts_dir / "dfkd_card.json").is_file():
            if stale := provenance.stale_transfer_set(self.plan.out, row):
                raise DfkdError(stale)
            ds, card = load_transfer_set(ts_dir)
        else:
            spec = self.plan.spec
            ds, card = make_transfer_set(
                [list(g) for g in row.generators], spec, self.plan.data_dir, ts_dir, teacher.model, teacher.tokenizer,
                max_length=self.plan.training.max_length, work_dir=self.plan.out / row.transfer_home / "building",
                card={"arm": row.transfer_home, "teacher": self.plan.teacher, "teacher_sha256": teacher.sha256,
                      "num_labels": spec.num_labels, "seed": 0, **({"lengths": self.plan.lengths}
                                                                    if self.plan.lengths else {})})
        if "dev" not in self.plan.spec.files:  # the held-out slice a task without dev is scored on stays unseen
            held_out = set(teacher.dev["text"])
            ds = ds.filter(lambda text: text not in held_out, input_columns="text", desc="dropping held-out texts")
        self.built[row.transfer_key] = (row.transfer_home, ds, dict(card.get("stages_s", {})))
        return self.built[row.transfer_key]

    def run_row(self, row: RowPlan, teacher: TeacherContext) -> dict:
        """Distil and score every seed of one row; its entry of ``results.json``."""
        from ..distill.distiller import distill
        from ..eval.scoring import machine_info, size_on_disk_mb

        plan = self.plan
        ts_name, ds, ts_stages = self.transfer_set(row, teacher)
        if row.shares is not None:
            from ..zeroshot.ood import rebalance_by_teacher

            ds = ds.select(rebalance_by_teacher(np.asarray(ds["teacher_logits"]), row.shares))
        stages = dict(ts_stages)
        row_dir = plan.out / row.name
        seeds = []
        for seed in range(plan.config.seeds):
            s_dir = row_dir / f"seed-{seed}"
            summary = distill(ds, plan.spec, plan.teacher, row.student, s_dir / "student", with_seed(row, seed),
                              row.losses, plan.config.val_size, strategy=row.strategy,
                              strategy_settings=row.strategy_settings, stages=list(row.stages) if row.stages else None)
            stages["setup_s"] = round(stages.get("setup_s", 0.0) + summary.get("setup_seconds", 0.0), 1)
            stages["distill_s"] = round(stages.get("distill_s", 0.0) + summary["train_seconds"], 1)
            needs = ("kappa", "int8") if plan.config.quantize else ("kappa",)
            score = provenance.json_cache(s_dir / "eval.json", lambda s_dir=s_dir, seed=seed:
                                          self.student_eval(s_dir, seed, teacher), needs=needs)
            stages["eval_s"] = round(stages.get("eval_s", 0.0) + score["eval_seconds"], 1)
            seeds.append({"seed": seed, **score, "gap_recovered": gap_recovered(score["main"], teacher.main,
                                                                                teacher.floor),
                          "train_seconds": summary["train_seconds"], "steps": summary["steps"],
                          "best_val_agreement": summary["best_val"], "best_step": summary.get("best_step")})
        return self.row_entry(row, seeds, ds, ts_name, stages, teacher) | {
            "size_mb": size_on_disk_mb(row_dir / "seed-0" / "student"), "machine": machine_info()}

    def row_entry(self, row: RowPlan, seeds: list[dict], ds, ts_name: str, stages: dict,
                  teacher: TeacherContext) -> dict:
        """The figures of one row from its seeds: mean, std, % of the teacher, gap recovered, agreement, kappa,
        size and speed."""
        mains = [s["main"] for s in seeds]
        first, mean = seeds[0], statistics.fmean(mains)
        return {"description": row.description, "transfer_set": ts_name, "transfer_rows": len(ds),
                "teacher_label_shares": self.label_shares(ds, teacher), "per_seed": seeds, "scores": mains,
                "mean": mean, "std": statistics.stdev(mains) if len(mains) > 1 else None,
                "ci95": mean_interval(mains), "pct_of_teacher": pct_of_teacher(mean, teacher.main),
                "gap_recovered": gap_recovered(mean, teacher.main, teacher.floor),
                "gap_recovered_std": statistics.stdev([s["gap_recovered"] for s in seeds])
                if len(seeds) > 1 and None not in [s["gap_recovered"] for s in seeds] else None,
                "agreement": statistics.fmean(s["agreement"] for s in seeds),
                "kappa": statistics.fmean(s["kappa"] for s in seeds), "params": first["params"],
                **speed_fields(first, teacher), "stages_s": stages,
                **({"student_name": row.name.split("@", 1)[1]} if "@" in row.name and row.variant is None else {}),
                **({"int8": int8_entry(seeds, teacher)} if all("int8" in s for s in seeds) else {})}

    def label_shares(self, ds, teacher: TeacherContext) -> dict:
        """Classes (score bins for regression) as the teacher predicts them on a transfer set, next to dev's
        gold labels and the teacher's dev predictions: ``{"transfer_set", "dev_teacher", "dev_gold", "bins"}``
        (shares in label order, or per bin of 5 equal-width bins of dev's gold score range)."""
        from ..metrics import label_shares

        spec, edges = self.plan.spec, dev_bins(self.plan.spec, teacher.dev)
        gold = np.asarray(teacher.dev["label"], dtype=float if spec.is_regression else int)
        return {"transfer_set": label_shares(spec, np.asarray(ds["teacher_logits"]), edges),
                "dev_teacher": label_shares(spec, teacher.logits, edges), "dev_gold": label_shares(spec, gold, edges),
                "bins": edges.round(3).tolist() if edges is not None else list(spec.label_names)}

    def student_eval(self, s_dir: Path, seed: int, teacher: TeacherContext) -> dict:
        """One seed's saved student scored on dev against the teacher (latency for seed 0 only)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from ..eval.scoring import evaluate_model
        from ..metrics import label_shares

        t = time.perf_counter()
        model = AutoModelForSequenceClassification.from_pretrained(s_dir / "student")
        s_tokenizer = AutoTokenizer.from_pretrained(s_dir / "student")  # a BiLSTM student has its own
        reference = (teacher.model, teacher.tokenizer)  # the speed-ups: student and teacher timed in turns
        row = evaluate_model(self.plan.spec, model, s_tokenizer, teacher.dev, teacher.logits, teacher.main,
                             latency=self.plan.config.latency and seed == 0, folder=s_dir / "student",
                             max_length=self.plan.training.max_length, reference=reference)
        # the student's own predicted classes on dev, next to the teacher's and gold's (label_shares)
        row["dev_label_shares"] = label_shares(self.plan.spec, row.pop("logits"), dev_bins(self.plan.spec, teacher.dev))
        row.pop("model", None)
        if self.plan.config.quantize:  # the same student as shipped on a CPU: int8 linear layers
            from ..eval.scoring import quantize_int8

            q = evaluate_model(self.plan.spec, quantize_int8(model), s_tokenizer, teacher.dev, teacher.logits,
                               teacher.main, latency=self.plan.config.latency and seed == 0,
                               max_length=self.plan.training.max_length, reference=reference)
            row["int8"] = {k: q.get(k) for k in ("main", "agreement", "kappa", "latency_ms_b1", "latency_ms_b32",
                                                 "teacher_latency_ms_b1", "teacher_latency_ms_b32")}
        return {**row, "eval_seconds": round(time.perf_counter() - t, 1)}


def dev_bins(spec, dev) -> np.ndarray | None:
    """Regression: the 5 equal-width bin edges ``(6,)`` over dev's gold score range; ``None`` otherwise."""
    if not spec.is_regression:
        return None
    gold = np.asarray(dev["label"], dtype=float)
    return np.linspace(gold.min(), gold.max(), 6)


def int8_entry(seeds: list[dict], teacher: TeacherContext) -> dict:
    """A row's int8-quantized figures from its seeds' ``int8`` scores: as the row's own (mean, std, gap
    recovered, kappa, the first seed's latencies and speed-ups)."""
    q = [s["int8"] for s in seeds]
    mains = [x["main"] for x in q]
    mean = statistics.fmean(mains)
    return {"scores": mains, "mean": mean, "std": statistics.stdev(mains) if len(mains) > 1 else None,
            "gap_recovered": gap_recovered(mean, teacher.main, teacher.floor),
            "gap_recovered_std": statistics.stdev([gap_recovered(x, teacher.main, teacher.floor) for x in mains])
            if len(mains) > 1 and teacher.main > teacher.floor else None,
            "kappa": statistics.fmean(x["kappa"] for x in q),
            **speed_fields(q[0], teacher)}


def speed_fields(scored: dict, teacher: TeacherContext) -> dict:
    """A row's latencies and speed-ups from its first seed's scores: the teacher timed in turns with the student
    when it was (``teacher_latency_ms_b1/b32``), else the teacher's own recorded latency (older records)."""
    fields = {"latency_ms_b1": scored["latency_ms_b1"], "latency_ms_b32": scored["latency_ms_b32"]}
    for key, batch, recorded in (("speedup", "b1", teacher.latency[0]), ("speedup_b32", "b32", teacher.latency[1])):
        paired = scored.get(f"teacher_latency_ms_{batch}")
        if paired is not None:
            fields[f"teacher_latency_ms_{batch}"] = paired
        fields[key] = speedup(paired if paired is not None else recorded, scored[f"latency_ms_{batch}"])
    return fields

