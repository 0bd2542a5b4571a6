"""What a ``compare`` run is asked to do: the preset (:class:`CompareConfig`), its extra rows (:class:`Variant`)
and the arms (:class:`Arm`), read strictly from JSON. Nothing here loads a model or reads data."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..config import check_keys, from_dict, read_json
from ..errors import DfkdError
from ..registry import Registry
from ..tasks import get_task


@dataclass(frozen=True)
class Arm:
    """A transfer-set recipe: the generators whose rows are concatenated, with default settings.

    Every registered generator is an arm of its own name (its rows, its default settings): only an arm that is
    more than one generator with its defaults is registered in :data:`ARMS` (see :func:`get_arm`).

    Attributes:
        generators: ``(generator name, settings)`` pairs from :data:`dfkd.transfer.GENERATORS`.
        description: one line for tables and ``dfkd list arms``.
        strategy: the training strategy (:data:`dfkd.distill.trainer.STRATEGIES`) its students train with;
            its settings come from ``CompareConfig.strategies[<strategy>]``.
    """

    name: str
    generators: tuple[tuple[str, dict], ...]
    description: str
    strategy: str = "plain"


ARMS: Registry[Arm] = Registry("compare arm")
ARMS.add(Arm("augment", (("augment", {"method": "tinybert"}),),
                             "augmented KD: the train texts plus TinyBERT variants of each, relabelled by the teacher"))
ARMS.add(Arm("ood+adversarial", (("ood", {}),),
                                     "zero-shot KD: out-of-domain sentences plus MATE-KD-style adversarial rewrites",
                                     strategy="adversarial"))


def get_arm(name: str) -> Arm:
    """The arm ``name``: a registered :class:`Arm`, else the generator of that name as an arm of its own.

    Raises:
        DfkdError: neither an arm nor a generator, naming both lists.
    """
    from ..transfer import GENERATORS

    if name in ARMS:
        return ARMS.get(name)
    if name in GENERATORS:
        g = GENERATORS.get(name)
        return Arm(name, ((name, {}),), g.description)
    raise DfkdError(f"unknown compare arm {name!r}; expected one of: {', '.join(arm_names())}")


def arm_names() -> list[str]:
    """Every arm name: the registered arms and every generator."""
    from ..transfer import GENERATORS

    return sorted(set(ARMS.names()) | set(GENERATORS.names()))


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
    student: dict | str | None = None
    losses: dict | None = None
    training: dict = field(default_factory=dict)
    stages: list | None = None
    strategy: str | None = None
    description: str | None = None
    rebalance: list[float] | str | None = None
    arm_settings: dict = field(default_factory=dict)


@dataclass
class CompareConfig:
    """Everything ``compare`` needs (a preset in ``configs/presets/`` is this as JSON, read strictly).

    Attributes:
        task / data_dir: the task and its local folder (asset names allowed; ``None``: the hub). With
            ``tasks``, the defaults of every task. ``task`` is a GLUE task's name or a user's task as an object
            (:class:`dfkd.tasks.CustomTask`: files, a ``datasets`` id or a ``save_to_disk`` folder, its columns,
            kind and metric; its files are relative to its own ``data_dir``; ``configs/presets/own-task.json``).
        confirm_generic_labels: accept a teacher whose labels are named ``LABEL_0``, ``LABEL_1``, ... as having the
            task's label names in their order (nothing can check it).
        teacher: teacher folder, asset name or hub id (default with ``tasks``: ``models/teacher-minilm-l6-<task>``).
        tasks: several tasks in one run: a list of task names, or ``{task: {overrides}}`` whose overrides are
            any of these fields (``data_dir``, ``teacher``, ``training``, ``arm_settings``, ...) over the shared
            ones (dicts are merged key by key, at every depth; a ``student`` spec is replaced whole). Each task
            writes ``out/<task>/``; the run adds a summary.
        student: student spec (see :mod:`dfkd.distill.students`), or the name of one in ``configs/students/``
            (``"minilm-ffn1024-pruned"``).
        arms: arm names (:func:`get_arm`: registered arms and generators).
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
        name / description: the preset's name (its file name) and what it is for, one sentence
            (``dfkd list presets``); neither changes a figure.
        stages: a schedule (:class:`dfkd.distill.distiller.Stage` dicts) every row trains with, e.g. TinyBERT's
            layer-wise stage then its prediction stage (``configs/students/tinybert-two-stage.json``); a
            variant's own ``stages`` replace it. ``None``: one stage with ``losses``.
        limits: the data-efficiency curve: the same student and budget with each number of task examples
            (``0``: the zero-shot arms only; ``null``: all of train) for every arm that reads task data, written
            to ``out/[<task>/]limit-<n>/``, plus the curve (``results.json`` ``curve``, ``curve.png``).
        students: a size sweep: named student specs (a spec, or the name of one in ``configs/students/``), each
            crossed with every arm as the row ``<arm>@<student>``; the task's results add the size-speed frontier
            (``frontier.png``: gap recovered against speed-up, one line per arm). ``None``: one ``student``.
        quantize: also score every student after int8 dynamic quantization of its linear layers (torch's
            ``quantize_dynamic``): each row's ``int8`` entry (score, gap recovered, speed-ups), what one ships
            on a CPU.
        rows: run only these rows (arm or variant names; ``dfkd compare --rows``); every other row of the preset
            stays in ``results.json`` as recorded. With ``tasks``, each task runs those of its rows named, and a
            task with none of them is left out of the run and its summary (as ``--tasks`` does). ``None``: all.
    """

    task: str | dict = "sst2"
    data_dir: str | None = "glue/SST-2"
    confirm_generic_labels: bool = False
    teacher: str | None = "models/teacher-minilm-l6-sst2"
    tasks: dict | list | None = None
    student: dict | str = field(default_factory=lambda: {"type": "config", "num_hidden_layers": 4, "hidden_size": 256,
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
    students: dict[str, dict | str] | None = None
    quantize: bool = False

    @classmethod
    def from_file(cls, path: str | Path) -> CompareConfig:
        """Load a JSON preset strictly (:func:`dfkd.config.from_dict`).

        Keys that begin with ``//`` are comments, at any depth (``configs/presets/own-task.json``).

        Raises:
            DfkdError: a missing or invalid file, an unknown key (with a close match) or a wrong type.
        """
        data = strip_comments(read_json(path, "preset"))
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
        items = self.tasks.items() if isinstance(self.tasks, dict) else [(task_name(t), {"task": t} if isinstance(
            t, dict) else {}) for t in self.tasks]
        shared = {f.name: getattr(self, f.name) for f in fields(self)
                  if f.name not in ("tasks", "name", "out", "description")}
        configs = []
        for task, over in items:
            over = dict(over or {})
            custom = isinstance(over.get("task"), dict)
            check_keys(over, [k for k in shared if k != "task"] + (["task"] if custom else []),
                       f"preset tasks.{task}")
            spec = None if custom else get_task(task)
            name = task_name(over["task"]) if custom else spec.name
            merged = {**shared, "task": over.pop("task") if custom else spec.name,
                      "data_dir": f"glue/{spec.glue_dir}" if spec and spec.glue_dir else None,
                      "teacher": None if custom else f"models/teacher-minilm-l6-{spec.name}"}
            for key, value in over.items():
                merged[key] = value if key == "student" else merge(merged.get(key), value)
            merged.update(out=str(Path(self.out) / name), name=f"{self.name}/{name}" if self.name else name)
            configs.append(from_dict(CompareConfig, merged, f"preset tasks.{task}"))
        return configs


def strip_comments(data):
    """``data`` without the keys that begin with ``//`` (comments in a JSON preset), at every depth."""
    if isinstance(data, dict):
        return {k: strip_comments(v) for k, v in data.items() if not str(k).startswith("//")}
    if isinstance(data, list):
        return [strip_comments(v) for v in data]
    return data


