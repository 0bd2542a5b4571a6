"""Training settings (:class:`TrainingConfig`) and the ``accelerate`` set-up they ask for (device, mixed
precision)."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import torch
from accelerate import Accelerator

from ..config import from_dict
from ..errors import DfkdError

#: Values of :attr:`TrainingConfig.mixed_precision` (``accelerate``'s names).
MIXED_PRECISION = ("no", "bf16", "fp16", "auto")


def native_cpu_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (oneDNN's check: AVX512-BF16 or AMX)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def bf16_is_fast() -> bool:
    """Whether bfloat16 autocast pays here: a CUDA GPU that supports it, or a CPU with native bfloat16."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return native_cpu_bf16()


def make_accelerator(mixed_precision: str | None = None) -> Accelerator:
    """An ``Accelerator`` with the device auto-detected and the given mixed precision.

    Args:
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"``; ``"auto"``: ``"bf16"`` where it is fast
            (:func:`bf16_is_fast`), else ``"no"``; ``None``: what ``accelerate launch --mixed_precision`` set (its
            ``ACCELERATE_MIXED_PRECISION``), else ``"no"``.

    ``accelerate`` keeps one process-wide state that fixes the precision at the first ``Accelerator``; dfkd trains
    several models in one process (``compare``'s rows, a teacher built on first use), so when a model asks for
    another precision than the previous one the state is re-made (the process group and device are kept).
    Warns when bfloat16 would be emulated on a CPU without native support (slower than float32).
    """
    from accelerate.state import AcceleratorState
    from accelerate.utils import parse_choice_from_env

    wanted = mixed_precision or parse_choice_from_env("ACCELERATE_MIXED_PRECISION", "no")
    if wanted == "auto":
        wanted = "bf16" if bf16_is_fast() else "no"
    if AcceleratorState._shared_state and AcceleratorState().mixed_precision != wanted:
        AcceleratorState._reset_state()  # accelerate's own way to change it; PartialState (processes) stays
    acc = Accelerator(mixed_precision=wanted)
    if wanted == "bf16" and acc.device.type == "cpu" and not native_cpu_bf16():
        warnings.warn("mixed_precision bf16: this CPU has no native bfloat16 (AVX512-BF16 or AMX), so autocast "
                      "emulates it and training is slower than float32; expected mixed_precision 'no' here",
                      stacklevel=2)
    return acc


