"""``dfkd distill``: train a student on a labelled transfer set from any generator.

The distiller never looks at which generator made a row: it reads ``text`` [, ``text_pair``],
``teacher_logits`` and (when the recipe has a hard-label term) ``label``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from datasets import Dataset

from ..errors import DfkdError
from ..eval.tasks import TaskSpec, get_task
from .data import held_out_split
from .losses import DistillationConfig
from .trainer import Trainer, TrainingConfig
from .transfer import load_transfer_set, validate


def distill(transfer_set: str | Path | Dataset, task: str | TaskSpec, teacher: str, student: dict, out: str | Path,
            config: TrainingConfig | None = None, losses: DistillationConfig | None = None,
            val_size: int | float = 0.05, adversarial=None, stages: list[dict] | None = None) -> dict:
    """Distil a student and save it to ``out`` (a ``save_pretrained`` folder plus ``dfkd_training.json``).

    Args:
        transfer_set: a saved transfer set folder or a labelled :class:`Dataset`.
        teacher: the teacher (folder, asset name or hub id); its tokenizer is the student's.
        student: student spec (see :mod:`dfkd.distill.students`).
        config / losses: training settings and loss recipe (of every stage, unless a stage overrides them).
        val_size: rows (or fraction) of the transfer set held out for model selection by teacher agreement.
        adversarial: a :class:`dfkd.zeroshot.adversarial.AdversarialConfig` to add generator-made adversarial
            inputs to the student's steps (MATE-KD style); the teacher then runs online.
        stages: a schedule, e.g. TinyBERT's task-specific distillation (§3.2): first intermediate layers, then
            the prediction layer. Each stage is ``{"losses": {DistillationConfig fields}, "training":
            {TrainingConfig overrides}, "selection": "last" | "teacher"}`` (default selection: ``last`` for all
            but the final stage); stage ``k`` starts from stage ``k-1``'s student, writes
            ``<out>.stage-<k>`` and resumes on its own; the final stage writes ``out``.

    Returns:
        The training summary (steps, best validation agreement, seconds, settings); with ``stages``, the final
        stage's summary with ``steps`` and ``train_seconds`` summed over the stages, plus ``stages`` (each
        stage's own summary); it is also what ``<out>/dfkd_training.json`` holds.

    Raises:
        DfkdError: unlabelled or malformed transfer set; teacher/student mismatch; a recipe that needs
            teacher internals with an incompatible layer mapping.
    """
    from .label import load_teacher
    from .students import build_student_and_tokenizer, check_compatible

    spec = get_task(task)
    out = Path(out)
    ds = transfer_set if isinstance(transfer_set, Dataset) else load_transfer_set(transfer_set)[0]
    validate(ds, spec, labelled=True)
    teacher_model, tokenizer = load_teacher(teacher, spec.num_labels, device="cpu")
    config = config or TrainingConfig()
    losses = losses or DistillationConfig()
    train, val = held_out_split(ds, val_size, config.seed)
    if stages and (out / "dfkd_training.json").is_file():  # finished before; its intermediate stages are gone
        return json.loads((out / "dfkd_training.json").read_text())
    plan = stages or [{}]
    outs = [out.with_name(f"{out.name}.stage-{k}") for k in range(1, len(plan))] + [out]
    texts = list(train["text"]) + (list(train["text_pair"]) if spec.pair else [])  # for own-vocabulary students
    summaries = []
    current = student
    for k, (stage, stage_out) in enumerate(zip(plan, outs), 1):
        final = k == len(plan)
        s_losses = DistillationConfig(**stage["losses"]) if "losses" in stage else losses
        s_config = replace(config, **stage.get("training", {}))
        selection = stage.get("selection", "teacher" if final else "last")
        student_model, student_tokenizer = build_student_and_tokenizer(teacher_model, current, texts, spec.pair,
                                                                         tokenizer)
        check_compatible(teacher_model, student_model, own_vocabulary=student_tokenizer is not None)
        s_tokenizer = student_tokenizer or tokenizer
        desc = f"distill {spec.name}" + (f" (stage {k}/{len(plan)})" if stages else "")
        if adversarial is None:
            trainer = Trainer(student_model, s_tokenizer, spec, s_config, s_losses, selection=selection,
                              out_dir=stage_out, desc=desc, teacher=teacher_model)
        else:
            from ..zeroshot.adversarial import AdversarialTrainer
            from .mlm import load_mlm

            if student_tokenizer is not None:
                raise DfkdError("adversarial KD feeds the generator's tokens to the student; expected a student "
                                "that shares the teacher's vocabulary, not one with its own")
            generator, generator_tokenizer = load_mlm(adversarial.generator, device="cpu")
            trainer = AdversarialTrainer(student_model, tokenizer, spec, s_config, s_losses, stage_out, teacher_model,
                                         generator, generator_tokenizer, adversarial, desc=f"adversarial KD {spec.name}")
        summaries.append(trainer.fit(train, val))
        current = {"type": "checkpoint", "path": str(stage_out)}
    if not stages:
        return summaries[-1]
    summary = {**summaries[-1], "stages": summaries, "steps": sum(s["steps"] for s in summaries),
               "train_seconds": round(sum(s["train_seconds"] for s in summaries), 1)}
    (out / "dfkd_training.json").write_text(json.dumps(summary, indent=2))  # the schedule's record, not stage k's
    for stage_out in outs[:-1]:  # the final student exists; intermediate students are no longer needed
        shutil.rmtree(stage_out, ignore_errors=True)
    return summary
