"""``dfkd compare``, the main job: how close to the teacher does each kind of transfer set get?

For one task and one teacher, each *arm* (a registered recipe for a transfer set) is built once and
labelled by the teacher; the same student config is distilled from it with the same budget (optimizer
steps x batch size) over N seeds; every student is scored on the dev split. Output, in ``out``:

* ``results.json``: settings, the teacher's scores, and per arm (``arms.<name>``) the per-seed scores,
  ``mean``, ``std`` (sample standard deviation over seeds; ``null`` for one seed), ``pct_of_teacher`` (mean main score as % of the
  teacher's), agreement, params, size, latency and the wall time of each stage;
* ``results.md``: the same as a markdown table;
* ``chart.png``: main score per arm (mean ± std) against the teacher.

Every stage's output is kept under ``out/<arm>/``, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import DfkdError
from ..registry import Registry
from .tasks import get_task, load_task


@dataclass(frozen=True)
class Arm:
    """A transfer-set recipe: the generators whose rows are concatenated, with default settings.

    Attributes:
        generators: ``(generator name, settings)`` pairs from :data:`dfkd.distill.transfer.GENERATORS`.
        description: one line for tables and ``--help``.
        adversarial: distil with generator-made adversarial inputs too
            (:class:`dfkd.zeroshot.adversarial.AdversarialTrainer`, settings from ``CompareConfig.adversarial``).
    """

    name: str
    generators: tuple[tuple[str, dict], ...]
    description: str
    adversarial: bool = False


ARMS: Registry[Arm] = Registry("compare arm")
ARMS.register("original", Arm("original", (("original", {}),),
                              "data-driven KD: the task's train texts, relabelled by the teacher"))
ARMS.register("augment", Arm("augment", (("augment", {"method": "tinybert"}),),
                             "augmented KD: the train texts plus TinyBERT variants of each, relabelled by the teacher"))
ARMS.register("ood", Arm("ood", (("ood", {"sources": ["ood/agnews.txt"]}),),
                         "zero-shot KD: out-of-domain sentences (ood/agnews.txt) labelled by the teacher, no task data"))
ARMS.register("ood+adversarial", Arm("ood+adversarial", (("ood", {"sources": ["ood/agnews.txt"]}),),
                                     "zero-shot KD: out-of-domain sentences plus MATE-KD-style adversarial rewrites",
                                     adversarial=True))


@dataclass
class CompareConfig:
    """Everything ``compare`` needs (a preset in ``configs/`` is this as JSON).

    Attributes:
        task / data_dir: the task and its local folder (asset names allowed; ``None``: the hub).
        teacher: teacher folder, asset name or hub id.
        student: student spec (see :mod:`dfkd.distill.students`).
        arms: arm names from :data:`ARMS`.
        arm_settings: per-arm generator settings overriding the arm's defaults, e.g.
            ``{"original": {"limit": 20000}}`` (applied to every generator of that arm).
        variants: more table rows that reuse an arm's transfer set with another student, loss recipe,
            training settings or stage schedule: ``{"layerwise": {"arm": "original", "stages": [...]},
            "bilstm": {"arm": "original", "student": {"type": "bilstm"}}}``.
        seeds: number of student seeds per arm (seeds 0..N-1).
        training / losses: :class:`~dfkd.distill.trainer.TrainingConfig` and
            :class:`~dfkd.distill.losses.DistillationConfig` fields; ``training.max_steps`` is the budget.
        val_size: rows (or fraction) of each transfer set held out for model selection.
        adversarial: :class:`~dfkd.zeroshot.adversarial.AdversarialConfig` fields for adversarial arms.
        latency: measure CPU latency of the teacher and of each arm's first student.
        out: output folder.
    """

    task: str = "sst2"
    data_dir: str | None = "glue/SST-2"
    teacher: str = "models/teacher-minilm-l6-sst2"
    student: dict = field(default_factory=lambda: {"type": "config", "num_hidden_layers": 4, "hidden_size": 256,
                                                   "num_attention_heads": 4, "intermediate_size": 1024})
    arms: list[str] = field(default_factory=lambda: ["original"])
    arm_settings: dict = field(default_factory=dict)
    variants: dict = field(default_factory=dict)
    seeds: int = 3
    training: dict = field(default_factory=dict)
    losses: dict = field(default_factory=dict)
    val_size: int | float = 2000
    adversarial: dict = field(default_factory=dict)
    latency: bool = True
    out: str = "runs/compare"
    name: str | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> CompareConfig:
        """Load a JSON preset. Raises :class:`DfkdError` for a missing file or unknown keys."""
        path = Path(path)
        if not path.is_file():
            raise DfkdError(f"missing preset {path}; expected a JSON file such as configs/sst2-quick.json")
        data = json.loads(path.read_text())
        if unknown := set(data) - set(cls.__dataclass_fields__):
            raise DfkdError(f"{path}: unknown preset key(s) {sorted(unknown)}; expected {sorted(cls.__dataclass_fields__)}")
        data.setdefault("name", path.stem)
        return cls(**data)

    def replace(self, **changes) -> CompareConfig:
        return replace(self, **changes)


def _timed(stages: dict, key: str, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    stages[key] = round(stages.get(key, 0.0) + time.perf_counter() - t, 1)
    return out


def _json_cache(path: Path, compute):
    """Return ``compute()``, caching its JSON-able result at ``path`` (for resuming)."""
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2))
    tmp.rename(path)
    return value


def run_compare(config: CompareConfig) -> dict:
    """Run every arm and write ``results.json``, ``results.md`` and ``chart.png`` into ``config.out``.

    Returns:
        The results dict, plus ``table`` (the markdown table).

    Raises:
        DfkdError: unknown task or arm, a teacher whose ``num_labels`` differs from the task, bad presets.
    """
    from ..assets import resolve
    from ..distill.distiller import distill
    from ..distill.label import label_dataset, load_teacher
    from ..distill.losses import DistillationConfig
    from ..distill.trainer import TrainingConfig
    from ..distill.transfer import build_transfer_set, load_transfer_set, save_transfer_set
    from .scoring import evaluate_model, size_on_disk_mb

    spec = get_task(config.task)
    rows = [(a, ARMS.get(a), {}) for a in config.arms]
    for name, over in config.variants.items():
        if unknown := set(over) - {"arm", "student", "losses", "training", "stages", "description"}:
            raise DfkdError(f"variant {name!r}: unknown key(s) {sorted(unknown)}; expected arm, student, losses, "
                            "training, stages, description")
        if name in config.arms:
            raise DfkdError(f"variant {name!r} has the name of an arm; expected a new row name")
        rows.append((name, ARMS.get(over.get("arm", "original")), over))
    if config.seeds < 1:
        raise DfkdError(f"seeds must be >= 1, got {config.seeds}")
    training = TrainingConfig.from_dict(config.training)
    losses = DistillationConfig(**config.losses)
    data_dir = resolve(config.data_dir, build=False) if config.data_dir else None
    out = Path(config.out)
    started = time.perf_counter()

    t = time.perf_counter()
    teacher, tokenizer = load_teacher(config.teacher, spec.num_labels)
    teacher_stages = {"load_s": round(time.perf_counter() - t, 1)}
    dev = load_task(spec, "dev", data_dir)
    out.mkdir(parents=True, exist_ok=True)  # only once the teacher and the task are known to be good

    def teacher_eval():
        t = time.perf_counter()
        row = evaluate_model(spec, teacher, tokenizer, dev, latency=config.latency,
                             folder=resolve(config.teacher, build=False), max_length=training.max_length)
        return {**row, "logits": row["logits"].tolist(), "eval_seconds": round(time.perf_counter() - t, 1)}

    t_row = _json_cache(out / "teacher_eval.json", teacher_eval)
    teacher_stages["eval_s"] = t_row.pop("eval_seconds")
    t_logits, t_main = np.asarray(t_row.pop("logits")), t_row["main"]
    results = {"name": config.name, "task": spec.name, "main_metric": spec.main_metric,
               "config": asdict(config), "teacher": {**t_row, "stages_s": teacher_stages}, "arms": {}}

    def generator_settings(arm: Arm) -> list:
        """``[(generator, settings), ...]`` of ``arm`` with the config's ``arm_settings`` applied."""
        return [(gen, {**settings, **config.arm_settings.get(arm.name, {})}) for gen, settings in arm.generators]

    def transfer_set(arm: Arm, generators: list):
        """The arm's labelled transfer set from ``generators`` (:func:`generator_settings`; built once, kept in
        ``out/<arm>/transfer_set``) and its stage times."""
        arm_dir = out / arm.name
        stages: dict[str, float] = {}
        ts_dir = arm_dir / "transfer_set"
        if (ts_dir / "dfkd_card.json").is_file():
            ds, card = load_transfer_set(ts_dir)
            return ds, dict(card.get("stages_s", {}))
        parts, cards = [], []
        for i, (gen, settings) in enumerate(generators):
            ds_part, card_part = _timed(stages, "generate_s", build_transfer_set, gen, spec, data_dir, 0,
                                        work_dir=arm_dir / f"generating-{i}", **settings)
            parts.append(ds_part)
            cards.append(card_part)
        from datasets import concatenate_datasets

        ds = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
        ds = _timed(stages, "label_s", label_dataset, ds, teacher, tokenizer, arm_dir / "labelling",
                    max_length=training.max_length)
        card = {"arm": arm.name, "generators": cards, "teacher": config.teacher, "task": spec.name,
                "num_labels": spec.num_labels, "seed": 0, "stages_s": dict(stages)}
        save_transfer_set(ds, ts_dir, card)
        for tmp in (arm_dir / "labelling", *arm_dir.glob("generating-*")):
            shutil.rmtree(tmp, ignore_errors=True)
        return ds, stages

    built: dict[str, tuple] = {}  # arms with the same generators and settings share one transfer set
    for name, arm, over in rows:
        adversarial = None
        if arm.adversarial:
            from ..zeroshot.adversarial import AdversarialConfig

            adversarial = AdversarialConfig(**config.adversarial)
        generators = generator_settings(arm)
        key = json.dumps(generators, sort_keys=True)
        if key not in built:
            built[key] = (arm.name, *transfer_set(arm, generators))
        ts_name, ds, ts_stages = built[key]
        stages = dict(ts_stages)
        arm_dir = out / name
        student = over.get("student", config.student)
        row_losses = DistillationConfig(**over["losses"]) if "losses" in over else losses
        row_training = replace(training, **over.get("training", {}))
        seeds = []
        for seed in range(config.seeds):
            s_dir = arm_dir / f"seed-{seed}"
            summary = distill(ds, spec, config.teacher, student, s_dir / "student",
                              replace(row_training, seed=seed), row_losses, config.val_size, adversarial,
                              stages=over.get("stages"))
            stages["distill_s"] = round(stages.get("distill_s", 0.0) + summary["train_seconds"], 1)

            def student_eval(s_dir=s_dir, seed=seed):
                from transformers import AutoModelForSequenceClassification, AutoTokenizer

                t = time.perf_counter()
                model = AutoModelForSequenceClassification.from_pretrained(s_dir / "student")
                s_tokenizer = AutoTokenizer.from_pretrained(s_dir / "student")  # a BiLSTM student has its own
                row = evaluate_model(spec, model, s_tokenizer, dev, t_logits, t_main,
                                     latency=config.latency and seed == 0, folder=s_dir / "student",
                                     max_length=training.max_length)
                row.pop("logits")
                return {**row, "eval_seconds": round(time.perf_counter() - t, 1)}

            row = _json_cache(s_dir / "eval.json", student_eval)
            stages["eval_s"] = round(stages.get("eval_s", 0.0) + row["eval_seconds"], 1)
            seeds.append({"seed": seed, **row, "train_seconds": summary["train_seconds"],
                          "steps": summary["steps"], "best_val_agreement": summary["best_val"]})
        mains = [s["main"] for s in seeds]
        first = seeds[0]
        description = over.get("description") or (arm.description if not over else
                                                   f"{arm.description}; {name}: {sorted(set(over) - {'arm'})}")
        results["arms"][name] = {
            "description": description, "transfer_set": ts_name, "transfer_rows": len(ds),
            "per_seed": seeds, "scores": mains,
            "mean": statistics.fmean(mains), "std": statistics.stdev(mains) if len(mains) > 1 else None,
            "pct_of_teacher": 100 * statistics.fmean(mains) / t_main,
            "agreement": statistics.fmean(s["agreement"] for s in seeds),
            "params": first["params"], "size_mb": size_on_disk_mb(arm_dir / "seed-0" / "student"),
            "latency_ms_b1": first["latency_ms_b1"], "latency_ms_b32": first["latency_ms_b32"],
            "stages_s": stages}
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    table = format_compare_table(results)
    results_file = out / "results.json"
    results_file.write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(table + "\n")
    plot_compare(results, out / "chart.png")
    return {**results, "table": table}


