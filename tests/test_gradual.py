"""Gradual structured pruning while distilling: the schedule it expands into, the shapes it reaches, an exact
no-op, bad settings before any work, and a run killed mid-schedule that resumes to the same student."""

from __future__ import annotations

import json

import pytest
import torch

from dfkd.distill.distiller import Stage, distill, expand_schedule, read_stages
from dfkd.distill.prune import alternate_layers, gradual_stages, prune_model
from dfkd.distill.students import check_student_spec
from dfkd.errors import DfkdError

from conftest import tiny_bert_config, toy_rows, write_sst2

TEXTS = [t for t, _ in toy_rows(24, seed=3)]
TARGET = {"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 1, "intermediate_size": 16}


@pytest.fixture()
def teacher_and_tokenizer(tiny_tokenizer_dir):
    """A tiny 2-layer teacher, hidden 32 in 2 heads of 16, intermediate 64."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    torch.manual_seed(7)
    return BertForSequenceClassification(tiny_bert_config(len(tok), num_labels=2)).eval(), tok


def _logits(model, tok):
    model.eval()
    with torch.inference_mode():
        return model(**tok(TEXTS, padding=True, return_tensors="pt")).logits


def test_alternate_layers_keep_the_top_one_and_space_the_rest_evenly():
    assert alternate_layers(6, 3) == [1, 3, 5]
    assert alternate_layers(6, 4) == [1, 2, 4, 5]
    assert alternate_layers(6, 6) == [0, 1, 2, 3, 4, 5] and alternate_layers(12, 1) == [11]
    with pytest.raises(DfkdError, match="cannot keep 7 of 6 layers"):
        alternate_layers(6, 7)


def test_no_pruning_gives_the_teachers_logits(teacher_and_tokenizer):
    teacher, tok = teacher_and_tokenizer
    same = prune_model(teacher, tok, TEXTS)  # every axis kept
    torch.testing.assert_close(_logits(same, tok), _logits(teacher, tok), rtol=0, atol=1e-5)
    same = prune_model(teacher, tok, TEXTS, num_hidden_layers=2, intermediate_size=64, layers="alternate")
    torch.testing.assert_close(_logits(same, tok), _logits(teacher, tok), rtol=0, atol=1e-5)


def test_the_schedule_cuts_ffn_then_depth_then_width_and_reaches_the_target(teacher_and_tokenizer):
    teacher, tok = teacher_and_tokenizer
    spec = {"type": "gradual_pruned", **TARGET, "steps_per_stage": 7, "hidden_dropout_prob": 0.0}
    steps = gradual_stages(spec)
    assert [sorted(k for k in s["prune"] if k in TARGET) for s in steps] == [
        ["intermediate_size"], ["num_hidden_layers"], ["hidden_size", "num_attention_heads"]]
    assert [s.get("training") for s in steps] == [{"max_steps": 7}, {"max_steps": 7}, None]
    assert all(s["prune"]["hidden_dropout_prob"] == 0.0 for s in steps)
    # the expanded plan: two pruning stages of 7 steps, then the run's stage starting with the cut to width
    _, plan = expand_schedule(spec, [Stage(training={"learning_rate": 1e-3})])
    assert [st.training for st in plan] == [{"max_steps": 7}, {"max_steps": 7}, {"learning_rate": 1e-3}]
    assert [st.selection for st in plan] == ["last", "last", None]
    assert plan[-1].prune["hidden_size"] == 16
    model = teacher
    shapes = []
    for st in plan:  # the shape after each step, by the model's own modules
        model = prune_model(model, tok, TEXTS, **st.prune)
        enc = model.bert.encoder
        shapes.append((len(enc.layer), model.config.hidden_size, enc.layer[0].attention.self.num_attention_heads,
                       enc.layer[0].intermediate.dense.out_features))
    assert shapes == [(2, 32, 2, 16), (1, 32, 2, 16), (1, 16, 1, 16)]
    assert model.bert.embeddings.word_embeddings.weight.shape[1] == 16 and model.classifier.in_features == 16
    assert expand_schedule({"type": "config"}, None) == ({"type": "config"}, None)  # other students: no schedule


def test_widths_bring_the_hidden_size_down_in_steps(tiny_tokenizer_dir):
    from transformers import AutoTokenizer, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    torch.manual_seed(7)  # hidden 32 in 4 heads of 8
    teacher = BertForSequenceClassification(tiny_bert_config(len(tok), num_labels=2, num_attention_heads=4)).eval()
    target = {"num_hidden_layers": 1, "hidden_size": 8, "num_attention_heads": 1, "intermediate_size": 16}
    steps = gradual_stages({"type": "gradual_pruned", **target, "steps_per_stage": 5, "widths": [24, 16]})
    cuts = [(s["prune"].get("hidden_size"), s["prune"].get("num_attention_heads")) for s in steps]
    assert cuts == [(None, None), (None, None), (24, 3), (16, 2), (8, 1)]  # heads of the target's size 8
    assert [s.get("training") for s in steps] == [{"max_steps": 5}] * 4 + [None]
    model = teacher
    for st in steps:
        model = prune_model(model, tok, TEXTS, **st["prune"])
    assert (model.config.hidden_size, model.config.num_attention_heads) == (8, 1)
    for bad in ([16, 24], [12], [8], "24"):
        with pytest.raises(DfkdError, match=r"gradual_pruned: widths .*expected decreasing hidden sizes above "
                                            r"hidden_size 8, each a multiple of its head size 8"):
            gradual_stages({"type": "gradual_pruned", **target, "widths": bad})


@pytest.mark.parametrize("change, message", [
    ({"hidden_size": 20, "num_attention_heads": 3}, r"hidden_size 20 must be divisible by num_attention_heads 3"),
    ({"steps_per_stage": 0}, r"steps_per_stage 0; expected at least 1"),
    ({"intermediat_size": 8}, r"intermediat_size.*intermediate_size"),
    ({"start": {"type": "teacher_layer"}}, r"teacher_layer"),
])
def test_bad_gradual_specs_are_refused_before_anything_is_built(change, message):
    with pytest.raises(DfkdError, match=message):
        check_student_spec({"type": "gradual_pruned", **TARGET, **change})


def test_a_schedule_with_a_zero_step_stage_or_a_bad_prune_is_refused():
    with pytest.raises(DfkdError, match=r"stages\[1\]: max_steps 0; expected at least 1"):
        read_stages([{"training": {"max_steps": 0}}])
    with pytest.raises(DfkdError, match=r"stages\[1\].prune: hidden_size=0"):
        read_stages([{"prune": {"hidden_size": 0}}])


def test_a_target_larger_than_the_teacher_is_refused(teacher_and_tokenizer):
    teacher, tok = teacher_and_tokenizer
    with pytest.raises(DfkdError, match=r"intermediate_size=128; expected 1..64"):
        prune_model(teacher, tok, TEXTS, intermediate_size=128)


@pytest.mark.slow
def test_gradual_distillation_killed_mid_schedule_resumes_to_the_same_student(tmp_path, tiny_teacher_dir):
    """SIGKILL at a random point of the schedule (a subprocess), then the same command: same weights as an
    uninterrupted run, and the final student has the target shape."""
    from safetensors.torch import load_file
    from test_crash_resume import _crash_then_resume

    from dfkd.cli import main

    sst2 = write_sst2(tmp_path / "SST-2", 600, 40)
    ts = tmp_path / "ts"
    assert main(["generate", "--task", "sst2", "--data-dir", str(sst2), "--teacher", str(tiny_teacher_dir),
                 "--out", str(ts)]) == 0
    student = tmp_path / "student.json"
    student.write_text(json.dumps({"type": "gradual_pruned", **TARGET, "steps_per_stage": 40}))
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"checkpoint_every": 10, "eval_every": 20}))
    ref, resumed = _crash_then_resume(
        lambda out: ["distill", "--task", "sst2", str(ts), "--teacher", str(tiny_teacher_dir), "--student",
                     str(student), "--config", str(config), "--batch-size", "8", "--max-steps", "60",
                     "--max-length", "16", "--val-size", "40", "--out", str(out)], tmp_path, seed=6)
    a, b = (json.loads((p / "dfkd_training.json").read_text()) for p in (ref, resumed))
    assert b["steps"] == a["steps"] == 40 + 40 + 60 and [s["steps"] for s in a["stages"]] == [40, 40, 60]
    wa, wb = load_file(ref / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) <= 1e-6
    shape = json.loads((ref / "config.json").read_text())
    assert {k: shape[k] for k in TARGET} == TARGET
    assert not list(tmp_path.glob("*.stage-*"))  # the intermediate students are gone once the final one exists


def test_distill_runs_the_schedule_in_process(tmp_path, tiny_teacher_dir):
    from dfkd.cli import main
    from dfkd.distill.trainer import TrainingConfig

    sst2 = write_sst2(tmp_path / "SST-2", 120, 20)
    ts = tmp_path / "ts"
    assert main(["generate", "--task", "sst2", "--data-dir", str(sst2), "--teacher", str(tiny_teacher_dir),
                 "--out", str(ts)]) == 0
    summary = distill(ts, "sst2", str(tiny_teacher_dir), {"type": "gradual_pruned", **TARGET, "steps_per_stage": 3},
                      tmp_path / "student", TrainingConfig(batch_size=8, max_steps=4, max_length=16,
                                                           checkpoint_every=0), val_size=20)
    assert [s["steps"] for s in summary["stages"]] == [3, 3, 4]
    assert len(summary["schedule"]) == 3 and summary["schedule"][0]["prune"]["intermediate_size"] == 16
