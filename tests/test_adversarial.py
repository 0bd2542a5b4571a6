"""Adversarial zero-shot KD on tiny models: masking, vocabulary check, rewriter/student steps, outputs."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset

from dfkd.distill.losses import DistillationConfig
from dfkd.distill.trainer import TrainingConfig
from dfkd.errors import DfkdError
from dfkd.tasks import get_task
from dfkd.zeroshot.adversarial import (
    AdversarialConfig,
    AdversarialTrainer,
    check_shared_vocabulary,
    mask_positions,
    sample_tokens,
)

from conftest import tiny_bert_config, toy_rows

STUDENT = {"type": "config", "num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
           "intermediate_size": 64}


def toy_transfer_set(n: int) -> Dataset:
    rows = toy_rows(n)
    return Dataset.from_dict({"text": [t for t, _ in rows], "source": ["ood"] * n,
                              "teacher_logits": [[-3.0, 3.0] if y else [3.0, -3.0] for _, y in rows]})


def test_mask_positions_rate_specials_padding_and_at_least_one():
    special = torch.zeros(50, dtype=torch.bool)
    special[[0, 1, 2]] = True
    ids = torch.randint(3, 50, (400, 30))
    ids[:, 0], ids[:, -1] = 1, 2  # [CLS] ... [SEP]
    att = torch.ones_like(ids)
    att[:200, 20:] = 0  # padding
    where = mask_positions(ids, att, special, 0.3, torch.Generator().manual_seed(0))
    assert not where[:, 0].any() and not where[:, -1].any() and not where[:200, 20:].any()
    assert abs(where[200:, 1:-1].float().mean().item() - 0.3) < 0.02
    tiny = mask_positions(ids[:50], att[:50], special, 1e-6, torch.Generator().manual_seed(0))
    assert (tiny.sum(1) == 1).all()  # at least (here: exactly) one per row


def test_sample_tokens_follows_the_softmax_and_never_picks_blocked_ids():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1e4, -1.0], [0.0, 0.0, 0.0, 0.0, -1e4]])
    n = 40_000
    draws = sample_tokens(logits.repeat_interleave(n, 0), torch.Generator().manual_seed(0)).view(2, n)
    for row, want in zip(draws, logits.softmax(-1)):
        freq = torch.bincount(row, minlength=5).float() / n
        assert torch.allclose(freq, want, atol=0.01), (freq, want)  # 4 sigma of a binomial at n = 40k is ~0.01
    assert not (draws[0] == 3).any() and not (draws[1] == 4).any()


def test_adversarial_rows_setting_is_validated():
    with pytest.raises(DfkdError, match="adversarial_rows >= 1"):
        AdversarialConfig(adversarial_rows=0)


def test_adversarial_slice_takes_evenly_spaced_rows(tmp_path, tiny_teacher_dir, tiny_rewriter_dir):
    tr = _trainer(tmp_path, tiny_teacher_dir, tiny_rewriter_dir, adversarial_rows=3)
    batch = {"input_ids": torch.arange(8)[:, None].repeat(1, 4), "attention_mask": torch.ones(8, 4),
             "teacher_logits": torch.arange(8.0)[:, None]}
    part = tr.adversarial_slice(batch)
    assert part["input_ids"][:, 0].tolist() == [0, 4, 7] and part["teacher_logits"][:, 0].tolist() == [0, 4, 7]
    assert tr.adversarial_slice({k: v[:2] for k, v in batch.items()})["input_ids"].shape[0] == 2  # fewer rows: all


def test_vocabulary_mismatch_is_a_clear_error(tiny_teacher_dir, tiny_rewriter_dir):
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertForMaskedLM,
        BertTokenizerFast,
    )

    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher_dir)
    tok = AutoTokenizer.from_pretrained(tiny_teacher_dir)
    other_tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                                                      "other", "words"])})
    other = BertForMaskedLM(tiny_bert_config(len(other_tok)))
    with pytest.raises(DfkdError, match="rewriter's vocabulary differs"):
        check_shared_vocabulary(tok, other_tok, teacher, other, teacher)
    with pytest.raises(DfkdError, match="embedding rows differ"):
        check_shared_vocabulary(tok, tok, teacher, other, teacher)


def _trainer(tmp_path, tiny_teacher_dir, tiny_rewriter_dir, **adv):
    from dfkd.distill.label import load_teacher
    from dfkd.distill.mlm import load_mlm
    from dfkd.distill.students import build_student

    teacher, tok = load_teacher(str(tiny_teacher_dir), 2, device="cpu")
    generator, gtok = load_mlm(str(tiny_rewriter_dir), device="cpu")
    student = build_student(teacher, STUDENT)
    cfg = TrainingConfig(batch_size=8, max_steps=4, learning_rate=1e-3, max_length=16, checkpoint_every=0)
    return AdversarialTrainer(student, tok, get_task("sst2"), cfg, DistillationConfig(temperature=2.0),
                              tmp_path / "student", teacher, generator, gtok,
                              AdversarialConfig(rewriter=str(tiny_rewriter_dir), **adv))


def test_rewriter_step_updates_only_the_rewriter(tmp_path, tiny_teacher_dir, tiny_rewriter_dir):
    from dfkd.distill.data import Collator, encode

    tr = _trainer(tmp_path, tiny_teacher_dir, tiny_rewriter_dir, rewriter_lr=1e-2)
    tr.optimizer = torch.optim.AdamW(tr.model.parameters())
    tr.prepare_extra()
    ds = encode(toy_transfer_set(8), tr.tokenizer, 16)
    batch = Collator(tr.tokenizer)([ds[i] for i in range(8)])
    before = {n: {k: v.clone() for k, v in m.state_dict().items()}
              for n, m in (("teacher", tr.teacher), ("student", tr.model), ("rewriter", tr.rewriter))}
    one_hot, where, new_ids = tr.perturb(batch, hard_only=False)
    assert one_hot.shape == (int(where.sum()), tr.special.numel())
    assert torch.equal(one_hot.sum(-1), torch.ones(len(one_hot))) and one_hot.requires_grad  # straight-through
    assert not tr.special[new_ids[where]].any() and torch.equal(new_ids[~where], batch["input_ids"][~where])
    divergence = tr.rewriter_step(batch)
    assert divergence > 0
    after = {"teacher": tr.teacher, "student": tr.model, "rewriter": tr.rewriter}
    changed = {n: any(not torch.equal(before[n][k], v) for k, v in m.state_dict().items()) for n, m in after.items()}
    assert changed == {"teacher": False, "student": False, "rewriter": True}


def test_adversarial_distill_writes_student_and_adversarial_transfer_set(tmp_path, tiny_teacher_dir,
                                                                        tiny_rewriter_dir):
    from transformers import AutoModelForSequenceClassification

    from dfkd.distill.distiller import distill
    from dfkd.transfer import load_transfer_set, validate

    cfg = TrainingConfig(batch_size=8, max_steps=6, learning_rate=1e-3, max_length=16, checkpoint_every=0)
    adv = {"rewriter": str(tiny_rewriter_dir), "rewriter_steps": 2, "student_steps": 3, "keep_texts": 20}
    summary = distill(toy_transfer_set(64), "sst2", str(tiny_teacher_dir), STUDENT, tmp_path / "s", cfg,
                      DistillationConfig(), val_size=8, strategy="adversarial", strategy_settings=adv)
    assert summary["steps"] == 6 and summary["adversarial"]["rewriter_steps"] == 2
    AutoModelForSequenceClassification.from_pretrained(tmp_path / "s")
    ds, card = load_transfer_set(tmp_path / "s" / "adversarial")
    validate(ds, get_task("sst2"))
    assert len(ds) == 20 and set(ds["source"]) == {"adversarial"} and card["settings"]["mask_prob"] == 0.3
    assert json.loads((tmp_path / "s" / "dfkd_training.json").read_text())["adversarial"]["student_steps"] == 3


def test_adversarial_rows_rewrites_only_that_many_rows_per_step(tmp_path, tiny_teacher_dir, tiny_rewriter_dir):
    from dfkd.distill.distiller import distill
    from dfkd.transfer import load_transfer_set

    cfg = TrainingConfig(batch_size=8, max_steps=5, learning_rate=1e-3, max_length=16, checkpoint_every=0)
    adv = {"rewriter": str(tiny_rewriter_dir), "rewriter_steps": 1, "student_steps": 2, "keep_texts": 1000,
           "adversarial_rows": 3}
    distill(toy_transfer_set(64), "sst2", str(tiny_teacher_dir), STUDENT, tmp_path / "s", cfg,
            DistillationConfig(), val_size=8, strategy="adversarial", strategy_settings=adv)
    ds, _ = load_transfer_set(tmp_path / "s" / "adversarial")
    # 3 rewritten rows per student step (whole batches would give up to 40); a row the tiny rewriter turned
    # into text that decodes empty is not kept
    assert 12 <= len(ds) <= 5 * 3
