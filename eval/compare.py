"""``dfkd compare``, the main job: how close to the teacher does each kind of transfer set get?

For one task and one teacher, each *arm* (a registered recipe for a transfer set) is built once and
labelled by the teacher; the same student config is distilled from it with the same budget (optimizer
steps x batch size) over N seeds; every student is scored on the dev split. Output, in ``out``:

* ``results.json``: settings, the teacher's scores, and per arm (``arms.<name>``) the per-seed scores (with the
  selected checkpoint's ``best_step`` and held-out ``best_val_agreement``),
  ``mean``, ``std`` (sample standard deviation over seeds; ``null`` for one seed), ``pct_of_teacher`` (mean main
  score as % of the teacher's), agreement, params, size, latency and the wall time of each stage;
* ``results.md``: the same as a markdown table;
* ``chart.png``: main score per arm (mean ± std) against the teacher.

A preset with ``tasks`` runs each task as above into ``out/<task>/`` and adds a summary in ``out``:
``results.json`` with ``tasks.<task>.arms.<arm>.{mean,std,pct_of_teacher}`` and
``summary.<arm>.avg_pct_of_teacher`` (WNLI shown but not averaged, as BERT and TinyBERT do), a table laid out
like the papers' (rows: teacher and arms; columns: tasks, then the average) and one chart.

Every stage's output is kept under ``out/[<task>/]<arm>/``, so an interrupted run resumes where it stopped;
all input is checked before any work starts.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from ..config import check_keys, from_dict, read_json
from ..errors import DfkdError
from ..files import atomic_file, weights_sha256
from ..metrics import floor_score, gap_recovered, majority_baseline, pct_of_teacher, speedup
from ..registry import Registry
from ..tasks import get_task, load_task


@dataclass(frozen=True)
class Arm:
    """A transfer-set recipe: the generators whose rows are concatenated, with default settings.

    Attributes:
        generators: ``(generator name, settings)`` pairs from :data:`dfkd.transfer.GENERATORS`.
        description: one line for tables and ``--help``.
        strategy: the training strategy (:data:`dfkd.distill.trainer.STRATEGIES`) its students train with;
            its settings come from ``CompareConfig.strategies[<strategy>]``.
    """

    name: str
    generators: tuple[tuple[str, dict], ...]
    description: str
    strategy: str = "plain"


ARMS: Registry[Arm] = Registry("compare arm")
ARMS.register("original", Arm("original", (("original", {}),),
                              "data-driven KD: the task's train texts, relabelled by the teacher"))
ARMS.register("augment", Arm("augment", (("augment", {"method": "tinybert"}),),
                             "augmented KD: the train texts plus TinyBERT variants of each, relabelled by the teacher"))
ARMS.register("ood", Arm("ood", (("ood", {}),),
                         "zero-shot KD: out-of-domain sentences (ood/general) labelled by the teacher, no task data"))
ARMS.register("ood+adversarial", Arm("ood+adversarial", (("ood", {}),),
                                     "zero-shot KD: out-of-domain sentences plus MATE-KD-style adversarial rewrites",
                                     strategy="adversarial"))

#: Tasks a GLUE average leaves out (BERT and TinyBERT leave WNLI out: its dev set is adversarial to train).
EXCLUDED_FROM_AVERAGE = ("wnli",)


@dataclass
class Variant:
    """A table row that reuses an arm's transfer set with another student, recipe, training or schedule, or
    builds that arm's transfer set with other generator settings.

    Attributes: ``arm`` (whose transfer set), and overrides: ``student`` spec, ``losses`` and ``training``
    fields, ``stages`` (a schedule, see :class:`dfkd.distill.distiller.Stage`), ``strategy``, ``description``,
    ``arm_settings``: generator settings over the arm's (e.g. ``{"replace_prob": 0.2}`` for ``augment``); a row
    with other settings than its arm builds, labels and keeps its own transfer set in ``out/<row>/transfer_set``;
    ``rebalance``: class shares (one positive number per label, normalised; ``"published"``: the task's published
    GLUE train shares, :data:`dfkd.zeroshot.ood.PUBLISHED_LABEL_SHARES`) the row's students see the transfer set
    in: its largest random subset whose teacher-predicted classes come in those shares
    (:func:`dfkd.zeroshot.ood.rebalance_by_teacher`; classification tasks only).
    """

    arm: str = "original"
    student: dict | None = None
    losses: dict | None = None
    training: dict = field(default_factory=dict)
    stages: list | None = None
    strategy: str | None = None
    description: str | None = None
    rebalance: list[float] | str | None = None
    arm_settings: dict = field(default_factory=dict)


@dataclass
class CompareConfig:
    """Everything ``compare`` needs (a preset in ``configs/`` is this as JSON, read strictly).

    Attributes:
        task / data_dir: the task and its local folder (asset names allowed; ``None``: the hub). With
            ``tasks``, the defaults of every task.
        teacher: teacher folder, asset name or hub id (default with ``tasks``: ``models/teacher-minilm-l6-<task>``).
        tasks: several tasks in one run: a list of task names, or ``{task: {overrides}}`` whose overrides are
            any of these fields (``data_dir``, ``teacher``, ``training``, ``arm_settings``, ...) over the shared
            ones (dicts are merged key by key, at every depth; a ``student`` spec is replaced whole). Each task writes ``out/<task>/``; the run adds a summary.
        student: student spec (see :mod:`dfkd.distill.students`).
        arms: arm names from :data:`ARMS`.
        arm_settings: per-arm generator settings overriding the arm's defaults, e.g.
            ``{"original": {"limit": 20000}}`` (applied to every generator of that arm).
        variants: more table rows (:class:`Variant`), e.g. ``{"bilstm": {"arm": "original", "student":
            {"type": "bilstm"}}}``.
        seeds: number of student seeds per arm (seeds 0..N-1).
        training / losses: :class:`~dfkd.distill.trainer.TrainingConfig` and
            :class:`~dfkd.distill.losses.DistillationConfig` fields; ``training.max_steps`` is the budget.
        val_size: rows (or fraction) of each transfer set held out for model selection.
        strategies: settings of training strategies by name, e.g. ``{"adversarial": {AdversarialConfig fields}}``.
        latency: measure CPU latency of the teacher and of each arm's first student.
        out: output folder.
        stages: a schedule (:class:`dfkd.distill.distiller.Stage` dicts) every row trains with, e.g. TinyBERT's
            layer-wise stage then its prediction stage (``configs/tinybert-two-stage.json``); a variant's own
            ``stages`` replace it. ``None``: one stage with ``losses``.
        description: what the preset is for, one sentence (``dfkd list presets``); it changes no figure.
        limits: the data-efficiency curve: the same student and budget with each number of task examples
            (``0``: the zero-shot arms only; ``null``: all of train) for every arm that reads task data, written
            to ``out/[<task>/]limit-<n>/``, plus the curve (``results.json`` ``curve``, ``curve.png``).
        rows: run only these rows (arm or variant names; ``dfkd compare --rows``); every other row of the preset
            stays in ``results.json`` as recorded. With ``tasks``, each task runs those of its rows named, and a
            task with none of them is left out of the run and its summary (as ``--tasks`` does). ``None``: all.
    """

    task: str = "sst2"
    data_dir: str | None = "glue/SST-2"
    teacher: str | None = "models/teacher-minilm-l6-sst2"
    tasks: dict | list | None = None
    student: dict = field(default_factory=lambda: {"type": "config", "num_hidden_layers": 4, "hidden_size": 256,
                                                   "num_attention_heads": 4, "intermediate_size": 1024})
    arms: list[str] = field(default_factory=lambda: ["original"])
    arm_settings: dict[str, dict] = field(default_factory=dict)
    variants: dict[str, dict] = field(default_factory=dict)
    seeds: int = 3
    training: dict = field(default_factory=dict)
    losses: dict = field(default_factory=dict)
    val_size: int | float = 2000
    strategies: dict[str, dict] = field(default_factory=dict)
    latency: bool = True
    out: str = "runs/compare"
    name: str | None = None
    description: str | None = None
    stages: list | None = None
    limits: list[int | None] | None = None
    rows: list[str] | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> CompareConfig:
        """Load a JSON preset strictly (:func:`dfkd.config.from_dict`).

        Raises:
            DfkdError: a missing or invalid file, an unknown key (with a close match) or a wrong type.
        """
        data = read_json(path, "preset")
        data.setdefault("name", Path(path).stem)
        return from_dict(cls, data, f"preset {path}")

    def replace(self, **changes) -> CompareConfig:
        return replace(self, **changes)

    def task_configs(self) -> list[CompareConfig]:
        """One single-task config per task (just this one without ``tasks``), defaults filled in.

        Raises:
            DfkdError: an empty task list, an unknown task, or a bad per-task override.
        """
        if self.tasks is None:
            return [self]
        if not self.tasks:
            raise DfkdError("the preset's task list is empty; expected task names such as ['sst2', 'rte']")
        items = self.tasks.items() if isinstance(self.tasks, dict) else [(t, {}) for t in self.tasks]
        shared = {f.name: getattr(self, f.name) for f in fields(self)
                  if f.name not in ("tasks", "name", "out", "description")}
        configs = []
        for task, over in items:
            spec = get_task(task)
            check_keys(over or {}, [k for k in shared if k != "task"], f"preset tasks.{task}")
            merged = {**shared, "task": spec.name,
                      "data_dir": f"glue/{spec.glue_dir}" if spec.glue_dir else None,
                      "teacher": f"models/teacher-minilm-l6-{spec.name}"}
            for key, value in (over or {}).items():
                merged[key] = value if key == "student" else _merge(merged.get(key), value)
            merged.update(out=str(Path(self.out) / spec.name), name=f"{self.name}/{spec.name}" if self.name else spec.name)
            configs.append(from_dict(CompareConfig, merged, f"preset tasks.{task}"))
        return configs


def _merge(base, over):
    """``over`` on top of ``base``: dicts merged key by key at every depth, anything else replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return over


