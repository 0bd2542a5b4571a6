"""dfkd: knowledge distillation for NLP when the teacher's training data is scarce or absent.

Sub-packages: :mod:`dfkd.augment` (data augmentation generators), :mod:`dfkd.zeroshot` (generators that
need no task data), :mod:`dfkd.distill` (transfer sets, teacher labelling, the common distiller) and
:mod:`dfkd.eval` (GLUE tasks, metrics, evaluation, ``compare``).
"""

__version__ = "0.1.0"
