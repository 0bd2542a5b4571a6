"""Provenance and resume: whether what an earlier run left in the output folder can be reused.

One place for the checks that decide it: a saved transfer set built with other generator settings or another
teacher; a seed's student trained with other settings; recorded rows of ``results.json`` whose settings still
hold. Each check reads cards and JSON only (no model), so :func:`dfkd.compare.plan.make_plan` runs them all
before any work starts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

from ..errors import DfkdError
from ..files import atomic_file, weights_sha256
from .config import CompareConfig, Variant, task_name

#: Fields of a compare run that do not change its rows' figures, and those compared row by row
#: (:func:`row_settings`): a row's own arm settings and variant.
ROW_NEUTRAL = ("arms", "out", "name", "rows", "description")
PER_ROW = ("arm_settings", "variants")


def json_cache(path: Path, compute, needs: tuple[str, ...] = ()):
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


def teacher_folder(teacher: str) -> Path | None:
    """Where a teacher given as a folder or an asset name lives (present or not); ``None`` for a hub id."""
    from ..assets import is_asset_name, locate

    return Path(teacher) if Path(str(teacher)).exists() else locate(teacher) if is_asset_name(str(teacher)) else None


def teacher_sha256(teacher: str) -> str | None:
    """:func:`dfkd.files.weights_sha256` of a teacher given as a folder or an asset name; ``None`` for a hub id
    or an asset not built yet."""
    path = teacher_folder(teacher)
    return weights_sha256(path) if path is not None else None


def teacher_shape(teacher: str) -> dict | None:
    """The teacher's ``config.json`` as a dict, read without loading weights: from its folder; for a default
    teacher not built yet, from the base its recipe fine-tunes (the same shape); for a hub id, from the local
    hub cache if it is there. ``None`` when none of these is on disk (it is checked once the teacher is loaded).
    """
    from ..assets import ASSETS

    path = teacher_folder(teacher)
    if path is not None and (path / "config.json").is_file():
        return json.loads((path / "config.json").read_text())
    if teacher in ASSETS and ASSETS.get(teacher).task is not None:
        from ..distill.teacher import TEACHER_RECIPES, resolve_base

        recipe = TEACHER_RECIPES.get(ASSETS.get(teacher).task)
        if recipe is None:
            return None
        if recipe.base in ASSETS:
            return teacher_shape(recipe.base)
        try:
            base = Path(resolve_base(recipe.base))
        except DfkdError:
            return None
        return json.loads((base / "config.json").read_text()) if (base / "config.json").is_file() else None
    if path is None:
        try:
            from transformers import AutoConfig

            return AutoConfig.from_pretrained(teacher, local_files_only=True).to_dict()
        except (OSError, ValueError):
            return None
    return None


def check_teacher_labels(teacher: str, spec, confirm_generic: bool = False):
    """The task checked against the teacher's saved labels before any work, its classes put in the teacher's order
    (:func:`dfkd.tasks.align_labels`).

    A default teacher that is not built yet is built for its own task, so only its task is checked here.

    Returns:
        ``(task, message)``: the task (reordered or with the teacher's label names) and one line saying what
        changed (``None``: nothing).

    Raises:
        DfkdError: a teacher built for another task; another number of labels, other label names, another kind
            (regression/classification), or generic names not confirmed.
    """
    from ..assets import ASSETS
    from ..tasks import align_labels

    path = teacher_folder(teacher)
    if path is None or not (path / "config.json").is_file():
        asset = ASSETS.get(teacher) if teacher in ASSETS else None
        if asset is not None and asset.task not in (None, spec.name):
            raise DfkdError(f"teacher {teacher} is built for task {asset.task!r}, not {spec.name!r}; expected "
                            f"models/teacher-minilm-l6-{spec.name} or a teacher fine-tuned on {spec.name}")
        if asset is not None or path is not None:
            return spec, None
        config = teacher_shape(teacher)  # a hub id: its config in the local cache, if there
    else:
        config = json.loads((path / "config.json").read_text())
    if config is None:
        return spec, None
    return align_labels(spec, config.get("id2label"), is_regression_config(config), confirm_generic,
                        f"teacher {teacher}")


def is_regression_config(config: dict) -> bool:
    """Whether a model's ``config.json`` (a dict) predicts one score: ``problem_type`` regression, or one label."""
    if config.get("problem_type") is not None:
        return config["problem_type"] == "regression"
    return len(config.get("id2label") or {}) == 1 or config.get("num_labels") == 1


def transfer_set_dir(out: Path, row) -> Path:
    """The folder of a row's transfer set: ``out/<home>/transfer_set``."""
    return out / row.transfer_home / "transfer_set"


def stale_transfer_set(out: Path, row) -> str | None:
    """Why the saved transfer set of the row cannot be resumed (built with other generator settings, or by a
    dfkd that did not record them), as one ``error:`` line; ``None`` if there is none or it fits."""
    ts_dir = transfer_set_dir(out, row)
    if not (ts_dir / "dfkd_card.json").is_file():
        return None
    card = json.loads((ts_dir / "dfkd_card.json").read_text())
    recipe = json.loads(row.transfer_key)
    if "generator_settings" not in card:
        return (f"{ts_dir} holds a transfer set from a dfkd that did not record its generator settings; expected "
                f"one built with {recipe}: remove it or use a new output folder")
    if card["generator_settings"] != recipe:
        return (f"{ts_dir} holds a transfer set built with other generator settings "
                f"({card['generator_settings']}); expected {recipe} to resume: remove it or use a new output "
                "folder")
    return None


def stale_students(out: Path, row, seeds: int) -> str | None:
    """Why a seed's saved student of the row cannot be resumed (another schedule, other training settings or
    another loss recipe: :func:`dfkd.distill.distiller.finished_run_conflict`); ``None`` if every seed fits."""
    from ..distill.distiller import finished_run_conflict

    for seed in range(seeds):
        s_dir = out / row.name / f"seed-{seed}" / "student"
        stages = list(row.stages) if row.stages else None
        if conflict := finished_run_conflict(s_dir, replace(row.training, seed=seed), row.losses, stages,
                                             row.student):
            return (f"{s_dir} {conflict}; expected the same settings to resume: remove "
                    f"{out / row.name}/seed-* to run row {row.name!r} again, or use a new output folder")
    return None


def other_teachers_outputs(out: Path, rows, teacher: str, sha256: str | None) -> str | None:
    """Why the output folder's teacher scores or a saved transfer set cannot be reused with the teacher whose
    weights have digest ``sha256``: they record another teacher's digest (rebuilt or replaced since). One
    ``error:`` line; ``None`` if they fit, nothing is saved, or a digest is unknown."""
    if sha256 is None:
        return None
    saved = [out / "teacher_eval.json"] + [transfer_set_dir(out, row) / "dfkd_card.json" for row in rows]
    for path in dict.fromkeys(saved):
        recorded = json.loads(path.read_text()).get("teacher_sha256") if path.is_file() else None
        if recorded is not None and recorded != sha256:
            return (f"{path.parent if path.name == 'dfkd_card.json' else path} was made with another teacher "
                    f"(weights sha256 {recorded[:12]}...), not {teacher} as it is now "
                    f"({sha256[:12]}...); expected outputs of this teacher: remove it (and the students "
                    "distilled from it) or use a new output folder")
    return None


def portable_config(config: CompareConfig) -> dict:
    """The config as recorded in results: asset names instead of machine paths."""
    from ..assets import asset_name

    d = asdict(config)
    for key in ("data_dir", "teacher"):
        if d.get(key):
            d[key] = asset_name(d[key])
    return d


def differing_settings(config: CompareConfig, recorded: dict) -> list[str]:
    """Sorted names of the run-wide fields that change every row's figures (all but :data:`ROW_NEUTRAL` and
    :data:`PER_ROW`) whose value differs from a recorded config (a field it lacks counts as its default)."""
    mine, defaults = portable_config(config), asdict(CompareConfig())
    return sorted(k for k, v in mine.items()
                  if k not in ROW_NEUTRAL + PER_ROW and recorded.get(k, defaults.get(k)) != v)


def row_settings(config: dict, row: str) -> dict:
    """What decides one row's figures beyond the run-wide settings, in a (recorded) config: its arm's generator
    settings and, for a variant row, the variant."""
    variant = (config.get("variants") or {}).get(row)
    arm = variant.get("arm", Variant.arm) if variant else row.split("@")[0]  # a sweep's row: <arm>@<student>
    return {"arm_settings": (config.get("arm_settings") or {}).get(arm, {}), "variant": variant}


def matching_rows(config: CompareConfig, recorded: dict) -> tuple[dict, list[str]]:
    """The rows of recorded results that ``config`` would compute the same way (same run-wide settings, checked
    by the caller with :func:`differing_settings`, and the same arm settings / variant of their own), and the
    names of the recorded rows that were run with other settings of their own."""
    mine, old = portable_config(config), recorded.get("config", {})
    rows, other = {}, []
    for name, row in recorded.get("arms", {}).items():
        if row_settings(mine, name) == row_settings(old, name):
            rows[name] = row
        else:
            other.append(name)
    return rows, other


def recorded_rows(config: CompareConfig, out: Path, teacher_main: float, sha256: str | None) -> dict:
    """Rows already in ``out/results.json`` that this run would compute again: recorded with the same settings
    and a teacher with the same dev score (and weights, when both digests are known). A run resumes from its
    results alone this way, e.g. on another machine from a committed ``results.json``."""
    path = out / "results.json"
    if not path.is_file():
        return {}
    old = json.loads(path.read_text())
    differ = differing_settings(config, old.get("config", {}))
    t_old = old.get("teacher", {}).get("main")
    sha_old = old.get("teacher", {}).get("teacher_sha256")
    other_teacher = None not in (sha_old, sha256) and sha_old != sha256
    if differ or t_old is None or abs(t_old - teacher_main) > 1e-9 or other_teacher:
        why = (f"settings {differ} differ" if differ else "another teacher's weights" if other_teacher
               else f"teacher dev score {t_old} != {teacher_main}")
        print(f"{task_name(config.task)}: not reusing the rows of {path} ({why}); they are run again", flush=True)
        return {}
    rows, other = matching_rows(config, old)
    if other:
        print(f"{task_name(config.task)}: not reusing the rows {other} of {path} (their arm settings or variant differ)",
              flush=True)
    return rows