def _timed(stages: dict, key: str, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    stages[key] = round(stages.get(key, 0.0) + time.perf_counter() - t, 1)
    return out


def _json_cache(path: Path, compute, needs: tuple[str, ...] = ()):
    """Return ``compute()``, caching its JSON-able result at ``path`` (for resuming); a cached result without
    every key of ``needs`` (written by an older dfkd) is computed again."""
    if path.is_file():
        cached = json.loads(path.read_text())
        if all(k in cached for k in needs):
            return cached
    value = compute()
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2))
    return value


@dataclass
class _Row:
    """One table row to run: its name, the arm whose transfer set it uses, and its overrides."""

    name: str
    arm: Arm
    variant: Variant | None = None
    shares: tuple[float, ...] | None = None  # the variant's rebalance shares, resolved

    @property
    def has_own_settings(self) -> bool:
        """A variant row with generator settings of its own (it builds its own transfer set unless they equal
        another row's)."""
        return bool(self.variant and self.variant.arm_settings)


def _rebalance_shares(variant: Variant, spec, name: str) -> tuple[float, ...] | None:
    """A variant's ``rebalance`` as class shares, checked before any work.

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


class CompareRun:
    """One task's compare run, in parts: :meth:`check` (all input, before any work), :meth:`teacher_row`,
    :meth:`transfer_set` (per arm, built once), :meth:`run_row` (the seeds of one row) and :meth:`write`."""

    def __init__(self, config: CompareConfig):
        from ..distill.distiller import read_stages
        from ..distill.losses import DistillationConfig
        from ..distill.trainer import STRATEGIES, TrainingConfig

        self.config = config
        self.spec = get_task(config.task)
        self.rows = [_Row(a, ARMS.get(a)) for a in config.arms]
        for name, over in config.variants.items():
            variant = from_dict(Variant, over, f"variant {name!r}")
            if name in config.arms:
                raise DfkdError(f"variant {name!r} has the name of an arm; expected a new row name")
            self.rows.append(_Row(name, ARMS.get(variant.arm), variant, _rebalance_shares(variant, self.spec, name)))
        if not self.rows:
            raise DfkdError(f"task {self.spec.name}: no arms to compare; expected at least one of: "
                            f"{', '.join(sorted(ARMS.names()))}")
        #: every row of the preset (their order decides where a shared transfer set lives); ``rows`` (when set)
        #: keeps those the run computes, the rest stay as recorded
        self.all_rows = list(self.rows)
        if config.rows is not None:
            self.rows = [row for row in self.rows if row.name in config.rows]
        if config.seeds < 1:
            raise DfkdError(f"seeds must be >= 1, got {config.seeds}")
        if not config.teacher:
            raise DfkdError(f"task {self.spec.name}: no teacher; expected a teacher folder, asset name or hub id")
        self.training = TrainingConfig.from_dict(config.training, "training")
        self.losses = from_dict(DistillationConfig, config.losses, "losses")
        self.stages = {row.name: read_stages(row.variant.stages, f"variant {row.name!r} stages")
                       if row.variant and row.variant.stages is not None else read_stages(config.stages)
                       for row in self.rows}
        from ..distill.students import check_student_spec

        self.strategy_settings = {}
        for row in self.rows:
            where = f"variant {row.name!r} student" if row.variant and row.variant.student else "student"
            check_student_spec((row.variant and row.variant.student) or config.student, where)
            strategy = (row.variant and row.variant.strategy) or row.arm.strategy
            runner = STRATEGIES.get(strategy)
            runner.read_settings(config.strategies.get(strategy), f"strategies.{strategy}")
            self.strategy_settings[row.name] = (strategy, config.strategies.get(strategy))
        self.out = Path(config.out)
        self.built: dict[str, tuple] = {}
        self.teacher_sha256: str | None = None  # set by check(), or by teacher_row() for a teacher built since

    def generator_settings(self, row: _Row) -> list:
        """``[(generator, settings), ...]`` of the row's arm with the config's ``arm_settings`` applied, then a
        variant row's own ``arm_settings``."""
        own = row.variant.arm_settings if row.variant else {}
        return [(gen, {**settings, **self.config.arm_settings.get(row.arm.name, {}), **own})
                for gen, settings in row.arm.generators]

    def row_losses(self, row: _Row):
        """The row's :class:`~dfkd.distill.losses.DistillationConfig`: a variant's own recipe, else the run's."""
        from ..distill.losses import DistillationConfig

        own = row.variant.losses if row.variant else None
        return from_dict(DistillationConfig, own, f"variant {row.name} losses") if own else self.losses

    def row_training(self, row: _Row):
        """The row's :class:`~dfkd.distill.trainer.TrainingConfig`: the run's ``training`` with a variant's own
        over it (read strictly)."""
        from ..distill.trainer import TrainingConfig

        if not (row.variant and row.variant.training):
            return self.training
        return TrainingConfig.from_dict({**self.config.training, **row.variant.training},
                                        f"variant {row.name!r} training")

    def check(self) -> None:
        """Check every input before any work starts (nothing is written).

        Raises:
            DfkdError: a missing data folder; a teacher whose ``num_labels`` does not fit the task; a generator
                setting it does not take; a ``limit`` larger than the train split; a row's training settings
                that are unknown, or a ``selection_source`` its transfer set has no rows of.
        """
        from ..assets import resolve
        from ..transfer import GENERATORS, check_generator_settings

        spec, config = self.spec, self.config
        reads_train = any(GENERATORS.get(gen).reads_task_data for row in self.rows
                          for gen, _ in self.generator_settings(row))
        try:
            self.data_dir = resolve(config.data_dir, build=False) if config.data_dir else None
        except DfkdError as err:
            raise DfkdError(f"task {spec.name}: data folder {config.data_dir} not found ({err})") from None
        if self.data_dir is not None:
            folder = Path(self.data_dir)
            # zero-shot arms read no task data: their task folder needs only dev (for the final score)
            needed = [spec.files[s] for s in (("train", "dev") if reads_train else ("dev",)) if s in spec.files]
            if not folder.is_dir() or any(not (folder / f).is_file() for f in needed):
                raise DfkdError(f"task {spec.name}: data folder {config.data_dir} not found or incomplete; expected a "
                                f"folder with {' and '.join(needed)} (set data_dir, or DFKD_ASSETS for glue/...)")
        _check_teacher_labels(config.teacher, spec)
        train_rows = None
        for row in self.rows:
            source = self.row_training(row).selection_source
            gens = [GENERATORS.get(gen) for gen, _ in self.generator_settings(row)]
            # a generator that reads task data keeps the task's rows (source "original") beside its own
            sources = {g.source for g in gens} | ({"original"} if any(g.reads_task_data for g in gens) else set())
            if source is not None and source not in sources:
                raise DfkdError(f"task {spec.name}: row {row.name!r} selects on {source!r} rows but its transfer set "
                                f"has rows of {sorted(sources)} only; expected one of those as selection_source")
            for gen, settings in self.generator_settings(row):
                where = f"variant {row.name!r} arm_settings" if row.has_own_settings else f"arm_settings.{row.arm.name}"
                g = check_generator_settings(gen, settings, f"{where} ({gen} generator)")
                limit = settings.get("limit")
                if limit is not None and g.reads_task_data:
                    if train_rows is None:
                        train_rows = len(load_task(spec, "train", self.data_dir))
                    if limit > train_rows:
                        kind = "variant" if row.variant else "arm"
                        raise DfkdError(f"task {spec.name}: {kind} {row.name!r} limit {limit} is larger than the "
                                        f"train split ({train_rows} rows); expected at most {train_rows}")
        # what an earlier run left in the output folder must fit these settings: found here, not hours into the run
        for row in self.rows:
            if problem := self.stale_transfer_set(row) or self.stale_students(row):
                raise DfkdError(f"task {spec.name}: {problem}")
        # a teacher not built yet is checked once it is (teacher_row)
        self.teacher_sha256 = _teacher_sha256(config.teacher)
        if problem := self.other_teachers_outputs(self.teacher_sha256):
            raise DfkdError(f"task {spec.name}: {problem}")

    def teacher_row(self) -> dict:
        """The teacher's scores on dev (cached in ``out/teacher_eval.json``), with its dev logits."""
        from ..assets import asset_name, resolve
        from ..distill.label import load_teacher
        from .scoring import evaluate_model, machine_info

        config, spec = self.config, self.spec
        t = time.perf_counter()
        self.teacher, self.tokenizer = load_teacher(config.teacher, spec.num_labels)
        stages = {"load_s": round(time.perf_counter() - t, 1)}
        if self.teacher_sha256 is None:  # built since check() ran (or check() was not run): hashed and checked now
            self.teacher_sha256 = _teacher_sha256(config.teacher)
            if problem := self.other_teachers_outputs(self.teacher_sha256):
                raise DfkdError(f"task {spec.name}: {problem}")
        self.dev = load_task(spec, "dev", self.data_dir)
        self.out.mkdir(parents=True, exist_ok=True)  # only once the teacher and the task are known to be good

        def teacher_eval():
            t = time.perf_counter()
            row = evaluate_model(spec, self.teacher, self.tokenizer, self.dev, latency=config.latency,
                                 folder=resolve(config.teacher, build=False), max_length=self.training.max_length)
            return {**row, "logits": row["logits"].tolist(), "eval_seconds": round(time.perf_counter() - t, 1),
                    "machine": machine_info(), "teacher_sha256": self.teacher_sha256}

        row = _json_cache(self.out / "teacher_eval.json", teacher_eval)
        stages["eval_s"] = row.pop("eval_seconds")
        self.t_logits, self.t_main = np.asarray(row.pop("logits")), row["main"]
        self.t_latency = (row.get("latency_ms_b1"), row.get("latency_ms_b32"))
        self.floor = floor_score(spec, np.asarray(self.dev["label"]))
        row.pop("model", None)
        return {**row, "model": asset_name(config.teacher), "stages_s": stages}

    def transfer_set_home(self, row: _Row) -> tuple[str, str, Path]:
        """Where a row's transfer set lives: ``(key, home, folder)``. Rows with the same generators and settings
        (``key``, their JSON) share one, kept in ``out/<home>/transfer_set``; the home is the first such row's
        arm, or, for a variant with settings of its own, that row."""
        def key_of(r: _Row) -> str:
            return json.dumps(self.generator_settings(r), sort_keys=True)

        key = key_of(row)
        home = next(r for r in self.all_rows if key_of(r) == key)
        name = home.name if home.has_own_settings else home.arm.name
        return key, name, self.out / name / "transfer_set"

    def stale_transfer_set(self, row: _Row) -> str | None:
        """Why the saved transfer set in the row's folder cannot be resumed (built with other generator settings,
        or by a dfkd that did not record them), as one ``error:`` line; ``None`` if there is none or it fits.
        Reads its card only."""
        key, _, ts_dir = self.transfer_set_home(row)
        if not (ts_dir / "dfkd_card.json").is_file():
            return None
        card = json.loads((ts_dir / "dfkd_card.json").read_text())
        recipe = json.loads(key)
        if "generator_settings" not in card:
            return (f"{ts_dir} holds a transfer set from a dfkd that did not record its generator settings; expected "
                    f"one built with {recipe}: remove it or use a new output folder")
        if card["generator_settings"] != recipe:
            return (f"{ts_dir} holds a transfer set built with other generator settings "
                    f"({card['generator_settings']}); expected {recipe} to resume: remove it or use a new output "
                    "folder")
        return None

    def other_teachers_outputs(self, sha256: str | None) -> str | None:
        """Why the output folder's teacher scores or a saved transfer set cannot be reused with the teacher whose
        weights have digest ``sha256`` (:func:`dfkd.files.weights_sha256`): they record another teacher's digest,
        e.g. the teacher was rebuilt or replaced since. One ``error:`` line; ``None`` if they fit, if nothing is
        saved, or if a digest is unknown (a hub teacher, or outputs of a dfkd that did not record one)."""
        if sha256 is None:
            return None
        saved = [self.out / "teacher_eval.json"] + [self.transfer_set_home(row)[2] / "dfkd_card.json"
                                                     for row in self.rows]
        for path in dict.fromkeys(saved):
            recorded = json.loads(path.read_text()).get("teacher_sha256") if path.is_file() else None
            if recorded is not None and recorded != sha256:
                return (f"{path.parent if path.name == 'dfkd_card.json' else path} was made with another teacher "
                        f"(weights sha256 {recorded[:12]}...), not {self.config.teacher} as it is now "
                        f"({sha256[:12]}...); expected outputs of this teacher: remove it (and the students "
                        "distilled from it) or use a new output folder")
        return None

    def stale_students(self, row: _Row) -> str | None:
        """Why a seed's saved student in the row's folder cannot be resumed (trained with another schedule, other
        training settings or another loss recipe: :func:`dfkd.distill.distiller.finished_run_conflict`), as one
        ``error:`` line; ``None`` if every seed's folder is empty or fits."""
        from ..distill.distiller import finished_run_conflict

        losses, training = self.row_losses(row), self.row_training(row)
        for seed in range(self.config.seeds):
            s_dir = self.out / row.name / f"seed-{seed}" / "student"
            student = (row.variant and row.variant.student) or self.config.student
            if conflict := finished_run_conflict(s_dir, replace(training, seed=seed), losses,
                                                 self.stages[row.name], student):
                return (f"{s_dir} {conflict}; expected the same settings to resume: remove "
                        f"{self.out / row.name}/seed-* to run row {row.name!r} again, or use a new output folder")
        return None

    def transfer_set(self, row: _Row):
        """A row's labelled transfer set: its arm's, with a variant's own ``arm_settings`` if it has any. Rows
        with the same generators and settings share one, built once and kept in ``out/<home>/transfer_set``,
        where the home is the first such row's arm (or, for a variant with settings of its own, that row):
        ``(home, dataset, stage times)``."""
        from ..distill.label import label_dataset
        from ..transfer import (
            build_transfer_set,
            concatenate_transfer_sets,
            load_transfer_set,
            save_transfer_set,
        )

        generators = self.generator_settings(row)
        key, name, ts_dir = self.transfer_set_home(row)
        if key in self.built:
            return self.built[key]
        arm_dir = self.out / name
        recipe = json.loads(key)  # the settings as JSON gives them back (tuples become lists)
        if (ts_dir / "dfkd_card.json").is_file():
            if stale := self.stale_transfer_set(row):
                raise DfkdError(stale)
            ds, card = load_transfer_set(ts_dir)
            self.built[key] = (name, ds, dict(card.get("stages_s", {})))
            return self.built[key]
        stages: dict[str, float] = {}
        parts, cards = [], []
        for i, (gen, settings) in enumerate(generators):
            ds_part, card_part = _timed(stages, "generate_s", build_transfer_set, gen, self.spec, self.data_dir, 0,
                                        work_dir=arm_dir / f"generating-{i}", **settings)
            parts.append(ds_part)
            cards.append(card_part)
        ds = concatenate_transfer_sets(parts)
        ds = _timed(stages, "label_s", label_dataset, ds, self.teacher, self.tokenizer, arm_dir / "labelling",
                    max_length=self.training.max_length)
        card = {"arm": name, "generators": cards, "generator_settings": recipe, "teacher": self.config.teacher,
                "teacher_sha256": self.teacher_sha256, "task": self.spec.name,
                "num_labels": self.spec.num_labels, "seed": 0, "stages_s": dict(stages)}
        save_transfer_set(ds, ts_dir, card)
        # from the saved copy: the built rows are memory-mapped from the work folders removed below, and the
        # students' tokenising would write its cache files there, re-creating them
        ds, _ = load_transfer_set(ts_dir)
        for tmp in (arm_dir / "labelling", *arm_dir.glob("generating-*")):
            shutil.rmtree(tmp, ignore_errors=True)
        self.built[key] = (name, ds, stages)
        return self.built[key]

    def run_row(self, row: _Row) -> dict:
        """Distil and score every seed of one row; its entry of ``results.json``."""
        from ..distill.distiller import distill
        from .scoring import machine_info, size_on_disk_mb

        config, spec, v = self.config, self.spec, row.variant or Variant(arm=row.arm.name)
        ts_name, ds, ts_stages = self.transfer_set(row)
        if row.shares is not None:
            from ..zeroshot.ood import rebalance_by_teacher

            ds = ds.select(rebalance_by_teacher(np.asarray(ds["teacher_logits"]), row.shares))
        stages = dict(ts_stages)
        row_dir = self.out / row.name
        student = v.student or config.student
        losses, training = self.row_losses(row), self.row_training(row)
        strategy, settings = self.strategy_settings[row.name]
        seeds = []
        for seed in range(config.seeds):
            s_dir = row_dir / f"seed-{seed}"
            summary = distill(ds, spec, config.teacher, student, s_dir / "student", replace(training, seed=seed),
                              losses, config.val_size, strategy=strategy, strategy_settings=settings,
                              stages=self.stages[row.name])
            stages["setup_s"] = round(stages.get("setup_s", 0.0) + summary.get("setup_seconds", 0.0), 1)
            stages["distill_s"] = round(stages.get("distill_s", 0.0) + summary["train_seconds"], 1)
            score = _json_cache(s_dir / "eval.json", lambda s_dir=s_dir, seed=seed: self._student_eval(s_dir, seed),
                                needs=("kappa",))
            stages["eval_s"] = round(stages.get("eval_s", 0.0) + score["eval_seconds"], 1)
            seeds.append({"seed": seed, **score, "gap_recovered": gap_recovered(score["main"], self.t_main, self.floor),
                          "train_seconds": summary["train_seconds"],
                          "steps": summary["steps"], "best_val_agreement": summary["best_val"],
                          "best_step": summary.get("best_step")})
        mains = [s["main"] for s in seeds]
        first = seeds[0]
        overrides = sorted(k for k, val in asdict(v).items() if val and k not in ("arm", "description"))
        description = v.description or (row.arm.description if not overrides else
                                         f"{row.arm.description}; {row.name}: {overrides}")
        return {"description": description, "transfer_set": ts_name, "transfer_rows": len(ds),
                "teacher_label_shares": self.label_shares(ds), "per_seed": seeds, "scores": mains,
                "mean": statistics.fmean(mains), "std": statistics.stdev(mains) if len(mains) > 1 else None,
                "pct_of_teacher": pct_of_teacher(statistics.fmean(mains), self.t_main),
                "gap_recovered": gap_recovered(statistics.fmean(mains), self.t_main, self.floor),
                "agreement": statistics.fmean(s["agreement"] for s in seeds),
                "kappa": statistics.fmean(s["kappa"] for s in seeds),
                "params": first["params"], "size_mb": size_on_disk_mb(row_dir / "seed-0" / "student"),
                "latency_ms_b1": first["latency_ms_b1"], "latency_ms_b32": first["latency_ms_b32"],
                "speedup": speedup(self.t_latency[0], first["latency_ms_b1"]),
                "speedup_b32": speedup(self.t_latency[1], first["latency_ms_b32"]),
                "stages_s": stages, "machine": machine_info()}

    def label_shares(self, ds) -> dict:
        """Classes (score bins for regression) as the teacher predicts them on a transfer set, next to dev's
        gold labels and the teacher's dev predictions: ``{"transfer_set", "dev_teacher", "dev_gold"}`` (shares
        in label order, or per bin of 5 equal-width bins of dev's gold score range)."""
        from ..metrics import label_shares

        spec, edges = self.spec, self._dev_bins()
        gold = np.asarray(self.dev["label"], dtype=float if spec.is_regression else int)
        return {"transfer_set": label_shares(spec, np.asarray(ds["teacher_logits"]), edges),
                "dev_teacher": label_shares(spec, self.t_logits, edges), "dev_gold": label_shares(spec, gold, edges),
                "bins": edges.round(3).tolist() if edges is not None else list(spec.label_names)}

    def _dev_bins(self) -> np.ndarray | None:
        """Regression: the 5 equal-width bin edges ``(6,)`` over dev's gold score range; ``None`` otherwise."""
        if not self.spec.is_regression:
            return None
        gold = np.asarray(self.dev["label"], dtype=float)
        return np.linspace(gold.min(), gold.max(), 6)

    def _student_eval(self, s_dir: Path, seed: int) -> dict:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from .scoring import evaluate_model

        t = time.perf_counter()
        model = AutoModelForSequenceClassification.from_pretrained(s_dir / "student")
        s_tokenizer = AutoTokenizer.from_pretrained(s_dir / "student")  # a BiLSTM student has its own
        row = evaluate_model(self.spec, model, s_tokenizer, self.dev, self.t_logits, self.t_main,
                             latency=self.config.latency and seed == 0, folder=s_dir / "student",
                             max_length=self.training.max_length)
        from ..metrics import label_shares

        # the student's own predicted classes on dev, next to the teacher's and gold's (label_shares)
        row["dev_label_shares"] = label_shares(self.spec, row.pop("logits"), self._dev_bins())
        row.pop("model", None)
        return {**row, "eval_seconds": round(time.perf_counter() - t, 1)}

    def run(self) -> dict:
        """Every row; writes ``results.json``, ``results.md`` and ``chart.png`` and returns the results (with
        ``majority_baseline`` for a classification task: see :func:`dfkd.metrics.majority_baseline`)."""
        started = time.perf_counter()
        teacher = self.teacher_row()
        results = {"name": self.config.name, "task": self.spec.name, "main_metric": self.spec.main_metric,
                   "config": _portable_config(self.config), "teacher": teacher, "arms": {}}
        if (floor := majority_baseline(self.spec, self.dev["label"])) is not None:
            main = floor["metrics"][self.spec.main_metric]
            results["majority_baseline"] = {**floor, "main": main,
                                            "pct_of_teacher": pct_of_teacher(main, self.t_main)}
        results["floor"] = self.floor
        recorded = self.recorded_rows()
        # rows recorded with the same settings stay in results.json until they are reached, and rows of arms
        # this run does not list (or does not pick with ``rows``) stay for good: a run of some rows, or an
        # interrupted one, loses no figure; rows keep the preset's order
        order = [row.name for row in self.all_rows]
        order += [name for name in recorded if name not in order]
        done = {}
        for row in self.rows:
            if row.name in recorded:
                done[row.name] = recorded[row.name]
                results.setdefault("reused_rows", []).append(row.name)
                print(f"{self.spec.name}/{row.name}: reused from {self.out / 'results.json'} (same settings and "
                      "teacher score)", flush=True)
            else:
                done[row.name] = self.run_row(row)
            results["arms"] = {name: done.get(name, recorded.get(name)) for name in order
                               if name in done or name in recorded}
            results["wall_seconds"] = round(time.perf_counter() - started, 1)
            written = self.write(results)  # after every row, so a run whose student folders are gone resumes
        return written

    def recorded_rows(self) -> dict:
        """Rows already in ``out/results.json`` that this run would compute again: recorded with the same
        settings (all but ``arms``, ``out`` and ``name``) and a teacher with the same dev score. This lets a run
        resume from its results alone, e.g. on another machine from a committed ``results.json``.
        Call after :meth:`teacher_row`."""
        path = self.out / "results.json"
        if not path.is_file():
            return {}
        old = json.loads(path.read_text())
        differ = _differing_settings(self.config, old.get("config", {}))
        t_old = old.get("teacher", {}).get("main")
        sha_old = old.get("teacher", {}).get("teacher_sha256")
        other_teacher = None not in (sha_old, self.teacher_sha256) and sha_old != self.teacher_sha256
        if differ or t_old is None or abs(t_old - self.t_main) > 1e-9 or other_teacher:
            why = (f"settings {differ} differ" if differ else "another teacher's weights" if other_teacher
                   else f"teacher dev score {t_old} != {self.t_main}")
            print(f"{self.spec.name}: not reusing the rows of {path} ({why}); they are run again", flush=True)
            return {}
        rows, other = _matching_rows(self.config, old)
        if other:
            print(f"{self.spec.name}: not reusing the rows {other} of {path} (their arm settings or variant "
                  "differ)", flush=True)
        return rows

    def write(self, results: dict) -> dict:
        table = format_compare_table(results)
        with atomic_file(self.out / "results.json") as tmp:
            tmp.write_text(json.dumps(results, indent=2))
        (self.out / "results.md").write_text(table + "\n")
        plot_compare(results, self.out / "chart.png")
        return {**results, "table": table}


