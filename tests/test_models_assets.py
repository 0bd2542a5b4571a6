"""Default models built offline (on tiny models made here), asset resolution, the real SST-2 teacher, CLI errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from dfkd import assets
from dfkd.cli import main
from dfkd.distill.trainer import TrainingConfig
from dfkd.errors import DfkdError
from dfkd.tasks import custom_task, load_task

from conftest import BAD, GOOD


@pytest.mark.slow
def test_tiny_teacher_learns_fixture_task_above_chance(tmp_path, tiny_base_dir, toy_csv):
    from transformers import AutoModelForSequenceClassification

    from dfkd.distill.teacher import train_teacher

    spec = custom_task("toy", toy_csv, "sentence", "label")
    cfg = TrainingConfig(batch_size=16, epochs=4, learning_rate=3e-3, max_length=16, checkpoint_every=0, seed=0)
    card = train_teacher(spec, str(tiny_base_dir), tmp_path / "teacher", config=cfg, val_size=40)
    assert card["dev_accuracy"] >= 0.85  # chance is about 0.5
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "teacher")
    assert model.config.id2label == {0: "neg", 1: "pos"} and model.config.label2id == {"neg": 0, "pos": 1}
    assert (tmp_path / "teacher" / "dfkd_teacher.json").is_file()


@pytest.mark.slow
def test_teacher_restarts_keep_the_best_held_out_seed_and_restart_zero_is_the_plain_run(tmp_path, tiny_base_dir,
                                                                                        toy_csv):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from dfkd.distill.label import predict_logits
    from dfkd.distill.teacher import train_teacher
    from dfkd.metrics import compute_metrics, predictions

    spec = custom_task("toy", toy_csv, "sentence", "label")
    root = tmp_path / "teachers"
    # a budget short enough that seeds land apart: 40 steps of 8 rows at a small learning rate
    cfg = TrainingConfig(batch_size=8, max_steps=40, learning_rate=3e-4, max_length=16, checkpoint_every=0,
                         eval_every=20, seed=5)
    card = train_teacher(spec, str(tiny_base_dir), root / "kept", config=cfg, val_size=40, restarts=3)
    tries = card["restarts"]
    assert [t["seed"] for t in tries] == [5, 6, 7]
    best = max(tries, key=lambda t: t["val_score"])  # the first of equal scores, as max() keeps it
    assert card["seed"] == best["seed"] and card["settings"]["seed"] == best["seed"]
    assert card["val_score"] == best["val_score"] and card["main"] == best["main"]
    assert len({t["main"] for t in tries}) > 1  # the seeds do train different teachers
    # the folder holds the kept restart: its dev predictions score what the card says
    model = AutoModelForSequenceClassification.from_pretrained(root / "kept")
    dev = load_task(spec, "dev")
    metrics = compute_metrics(spec, predictions(predict_logits(model, AutoTokenizer.from_pretrained(root / "kept"), dev,
                                                                max_length=16), spec),
                              dev["label"])
    assert metrics["accuracy"] == pytest.approx(card["dev_accuracy"])
    assert sorted(p.name for p in root.iterdir()) == ["kept"]  # the restarts' folders are gone
    # restart 0 is the plain run with the recipe's seed (same head, data order and held-out slice)
    plain = train_teacher(spec, str(tiny_base_dir), root / "plain", config=cfg, val_size=40)
    assert plain["val_score"] == tries[0]["val_score"] and plain["main"] == tries[0]["main"]
    assert "restarts" not in plain
    with pytest.raises(DfkdError, match="restarts must be at least 1"):
        train_teacher(spec, str(tiny_base_dir), root / "none", config=cfg, val_size=40, restarts=0)
    assert not (root / "none").exists()


def test_held_out_slice_from_long_rows_only():
    from datasets import Dataset

    from dfkd.distill.data import held_out_split

    ds = Dataset.from_dict({"text": [" ".join(["w"] * n) for n in range(1, 101)], "label": [0] * 100})  # 1..100 words
    train, val = held_out_split(ds, 5, seed=3, min_words=95)  # 6 rows have >= 95 words
    assert len(val) == 5 and all(len(t.split()) >= 95 for t in val["text"])
    assert len(train) == 95 and sorted(list(train["text"]) + list(val["text"])) == sorted(ds["text"])
    assert list(held_out_split(ds, 5, seed=3, min_words=95)[1]["text"]) == list(val["text"])  # same seed, same slice
    with pytest.raises(DfkdError, match="only 6 rows have at least 95 words; expected at least 10"):
        held_out_split(ds, 10, seed=0, min_words=95)
    # a pair's words are counted on both sides: 1 + 3 words qualify for min_words=4, 1 + 2 do not
    pairs = Dataset.from_dict({"text": ["a"] * 20, "text_pair": ["b c d"] + ["b c"] * 19, "label": [0] * 20})
    assert list(held_out_split(pairs, 1, seed=0, min_words=4)[1]["text_pair"]) == ["b c d"]


def test_held_out_slice_from_one_source_keeps_the_held_out_rows_variants_out_of_training():
    from datasets import Dataset

    from dfkd.distill.data import held_out_split

    # 20 task rows, each followed by 2 variants of it (as augment_dataset writes them), then 3 rows of another kind
    texts, sources, origins = [], [], []
    for i in range(20):
        for k, src in enumerate(("original", "augment", "augment")):
            texts.append(f"row {i} v{k}")
            sources.append(src)
            origins.append(i)
    texts += ["ood a", "ood b", "ood c"]
    sources += ["ood"] * 3
    origins += [20, 21, 22]
    ds = Dataset.from_dict({"text": texts, "source": sources, "origin": origins})
    train, val = held_out_split(ds, 2, seed=1, source="original")  # cap: 10% of the 20 task rows
    assert len(val) == 2 and set(val["source"]) == {"original"}
    held = set(val["origin"])
    assert len(train) == 63 - 2 * 3 and not held & set(train["origin"])  # their variants left training too
    assert sorted(list(train["text"]) + list(val["text"])) == sorted(t for t, o in zip(texts, origins)
                                                                     if o not in held or t in val["text"])
    assert list(held_out_split(ds, 2, seed=1, source="original")[1]["text"]) == list(val["text"])  # same seed, slice
    assert len(held_out_split(ds, 0.1, seed=1, source="original")[1]) == 2  # a fraction of the 20 task rows
    # a set whose rows all have the source: the slice drawn without one
    originals = ds.filter(lambda r: r["source"] == "original")
    assert list(held_out_split(originals, 2, seed=4, source="original")[1]["text"]) == \
        list(held_out_split(originals, 2, seed=4)[1]["text"])
    with pytest.raises(DfkdError, match=r"^no row has source 'adversarial' to hold out for model selection; the "
                                        r"rows' sources: \['augment', 'ood', 'original'\]$"):
        held_out_split(ds, 2, seed=0, source="adversarial")
    with pytest.raises(DfkdError, match="no origin column to keep their variants out of training"):
        held_out_split(ds.remove_columns("origin"), 2, seed=0, source="original")
    one = Dataset.from_dict({"text": ["a", "a2", "b"], "source": ["original", "augment", "ood"], "origin": [0, 0, 0]})
    with pytest.raises(DfkdError, match=r"leaves no training rows out of 3"):
        held_out_split(one, 1, seed=0, source="original")


def test_concatenated_transfer_sets_never_share_an_origin():
    from datasets import Dataset

    from dfkd.transfer import concatenate_transfer_sets

    a = Dataset.from_dict({"text": ["x", "x2", "y"], "source": ["original", "augment", "original"], "origin": [0, 0, 1]})
    b = Dataset.from_dict({"text": ["o1", "o2"], "source": ["ood", "ood"]})
    c = Dataset.from_dict({"text": ["z", "z2"], "source": ["original", "augment"], "origin": [0, 0]})
    both = concatenate_transfer_sets([a, b, c])
    assert list(both["text"]) == ["x", "x2", "y", "o1", "o2", "z", "z2"]
    assert list(both["origin"]) == [0, 0, 1, 2, 3, 4, 4]
    assert "origin" not in concatenate_transfer_sets([b, b]).column_names


def test_mlm_masking_rates_on_a_large_sample():
    from transformers import BertTokenizerFast, DataCollatorForLanguageModeling

    from dfkd.distill.mlm import MLMConfig

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(200)]
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    torch.manual_seed(0)
    collator = DataCollatorForLanguageModeling(tok, mlm_probability=MLMConfig().mlm_probability)
    ids = torch.randint(5, len(vocab), (400, 100))
    batch = collator([{"input_ids": row.tolist()} for row in ids])
    chosen = batch["labels"] != -100
    rate = chosen.float().mean().item()
    assert abs(rate - 0.15) < 0.005
    new = batch["input_ids"][chosen]
    orig = ids[chosen]
    masked = (new == tok.mask_token_id).float().mean().item()
    kept = (new == orig).float().mean().item()
    random_ = 1 - masked - kept
    assert abs(masked - 0.8) < 0.02 and abs(kept - 0.1 - 0.1 / len(vocab)) < 0.02 and abs(random_ - 0.1) < 0.02


@pytest.mark.slow
def test_fitting_the_mlm_head_lowers_masked_lm_loss(tmp_path, tiny_base_dir):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, BertForMaskedLM, pipeline

    from dfkd.distill.mlm import MLMConfig, masked_lm_loss, train_mlm

    def templated(n, seed):  # "the <noun> was very <adjective>": the noun slot has 4 choices (optimum ln 4)
        rng = random.Random(seed)
        return [f"the {rng.choice(['film', 'movie', 'plot', 'story'])} was very {rng.choice(GOOD + BAD)}"
                for _ in range(n)]

    text = tmp_path / "text.txt"
    text.write_text("\n".join(templated(800, 0)) + "\n")
    tok = AutoTokenizer.from_pretrained(tiny_base_dir)
    fixed = tok(templated(32, 9), padding=True, return_tensors="pt")
    labels = fixed["input_ids"].clone()
    pick = torch.zeros_like(labels, dtype=torch.bool)
    pick[:, 2] = True
    labels[~pick] = -100
    inputs = fixed["input_ids"].clone()
    inputs[pick] = tok.mask_token_id
    batch = {"input_ids": inputs, "attention_mask": fixed["attention_mask"], "labels": labels}
    torch.manual_seed(0)
    with torch.no_grad():
        before = float(masked_lm_loss(BertForMaskedLM.from_pretrained(tiny_base_dir).eval(), batch))
    card = train_mlm(str(tiny_base_dir), [str(text)], tmp_path / "mlm",
                     MLMConfig(layers=2, epochs=4, batch_size=16, held_out=50, head_lr=1e-2, encoder_lr=3e-3))
    with torch.no_grad():
        after = float(masked_lm_loss(AutoModelForMaskedLM.from_pretrained(tmp_path / "mlm").eval(), batch))
    assert before > 3.0 and after < before - 0.5
    assert card["top5"] > card["top5_before"]
    fill = pipeline("fill-mask", model=str(tmp_path / "mlm"), top_k=3)
    assert len(fill("the film was [MASK]")) == 3


def test_mlm_keeps_the_bottom_layers_and_trains_tied_embeddings_only_when_asked(tmp_path, tiny_base_dir):
    from transformers import AutoModelForMaskedLM, BertModel

    from dfkd.distill.mlm import MLMConfig, train_mlm

    text = tmp_path / "text.txt"
    text.write_text("\n".join(f"the film was very w{i % 7} and w{i % 5}" for i in range(120)) + "\n")
    base = BertModel.from_pretrained(tiny_base_dir)
    settings = dict(layers=1, unfreeze_layers=0, epochs=1, batch_size=16, held_out=20)
    train_mlm(str(tiny_base_dir), [str(text)], tmp_path / "frozen", MLMConfig(**settings, train_embeddings=False))
    frozen = AutoModelForMaskedLM.from_pretrained(tmp_path / "frozen")
    assert frozen.config.num_hidden_layers == 1 and len(frozen.bert.encoder.layer) == 1
    for (name, p), q in zip(frozen.bert.encoder.layer[0].named_parameters(), base.encoder.layer[0].parameters()):
        assert torch.equal(p, q), name  # the base's bottom layer, untouched (unfreeze_layers=0)
    emb = base.embeddings.word_embeddings.weight
    assert torch.equal(frozen.bert.embeddings.word_embeddings.weight, emb)

    train_mlm(str(tiny_base_dir), [str(text)], tmp_path / "trained", MLMConfig(**settings, train_embeddings=True))
    trained = AutoModelForMaskedLM.from_pretrained(tmp_path / "trained")
    moved = trained.bert.embeddings.word_embeddings.weight
    assert not torch.allclose(moved, emb)
    assert torch.equal(trained.cls.predictions.decoder.weight, moved)  # the decoder is still tied
    with pytest.raises(DfkdError, match=r"layers=3 but the base has 2 layers; expected 1\.\.2"):
        train_mlm(str(tiny_base_dir), [str(text)], tmp_path / "bad", MLMConfig(**{**settings, "layers": 3}))
    assert not (tmp_path / "bad").exists()


def test_asset_resolution_order_and_missing_message(tmp_path, monkeypatch):
    shared, cache = tmp_path / "shared", tmp_path / "cache"
    (shared / "glue" / "SST-2").mkdir(parents=True)
    (cache / "models" / "teacher-minilm-l6-sst2").mkdir(parents=True)
    (cache / "glue" / "SST-2").mkdir(parents=True)
    monkeypatch.setenv("DFKD_ASSETS", str(shared))
    monkeypatch.setenv("DFKD_HOME", str(cache))
    assert assets.resolve("glue/SST-2") == shared / "glue" / "SST-2"  # shared assets first
    assert assets.resolve("models/teacher-minilm-l6-sst2") == cache / "models" / "teacher-minilm-l6-sst2"
    assert assets.resolve("bert-base-uncased") == "bert-base-uncased"  # a hub id passes through
    with pytest.raises(DfkdError, match=r"asset 'ood/wiki.txt' not found; expected it at .*shared/ood/wiki.txt"):
        assets.resolve("ood/wiki.txt")


def test_missing_default_model_is_built_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DFKD_ASSETS", str(tmp_path / "none"))
    monkeypatch.setenv("DFKD_HOME", str(tmp_path / "cache"))
    calls = []

    def build(out):
        calls.append(out)
        out.mkdir()
        (out / "config.json").write_text("{}")

    name = "models/test-only"
    monkeypatch.setitem(assets.ASSETS._items, name, assets.Asset(name, "test", build, "a test"))
    path = assets.resolve(name)
    assert path == tmp_path / "cache" / name and (path / "config.json").is_file()
    assert assets.resolve(name) == path and len(calls) == 1  # present now: not rebuilt
    assert not list(path.parent.glob(".test-only.building"))


def test_real_sst2_teacher_on_64_dev_sentences():
    teacher = assets.locate("models/teacher-minilm-l6-sst2")
    glue = assets.locate("glue/SST-2")
    if not (teacher / "config.json").is_file() or not glue.is_dir():
        pytest.skip(f"the real SST-2 teacher is not built ({teacher}); run `dfkd assets build`")
    from dfkd.distill.label import load_teacher, predict_logits

    dev = load_task("sst2", "dev", glue, limit=64)
    model, tok = load_teacher(teacher, 2, device="cpu")
    acc = (predict_logits(model, tok, dev).argmax(-1) == np.asarray(dev["label"])).mean()
    assert acc > 0.8


@pytest.mark.parametrize("argv,message", [
    (["eval", "--task", "sst3", "m"], "error: unknown task 'sst3'; expected one of:"),
    (["teacher", "--task", "sst2", "--data-dir", "/nonexistent/SST-2", "--out", "OUT"],
     "error: missing data file /nonexistent/SST-2/train.tsv"),
    (["compare", "--preset", "/nonexistent.json"], "error: missing preset /nonexistent.json"),
    (["label", "/nonexistent-ts", "--teacher", "t"], "error: /nonexistent-ts is not a transfer set"),
])
def test_cli_bad_input_is_one_line_without_partial_output(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message)
    assert list(tmp_path.iterdir()) == []


def test_cli_teacher_with_wrong_num_labels(tmp_path, capsys, tiny_teacher_dir):
    from datasets import Dataset

    from dfkd.transfer import save_transfer_set

    ds = Dataset.from_dict({"text": ["a", "b"], "text_pair": ["c", "d"], "source": ["original"] * 2})
    save_transfer_set(ds, tmp_path / "ts", {"task": "mnli", "num_labels": 3})
    assert main(["label", str(tmp_path / "ts"), "--teacher", str(tiny_teacher_dir)]) == 2
    assert "has num_labels=2 but the task has 3 label(s)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ts"]


def test_intermediate_task_start_keeps_the_encoder_and_draws_a_new_head(tiny_teacher_dir, tiny_base_dir):
    from transformers import BertForSequenceClassification

    from dfkd.distill.teacher import task_model
    from dfkd.tasks import get_task

    base = BertForSequenceClassification.from_pretrained(tiny_teacher_dir)  # classifier weights x 40
    (tiny_teacher_dir / "dfkd_teacher.json").write_text('{"task": "sst2", "main_metric": "accuracy", "main": 0.9}')
    try:
        rng = torch.get_rng_state()
        stsb, base_task = task_model(str(tiny_teacher_dir), get_task("stsb"), seed=3)
        assert torch.equal(torch.get_rng_state(), rng)  # the caller's random state is left as it was
    finally:
        (tiny_teacher_dir / "dfkd_teacher.json").unlink()
    assert base_task == {"labels": ["negative", "positive"], "task": "sst2", "main_metric": "accuracy", "main": 0.9}
    assert stsb.num_labels == 1 and stsb.config.problem_type == "regression"
    assert stsb.config.id2label == {0: "score"}
    ours, theirs = stsb.base_model.state_dict(), base.base_model.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)  # pooler included
    # a new head, drawn as HF draws one (normal, std = initializer_range; bias 0), not the base's x 40 weights
    w = stsb.classifier.weight
    assert w.shape == (1, base.config.hidden_size) and torch.all(stsb.classifier.bias == 0)
    assert 0.5 * base.config.initializer_range < w.std() < 2 * base.config.initializer_range
    # same seed, same head; another seed, another head; a 2-class task gets its own label names
    assert torch.equal(task_model(str(tiny_teacher_dir), get_task("stsb"), seed=3)[0].classifier.weight, w)
    rte, _ = task_model(str(tiny_teacher_dir), get_task("rte"), seed=4)
    assert rte.config.id2label == {0: "entailment", 1: "not_entailment"}
    assert not torch.allclose(rte.classifier.weight, base.classifier.weight)
    # a plain encoder is no intermediate-task start; its new head also comes from the seed alone, whatever the
    # caller's random state (an unseeded head made two builds of one recipe differ by 0.05 MCC on CoLA)
    plain, none = task_model(str(tiny_base_dir), get_task("rte"), seed=5)
    assert none is None
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    again = task_model(str(tiny_base_dir), get_task("rte"), seed=5)[0]
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(again.classifier.weight, plain.classifier.weight)
    assert not torch.equal(task_model(str(tiny_base_dir), get_task("rte"), seed=6)[0].classifier.weight,
                           plain.classifier.weight)
