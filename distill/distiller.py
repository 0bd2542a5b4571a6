"""``dfkd distill``: train a student on a labelled transfer set from any generator.

The distiller never looks at which generator made a row: it reads ``text`` [, ``text_pair``],
``teacher_logits`` and (when the recipe has a hard-label term) ``label``. How a stage trains is a registered
strategy (:data:`dfkd.distill.trainer.STRATEGIES`: ``plain``, ``adversarial``, ...), so a schedule of stages
and adversarial steps combine without special cases.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from accelerate.utils import set_seed
from datasets import Dataset

from ..config import from_dict
from ..errors import DfkdError
from ..tasks import TaskSpec, column, get_task
from ..transfer import load_transfer_set, validate
from .data import held_out_split
from .losses import DistillationConfig
from .trainer import STRATEGIES, TrainingConfig, _with_config_defaults


@dataclass
class Stage:
    """One stage of a distillation schedule (e.g. TinyBERT §3.2: intermediate layers, then the prediction layer).

    Attributes:
        losses: :class:`DistillationConfig` fields of this stage (default: the run's recipe).
        training: :class:`TrainingConfig` fields overriding the run's settings in this stage.
        selection: ``"last"`` or ``"teacher"`` (default: ``last`` for all but the final stage).
        prune: a structured-pruning step at the start of the stage: the stage's starting student is cut to this
            shape (:func:`dfkd.distill.prune.prune_model` settings; axes left out are kept), its units ranked on
            the transfer set. A ``gradual_pruned`` student expands into such stages (:func:`expand_schedule`).
    """

    losses: dict | None = None
    training: dict = field(default_factory=dict)
    selection: str | None = None
    prune: dict | None = None


def read_stages(stages: list | None, where: str = "stages") -> list[Stage] | None:
    """A stage schedule from JSON (a list of stage objects), checked strictly.

    Raises:
        DfkdError: not a list, an unknown key, or a bad value in a stage's ``losses``/``training``.
    """
    if stages is None:
        return None
    if not isinstance(stages, list) or not stages:
        raise DfkdError(f"{where}: expected a non-empty JSON list of stages such as configs/students/tinybert-two-stage.json")
    out = []
    for k, stage in enumerate(stages, 1):
        st = from_dict(Stage, stage, f"{where}[{k}]")
        if st.losses is not None:
            from_dict(DistillationConfig, st.losses, f"{where}[{k}].losses")
        from_dict(TrainingConfig, st.training, f"{where}[{k}].training")
        if st.selection not in (None, "last", "teacher"):
            raise DfkdError(f"{where}[{k}]: selection must be 'last' or 'teacher', got {st.selection!r}")
        if st.prune is not None:
            from .prune import check_prune

            check_prune(st.prune, f"{where}[{k}].prune")
        if st.training.get("max_steps", 1) < 1:
            raise DfkdError(f"{where}[{k}]: max_steps {st.training['max_steps']}; expected at least 1 optimizer step")
        out.append(st)
    return out


def expand_schedule(student: dict, plan: list[Stage] | None) -> tuple[dict, list[Stage] | None]:
    """A student spec whose type grows into its shape over stages (``gradual_pruned``: its builder has a
    ``stages`` function) and a schedule, as the starting student and the full schedule: its steps first, the
    last step's cut at the start of the first stage of ``plan`` (or of the one default stage).

    Returns:
        ``(student, plan)`` unchanged for any other student.
    """
    from .students import STUDENTS

    steps_of = getattr(STUDENTS.get(student.get("type", "config")), "stages", None)
    if steps_of is None:
        return student, plan
    steps = steps_of(student)
    plan = list(plan or [Stage()])
    first = replace(plan[0], prune={**steps[-1]["prune"], **(plan[0].prune or {})})
    return student, [Stage(prune=st["prune"], training=st["training"], selection="last") for st in steps[:-1]] + \
        [first, *plan[1:]]


def _plan(stages: list[dict] | list[Stage] | None) -> list[Stage] | None:
    """A schedule as :class:`Stage` objects (dicts read by :func:`read_stages`); ``None`` for no schedule."""
    return None if not stages else stages if isinstance(stages[0], Stage) else read_stages(stages)


def _schedule(plan: list[Stage] | None) -> list[dict] | None:
    """What ``dfkd_training.json`` records as ``schedule``: a plan of several stages as JSON gives it back;
    ``None`` for one stage or none."""
    return json.loads(json.dumps([asdict(st) for st in plan])) if plan and len(plan) > 1 else None


def layerwise_terms(losses) -> list[str]:
    """The loss terms of a recipe that read the models' hidden states or attention scores (not only logits)."""
    from .losses import LOSSES

    names = [term["name"] for term in losses.extra if float(term.get("weight", 1.0))]
    return sorted(n for n in names if set(getattr(LOSSES.get(n), "needs", ())) - {"logits"})


def finished_run_conflict(out: str | Path, config: TrainingConfig | None = None,
                          losses: DistillationConfig | None = None,
                          stages: list[dict] | list[Stage] | None = None, student: dict | None = None) -> str | None:
    """Why :func:`distill` would refuse to resume into ``out``, read from its ``dfkd_training.json`` alone (no
    model is loaded, so a multi-row job can check every output folder before any work starts).

    Args:
        out / config / losses / stages / student: as :func:`distill` gets them (the student for a schedule it
            expands into, :func:`expand_schedule`).

    Returns:
        ``None`` when ``out`` holds no finished run or one with the same schedule, training settings and loss
        recipe; else the reason, e.g. ``"holds a finished run with other settings (max_steps 300 -> 200)"``.
        Settings that a strategy adds (:meth:`~dfkd.distill.trainer.Trainer.extra_settings`) are checked when
        the run starts.
    """
    summary = Path(out) / "dfkd_training.json"
    if not summary.is_file():
        return None
    done = json.loads(summary.read_text())
    plan = _plan(stages)
    if student is not None:
        plan = expand_schedule(student, plan)[1]
    schedule = _schedule(plan)
    staged = "stages" in done
    recorded = done.get("schedule", schedule) if staged else None  # an older dfkd recorded no schedule
    if staged != bool(schedule) or recorded != schedule:
        return "holds a finished run with another stage schedule"
    if schedule:
        return None
    stage = plan[0] if plan else Stage()
    config = replace(config or TrainingConfig(), **stage.training)
    losses = from_dict(DistillationConfig, stage.losses, "stage losses") if stage.losses else \
        losses or DistillationConfig()
    done = _with_config_defaults(done)
    now = json.loads(json.dumps({"config": asdict(config), "losses": asdict(losses)}))  # as JSON gives it back
    changed = [f"{k} {(done.get(part) or {}).get(k)!r} -> {v!r}" for part in ("config", "losses")
               for k, v in now[part].items() if (done.get(part) or {}).get(k) != v]
    return f"holds a finished run with other settings ({', '.join(changed)})" if changed else None


def distill(transfer_set: str | Path | Dataset, task: str | TaskSpec, teacher: str, student: dict, out: str | Path,
            config: TrainingConfig | None = None, losses: DistillationConfig | None = None,
            val_size: int | float = 0.05, strategy: str = "plain", strategy_settings: dict | None = None,
            stages: list[dict] | list[Stage] | None = None) -> dict:
    """Distil a student and save it to ``out`` (a ``save_pretrained`` folder plus ``dfkd_training.json``).

    Args:
        transfer_set: a saved transfer set folder or a labelled :class:`Dataset` (from any generator).
        teacher: the teacher (folder, asset name or hub id); its tokenizer is the student's.
        student: student spec (see :mod:`dfkd.distill.students`).
        config / losses: training settings and loss recipe (of every stage, unless a stage overrides them).
        val_size: rows (or fraction) of the transfer set held out for model selection by teacher agreement.
        strategy / strategy_settings: a name in :data:`dfkd.distill.trainer.STRATEGIES` and its settings, e.g.
            ``"adversarial"`` (registered by :mod:`dfkd.zeroshot`) with
            :class:`~dfkd.zeroshot.adversarial.AdversarialConfig` fields; every stage runs with it.
        stages: a schedule (:class:`Stage` or its dicts). Stage ``k`` starts from stage ``k-1``'s student,
            writes ``<out>.stage-<k>`` and resumes on its own; the final stage writes ``out``.

    Returns:
        The training summary (steps, best validation agreement, seconds, settings): ``train_seconds`` is the
        training loop's wall time and ``setup_seconds`` everything before it (loading the transfer set and the
        teacher, building the student, e.g. ranking the teacher's units for a pruned one, tokenising); with
        ``stages``, the final stage's summary with ``steps``, ``train_seconds`` and ``setup_seconds`` summed
        over the stages, plus ``stages`` (each
        stage's own summary); it is also what ``<out>/dfkd_training.json`` holds.

    Raises:
        DfkdError: unlabelled or malformed transfer set; teacher/student mismatch; an unknown strategy or bad
            settings; a recipe that needs teacher internals with an incompatible layer mapping; ``out`` holding
            a finished run with another stage schedule (recorded as ``schedule`` in ``dfkd_training.json``),
            other training settings or another loss recipe (:func:`finished_run_conflict`), found before the
            transfer set or the teacher is loaded.
    """
    from .label import load_teacher
    from .students import build_student_and_tokenizer, check_compatible, check_student_spec

    spec = get_task(task)
    out = Path(out)
    check_student_spec(student)
    runner = STRATEGIES.get(strategy)
    settings = runner.read_settings(strategy_settings, f"{strategy} settings")
    student, plan = expand_schedule(student, _plan(stages))
    config = config or TrainingConfig()
    losses = losses or DistillationConfig()
    if conflict := finished_run_conflict(out, config, losses, plan):
        raise DfkdError(f"{out} {conflict}; expected the same settings to resume, or a new output folder")
    schedule = _schedule(plan)
    if schedule and (out / "dfkd_training.json").is_file():  # finished (its intermediate stages are gone)
        return json.loads((out / "dfkd_training.json").read_text())
    started = time.perf_counter()  # the set-up before a stage's loop is timed as its ``setup_seconds``
    ds = transfer_set if isinstance(transfer_set, Dataset) else load_transfer_set(transfer_set)[0]
    validate(ds, spec, labelled=True)
    teacher_model, tokenizer = load_teacher(teacher, spec.num_labels, device="cpu")
    train, val = held_out_split(ds, val_size, config.seed, source=config.selection_source)
    plan = plan or [Stage()]
    outs = [out.with_name(f"{out.name}.stage-{k}") for k in range(1, len(plan))] + [out]
    texts = column(train, "text") + (column(train, "text_pair") if spec.pair else [])  # own-vocabulary students
    summaries = []
    current = student
    for k, (stage, stage_out) in enumerate(zip(plan, outs), 1):
        final = k == len(plan)
        s_losses = from_dict(DistillationConfig, stage.losses, f"stage {k} losses") if stage.losses else losses
        s_config = replace(config, **stage.training)
        selection = stage.selection or ("teacher" if final else "last")
        set_seed(s_config.seed)  # the student's random init is part of the run: the same seed, the same student
        student_model, student_tokenizer = build_student_and_tokenizer(teacher_model, current, texts, spec.pair,
                                                                         tokenizer)
        if stage.prune is not None:
            from .prune import prune_model

            student_model = prune_model(student_model, tokenizer, texts, **stage.prune)
        check_compatible(teacher_model, student_model, own_vocabulary=student_tokenizer is not None)
        if student_tokenizer is not None and (internal := layerwise_terms(s_losses)):
            raise DfkdError(f"the student reads its own vocabulary, so the teacher's hidden states and attention "
                            f"scores are over other tokens; layer-wise losses {internal} need a student that shares "
                            "the teacher's tokenizer (expected logit-level losses only: kd_weight, mse_weight, "
                            "ce_weight)")
        desc = f"distill {spec.name}" + (f" (stage {k}/{len(plan)})" if len(plan) > 1 else "")
        trainer = runner.build(student_model, student_tokenizer or tokenizer, spec, s_config, s_losses, selection,
                               stage_out, teacher_model, settings, student_tokenizer is not None, desc)
        trainer.setup_seconds = time.perf_counter() - started
        summaries.append(trainer.fit(train, val))
        started = time.perf_counter()
        current = {"type": "checkpoint", "path": str(stage_out)}
    if len(plan) == 1:
        return summaries[-1]
    summary = {**summaries[-1], "stages": summaries, "schedule": schedule,
               "steps": sum(s["steps"] for s in summaries),
               "train_seconds": round(sum(s["train_seconds"] for s in summaries), 1),
               "setup_seconds": round(sum(s.get("setup_seconds", 0.0) for s in summaries), 3)}
    (out / "dfkd_training.json").write_text(json.dumps(summary, indent=2))  # the schedule's record, not stage k's
    for stage_out in outs[:-1]:  # the final student exists; intermediate students are no longer needed
        shutil.rmtree(stage_out, ignore_errors=True)
    return summary
