"""General distillation (TinyBERT stage 1, offline) on tiny models: the held-out layer-wise loss falls, the
student reloads as a ``checkpoint`` student for a task, a student with another vocabulary is refused."""

from __future__ import annotations

import json
import random

import pytest

from dfkd.errors import DfkdError

from conftest import BAD, FILLER, GOOD

pytestmark = pytest.mark.slow
SHAPE = ["--num-hidden-layers", "1", "--hidden-size", "16", "--num-attention-heads", "1", "--intermediate-size", "32"]


@pytest.fixture()
def text(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "general.txt"
    path.write_text("\n".join(" ".join(rng.sample(FILLER, 3) + [rng.choice(GOOD + BAD)] + rng.sample(FILLER, 2)) + "."
                              for _ in range(400)) + "\n")
    return path


def test_general_distillation_lowers_the_held_out_loss_and_reloads_as_a_checkpoint(tmp_path, text, tiny_base_dir,
                                                                                      tiny_teacher_dir):
    from transformers import AutoModelForSequenceClassification, BertModel

    from dfkd.cli import main
    from dfkd.distill.students import STUDENTS

    out = tmp_path / "student"
    assert main(["general", "--base", str(tiny_base_dir), "--source", str(text), "--out", str(out), *SHAPE,
                 "--max-steps", "60", "--batch-size", "16", "--learning-rate", "3e-3", "--held-out", "50",
                 "--eval-every", "20", "--max-length", "16"]) == 0
    card = json.loads((out / "dfkd_general.json").read_text())
    before, after = card["held_out_before"], card["held_out_after"]
    assert set(before) == {"embedding_mse", "hidden_mse", "attention_mse", "total"}
    assert after["total"] < 0.8 * before["total"] and after["hidden_mse"] < before["hidden_mse"]
    assert card["sentences"] == 350 and card["steps"] == 60 and len(card["layers"]) == 1
    assert card["layer_mapping"] == [card["layers"][0] + 1]
    assert not list(tmp_path.glob("student.*"))  # no work folder left
    # the student starts as the base pruned from the layer it was cut from: its embeddings are the base's rows
    base = BertModel.from_pretrained(tiny_base_dir)
    saved = AutoModelForSequenceClassification.from_pretrained(out)
    assert saved.config.num_hidden_layers == 1 and saved.config.hidden_size == 16
    assert saved.config.vocab_size == base.config.vocab_size
    # a checkpoint student for a task: the head is sized for the teacher, the encoder is the general one
    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher_dir)
    student = STUDENTS.get("checkpoint")(teacher, str(out))
    assert student.config.num_labels == teacher.config.num_labels
    enc = dict(student.bert.named_parameters())
    for name, p in saved.bert.named_parameters():
        assert (enc[name] == p).all(), name


def test_a_student_with_another_vocabulary_is_refused(tmp_path, text, tiny_base_dir):
    from transformers import BertConfig, BertForSequenceClassification

    from dfkd.distill.task_agnostic import GeneralConfig, general_distill

    other = tmp_path / "other"
    BertForSequenceClassification(BertConfig(vocab_size=99, hidden_size=16, num_hidden_layers=1,
                                             num_attention_heads=1, intermediate_size=32)).save_pretrained(other)
    with pytest.raises(DfkdError, match=r"student vocabulary \(99\) differs from the base's"):
        general_distill(str(tiny_base_dir), [str(text)], tmp_path / "out", GeneralConfig(held_out=50),
                        student=str(other))
    with pytest.raises(DfkdError, match=r"general distillation: 0 usable sentences"):
        empty = tmp_path / "empty.txt"
        empty.write_text("a b\n")
        general_distill(str(tiny_base_dir), [str(empty)], tmp_path / "out", GeneralConfig(held_out=50))
    assert not list(tmp_path.glob("out*"))