#: Fields of a compare run that do not change its rows' figures, and those compared row by row
#: (:func:`_row_settings`): a row's own arm settings and variant.
_ROW_NEUTRAL = ("arms", "out", "name", "rows", "description")
_PER_ROW = ("arm_settings", "variants")
_DEFAULTS = asdict(CompareConfig())


def _differing_settings(config: CompareConfig, recorded: dict) -> list[str]:
    """Sorted names of the run-wide fields that change every row's figures (all but :data:`_ROW_NEUTRAL` and
    :data:`_PER_ROW`) whose value in ``config`` differs from a recorded config (a field it lacks counts as its
    default)."""
    mine = _portable_config(config)
    return sorted(k for k, v in mine.items()
                  if k not in _ROW_NEUTRAL + _PER_ROW and recorded.get(k, _DEFAULTS.get(k)) != v)


def _row_settings(config: dict, row: str) -> dict:
    """What decides one row's figures beyond the run-wide settings, in a (recorded) config: its arm's generator
    settings and, for a variant row, the variant."""
    variant = (config.get("variants") or {}).get(row)
    arm = variant.get("arm", Variant.arm) if variant else row
    return {"arm_settings": (config.get("arm_settings") or {}).get(arm, {}), "variant": variant}


def _matching_rows(config: CompareConfig, recorded: dict) -> tuple[dict, list[str]]:
    """The rows of recorded results that ``config`` would compute the same way (same run-wide settings, checked
    by the caller with :func:`_differing_settings`, and the same arm settings / variant of their own), and
    the names of the recorded rows that were run with other settings of their own."""
    mine, old = _portable_config(config), recorded.get("config", {})
    rows, other = {}, []
    for name, row in recorded.get("arms", {}).items():
        if _row_settings(mine, name) == _row_settings(old, name):
            rows[name] = row
        else:
            other.append(name)
    return rows, other