def task_name(task: str | dict) -> str:
    """The name of a task given by name or as a custom-task object.

    Raises:
        DfkdError: an object without a ``name``.
    """
    if isinstance(task, dict):
        if not isinstance(task.get("name"), str):
            raise DfkdError(f"a custom task needs a name; got {task}")
        return task["name"]
    return task


def merge(base, over):
    """``over`` on top of ``base``: dicts merged key by key at every depth, anything else replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
    return over


def set_value(config: CompareConfig, assignment: str) -> CompareConfig:
    """``config`` with one ``key=value`` (``compare --set``) applied: a dotted key reaches into the preset's
    dicts (``training.max_steps=300``, ``tasks.rte.training.max_steps=150``); the value is read as JSON when it
    parses (numbers, lists, objects, true/null), else kept as a string. The result is read strictly again.

    Raises:
        DfkdError: no ``=``; an unknown top-level key (with a close match), or what reading the result raises.
    """
    from dataclasses import asdict

    from ..config import parse_assignment, suggest

    key, value = parse_assignment(assignment, "training.max_steps=300")
    from ..distill.losses import DistillationConfig
    from ..distill.trainer import TrainingConfig

    data = asdict(config)
    parts = key.split(".")
    top = [f.name for f in fields(CompareConfig)]
    if parts[0] not in top:  # a training or loss setting given without its section is the usual slip
        nested = [f"{part}.{f.name}" for part, cls in (("training", TrainingConfig), ("losses", DistillationConfig))
                  for f in fields(cls)]
        hint = suggest(key, top + nested) or suggest(f"training.{key}", nested) or suggest(f"losses.{key}", nested)
        raise DfkdError(f"--set {key}: unknown key {parts[0]!r}{hint}; expected a preset key ({', '.join(top)}) "
                        "or a dotted path such as training.max_steps")
    node = data
    for part in parts[:-1]:
        if node.get(part) is None:
            node[part] = {}
        if not isinstance(node[part], dict):
            raise DfkdError(f"--set {key}: {part} is not an object; expected a key such as training.max_steps")
        node = node[part]
    node[parts[-1]] = value
    return from_dict(CompareConfig, data, f"--set {key}")


def curve_configs(config: CompareConfig) -> list[tuple[int | None, CompareConfig]]:
    """One single-task config per task and limit: 0 keeps the arms that read no task data, any other limit the
    arms that do, with ``limit`` set in their generator settings (``None``: all rows), written to
    ``out/[<task>/]limit-<n>``.

    Raises:
        DfkdError: limits that are not distinct numbers >= 0 (or null), or a limit no arm fits.
    """
    from ..transfer import GENERATORS

    def reads(arm: str) -> bool:
        return any(GENERATORS.get(g).reads_task_data for g, _ in get_arm(arm).generators)

    out = []
    for task in config.task_configs():
        limits = task.limits
        if not limits or len(set(limits)) != len(limits):
            raise DfkdError(f"{task_name(task.task)}: limits {limits}: expected distinct numbers of task examples such as "
                            "[0, 100, 500, 2000, null]")
        if any(limit is not None and limit < 0 for limit in limits):
            raise DfkdError(f"{task_name(task.task)}: limits {limits}: expected numbers >= 0 (0: zero-shot) or null (all)")
        for limit in limits:
            arms = [a for a in task.arms if reads(a) == (limit != 0)]
            if not arms:
                raise DfkdError(f"limit {limit}: no arm of {task.arms} fits; expected arms that read task data for "
                                "a limit > 0 (original, augment) and a zero-shot arm (ood) for 0")
            settings = {a: {k: v for k, v in task.arm_settings.get(a, {}).items() if k != "limit"} for a in arms}
            if limit:
                settings = {a: {**v, "limit": limit} for a, v in settings.items()}
            out.append((limit, task.replace(tasks=None, arms=arms, arm_settings=settings, limits=None, variants={},
                                            out=str(Path(task.out) / f"limit-{'all' if limit is None else limit}"))))
    return out


def presets_dirs() -> list[Path]:
    """Where ``--preset NAME`` looks, in order: ``configs/presets`` under the working directory, then the one of
    the dfkd source checkout."""
    source = Path(__file__).resolve().parents[1] / "configs" / "presets"
    return list(dict.fromkeys([Path.cwd() / "configs" / "presets", source]))


def preset_path(name: str) -> Path:
    """A preset given by path, or by name (``glue-quick`` -> ``configs/presets/glue-quick.json``).

    Raises:
        DfkdError: neither a file nor a known preset name (with a close match and the list).
    """
    from ..config import suggest

    if Path(name).is_file() or name.endswith(".json") or "/" in name:  # a path: reading it says what is wrong
        return Path(name)
    for folder in presets_dirs():
        if (folder / f"{name}.json").is_file():
            return folder / f"{name}.json"
    known = list_presets()
    raise DfkdError(f"preset {name!r} not found{suggest(name, known)}; expected a preset file or one of: "
                    f"{', '.join(known)}")


def list_presets() -> list[str]:
    """The names of the presets in :func:`presets_dirs`."""
    return sorted({p.stem for folder in presets_dirs() if folder.is_dir() for p in folder.glob("*.json")})


def student_spec(value: dict | str, where: str) -> dict:
    """A student spec given inline, or by the name of a file in ``configs/students/`` (``bert-mini-pruned``).

    Raises:
        DfkdError: a name with no such file (with a close match and the known names).
    """
    if isinstance(value, dict):
        return value
    from ..config import suggest

    folders = [d.parent / "students" for d in presets_dirs()]
    for folder in folders:
        if (folder / f"{value}.json").is_file():
            return read_json(folder / f"{value}.json", "student spec")
    known = sorted({p.stem for f in folders if f.is_dir() for p in f.glob("*.json")})
    raise DfkdError(f"{where}: unknown student {value!r}{suggest(value, known)}; expected a student spec or one of: "
                    f"{', '.join(known)}")

