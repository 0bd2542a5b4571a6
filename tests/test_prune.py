"""The pruned student (Minitron-style init): importance by an independent route, exact slices, merged heads."""

from __future__ import annotations

import pytest
import torch

from dfkd.distill.prune import prune_teacher, teacher_importance
from dfkd.distill.students import build_student
from dfkd.errors import DfkdError

from conftest import tiny_bert_config, toy_rows

TEXTS = [t for t, _ in toy_rows(24, seed=3)]


@pytest.fixture()
def teacher_and_tokenizer(tiny_tokenizer_dir):
    """A tiny 2-layer teacher with 4 heads of size 8 (hidden 32, intermediate 64), in eval mode."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    torch.manual_seed(5)
    teacher = BertForSequenceClassification(tiny_bert_config(len(tok), num_attention_heads=4, num_labels=2)).eval()
    return teacher, tok


def _logits(model, tok, texts=TEXTS):
    model.eval()
    with torch.inference_mode():
        return model(**tok(texts, padding=True, return_tensors="pt")).logits


def test_full_shape_is_the_teacher_and_fewer_layers_match_the_layer_copy(teacher_and_tokenizer):
    teacher, tok = teacher_and_tokenizer
    same = build_student(teacher, {"type": "teacher_pruned", "num_hidden_layers": 2, "hidden_size": 32,
                                   "num_attention_heads": 4, "intermediate_size": 64}, TEXTS, tokenizer=tok)
    torch.testing.assert_close(_logits(same, tok), _logits(teacher, tok), rtol=0, atol=1e-6)
    # keeping one layer at full width is DistilBERT's layer copy, built by another route
    one = build_student(teacher, {"type": "teacher_pruned", "num_hidden_layers": 1, "hidden_size": 32,
                                  "num_attention_heads": 4, "intermediate_size": 64, "layers": [1]},
                        TEXTS, tokenizer=tok)
    copy = build_student(teacher, {"type": "teacher_layers", "layers": [1]})
    torch.testing.assert_close(_logits(one, tok), _logits(copy, tok), rtol=0, atol=1e-6)


def test_importance_ignores_padding_and_matches_per_text_averages(teacher_and_tokenizer):
    teacher, tok = teacher_and_tokenizer
    imp = teacher_importance(teacher, tok, TEXTS, batch_size=7)  # padded batches of mixed lengths
    channels, layers, tokens = torch.zeros(32), torch.zeros(2), 0
    with torch.inference_mode():
        for text in TEXTS:  # one unpadded text at a time
            states = teacher.bert(**tok(text, return_tensors="pt"), output_hidden_states=True).hidden_states
            channels += sum(h[0].abs().sum(0) for h in states)
            for i in range(2):
                layers[i] += (1 - torch.nn.functional.cosine_similarity(states[i][0], states[i + 1][0], dim=-1)).sum()
            tokens += states[0].shape[1]
    torch.testing.assert_close(imp["channels"], channels / (tokens * 3), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(imp["layers"], layers / tokens, rtol=1e-5, atol=1e-6)
    assert imp["heads"].shape == (2, 4) and imp["neurons"].shape == (2, 64)
    assert (imp["heads"] > 0).all() and (imp["neurons"] > 0).all()
    shuffled = teacher_importance(teacher, tok, TEXTS[::-1], batch_size=7)  # other batches, the same real tokens
    for key, value in imp.items():
        torch.testing.assert_close(shuffled[key], value, rtol=1e-5, atol=1e-6)


def test_dead_neurons_are_the_ones_pruned_and_logits_do_not_change(teacher_and_tokenizer):
    teacher, tok = teacher_and_tokenizer
    dead = torch.arange(1, 64, 2)  # every odd neuron: GELU(-100) = 0 and no output weight
    with torch.no_grad():
        for layer in teacher.bert.encoder.layer:
            layer.intermediate.dense.weight[dead] = 0.0
            layer.intermediate.dense.bias[dead] = -100.0
            layer.output.dense.weight[:, dead] = 0.0
    imp = teacher_importance(teacher, tok, TEXTS)
    assert (imp["neurons"][:, dead] == 0).all() and (imp["neurons"][:, ::2] > 0).all()
    student = prune_teacher(teacher, imp, 2, 32, 4, 32)
    assert student.config.intermediate_size == 32
    torch.testing.assert_close(student.bert.encoder.layer[1].intermediate.dense.bias,
                               teacher.bert.encoder.layer[1].intermediate.dense.bias[::2])
    torch.testing.assert_close(_logits(student, tok), _logits(teacher, tok), rtol=0, atol=1e-5)


def test_merged_heads_score_the_sum_of_their_teacher_heads(teacher_and_tokenizer):
    from dfkd.distill.layerwise import use_attention_scores

    teacher, tok = teacher_and_tokenizer
    imp = teacher_importance(teacher, tok, TEXTS)
    student = prune_teacher(teacher, imp, 2, 32, 2, 64)  # 2 heads of 16 = pairs of the teacher's heads of 8
    for model in (teacher, student):
        use_attention_scores(model)
        model.eval()
    batch = tok(TEXTS[:3], padding=True, return_tensors="pt")
    with torch.inference_mode():
        t = teacher(**batch, output_attentions=True).attentions[0]  # (B, 4, T, T), layer 1's input is shared
        s = student(**batch, output_attentions=True).attentions[0]  # (B, 2, T, T)
    torch.testing.assert_close(s, torch.stack([t[:, 0] + t[:, 1], t[:, 2] + t[:, 3]], 1), rtol=1e-5, atol=1e-5)


def test_narrower_student_keeps_the_most_active_channels_and_bad_shapes_fail(teacher_and_tokenizer):
    teacher, tok = teacher_and_tokenizer
    imp = teacher_importance(teacher, tok, TEXTS)
    student = prune_teacher(teacher, imp, 2, 16, 2, 32)
    kept = sorted(torch.argsort(imp["channels"], descending=True)[:16].tolist())
    torch.testing.assert_close(student.bert.embeddings.word_embeddings.weight,
                               teacher.bert.embeddings.word_embeddings.weight[:, kept])
    torch.testing.assert_close(student.classifier.weight, teacher.classifier.weight[:, kept])
    assert _logits(student, tok).shape == (len(TEXTS), 2)
    with pytest.raises(DfkdError, match="hidden_size=48; expected 1..32"):
        prune_teacher(teacher, imp, 2, 48, 4, 64)
    with pytest.raises(DfkdError, match="head size 12 .* multiple of the teacher's 8"):
        prune_teacher(teacher, imp, 2, 24, 2, 64)
    with pytest.raises(DfkdError, match=r"layers \[0, 2\]; expected 2 indices in 0..1"):
        prune_teacher(teacher, imp, 2, 32, 4, 64, layers=[0, 2])
    with pytest.raises(DfkdError, match=r"unknown setting\(s\) \['hiden_size'\]"):
        build_student(teacher, {"type": "teacher_pruned", "hiden_size": 16}, TEXTS, tokenizer=tok)
    with pytest.raises(DfkdError, match="expected its tokenizer"):
        build_student(teacher, {"type": "teacher_pruned"}, TEXTS)