def _portable_config(config: CompareConfig) -> dict:
    """The config as recorded in results: asset names instead of machine paths."""
    from ..assets import asset_name

    d = asdict(config)
    for key in ("data_dir", "teacher"):
        if d.get(key):
            d[key] = asset_name(d[key])
    return d


def _teacher_folder(teacher: str) -> Path | None:
    """Where a teacher given as a folder or an asset name lives (present or not); ``None`` for a hub id."""
    from ..assets import is_asset_name, locate

    return Path(teacher) if Path(str(teacher)).exists() else locate(teacher) if is_asset_name(str(teacher)) else None


def _teacher_sha256(teacher: str) -> str | None:
    """:func:`dfkd.files.weights_sha256` of a teacher given as a folder or an asset name; ``None`` for a hub id
    or an asset not built yet."""
    path = _teacher_folder(teacher)
    return weights_sha256(path) if path is not None else None


def _check_teacher_labels(teacher: str, spec) -> None:
    """A teacher whose saved config has another ``num_labels`` than the task is refused before any work.

    A default teacher that is not built yet is built for its own task, so it is not checked here.

    Raises:
        DfkdError: the mismatch, naming both numbers.
    """
    from ..assets import ASSETS

    path = _teacher_folder(teacher)
    if path is None or not (path / "config.json").is_file():
        asset = ASSETS.get(teacher) if teacher in ASSETS else None
        if asset is not None and asset.task not in (None, spec.name):
            raise DfkdError(f"teacher {teacher} is built for task {asset.task!r}, not {spec.name!r}; expected "
                            f"models/teacher-minilm-l6-{spec.name} or a teacher fine-tuned on {spec.name}")
        return
    n = json.loads((path / "config.json").read_text()).get("id2label")
    n = len(n) if n else None
    if n is not None and n != spec.num_labels:
        raise DfkdError(f"teacher {teacher} has num_labels={n} but task {spec.name!r} has {spec.num_labels}; "
                        f"expected a teacher fine-tuned on {spec.name}")


