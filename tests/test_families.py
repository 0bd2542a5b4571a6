"""Teachers of every common encoder family, as tiny random models built from ``AutoConfig`` (no download): pruning
and teacher-layers students checked against the teacher's own logits, and generate -> label -> distill (soft targets
plus a layer-wise loss) -> eval for each; a student with another tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dfkd.distill.architectures import architecture_of, layer_list, model_shape
from dfkd.errors import DfkdError

from conftest import toy_rows

FAMILIES = ["bert", "roberta", "xlm-roberta", "electra", "distilbert", "deberta-v2", "mpnet"]
PRUNABLE = [f for f in FAMILIES if architecture_of({"model_type": f}).prunable]
TEXTS = [t for t, _ in toy_rows(48, 7)]


def make_teacher(model_type: str, tokenizer_dir: Path, folder: Path, seed: int = 0) -> Path:
    """A tiny 2-class teacher of ``model_type`` (2 layers, hidden 32, 4 heads, FFN 64) with the tiny tokenizer."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    if model_type == "distilbert":  # DistilBERT's tokenizers give no token types
        tok.model_input_names = ["input_ids", "attention_mask"]
    arch = architecture_of({"model_type": model_type})
    sizes = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64}
    extra = {"embedding_size": 16} if model_type == "electra" else {}
    config = AutoConfig.for_model(model_type, vocab_size=len(tok), max_position_embeddings=64, type_vocab_size=2,
                                  pad_token_id=tok.pad_token_id, num_labels=2,
                                  id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
                                  **{arch.config_keys[k]: v for k, v in sizes.items()}, **extra)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    with torch.no_grad():  # clearly non-uniform logits
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(3.0)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def logits(model, tok, texts=TEXTS) -> torch.Tensor:
    from dfkd.distill.data import accepted_inputs

    model.eval()
    with torch.no_grad():
        batch = tok(texts, padding=True, return_tensors="pt")
        return model(**accepted_inputs(model, batch)).logits


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory, tiny_tokenizer_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = make_teacher(request.param, tiny_tokenizer_dir, tmp_path_factory.mktemp(request.param))
    return (request.param, folder, AutoModelForSequenceClassification.from_pretrained(folder),
            AutoTokenizer.from_pretrained(folder))


def test_a_cut_to_the_teachers_own_shape_is_the_teacher(family, capsys):
    from dfkd.distill.prune import prune_model

    name, _, teacher, tok = family
    same = prune_model(teacher, tok, TEXTS)
    assert type(same) is type(teacher) and model_shape(same.config) == model_shape(teacher.config)
    torch.testing.assert_close(logits(same, tok), logits(teacher, tok), atol=1e-5, rtol=1e-5)


def test_the_teacher_layers_student_is_the_teacher_without_the_dropped_layers(family):
    from dfkd.distill.students import build_student

    name, _, teacher, tok = family
    student = build_student(teacher, {"type": "teacher_layers", "layers": [1]})
    assert len(layer_list(student)) == 1 and model_shape(student.config)["num_hidden_layers"] == 1
    assert len(layer_list(teacher)) == 2  # the teacher is untouched
    manual = type(teacher)(teacher.config)  # the same model with layer 0 made the identity, by another route
    manual.load_state_dict(teacher.state_dict())
    manual.config.num_hidden_layers = 2
    torch.testing.assert_close(logits(student, tok), _skip_first_layer(manual, tok), atol=1e-5, rtol=1e-5)


def _skip_first_layer(model, tok):
    """Logits of ``model`` with its first layer replaced by the identity (a forward hook returning its input)."""
    first = layer_list(model)[0]
    handle = first.register_forward_hook(lambda mod, args, kwargs, out: (kwargs.get("hidden_states", args[0] if args
                                                                                else None),) + tuple(out[1:])
                                         if isinstance(out, tuple) else kwargs.get("hidden_states", args[0]),
                                         with_kwargs=True)
    try:
        return logits(model, tok)
    finally:
        handle.remove()


