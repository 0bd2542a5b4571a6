"""The plan of a ``compare`` run, validated in full and then frozen before any work starts.

:func:`make_plan` reads a :class:`~dfkd.compare.config.CompareConfig` into a :class:`Plan`: per task, the data
folder, the teacher, and per row (an arm or a variant) the student spec, loss recipe, training settings, stage
schedule, strategy and generator settings, its output folders and where its transfer set lives. Every check
runs here, for every task and row, so bad input is one ``error:`` line before a transfer set is generated,
labelled or a folder is made: keys and types, a student shape the teacher cannot give, heads that do not
divide the hidden size, temperatures and loss weights, generator settings, limits, data folders, teacher
labels, and outputs an earlier run left that these settings cannot resume (:mod:`dfkd.compare.provenance`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..config import from_dict
from ..errors import DfkdError
from ..tasks import TaskSpec, get_task, load_task, task_from_dict
from . import provenance
from .config import Arm, CompareConfig, Variant, arm_names, curve_configs, get_arm, student_spec


@dataclass(frozen=True)
class RowPlan:
    """One table row, resolved: what its students are, how they train, and on which transfer set.

    Attributes:
        name / arm / variant: the row's name, its arm and (a variant row) its overrides.
        shares: a variant's ``rebalance`` as class shares, resolved; ``None``: the transfer set as built.
        student / losses / training / stages: the student spec, loss recipe, training settings (seed 0; each
            seed replaces it) and schedule (``None``: one stage) its seeds train with.
        strategy / strategy_settings: the training strategy and its settings as given (``None``: defaults).
        generators: ``((generator, settings), ...)``: the arm's generators with the preset's and the variant's
            settings applied.
        transfer_key / transfer_home: the generators and settings as JSON (rows with the same key share one
            transfer set) and the folder name under ``out`` where that set lives.
        description: the row's line in tables.
    """

    name: str
    arm: Arm
    variant: Variant | None
    shares: tuple[float, ...] | None
    student: dict
    losses: object
    training: object
    stages: tuple | None
    strategy: str
    strategy_settings: dict | None
    generators: tuple
    transfer_key: str
    transfer_home: str
    description: str

    @property
    def has_own_settings(self) -> bool:
        """A variant row with generator settings of its own."""
        return bool(self.variant and self.variant.arm_settings)


@dataclass(frozen=True)
class TaskPlan:
    """One task's validated run: ``rows`` are those the run computes, ``all_rows`` every row of the preset (in
    order; the others stay in ``results.json`` as recorded).

    Attributes:
        lengths: a custom task's ``max_length`` chosen from its data (:func:`dfkd.distill.data.length_from_data`
            with the teacher's tokenizer: ``max_length``, ``truncated_share``, ...); ``None``: set by ``training``.
        notes: lines the run prints and records: label names put in the teacher's order, lengths chosen.
        teacher_shape: the teacher's ``config.json`` fields as read before any work (of its base for a default
            teacher not built yet; ``None``: a hub teacher not in the local cache).
        teacher_sha256: the digest of the teacher's weights (``None``: not built yet, or a hub id).
    """

    config: CompareConfig
    spec: TaskSpec
    data_dir: Path | None
    teacher: str
    teacher_shape: dict | None
    teacher_sha256: str | None
    rows: tuple[RowPlan, ...]
    all_rows: tuple[RowPlan, ...]
    out: Path
    training: object
    lengths: dict | None = None
    notes: tuple[str, ...] = ()

    def row(self, name: str) -> RowPlan:
        return next(r for r in self.all_rows if r.name == name)


@dataclass(frozen=True)
class Plan:
    """A whole ``compare`` run: one :class:`TaskPlan` per task (one per task and limit for a curve).

    Attributes:
        kind: ``"single"`` (one task, results in ``out``), ``"tasks"`` (several, with a summary) or ``"curve"``.
        limits: per task plan, the number of task examples of a curve point (``None`` outside curves).
    """

    config: CompareConfig
    kind: str
    tasks: tuple[TaskPlan, ...]
    limits: tuple = ()

    def describe(self) -> dict:
        """The resolved plan as JSON-able data (``compare --dry-run``)."""
        return {"name": self.config.name, "kind": self.kind, "out": self.config.out,
                "tasks": [describe_task(t, lim) for t, lim in zip(self.tasks, self.limits or [None] * len(self.tasks))]}


#: what ``--dry-run`` shows of the teacher's config
SHAPE_KEYS = ("model_type", "num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
              "id2label")


def describe_task(plan: TaskPlan, limit=None) -> dict:
    """One task plan as JSON-able data: folders, teacher and every row's resolved settings."""
    return {"task": plan.spec.name, "limit": limit, "label_names": list(plan.spec.label_names),
            "lengths": plan.lengths, "notes": list(plan.notes), "out": str(plan.out), "teacher": plan.teacher,
            "data_dir": str(plan.data_dir) if plan.data_dir else None,
            "teacher_shape": {k: plan.teacher_shape.get(k) for k in SHAPE_KEYS} if plan.teacher_shape else None,
            "seeds": plan.config.seeds,
            "rows": {r.name: {"arm": r.arm.name, "transfer_set": r.transfer_home,
                              "generators": [list(g) for g in r.generators], "student": r.student,
                              "training": asdict(r.training), "losses": asdict(r.losses),
                              "stages": [asdict(s) for s in r.stages] if r.stages else None,
                              "strategy": r.strategy, "rebalance": r.shares, "description": r.description}
                     for r in plan.rows}}