def run_compare(config: CompareConfig) -> dict:
    """Run every task's arms and write the outputs (see the module docstring).

    All tasks are checked (data folders, teachers, settings, limits) before any work starts, so bad input
    leaves no output folder.

    Returns:
        Single task: its results plus ``table``. Several: the summary (``tasks``, ``summary``) plus ``table``.

    Raises:
        DfkdError: unknown task or arm, empty task list, a missing data folder, a teacher whose ``num_labels``
            differs from the task, a limit larger than the train split, bad presets.
    """
    if config.limits is not None:
        if config.rows is not None:
            raise DfkdError("rows (--rows) picks rows of a compare run, but a limits sweep runs its arms at every "
                            "limit; expected no rows with limits (use arms)")
        return run_curve(config)
    runs = [CompareRun(c) for c in config.task_configs()]
    if config.rows is not None:
        known = list(dict.fromkeys(row.name for run in runs for row in run.all_rows))
        if not config.rows or (unknown := [r for r in config.rows if r not in known]):
            raise DfkdError(f"rows {config.rows}: {'no row named' if not config.rows else f'{unknown} not in the preset'}"
                            f"; expected some of {known}")
        runs = [run for run in runs if run.rows]
    for run in runs:
        run.check()
    if config.tasks is None:
        return runs[0].run()
    started = time.perf_counter()
    per_task = {run.spec.name: run.run() for run in runs}
    return write_summary(config, per_task, time.perf_counter() - started)


