"""Adversarial pseudo-text for zero-shot KD (Rashid et al. 2020, arXiv 2012.15495; MATE-KD, Rashid et al. 2021,
arXiv 2105.05912).

A masked-LM *rewriter* perturbs the (out-of-domain) sentences of a batch: each non-special token is
masked with probability ``mask_prob`` (at least one per row), the rewriter predicts the masked
positions, and a replacement is sampled with straight-through Gumbel-softmax (Jang et al. 2017: one-hot
forward, soft gradient). The one-hot rows times each model's word-embedding matrix are the teacher's and
the student's input embeddings at those positions, so the divergence between their outputs can be
back-propagated into the rewriter.

The loop alternates, per cycle of ``student_steps`` student steps, ``rewriter_steps`` rewriter steps
before them (MATE-KD: 10 : 100):

* rewriter step: maximise ``D(teacher(x'), student(x'))`` (teacher and student fixed);
* student step: minimise ``(1 - adversarial_weight) * D_clean + adversarial_weight * D(teacher(x'), student(x'))``,
  where ``D_clean`` is the distiller's loss recipe on the clean rows (their stored ``teacher_logits``) and
  ``x'`` is a fresh hard sample from the rewriter.

``D`` is the KD loss of the recipe's temperature (KL x T^2), or MSE on the score for regression teachers.
On a CPU the adversarial term costs far more than the clean one (a rewriter forward and a teacher forward
per rewritten row: ~4x a plain step for a 4-layer student on 2 cores); ``adversarial_rows`` rewrites only that
many rows of each batch, evenly spaced through it (batches are length-sorted, so the first rows would always be
the shortest), trading adversarial coverage for speed (``None``: the whole batch, MATE-KD).
Student steps need only a hard sample, drawn exactly from the rewriter's softmax by inverse CDF
(:func:`sample_tokens`; the same law as the Gumbel-max argmax and ~10x cheaper than drawing a Gumbel per
vocabulary entry); rewriter steps use :func:`torch.nn.functional.gumbel_softmax` for the gradient.
Rewriter steps reuse the current batch with fresh masks (the reference draws new batches; the effect is
the same in expectation and keeps a resumed run exact). The generated sentences of the last
``keep_texts`` student steps' batches (argmax tokens, decoded) are saved with the teacher's logits as a
transfer set (``source=adversarial``) in ``<student>/adversarial/``.

Rewriter, teacher and student must share one vocabulary (checked). The masked LM is called the *rewriter*
(MATE-KD's "generator") so that it cannot be confused with a transfer-set generator
(:data:`dfkd.transfer.GENERATORS`). This module registers the training strategy ``adversarial``
(:data:`dfkd.distill.trainer.STRATEGIES`), which the distiller runs like any other.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..distill.data import model_inputs
from ..distill.losses import SoftTargetKL
from ..distill.mlm import masked_logits
from ..distill.trainer import STRATEGIES, Strategy, Trainer, adamw
from ..errors import DfkdError


@dataclass
class AdversarialConfig:
    """Settings of adversarial zero-shot KD.

    Attributes:
        rewriter: masked LM (folder, asset name or hub id) sharing the teacher's vocabulary.
        mask_prob: share of a sentence's tokens the rewriter rewrites.
        rewriter_steps / student_steps: steps of each per cycle (MATE-KD: 10 / 100).
        rewriter_lr: AdamW learning rate of the rewriter.
        gumbel_tau: Gumbel-softmax temperature.
        adversarial_weight: weight of the adversarial term in the student's loss (clean term: 1 - it).
        keep_texts: generated sentences saved as the ``adversarial`` transfer set.
        adversarial_rows: rows of each batch the rewriter rewrites (evenly spaced; ``None``: all).
    """

    rewriter: str = "models/mlm-minilm-l6"
    mask_prob: float = 0.3
    rewriter_steps: int = 10
    student_steps: int = 100
    rewriter_lr: float = 5e-5
    gumbel_tau: float = 1.0
    adversarial_weight: float = 0.5
    keep_texts: int = 5000
    adversarial_rows: int | None = None

    def __post_init__(self):
        if not 0 < self.mask_prob <= 1 or not 0 <= self.adversarial_weight <= 1:
            raise DfkdError(f"need 0 < mask_prob <= 1 and 0 <= adversarial_weight <= 1, got {self.mask_prob}, "
                            f"{self.adversarial_weight}")
        if self.adversarial_rows is not None and self.adversarial_rows < 1:
            raise DfkdError(f"need adversarial_rows >= 1 (or none for the whole batch), got {self.adversarial_rows}")
        if self.student_steps < 1 or self.rewriter_steps < 0:
            raise DfkdError(f"need student_steps >= 1 and rewriter_steps >= 0, got {self.student_steps}, "
                            f"{self.rewriter_steps}")


def check_shared_vocabulary(teacher_tokenizer, rewriter_tokenizer, teacher, rewriter, student) -> None:
    """Rewriter, teacher and student must read the same token ids.

    Raises:
        DfkdError: different vocabularies or embedding-matrix sizes, naming which.
    """
    if teacher_tokenizer.get_vocab() != rewriter_tokenizer.get_vocab():
        raise DfkdError("the rewriter's vocabulary differs from the teacher's; expected a masked LM built on the "
                        "teacher's tokenizer (e.g. dfkd mlm --base <the teacher's base>)")
    sizes = {name: m.get_input_embeddings().weight.shape[0]
             for name, m in (("teacher", teacher), ("rewriter", rewriter), ("student", student))}
    if len(set(sizes.values())) != 1:
        raise DfkdError(f"embedding rows differ {sizes}; expected rewriter, teacher and student to share one "
                        "vocabulary")


def sample_tokens(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One token id per row of ``logits`` ``(M, V)``, drawn from ``softmax(logits)``: ``(M,)`` long.

    Inverse-CDF sampling (one uniform per row against the cumulative softmax), the same distribution as
    ``gumbel_softmax(logits, hard=True).argmax(-1)`` for any temperature (Gumbel-max trick) without a
    Gumbel draw per vocabulary entry.
    """
    cdf = logits.float().softmax(-1).cumsum(-1)
    u = torch.rand((cdf.shape[0], 1), generator=generator, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u).squeeze(1).clamp_max(cdf.shape[1] - 1)