def make_plan(config: CompareConfig) -> Plan:
    """Read and check the whole run (every task, row and output folder) into a frozen :class:`Plan`.

    Nothing is written, no model is loaded (a teacher's ``config.json`` is read), no transfer set is built.

    Raises:
        DfkdError: the first problem, as one line naming the task and row: an unknown task, arm, row, student,
            loss or strategy; a bad value; a student shape the teacher cannot give; a missing data folder; a
            teacher whose labels do not fit the task; a limit larger than the train split; a ``rows`` or
            ``limits`` mistake; outputs of other settings or another teacher.
    """
    if config.limits is not None:
        if config.rows is not None:
            raise DfkdError("rows (--rows) picks rows of a compare run, but a limits sweep runs its arms at every "
                            "limit; expected no rows with limits (use arms)")
        pairs = curve_configs(config)
        return Plan(config, "curve", tuple(plan_task(sub) for _, sub in pairs), tuple(limit for limit, _ in pairs))
    plans = [plan_task(c) for c in config.task_configs()]
    if config.rows is not None:
        known = list(dict.fromkeys(row.name for p in plans for row in p.all_rows))
        if not config.rows or (unknown := [r for r in config.rows if r not in known]):
            raise DfkdError(f"rows {config.rows}: {'no row named' if not config.rows else f'{unknown} not in the preset'}"
                            f"; expected some of {known}")
        plans = [p for p in plans if p.rows]
    return Plan(config, "single" if config.tasks is None else "tasks", tuple(plans))