def summarise_runs(config: CompareConfig) -> dict:
    """The multi-task summary from the tasks' recorded ``out/<task>/results.json`` alone, running nothing: for
    tables assembled from tasks run one by one (on other days or machines, or committed and copied back).

    Returns:
        The summary (as :func:`run_compare` returns it for several tasks), also written to ``config.out``; its
        ``wall_seconds`` is the sum of the tasks' recorded wall times.

    Raises:
        DfkdError: a preset without ``tasks``; a task with no recorded results, or recorded with other settings
            than the preset's (naming them).
    """
    if config.tasks is None:
        raise DfkdError("a summary needs a multi-task preset; expected a preset with a tasks list")
    per_task = {}
    for task in config.task_configs():
        path = Path(task.out) / "results.json"
        if not path.is_file():
            raise DfkdError(f"task {task.task}: no results at {path}; expected a finished run of that task "
                            f"(dfkd compare --preset ... --tasks {task.task})")
        res = json.loads(path.read_text())
        if differ := _differing_settings(task, res.get("config", {})):
            raise DfkdError(f"task {task.task}: {path} was run with other settings ({', '.join(differ)}); expected "
                            "the preset's, or run that task again")
        res["arms"], other = _matching_rows(task, res)
        if other:
            print(f"{task.task}: rows {other} were recorded with other arm settings; left out", flush=True)
        if missing := [a for a in task.arms if a not in res["arms"]]:
            print(f"{task.task}: no recorded rows for {missing}; shown as '–'", flush=True)
        per_task[task.task] = res
    seconds = sum(r.get("wall_seconds") or 0.0 for r in per_task.values())
    return write_summary(config, per_task, seconds)