def special_token_mask(model, tokenizer) -> torch.Tensor:
    """``(V,)`` bool over ``model``'s input vocabulary: True for the tokenizer's special ids ([CLS], [SEP], [PAD],
    [MASK], [UNK]); ids beyond the embedding matrix are ignored."""
    special = torch.zeros(model.get_input_embeddings().weight.shape[0], dtype=torch.bool)
    special[[i for i in tokenizer.all_special_ids if i < len(special)]] = True
    return special


def mask_positions(input_ids: torch.Tensor, attention_mask: torch.Tensor, special: torch.Tensor, prob: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``(B, L)`` bool: each real, non-special token with probability ``prob``; at least one per row.

    Args:
        special: ``(V,)`` bool, True for special token ids.
    """
    allowed = attention_mask.bool() & ~special[input_ids]
    draw = torch.rand(input_ids.shape, generator=generator, device=input_ids.device) < prob
    where = draw & allowed
    empty = ~where.any(1) & allowed.any(1)
    if empty.any():  # force one random allowed position in rows that drew none
        score = torch.rand(input_ids.shape, generator=generator, device=input_ids.device).masked_fill(~allowed, -1)
        first = F.one_hot(score.argmax(1), input_ids.shape[1]).bool()
        where |= first & empty[:, None]
    return where


@torch.no_grad()
def mlm_rewrite(texts: list[str], mlm="models/mlm-minilm-l6", mask_prob: float = 0.15, seed: int = 0,
                batch_size: int = 64, max_length: int = 128) -> list[str]:
    """A masked-LM-rewritten copy of each text (a near-paraphrase for out-of-domain pairs).

    Each text is tokenised (at most ``max_length`` tokens), each non-special token masked with probability
    ``mask_prob`` (at least one per text, :func:`mask_positions`), and every masked token replaced by one
    drawn from the masked LM's softmax with the original token and the special tokens excluded
    (:func:`sample_tokens`), so every masked position changes; the ids are decoded back to text. This is the
    rewriter's forward of MATE-KD (Rashid et al. 2021), with no gradient. Deterministic for a given ``seed``.

    Args:
        texts: ``N`` strings. mlm: masked-LM folder, asset name or hub id (its tokenizer is used).

    Returns:
        ``N`` strings (an uncased masked LM gives lowercased text).

    Raises:
        DfkdError: the masked LM cannot be loaded.
    """
    from tqdm.auto import tqdm

    from ..distill.mlm import load_mlm

    model, tokenizer = load_mlm(mlm)
    device = next(model.parameters()).device
    special = special_token_mask(model, tokenizer).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    out = []
    for start in tqdm(range(0, len(texts), batch_size), desc="masked-LM rewrites", unit="batch",
                      disable=len(texts) <= batch_size, mininterval=2.0):
        enc = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt").to(device)
        where = mask_positions(enc["input_ids"], enc["attention_mask"], special, mask_prob, generator)
        masked = enc["input_ids"].masked_fill(where, tokenizer.mask_token_id)
        logits = masked_logits(model, where, input_ids=masked, attention_mask=enc["attention_mask"]).float()
        logits[:, special] = float("-inf")
        logits[torch.arange(logits.shape[0], device=device), enc["input_ids"][where]] = float("-inf")
        ids = enc["input_ids"].clone()
        ids[where] = sample_tokens(logits, generator)
        out += tokenizer.batch_decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
    return out


class AdversarialTrainer(Trainer):
    """:class:`Trainer` whose student steps add a rewriter-made adversarial term (see the module docstring).

    Args:
        teacher: the teacher classifier (run online on generated inputs, never updated).
        rewriter / rewriter_tokenizer: the masked LM and its tokenizer.
        adversarial: :class:`AdversarialConfig`.
        Other arguments as :class:`Trainer` (``selection`` is ``"teacher"``).

    Raises:
        DfkdError: vocabularies differ.
    """

    def __init__(self, student, tokenizer, task, config, losses, out_dir, teacher, rewriter, rewriter_tokenizer,
                 adversarial: AdversarialConfig, callbacks=None, desc: str = "adversarial KD"):
        super().__init__(student, tokenizer, task, config, losses, "teacher", out_dir, callbacks, desc, teacher=teacher)
        check_shared_vocabulary(tokenizer, rewriter_tokenizer, teacher, rewriter, student)
        self.teacher, self.rewriter, self.adv = teacher, rewriter, adversarial
        self.kd = SoftTargetKL(losses.temperature)
        self.special = special_token_mask(rewriter, tokenizer)
        self.kept: list[dict] = []

    def extra_settings(self) -> dict:
        return {"adversarial": asdict(self.adv)}

    def prepare_extra(self) -> None:
        acc = self.accelerator
        self.teacher.to(acc.device).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        params = [p for p in self.rewriter.parameters() if p.requires_grad]
        self.rewriter_optimizer = adamw(params, lr=self.adv.rewriter_lr)
        self.rewriter, self.rewriter_optimizer = acc.prepare(self.rewriter, self.rewriter_optimizer)
        self.special = self.special.to(acc.device)

    def save_extra(self, checkpoint_dir: Path) -> None:
        (checkpoint_dir / "adversarial_texts.json").write_text(json.dumps(self.kept))

    def load_extra(self, checkpoint_dir: Path) -> None:
        f = checkpoint_dir / "adversarial_texts.json"
        self.kept = json.loads(f.read_text()) if f.is_file() else []

    # ------------------------------------------------------------------ pieces
    def divergence(self, teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
        """The distiller's soft-target KL (x T^2; MSE for one output), :class:`~dfkd.distill.losses.SoftTargetKL`."""
        return self.kd({"logits": student_logits}, {"logits": teacher_logits}, {})

    def perturb(self, batch: dict, hard_only: bool):
        """Rewritten inputs.

        Returns:
            ``(one_hot (M, V) at the masked positions or None when hard_only, where (B, L), token ids (B, L)
            of x')``; ``one_hot`` carries the straight-through gradient.
        """
        ids = batch["input_ids"]
        where = mask_positions(ids, batch["attention_mask"], self.special, self.adv.mask_prob)
        inputs = {**model_inputs(batch), "input_ids": ids.masked_fill(where, self.tokenizer.mask_token_id)}
        logits = masked_logits(self.accelerator.unwrap_model(self.rewriter), where, **inputs)
        logits = logits.masked_fill(self.special, -1e4)  # never generate [CLS], [SEP], [PAD], [MASK]
        new_ids = ids.clone()
        if hard_only:
            new_ids[where] = sample_tokens(logits)
            return None, where, new_ids
        one_hot = F.gumbel_softmax(logits.float(), tau=self.adv.gumbel_tau, hard=True)
        new_ids[where] = one_hot.argmax(-1)
        return one_hot, where, new_ids

    def adversarial_slice(self, batch: dict) -> dict:
        """The rows of ``batch`` the rewriter rewrites: ``adversarial_rows`` evenly spaced ones (all when unset).

        Batches come length-sorted, so evenly spaced rows cover the batch's lengths, not only its shortest.
        """
        k, n = self.adv.adversarial_rows, len(batch["input_ids"])
        if k is None or k >= n:
            return batch
        rows = torch.linspace(0, n - 1, k).round().long().to(batch["input_ids"].device)
        return {key: v[rows] if torch.is_tensor(v) else v for key, v in batch.items()}

    def _embeds(self, model, ids: torch.Tensor, where: torch.Tensor, one_hot: torch.Tensor) -> torch.Tensor:
        table = self.accelerator.unwrap_model(model).get_input_embeddings().weight
        emb = table[ids]
        return emb.masked_scatter(where[..., None], (one_hot.to(table.dtype) @ table))

    def _outputs(self, model, batch, where, one_hot):
        inputs = model_inputs(batch)
        inputs["inputs_embeds"] = self._embeds(model, inputs.pop("input_ids"), where, one_hot)
        return model(**inputs).logits

    def rewriter_step(self, batch: dict) -> float:
        """One rewriter update on ``batch`` (the rows it rewrites): maximise the teacher-student divergence on
        generated inputs."""
        self.rewriter.train()
        one_hot, where, _ = self.perturb(batch, hard_only=False)
        loss = -self.divergence(self._outputs(self.teacher, batch, where, one_hot),
                                self._outputs(self.model, batch, where, one_hot))
        self.accelerator.backward(loss)
        self.rewriter_optimizer.step()
        self.rewriter_optimizer.zero_grad()
        self.model.zero_grad(set_to_none=True)
        return -loss.item()

    def training_step(self, batch: dict, step: int) -> tuple[float, dict]:
        parts: dict = {}
        adv_batch = self.adversarial_slice(batch)
        if step % self.adv.student_steps == 0 and self.adv.rewriter_steps:
            gains = [self.rewriter_step(adv_batch) for _ in range(self.adv.rewriter_steps)]
            parts["rewriter_divergence"] = sum(gains) / len(gains)
        with torch.no_grad():
            self.rewriter.eval()
            _, _, adv_ids = self.perturb(adv_batch, hard_only=True)
            adv_inputs = {**model_inputs(adv_batch), "input_ids": adv_ids}
            adv_teacher = self.teacher(**adv_inputs).logits.float()
        student, teacher = self.forward_outputs(batch)  # a layer-wise recipe gets the teacher's internals too
        clean_loss, clean_parts = self.recipe(student, teacher, batch)
        adv_loss = self.divergence(adv_teacher, self.model(**adv_inputs).logits)
        w = self.adv.adversarial_weight
        loss = (1 - w) * clean_loss + w * adv_loss
        self.optimizer_step(loss)
        self._keep(adv_ids, adv_batch, adv_teacher)
        return loss.item(), {**clean_parts, **parts, "adversarial": adv_loss.item()}

    def _keep(self, ids: torch.Tensor, batch: dict, logits: torch.Tensor) -> None:
        """Remember the decoded generated rows (one text, or a text and its pair by segment)."""
        att = batch["attention_mask"].bool().cpu()
        types = batch.get("token_type_ids", torch.zeros_like(batch["input_ids"])).cpu()
        ids = ids.cpu()
        for row, m, tt, lg in zip(ids, att, types, logits.cpu().tolist()):
            first = self.tokenizer.decode(row[m & (tt == 0)], skip_special_tokens=True).strip()
            second = self.tokenizer.decode(row[m & (tt == 1)], skip_special_tokens=True).strip()
            if first and (second or not self.task.pair):
                self.kept.append({"text": first, "text_pair": second, "teacher_logits": lg})
        self.kept = self.kept[-self.adv.keep_texts:]

    def finish_extra(self, final_dir: Path, summary: dict) -> None:
        from datasets import Dataset

        from ..transfer import save_transfer_set

        if not self.kept:
            return
        cols = {"text": [k["text"] for k in self.kept]}
        if self.task.pair:
            cols["text_pair"] = [k["text_pair"] for k in self.kept]
        cols["source"] = ["adversarial"] * len(self.kept)
        cols["teacher_logits"] = [k["teacher_logits"] for k in self.kept]
        ds = Dataset.from_dict(cols)
        save_transfer_set(ds, final_dir / "adversarial", {"generator": "adversarial", "task": self.task.name,
                                                          "num_labels": self.task.num_labels,
                                                          "settings": asdict(self.adv)})


def _build_adversarial(student, tokenizer, task, config, losses, selection, out_dir, teacher, settings,
                       own_vocabulary, desc):
    """The ``adversarial`` strategy: an :class:`AdversarialTrainer` with its rewriter loaded from ``settings``."""
    from ..distill.mlm import load_mlm

    if own_vocabulary:
        raise DfkdError("adversarial KD feeds the rewriter's tokens to the student; expected a student that shares "
                        "the teacher's vocabulary, not one with its own")
    rewriter, rewriter_tokenizer = load_mlm(settings.rewriter, device="cpu")
    return AdversarialTrainer(student, tokenizer, task, config, losses, out_dir, teacher, rewriter,
                              rewriter_tokenizer, settings, desc=f"adversarial {desc}")


STRATEGIES.add(Strategy("adversarial", _build_adversarial, AdversarialConfig))