def plan_task(config: CompareConfig) -> TaskPlan:
    """One task's :class:`TaskPlan` (see :func:`make_plan`)."""
    from ..distill.trainer import TrainingConfig

    training = TrainingConfig.from_dict(config.training, "training")  # the preset's keys before its data
    check_training(training, "training")
    spec = _task(config)
    if config.seeds < 1:
        raise DfkdError(f"seeds must be >= 1, got {config.seeds}")
    if not config.teacher:
        raise DfkdError(f"task {spec.name}: no teacher; expected a teacher folder, asset name or hub id")
    label_note = None
    if spec.is_custom:  # its labels in the teacher's order (or named by the teacher) before its data is read
        spec, label_note = provenance.check_teacher_labels(config.teacher, spec, config.confirm_generic_labels)
    teacher_shape = provenance.teacher_shape(config.teacher)
    lengths = None
    if spec.is_custom and "max_length" not in config.training:
        lengths = _lengths(spec, config)
        training = replace(training, max_length=lengths["max_length"])
    rows = _rows(config, spec, training, teacher_shape)
    if not rows:
        raise DfkdError(f"task {spec.name}: no arms to compare; expected at least one of: {', '.join(arm_names())}")
    if not spec.is_custom:  # after the rows' own checks; alignment reorders names only, so the rows stand
        spec, label_note = provenance.check_teacher_labels(config.teacher, spec, config.confirm_generic_labels)
    run_rows = tuple(r for r in rows if config.rows is None or r.name in config.rows)
    data_dir = None if spec.is_custom else _data_dir(config, spec, run_rows)  # a custom task's files are in spec
    _check_splits(spec, data_dir, run_rows)
    _check_limits(spec, data_dir, run_rows)
    out = Path(config.out)
    for row in run_rows:  # what an earlier run left must fit: found here, not hours into the run
        if problem := provenance.stale_transfer_set(out, row) or provenance.stale_students(out, row, config.seeds):
            raise DfkdError(f"task {spec.name}: {problem}")
    sha = provenance.teacher_sha256(config.teacher)  # a teacher not built yet is hashed once it is
    if problem := provenance.other_teachers_outputs(out, run_rows, config.teacher, sha):
        raise DfkdError(f"task {spec.name}: {problem}")
    notes = [label_note] if label_note else []
    if lengths and lengths["split"]:
        notes.append(f"task {spec.name}: max_length {lengths['max_length']} from the data ({lengths['quantile']:.0%} "
                     f"of {lengths['split']}'s token lengths with the teacher's tokenizer; "
                     f"{lengths['truncated_share']:.1%} of its rows truncated)")
    elif lengths:
        notes.append(f"task {spec.name}: max_length {lengths['max_length']} (no task texts to measure; set "
                     "training.max_length to change it)")
    return TaskPlan(config, spec, data_dir, config.teacher, teacher_shape, sha, run_rows, tuple(rows), out, training,
                    lengths, tuple(notes))


def _task(config: CompareConfig) -> TaskSpec:
    """The task; a custom task's files are resolved (against its own ``data_dir``) into the spec."""
    if not isinstance(config.task, dict):
        return get_task(config.task)
    from ..assets import resolve

    task = dict(config.task)
    folder = task.pop("data_dir", None)
    if folder is not None:
        try:
            folder = resolve(folder)
        except DfkdError as err:
            raise DfkdError(f"task {task.get('name')}: data folder {folder} not found ({err})") from None
    if isinstance(task.get("files"), dict) and folder is not None:
        task["files"] = {k: str(Path(folder) / v) for k, v in task["files"].items()}
    return task_from_dict(task, f"task {task.get('name', '?')}")


def _lengths(spec: TaskSpec, config: CompareConfig) -> dict:
    """A custom task's ``max_length`` from its train split (dev without one), with the teacher's tokenizer; 128
    (the training default) for a task without data."""
    from ..assets import resolve
    from ..distill.teacher import task_lengths

    split = next((s for s in ("train", "dev") if s in spec.files), None)
    if split is None:
        return {"max_length": 128, "quantile": None, "truncated_share": None, "rows": 0, "split": None}
    try:
        teacher = resolve(config.teacher, build=False)
    except DfkdError:
        teacher = config.teacher
    return {**task_lengths(spec, str(teacher), load_task(spec, split)), "split": split}


def _check_splits(spec: TaskSpec, data_dir, rows) -> None:
    """A custom task's splits that the rows read load (columns, labels, no empty split): dev when there is one,
    train for rows that read task data."""
    from ..transfer import GENERATORS

    if not spec.is_custom:
        return
    reads_train = any(GENERATORS.get(g).reads_task_data for row in rows for g, _ in row.generators)
    if "dev" not in spec.files and not spec.label_names and not spec.is_regression:
        raise DfkdError(f"task {spec.name}: no label names; expected label_names or a teacher whose config names "
                        "its labels")
    if reads_train and "train" not in spec.files:
        raise DfkdError(f"task {spec.name}: rows {[r.name for r in rows]} read the train split, but the task has "
                        f"no train data; expected train files (or only zero-shot arms such as ood)")
    for split in ("train", "dev") if reads_train else ("dev",):
        if split in spec.files:
            load_task(spec, split, data_dir)