def _limit_configs(task: CompareConfig, limits: list[int | None]) -> list[tuple[int | None, CompareConfig]]:
    """One config per limit: 0 keeps the arms that read no task data; any other limit the arms that do, with
    ``limit`` set in their generator settings (``None``: all rows)."""
    from ..transfer import GENERATORS

    def reads(arm: str) -> bool:
        return any(GENERATORS.get(g).reads_task_data for g, _ in ARMS.get(arm).generators)

    out = []
    for limit in limits:
        arms = [a for a in task.arms if reads(a) == (limit != 0)]
        if not arms:
            raise DfkdError(f"limit {limit}: no arm of {task.arms} fits; expected arms that read task data for a "
                            "limit > 0 (original, augment) and a zero-shot arm (ood) for 0")
        settings = {a: {k: v for k, v in task.arm_settings.get(a, {}).items() if k != "limit"} for a in arms}
        if limit:
            settings = {a: {**v, "limit": limit} for a, v in settings.items()}
        out.append((limit, task.replace(arms=arms, arm_settings=settings, limits=None, variants={},
                                        out=str(Path(task.out) / f"limit-{'all' if limit is None else limit}"))))
    return out


def run_curve(config: CompareConfig) -> dict:
    """The data-efficiency curve (``limits``): every task x limit run as a compare run, then one line chart per
    task of % of the teacher against the number of task examples (log axis; zero-shot as a dashed line), seeds
    as error bars. All runs are checked before any work starts.

    Returns:
        ``{"curve": {task: {arm: [{"limit", "examples", "mean", "std", "pct_of_teacher", "scores"}, ...]}}, ...}``
        plus ``table``.
    """
    plan, limits_of = [], {}
    for task in config.task_configs():
        limits = task.limits
        if not limits or len(set(limits)) != len(limits):
            raise DfkdError(f"{task.task}: limits {limits}: expected distinct numbers of task examples such as "
                            "[0, 100, 500, 2000, null]")
        if any(limit is not None and limit < 0 for limit in limits):
            raise DfkdError(f"{task.task}: limits {limits}: expected numbers >= 0 (0: zero-shot) or null (all)")
        limits_of[task.task] = limits
        for limit, sub in _limit_configs(task.replace(tasks=None), limits):
            run = CompareRun(sub)
            run.check()
            plan.append((task.task, limit, run))
    started = time.perf_counter()
    curve: dict = {}
    for task, limit, run in plan:
        res = run.run()
        for arm in (row.name for row in run.rows):  # (not rows recorded for other arms in the same folder)
            a = res["arms"][arm]
            examples = limit if limit is not None else a["transfer_rows"] if arm == "original" else None
            curve.setdefault(task, {"main_metric": res["main_metric"], "teacher": res["teacher"]["main"],
                                    "arms": {}})["arms"].setdefault(arm, []).append(
                {"limit": limit, "examples": examples, "mean": a["mean"], "std": a["std"],
                 "pct_of_teacher": a["pct_of_teacher"], "gap_recovered": a.get("gap_recovered"),
                 "kappa": a.get("kappa"), "scores": a["scores"], "transfer_rows": a["transfer_rows"]})
    for task in curve.values():  # "all" for the augment arm: the same task rows as original's
        n_all = next((p["examples"] for p in task["arms"].get("original", []) if p["limit"] is None), None)
        for points in task["arms"].values():
            for p in points:
                if p["examples"] is None:
                    p["examples"] = n_all
    for task, t in curve.items():
        t["limits"] = limits_of[task]
    results = {"name": config.name, "limits": config.limits, "curve": curve, "config": _portable_config(config),
               "wall_seconds": round(time.perf_counter() - started, 1)}
    table = format_curve_table(results)
    out = Path(config.out)
    with atomic_file(out / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(table + "\n")
    plot_curve(results, out / "curve.png")
    return {**results, "table": table}


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
        tasks[task] = {"main_metric": res["main_metric"], "teacher": {"main": res["teacher"]["main"]},
                       "arms": {arm: _summary_arm(res, a) for arm, a in res["arms"].items()},
                       "wall_seconds": res.get("wall_seconds"), "seconds": time_split(res),
                       "machines": run_machines(res)}
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
    for key in ("kappa", "speedup", "speedup_b32"):
        out[key] = a.get(key)
    return out


def write_summary(config: CompareConfig, per_task: dict[str, dict], seconds: float) -> dict:
    """Write the multi-task ``results.json``, ``results.md`` (papers' layout) and ``chart.png`` into ``config.out``."""
    out = Path(config.out)
    results = {"name": config.name, **summarise(per_task), "config": _portable_config(config),
               "wall_seconds": round(seconds, 1)}
    table = format_summary_table(results)
    with atomic_file(out / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(table + "\n")
    plot_summary(results, out / "chart.png")
    return {**results, "table": table}


METRIC_SHORT = {"matthews_correlation": "mcc", "accuracy": "acc", "f1": "F1", "pearson": "Pearson",
                "spearmanr": "Spearman"}


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
        from .scoring import machine_line

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
              "the teacher's CPU latency over the student's, the mean of the tasks'."]
    return lines


def plot_summary(results: dict, path: Path) -> None:
    """Grouped bars: % of the teacher per task and arm (± the seeds' std as % of the teacher)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["tasks"])
    arms = list(results["summary"])
    # each task's bars are packed side by side (an arm a task has no row for leaves no gap); the colour names the arm
    present = {t: [arm for arm in arms if arm in results["tasks"][t]["arms"]] for t in tasks}
    width = 0.8 / max(1, *(len(p) for p in present.values()))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(tasks) + 2), 4.0), dpi=120)
    for arm in arms:
        xs, ys, es = [], [], []
        for i, t in enumerate(tasks):
            if arm not in present[t]:
                continue
            a = results["tasks"][t]["arms"][arm]
            xs.append(i + (present[t].index(arm) - (len(present[t]) - 1) / 2) * width)
            ys.append(a["pct_of_teacher"] or 0.0)
            es.append(100 * (a["std"] or 0.0) / abs(results["tasks"][t]["teacher"]["main"] or 1.0))
        ax.bar(xs, ys, width, yerr=es, capsize=3, label=arm)
    ax.axhline(100, ls="--", color="#c44e52", lw=1, label="teacher")
    floors = [(i, f["pct_of_teacher"]) for i, t in enumerate(tasks)
              if (f := results["tasks"][t].get("majority_baseline")) and f["pct_of_teacher"] is not None]
    if floors:
        ax.hlines([p for _, p in floors], [i - 0.45 for i, _ in floors], [i + 0.45 for i, _ in floors],
                  colors="black", linestyles=":", lw=1.5, label="majority answer")
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylabel("% of the teacher's dev score")
    ax.set_ylim(0, 110)
    ax.set_title(f"{results.get('name') or 'compare'}: students by transfer set", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the axes
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


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
    if floor := results.get("majority_baseline"):
        pct = "" if floor["pct_of_teacher"] is None else f" ({floor['pct_of_teacher']:.1f}% of the teacher)"
        lines += ["", f"Answering the majority class ({floor['label']}) to every dev row scores {floor['main']:.4f}"
                  f"{pct}: the floor every row is read against."]
    lines += ["", "gap recovered: (student − floor) / (teacher − floor) × 100 (floor: the majority answer, 0 for MCC "
              "and Pearson); κ: Cohen's kappa with the teacher's dev predictions (Pearson r for regression); "
              "speed-up: the teacher's CPU latency over the first seed's student's, at batch 1 and 32."]
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
        from .scoring import machine_line

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