def format_compare_table(results: dict) -> str:
    """The markdown table of a compare run: one row for the teacher, one per arm."""
    t = results["teacher"]
    key = results["main_metric"]
    head = [f"arm ({key})", "mean ± std", "% of teacher", "agreement", "params (M)", "ms @ b1", "ms @ b32",
            "rows", "generate s", "label s", "distill s", "eval s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def f(v, spec=".1f"):
        return "–" if v is None else format(v, spec)

    lines.append("| " + " | ".join(["teacher", f"{t['main']:.4f}", "100.0", "1.0000", f(t["params"] / 1e6, ".2f"),
                                    f(t["latency_ms_b1"]), f(t["latency_ms_b32"]), "–", "–", "–", "–",
                                    f(t["stages_s"].get("eval_s"))]) + " |")
    for name, a in results["arms"].items():
        st = a["stages_s"]
        lines.append("| " + " | ".join([
            name, f"{a['mean']:.4f} (1 seed)" if a["std"] is None else f"{a['mean']:.4f} ± {a['std']:.4f}",
            f(a["pct_of_teacher"]), f"{a['agreement']:.4f}",
            f(a["params"] / 1e6, ".2f"), f(a["latency_ms_b1"]), f(a["latency_ms_b32"]), str(a["transfer_rows"]),
            f(st.get("generate_s")), f(st.get("label_s")), f(st.get("distill_s")), f(st.get("eval_s"))]) + " |")
    return "\n".join(lines)


def plot_compare(results: dict, path: Path) -> None:
    """Bar chart of each arm's mean main score with ± std error bars, and the teacher as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["arms"])
    means = [results["arms"][n]["mean"] for n in names]
    stds = [results["arms"][n]["std"] or 0.0 for n in names]  # one seed: no error bar
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 + 1.4 * len(names)), 3.8), dpi=120)
    bars = ax.bar(names, means, yerr=stds, capsize=6, color="#4c72b0")
    for b, n, sd in zip(bars, names, stds):  # label above the error bar
        ax.annotate(f"{results['arms'][n]['pct_of_teacher']:.1f}%", (b.get_x() + b.get_width() / 2, b.get_height() + sd),
                    xytext=(0, 4), textcoords="offset points", ha="center", fontsize=8)
    t = results["teacher"]["main"]
    ax.axhline(t, ls="--", color="#c44e52", label=f"teacher {t:.3f}")
    low = min([*means, t]) - 0.1
    ax.set_ylim(max(0.0, low), min(1.0, max([*means, t]) + 0.08))
    ax.set_ylabel(f"dev {results['main_metric']}")
    ax.set_title(f"{results['task']}: student score by transfer set ({len(results['arms'][names[0]]['scores'])} seeds)"
                 if names else results["task"], fontsize=9)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