def check_training(training, where: str) -> None:
    """Values a :class:`~dfkd.distill.trainer.TrainingConfig` must have for a student to train at all.

    Raises:
        DfkdError: a batch size, step budget or maximum length below 1, or a learning rate that is not positive.
    """
    for key in ("batch_size", "max_steps", "max_length"):
        value = getattr(training, key)
        if value is not None and value < 1:
            raise DfkdError(f"{where}: {key} {value}; expected at least 1")
    if training.learning_rate <= 0:
        raise DfkdError(f"{where}: learning_rate {training.learning_rate}; expected a positive number")


def _rows(config: CompareConfig, spec: TaskSpec, training, teacher_shape: dict | None) -> list[RowPlan]:
    """Every row of the preset (arms, then variants), each checked in full."""
    from ..distill.distiller import read_stages
    from ..distill.losses import DistillationConfig, check_losses
    from ..distill.students import check_student_against, check_student_spec
    from ..distill.trainer import STRATEGIES, TrainingConfig
    from ..transfer import check_generator_settings

    losses = from_dict(DistillationConfig, config.losses, "losses")
    check_losses(losses, "losses")
    if config.students is not None and not config.students:
        raise DfkdError("students: an empty sweep; expected named student specs such as {\"4x256\": {...}}")
    sweep = {n: student_spec(v, f"students.{n}") for n, v in (config.students or {}).items()}
    items = [(f"{a}@{n}" if sweep else a, get_arm(a), None) for a in config.arms for n in (sweep or [None])]
    own_student = {f"{a}@{n}": spec for a in config.arms for n, spec in sweep.items()}
    for name, over in config.variants.items():
        variant = from_dict(Variant, over, f"variant {name!r}")
        if name in config.arms:
            raise DfkdError(f"variant {name!r} has the name of an arm; expected a new row name")
        items.append((name, get_arm(variant.arm), variant))
    rows, homes = [], {}
    for name, arm, v in items:
        label = f"task {spec.name}: " + (f"variant {name!r}" if v else f"arm {name!r}")
        own = v.arm_settings if v else {}
        generators = tuple((g, {**s, **config.arm_settings.get(arm.name, {}), **own}) for g, s in arm.generators)
        for g, s in generators:
            where = f"variant {name!r} arm_settings" if own else f"arm_settings.{arm.name}"
            check_generator_settings(g, s, f"{where} ({g} generator)")
        key = json.dumps(generators, sort_keys=True)
        home = homes.setdefault(key, name if own else arm.name)
        where = f"variant {name!r} student" if v and v.student else "student"
        student = student_spec((v and v.student) or own_student.get(name) or config.student, where)
        check_student_spec(student, where)
        if teacher_shape is not None:
            check_student_against(student, teacher_shape, f"{label}: student")
        row_losses = from_dict(DistillationConfig, v.losses, f"variant {name} losses") if v and v.losses else losses
        check_losses(row_losses, f"variant {name!r} losses" if v and v.losses else "losses")
        row_training = training if not (v and v.training) else TrainingConfig.from_dict(
            {**config.training, **v.training}, f"variant {name!r} training")
        check_training(row_training, f"variant {name!r} training" if v and v.training else "training")
        stages = read_stages(v.stages, f"variant {name!r} stages") if v and v.stages is not None \
            else read_stages(config.stages)
        strategy = (v and v.strategy) or arm.strategy
        STRATEGIES.get(strategy).read_settings(config.strategies.get(strategy), f"strategies.{strategy}")
        _check_selection(f"task {spec.name}: row {name!r}", row_training, generators)
        overrides = sorted(k for k, val in asdict(v or Variant(arm=arm.name)).items()
                           if val and k not in ("arm", "description"))
        description = (v and v.description) or (arm.description if not overrides else
                                                 f"{arm.description}; {name}: {overrides}")
        rows.append(RowPlan(name, arm, v, _rebalance_shares(v, spec, name) if v else None, student, row_losses,
                            row_training, tuple(stages) if stages else None, strategy,
                            config.strategies.get(strategy), generators, key, home, description))
    return rows


