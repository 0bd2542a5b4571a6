"""``dfkd distill``: train a student on a labelled transfer set from any generator.

The distiller never looks at which generator made a row: it reads ``text`` [, ``text_pair``],
``teacher_logits`` and (when the recipe has a hard-label term) ``label``.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset

from ..eval.tasks import TaskSpec, get_task
from .data import held_out_split
from .losses import DistillationConfig
from .trainer import Trainer, TrainingConfig
from .transfer import load_transfer_set, validate


def distill(transfer_set: str | Path | Dataset, task: str | TaskSpec, teacher: str, student: dict, out: str | Path,
            config: TrainingConfig | None = None, losses: DistillationConfig | None = None,
            val_size: int | float = 0.05, adversarial=None) -> dict:
    """Distil a student and save it to ``out`` (a ``save_pretrained`` folder plus ``dfkd_training.json``).

    Args:
        transfer_set: a saved transfer set folder or a labelled :class:`Dataset`.
        teacher: the teacher (folder, asset name or hub id); its tokenizer is the student's.
        student: student spec (see :mod:`dfkd.distill.students`).
        val_size: rows (or fraction) of the transfer set held out for model selection by teacher agreement.
        adversarial: a :class:`dfkd.zeroshot.adversarial.AdversarialConfig` to add generator-made adversarial
            inputs to the student's steps (MATE-KD style); the teacher then runs online.

    Returns:
        The training summary (steps, best validation agreement, seconds, settings).

    Raises:
        DfkdError: unlabelled or malformed transfer set; teacher/student mismatch.
    """
    from .label import load_teacher
    from .students import build_student, check_compatible

    spec = get_task(task)
    ds = transfer_set if isinstance(transfer_set, Dataset) else load_transfer_set(transfer_set)[0]
    validate(ds, spec, labelled=True)
    teacher_model, tokenizer = load_teacher(teacher, spec.num_labels, device="cpu")
    config = config or TrainingConfig()
    losses = losses or DistillationConfig()
    student_model = build_student(teacher_model, student)
    check_compatible(teacher_model, student_model)
    train, val = held_out_split(ds, val_size, config.seed)
    if adversarial is None:
        del teacher_model  # logits-only losses read the stored teacher_logits
        trainer = Trainer(student_model, tokenizer, spec, config, losses, selection="teacher", out_dir=out,
                          desc=f"distill {spec.name}")
    else:
        from ..zeroshot.adversarial import AdversarialTrainer
        from .mlm import load_mlm

        generator, generator_tokenizer = load_mlm(adversarial.generator, device="cpu")
        trainer = AdversarialTrainer(student_model, tokenizer, spec, config, losses, out, teacher_model, generator,
                                     generator_tokenizer, adversarial, desc=f"adversarial KD {spec.name}")
    return trainer.fit(train, val)