@dataclass
class TrainingConfig:
    """Optimisation settings (a ``TrainingArguments``-style dataclass, loadable from JSON).

    Attributes:
        batch_size: examples per optimizer step (per process).
        epochs: passes over the training set; ignored when ``max_steps`` is set.
        max_steps: total optimizer steps (the "budget" that ``compare`` holds equal across arms).
        learning_rate / weight_decay / warmup_ratio / max_grad_norm: AdamW and schedule settings;
            warm-up is ``warmup_ratio`` of the total steps.
        max_length: tokens per example after truncation.
        eval_every: steps between validations; the end of each epoch and the last step are validated too, so
            a small transfer set is scored once per pass as well (0: at the end of each epoch only).
        checkpoint_every: steps between resumable checkpoints (0: never).
        freeze_word_embeddings: keep the word embedding matrix fixed (faster on CPU, and keeps a small
            training set from moving rare words).
        layer_lr_decay: layer-wise learning-rate decay (Howard & Ruder 2018; Sun et al. 2019, "How to Fine-Tune
            BERT", eq. 4: ``lr_l = lr * decay ** (L + 1 - l)``): the head and pooler train at ``learning_rate``,
            encoder layer ``l`` (1..L) at ``decay ** (L + 1 - l)`` of it, the embeddings at ``decay ** (L + 1)``.
            1.0: one learning rate for all.
        ema_decay: exponential moving average of the weights (Polyak averaging; Polyak & Juditsky 1992): after
            every optimizer step ``avg <- d * avg + (1 - d) * weights`` (the first step copies the weights), with
            ``torch.optim.swa_utils.AveragedModel``; validation, model selection and the saved model use the
            average. Its horizon is about ``1 / (1 - d)`` steps. 0: off (the live weights).
        selection_source: hold out for model selection only rows of this transfer-set ``source``, with the rows
            derived from them left out of training (:func:`dfkd.distill.data.held_out_split`), e.g.
            ``"original"`` for an augmented transfer set: checkpoints are ranked on the task's own texts.
            ``None``: a slice of all rows.
        mixed_precision: ``None`` (what ``accelerate launch --mixed_precision`` set, else float32), ``"no"``
            (float32), ``"bf16"`` or ``"fp16"``: the student's forward pass runs under
            ``torch.autocast`` through ``accelerate`` (``Accelerator(mixed_precision=...)``; fp16 with its
            gradient scaler on a GPU), while weights, optimizer state, losses and the saved model stay float32.
            On a CPU with native bfloat16 (AVX512-BF16 or AMX) ``"bf16"`` makes a 4-layer/256 student's step
            about 1.6x faster at 80-200 tokens, and glue-quick's CoLA, MRPC and RTE students 1.31x faster end to end
            (short texts gain less); on a CPU without it bfloat16 is emulated
            and slower, and a warning says so. ``"auto"``: ``"bf16"`` where it is fast (:func:`bf16_is_fast`: a
            bfloat16 GPU or a CPU with native bfloat16), else float32; the GLUE presets use it, as emulated
            bfloat16 is slower than float32. Validation during training runs under the same autocast; the final
            scoring of a saved student (``dfkd eval``, ``compare``) is float32.
        seed: seeds weights' random init, dropout and batch order.
    """

    batch_size: int = 32
    epochs: float = 3.0
    max_steps: int | None = None
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    max_length: int = 128
    eval_every: int = 0
    eval_batch_size: int = 128
    checkpoint_every: int = 500
    freeze_word_embeddings: bool = False
    layer_lr_decay: float = 1.0
    ema_decay: float = 0.0
    selection_source: str | None = None
    mixed_precision: str | None = None
    seed: int = 0

    def __post_init__(self):
        if not 0.0 < self.layer_lr_decay <= 1.0:
            raise DfkdError(f"layer_lr_decay {self.layer_lr_decay}: expected a factor in (0, 1] (1: no decay)")
        if not 0.0 <= self.ema_decay < 1.0:
            raise DfkdError(f"ema_decay {self.ema_decay}: expected a factor in [0, 1) (0: no weight averaging)")
        if self.mixed_precision is not None and self.mixed_precision not in MIXED_PRECISION:
            raise DfkdError(f"mixed_precision {self.mixed_precision!r}: expected one of {', '.join(MIXED_PRECISION)}")

    @classmethod
    def from_dict(cls, d: dict, where: str = "training settings") -> TrainingConfig:
        """Read a dict strictly (:func:`dfkd.config.from_dict`): an unknown key or wrong type is one error line."""
        return from_dict(cls, d, where)


def layer_depth(name: str, num_layers: int) -> int:
    """How far below the top a parameter sits, for layer-wise lr decay: 0 for the head, pooler and anything
    above the encoder; ``L - l`` for a parameter of encoder layer ``l`` (0-based, named ``...layer.<l>.`` as in
    Hugging Face encoders); ``L`` + 1 for the embeddings (``L`` = ``num_layers``)."""
    if "embeddings" in name:
        return num_layers + 1
    m = re.search(r"\.layers?\.(\d+)\.", name)
    return num_layers - int(m.group(1)) if m else 0


def adamw(params, **kwargs) -> torch.optim.AdamW:
    """``torch.optim.AdamW(params, **kwargs)`` with torch's fused kernel when the parameters' device has one.

    The fused kernel (CPU, CUDA, MPS, ... in torch >= 2.4) updates every parameter in one call instead of a Python
    loop over tensors; on 2 CPU cores it makes the step 4-5x faster (measured: 11 ms instead of 53 ms for 11 M
    parameters), which matters once the word embeddings are trained. Same update rule (Loshchilov & Hutter
    2019); the result differs from the loop only by floating-point summation order. Devices without a fused
    kernel get the default implementation.
    """
    try:
        return torch.optim.AdamW(params, fused=True, **kwargs)
    except (RuntimeError, ValueError):  # raised at construction for a device without the kernel
        return torch.optim.AdamW(params, **kwargs)