def _check_selection(label: str, training, generators) -> None:
    """A ``selection_source`` the row's transfer set has rows of."""
    from ..transfer import GENERATORS

    source = training.selection_source
    gens = [GENERATORS.get(g) for g, _ in generators]
    # a generator that reads task data keeps the task's rows (source "original") beside its own
    sources = {g.source for g in gens} | ({"original"} if any(g.reads_task_data for g in gens) else set())
    if source is not None and source not in sources:
        raise DfkdError(f"{label} selects on {source!r} rows but its transfer set has rows of {sorted(sources)} "
                        "only; expected one of those as selection_source")


def _data_dir(config: CompareConfig, spec: TaskSpec, rows) -> Path | None:
    """The task's local folder, checked to hold the splits the rows read (zero-shot rows: dev only)."""
    from ..assets import resolve
    from ..transfer import GENERATORS

    if not config.data_dir:
        return None
    try:
        data_dir = Path(resolve(config.data_dir, build=False))
    except DfkdError as err:
        raise DfkdError(f"task {spec.name}: data folder {config.data_dir} not found ({err})") from None
    reads_train = any(GENERATORS.get(g).reads_task_data for row in rows for g, _ in row.generators)
    needed = [spec.files[s] for s in (("train", "dev") if reads_train else ("dev",)) if s in spec.files]
    if not data_dir.is_dir() or any(not (data_dir / f).is_file() for f in needed):
        raise DfkdError(f"task {spec.name}: data folder {config.data_dir} not found or incomplete; expected a "
                        f"folder with {' and '.join(needed)} (set data_dir, or DFKD_ASSETS for glue/...)")
    return data_dir


def _check_limits(spec: TaskSpec, data_dir: Path | None, rows) -> None:
    """No generator that reads task data asks for more rows than the train split has."""
    from ..transfer import GENERATORS

    train_rows = None
    for row in rows:
        for g, settings in row.generators:
            limit = settings.get("limit")
            if limit is None or not GENERATORS.get(g).reads_task_data:
                continue
            if train_rows is None:
                train_rows = len(load_task(spec, "train", data_dir))
            if limit > train_rows:
                kind = "variant" if row.variant else "arm"
                raise DfkdError(f"task {spec.name}: {kind} {row.name!r} limit {limit} is larger than the train "
                                f"split ({train_rows} rows); expected at most {train_rows}")


def _rebalance_shares(variant: Variant, spec: TaskSpec, name: str) -> tuple[float, ...] | None:
    """A variant's ``rebalance`` as class shares.

    Raises:
        DfkdError: a regression task; ``"published"`` for a task without published shares; not one positive
            number per label.
    """
    from ..zeroshot.ood import PUBLISHED_LABEL_SHARES

    want = variant.rebalance
    if want is None:
        return None
    where = f"variant {name!r} rebalance"
    if spec.is_regression:
        raise DfkdError(f"{where}: {spec.name} is a regression task; expected class shares of a classification task")
    if want == "published":
        if spec.name not in PUBLISHED_LABEL_SHARES:
            raise DfkdError(f"{where}: no published class shares for {spec.name}; expected a list of "
                            f"{spec.num_labels} shares")
        return tuple(PUBLISHED_LABEL_SHARES[spec.name])
    if (not isinstance(want, list) or len(want) != spec.num_labels
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in want)):
        raise DfkdError(f"{where} {want!r}: expected \"published\" or {spec.num_labels} positive numbers, one per "
                        f"label ({', '.join(spec.label_names)})")
    return tuple(float(x) for x in want)


def with_seed(row: RowPlan, seed: int):
    """The row's training settings for one seed."""
    return replace(row.training, seed=seed)
