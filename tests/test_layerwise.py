"""Layer-wise losses against hand-computed values (with padding), layer mappings, attention scores, the two-stage
schedule, the BiLSTM student, and compare variants."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset

from dfkd.distill.layerwise import (
    AttentionMSE,
    CosineHidden,
    EmbeddingMSE,
    HiddenMSE,
    layer_mapping,
    masked_mse,
    use_attention_scores,
)
from dfkd.distill.losses import DistillationConfig
from dfkd.distill.trainer import TrainingConfig
from dfkd.errors import DfkdError

from conftest import tiny_bert_config, toy_rows


def test_layer_mappings_and_their_errors():
    assert layer_mapping("uniform", 4, 12) == [(1, 3), (2, 6), (3, 9), (4, 12)]
    assert layer_mapping("last", 2, 6) == [(1, 5), (2, 6)]
    assert layer_mapping([2, 6], 2, 6) == [(1, 2), (2, 6)]
    with pytest.raises(DfkdError, match="multiple of the student's 4"):
        layer_mapping("uniform", 4, 6)
    with pytest.raises(DfkdError, match="expected 2"):
        layer_mapping([1, 2, 3], 2, 6)
    with pytest.raises(DfkdError, match=r"teacher layer\(s\) \[7\]"):
        layer_mapping([1, 7], 2, 6)
    with pytest.raises(DfkdError, match="unknown layer mapping"):
        layer_mapping("middle", 2, 6)


def test_masked_mse_ignores_padding():
    a = torch.zeros(1, 3, 2)
    b = torch.tensor([[[1.0, 1.0], [1.0, 1.0], [100.0, 100.0]]])
    assert masked_mse(a, b, torch.tensor([[1.0, 1.0, 0.0]])).item() == pytest.approx(1.0)
    assert masked_mse(a, b, torch.ones(1, 3)).item() == pytest.approx((4 + 2 * 10000) / 6)


def test_hidden_and_embedding_mse_by_hand():
    batch = {"attention_mask": torch.tensor([[1, 1, 0]])}
    s_h = (torch.ones(1, 3, 2), torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]]))
    t_h = (2 * torch.ones(1, 3, 2), torch.zeros(1, 3, 2), torch.tensor([[[0.0, 2.0], [3.0, 2.0], [0.0, 0.0]]]))
    hidden = HiddenMSE(1, 2, 2, 2, mapping="last")  # student layer 1 <-> teacher layer 2
    emb = EmbeddingMSE(2, 2)
    with torch.no_grad():
        hidden.proj.weight.copy_(torch.eye(2))
        emb.proj.weight.copy_(2 * torch.eye(2))
        hidden.proj.bias.zero_()
        emb.proj.bias.zero_()
    s, t = {"hidden_states": s_h}, {"hidden_states": t_h}
    # real tokens only: ((1-0)^2 + 0 + 0 + (4-2)^2) / 4 = 5/4
    assert hidden(s, t, batch).item() == pytest.approx(1.25)
    assert emb(s, t, batch).item() == pytest.approx(0.0)  # 2 * 1 == 2
    assert HiddenMSE(1, 2, 2, 3).proj.weight.shape == (3, 2)  # W_h maps student width 2 to teacher width 3
    # the projection's bias takes a per-dimension offset shared by all tokens: teacher = 2 * student + (5, -3)
    with torch.no_grad():
        emb.proj.bias.copy_(torch.tensor([5.0, -3.0]))
    shifted = {"hidden_states": (2 * s_h[1] + torch.tensor([5.0, -3.0]),)}
    assert emb({"hidden_states": (s_h[1],)}, shifted, batch).item() == pytest.approx(0.0)


def test_attention_mse_masks_pairs_and_averages_heads():
    batch = {"attention_mask": torch.tensor([[1, 0]])}
    s = torch.tensor([[[[1.0, 5.0], [7.0, 9.0]]]])  # (B=1, h=1, 2, 2)
    t = torch.tensor([[[[3.0, 0.0], [0.0, 0.0]]]])
    loss = AttentionMSE(1, 1)
    assert loss({"attentions": (s,)}, {"attentions": (t,)}, batch).item() == pytest.approx(4.0)  # only (0, 0)
    # 1 student head vs 2 teacher heads: head-averaged maps, (1 - (3 + 5) / 2)^2 = 9
    t2 = torch.cat([t, t + 2], dim=1)
    assert loss({"attentions": (s,)}, {"attentions": (t2,)}, batch).item() == pytest.approx(9.0)


def test_cosine_loss_by_hand():
    s = {"hidden_states": (torch.tensor([[[1.0, 0.0], [1.0, 0.0]]]),)}
    t = {"hidden_states": (torch.tensor([[[0.0, 1.0], [1.0, 0.0]]]),)}
    batch = {"attention_mask": torch.tensor([[1, 0]])}
    assert CosineHidden(2, 2)(s, t, batch).item() == pytest.approx(1.0)  # orthogonal; padded match ignored
    assert CosineHidden(2, 2)(s, t, {"attention_mask": torch.ones(1, 2)}).item() == pytest.approx(0.5)


def test_attention_scores_are_pre_softmax_and_outputs_unchanged():
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    m = BertForSequenceClassification(tiny_bert_config(30)).eval()
    ids = torch.randint(5, 30, (2, 7))
    att = torch.ones_like(ids)
    att[0, 5:] = 0
    m.set_attn_implementation("eager")
    ref = m(input_ids=ids, attention_mask=att).logits
    previous = use_attention_scores(m)
    out = m(input_ids=ids, attention_mask=att, output_attentions=True, output_hidden_states=True)
    assert previous == "eager" and torch.allclose(out.logits, ref, atol=1e-6)
    sa = m.bert.encoder.layer[0].attention.self
    h = out.hidden_states[0]
    q = sa.query(h).view(2, 7, 2, 16).transpose(1, 2)
    k = sa.key(h).view(2, 7, 2, 16).transpose(1, 2)
    assert torch.allclose(out.attentions[0], q @ k.transpose(2, 3) / 4, atol=1e-5)


def _toy_set(n):
    rows = toy_rows(n)
    return Dataset.from_dict({"text": [t for t, _ in rows], "source": ["original"] * n,
                              "label": [y for _, y in rows],
                              "teacher_logits": [[-3.0, 3.0] if y else [3.0, -3.0] for _, y in rows]})


def test_two_stage_schedule_runs_and_cleans_up(tmp_path, tiny_teacher_dir):
    from transformers import AutoConfig

    from dfkd.distill.distiller import distill

    student = {"type": "config", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
               "intermediate_size": 32}
    stages = [{"losses": {"kd_weight": 0, "extra": [{"name": "embedding_mse"}, {"name": "hidden_mse"},
                                                     {"name": "attention_mse"}]}, "training": {"max_steps": 8}},
              {"losses": {"kd_weight": 1.0}, "training": {"max_steps": 6}}]
    cfg = TrainingConfig(batch_size=16, learning_rate=3e-3, max_length=16, checkpoint_every=0)
    summary = distill(_toy_set(160), "sst2", str(tiny_teacher_dir), student, tmp_path / "s", cfg,
                      DistillationConfig(), val_size=16, stages=stages)
    assert [s["steps"] for s in summary["stages"]] == [8, 6]
    assert summary["stages"][0]["selection"] == "last" and summary["stages"][1]["selection"] == "teacher"
    assert not (tmp_path / "s.stage-1").exists() and (tmp_path / "s" / "dfkd_training.json").is_file()
    assert AutoConfig.from_pretrained(tmp_path / "s")._attn_implementation != "dfkd_scores"
    again = distill(_toy_set(160), "sst2", str(tiny_teacher_dir), student, tmp_path / "s", cfg,
                    DistillationConfig(), val_size=16, stages=stages)
    assert summary["steps"] == 14 and summary["train_seconds"] == pytest.approx(
        sum(s["train_seconds"] for s in summary["stages"]), abs=0.1)  # the whole schedule's budget and time
    assert again == summary  # finished: nothing is retrained, the schedule's record is returned


def test_layerwise_recipe_without_teacher_is_an_error(tiny_teacher_dir):
    from dfkd.distill.label import load_teacher
    from dfkd.distill.students import build_student
    from dfkd.distill.trainer import Trainer
    from dfkd.tasks import get_task

    teacher, tok = load_teacher(str(tiny_teacher_dir), 2, device="cpu")
    student = build_student(teacher, {"type": "config", "num_hidden_layers": 1, "hidden_size": 16,
                                      "num_attention_heads": 2, "intermediate_size": 32})
    losses = DistillationConfig(extra=[{"name": "hidden_mse", "student_layers": 1, "teacher_layers": 2,
                                        "student_hidden": 16, "teacher_hidden": 32}])
    with pytest.raises(DfkdError, match=r"reads the teacher's \['hidden_states'\]"):
        Trainer(student, tok, get_task("sst2"), TrainingConfig(), losses, "teacher", "/tmp/x")


def test_bilstm_student_shapes_round_trip_and_learning(tmp_path, tiny_teacher_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from dfkd.distill.distiller import distill
    from dfkd.distill.label import load_teacher, predict_logits
    from dfkd.distill.students import build_student_and_tokenizer

    teacher, _ = load_teacher(str(tiny_teacher_dir), 2, device="cpu")
    spec = {"type": "bilstm", "embedding_dim": 8, "hidden_size": 8, "mlp_hidden": 16}
    model, tok = build_student_and_tokenizer(teacher, spec, ["the good film", "a bad plot ."], pair=True)
    enc = tok(["the good film", "a film"], ["a bad plot .", "the plot"], padding=True, return_tensors="pt")
    assert tok.convert_ids_to_tokens(enc["input_ids"][1].tolist())[:6] == ["a", "film", "[SEP]", "the", "plot",
                                                                          "[SEP]"]
    assert enc["token_type_ids"][1].tolist()[:6] == [0, 0, 0, 1, 1, 1]
    model.eval()
    logits = model(**enc).logits
    assert logits.shape == (2, 2)
    model.save_pretrained(tmp_path / "b")
    tok.save_pretrained(tmp_path / "b")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "b").eval()
    assert torch.allclose(loaded(**AutoTokenizer.from_pretrained(tmp_path / "b")(
        ["the good film", "a film"], ["a bad plot .", "the plot"], padding=True, return_tensors="pt")).logits, logits)
    # distilled on the toy task (single sentences), it matches the teacher's decisions on new rows
    cfg = TrainingConfig(batch_size=16, epochs=8, learning_rate=1e-2, max_length=16, checkpoint_every=0)
    distill(_toy_set(400), "sst2", str(tiny_teacher_dir), {"type": "bilstm", "embedding_dim": 16,
                                                           "hidden_size": 16, "mlp_hidden": 16},
            tmp_path / "s", cfg, DistillationConfig(), val_size=40)
    student, s_tok = load_teacher(str(tmp_path / "s"), 2, device="cpu")
    test = _toy_set(100)
    agree = (predict_logits(student, s_tok, test.select_columns(["text"])).argmax(-1) ==
             torch.tensor(test["label"]).numpy()).mean()
    assert agree >= 0.9
    assert json.loads((tmp_path / "s" / "config.json").read_text())["model_type"] == "dfkd-bilstm"


def test_layerwise_losses_are_registered_without_importing_their_module():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "from dfkd.distill.losses import LOSSES; print(sorted(LOSSES))"],
                         capture_output=True, text=True, check=True).stdout
    assert all(name in out for name in ("embedding_mse", "hidden_mse", "attention_mse", "cosine_hidden"))