@pytest.mark.parametrize("name", PRUNABLE)
def test_dropped_heads_and_neurons_that_contribute_nothing_leave_the_logits_unchanged(name, tmp_path,
                                                                                       tiny_tokenizer_dir):
    """Pruning checked by an independent route: FFN units whose output weights are zero contribute nothing, so
    cutting exactly those (ranked last) keeps the logits; heads are cut too (two teacher heads side by side per
    student head, which changes the scores: only the shape is checked there)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from dfkd.distill.architectures import attribute
    from dfkd.distill.prune import prune_teacher, teacher_importance

    folder = make_teacher(name, tiny_tokenizer_dir, tmp_path / name)
    teacher, tok = AutoModelForSequenceClassification.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    arch = architecture_of(teacher)
    dead_units = torch.arange(0, 64, 2)
    with torch.no_grad():
        for layer in layer_list(teacher):
            attribute(layer, arch.ffn_out).weight[:, dead_units] = 0.0
    imp = {k: v.clone() for k, v in teacher_importance(teacher, tok, TEXTS).items()}
    imp["neurons"][:, dead_units] = -1.0  # ranked last
    student = prune_teacher(teacher, imp, 2, 32, 4, 32)
    assert model_shape(student.config) == {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4,
                                           "intermediate_size": 32}
    torch.testing.assert_close(logits(student, tok), logits(teacher, tok), atol=1e-4, rtol=1e-4)
    narrow = prune_teacher(teacher, teacher_importance(teacher, tok, TEXTS), 1, 16, 2, 32)  # every axis cut
    assert model_shape(narrow.config) == {"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
                                          "intermediate_size": 32}
    assert logits(narrow, tok).shape == (len(TEXTS), 2)


@pytest.mark.parametrize("name", [f for f in FAMILIES if f not in PRUNABLE])
def test_a_family_that_cannot_be_cut_falls_back_to_its_own_layers_with_one_line(name, tmp_path, tiny_tokenizer_dir,
                                                                                 capsys):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from dfkd.distill.students import build_student

    folder = make_teacher(name, tiny_tokenizer_dir, tmp_path / name)
    teacher, tok = AutoModelForSequenceClassification.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    student = build_student(teacher, {"type": "teacher_pruned", "num_hidden_layers": 1, "hidden_size": 16,
                                      "num_attention_heads": 2, "intermediate_size": 32}, TEXTS, tokenizer=tok)
    line = capsys.readouterr().out.strip().splitlines()
    assert line == [f"teacher_pruned: {architecture_of(teacher).name} models cannot be cut in width, heads or FFN yet; "
                    "the student is the teacher's own layers [1] at the teacher's width"]
    assert model_shape(student.config) == {**model_shape(teacher.config), "num_hidden_layers": 1}


@pytest.mark.slow
def test_generate_label_distill_eval_for_every_family(family, tmp_path):
    """The chain on a custom CSV task: a pruned student (its own layers for families that cannot be cut) trained
    with soft targets plus hidden-state MSE, then scored against the teacher."""
    from dfkd.distill.distiller import distill
    from dfkd.distill.label import make_transfer_set
    from dfkd.distill.losses import DistillationConfig
    from dfkd.distill.settings import TrainingConfig
    from dfkd.eval.scoring import evaluate_models
    from dfkd.tasks import custom_task

    name, folder, teacher, tok = family
    for split, n, seed in (("train", 64, 0), ("dev", 24, 1)):
        (tmp_path / f"{split}.csv").write_text("text,label\n" + "".join(
            f"{t},{'positive' if y else 'negative'}\n" for t, y in toy_rows(n, seed)))
    task = custom_task("toy", {"train": str(tmp_path / "train.csv"), "dev": str(tmp_path / "dev.csv")})
    ds, card = make_transfer_set([("original", {})], task, None, tmp_path / "ts", teacher, tok, max_length=24)
    assert card["task_spec"]["name"] == "toy" and len(ds) == 64 and len(ds[0]["teacher_logits"]) == 2
    torch.testing.assert_close(torch.tensor(ds["teacher_logits"][:4]), logits(teacher, tok, ds["text"][:4]),
                               atol=1e-4, rtol=1e-4)
    student = {"type": "teacher_pruned", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
               "intermediate_size": 32}
    losses = DistillationConfig(temperature=2.0, extra=[{"name": "hidden_mse", "weight": 1.0, "mapping": "last"}])
    summary = distill(tmp_path / "ts", task, str(folder), student, tmp_path / "student",
                      TrainingConfig(max_steps=3, batch_size=8, max_length=24, checkpoint_every=0), losses, val_size=8)
    assert summary["steps"] == 3
    rows = evaluate_models(task, [str(tmp_path / "student")], teacher=str(folder), latency=False)
    assert [r["model"] for r in rows][-1].endswith("student") and 0 <= rows[-1]["main"] <= 1
    saved = json.loads((tmp_path / "student" / "config.json").read_text())
    assert saved["model_type"] == teacher.config.model_type and saved["id2label"] == {"0": "negative", "1": "positive"}


@pytest.mark.slow
def test_a_student_with_another_tokenizer_learns_from_logits_and_refuses_layerwise_losses(tmp_path, tiny_teacher_dir,
                                                                                          toy_csv):
    from transformers import BertTokenizerFast

    from dfkd.distill.distiller import distill
    from dfkd.distill.label import load_teacher, make_transfer_set
    from dfkd.distill.losses import DistillationConfig
    from dfkd.distill.settings import TrainingConfig
    from dfkd.tasks import custom_task

    from conftest import BAD, FILLER, GOOD, SPECIAL

    words = SPECIAL + sorted(set(GOOD + BAD + FILLER), reverse=True) + ["extra", "words"]  # another vocabulary
    tok_dir = tmp_path / "other-tok"
    BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}, do_lower_case=True).save_pretrained(tok_dir)
    other = make_teacher("roberta", tok_dir, tmp_path / "other-student")  # a "pretrained" small RoBERTa
    task = custom_task("toy", toy_csv, text_column="sentence", label_names=["neg", "pos"])
    teacher, tok = load_teacher(str(tiny_teacher_dir), 2)
    make_transfer_set([("original", {})], task, None, tmp_path / "ts", teacher, tok, max_length=24)
    config = TrainingConfig(max_steps=3, batch_size=8, max_length=24, checkpoint_every=0)
    spec = {"type": "pretrained", "path": str(other)}
    distill(tmp_path / "ts", task, str(tiny_teacher_dir), spec, tmp_path / "s", config, val_size=8)
    saved = BertTokenizerFast.from_pretrained(tmp_path / "s")
    assert saved.get_vocab() == BertTokenizerFast.from_pretrained(tok_dir).get_vocab()  # its own, not the teacher's
    with pytest.raises(DfkdError, match=r"reads its own vocabulary.*layer-wise losses \['hidden_mse'\] need a student"):
        distill(tmp_path / "ts", task, str(tiny_teacher_dir), spec, tmp_path / "s2", config,
                DistillationConfig(extra=[{"name": "hidden_mse", "mapping": "last"}]), val_size=8)
    assert not (tmp_path / "s2").exists()
