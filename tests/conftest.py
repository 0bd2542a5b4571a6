"""Shared fixtures: tiny BERT models and tokenizers built in the test (no download), and a toy task."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"

GOOD = ["good", "great", "fine", "superb", "lovely", "nice"]
BAD = ["bad", "awful", "poor", "dull", "boring", "ugly"]
FILLER = ["the", "film", "movie", "was", "plot", "acting", "really", "quite", "and", "a", "story", "very"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def toy_rows(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """Sentences of filler words plus one sentiment word; label 1 for a GOOD word, 0 for a BAD one."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = rng.sample(FILLER, rng.randint(3, 6))
        words.insert(rng.randint(0, len(words)), rng.choice(GOOD if label else BAD))
        rows.append((" ".join(words), label))
    return rows


def write_sst2(folder: Path, n_train: int = 160, n_dev: int = 40) -> Path:
    """A GLUE SST-2 folder (header, trailing space before the tab) of :func:`toy_rows`."""
    folder.mkdir(parents=True)
    for name, n, seed in (("train.tsv", n_train, 0), ("dev.tsv", n_dev, 1)):
        (folder / name).write_text("sentence\tlabel\n" + "".join(f"{t} \t{y}\n" for t, y in toy_rows(n, seed)))
    return folder


def write_glove(path: Path) -> Path:
    """A tiny GloVe text file (word, then 6 numbers) over a few words of the toy vocabulary."""
    import numpy as np

    rng = np.random.default_rng(0)
    words = ["film", "movie", "story", "plot", "great", "superb", "awful", "dull"]
    path.write_text("".join(w + " " + " ".join(f"{v:.4f}" for v in rng.normal(size=6)) + "\n" for w in words))
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    from transformers import BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny-tok")
    words = SPECIAL + sorted(set(GOOD + BAD + FILLER))
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}, do_lower_case=True)
    assert tok.convert_ids_to_tokens(tok("the good film")["input_ids"]) == ["[CLS]", "the", "good", "film", "[SEP]"]
    tok.save_pretrained(d)
    return d


def tiny_bert_config(vocab_size: int, **kw):
    from transformers import BertConfig

    base = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)
    base.update(kw)
    return BertConfig(**base)


def save_tiny(model_class, folder: Path, tokenizer_dir: Path, seed: int) -> Path:
    """Save a randomly initialised tiny ``model_class`` (seeded) with the tiny tokenizer into ``folder``."""
    from transformers import AutoTokenizer

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    model_class(tiny_bert_config(len(tok))).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A tiny BertModel folder (no heads), like the shipped base encoder."""
    from transformers import BertModel

    return save_tiny(BertModel, tmp_path_factory.mktemp("tiny-base"), tiny_tokenizer_dir, seed=0)


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A tiny 2-class classifier whose weights were set so that its logits are clearly non-uniform."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(1)
    d = tmp_path_factory.mktemp("tiny-teacher")
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    model = BertForSequenceClassification(tiny_bert_config(len(tok), num_labels=2,
                                                           id2label={0: "negative", 1: "positive"},
                                                           label2id={"negative": 0, "positive": 1}))
    with torch.no_grad():
        model.classifier.weight.mul_(40.0)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_rewriter_dir(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A tiny random masked LM with the tiny teacher's vocabulary (adversarial rewriter, TinyBERT's MLM)."""
    from transformers import BertForMaskedLM

    return save_tiny(BertForMaskedLM, tmp_path_factory.mktemp("tiny-rewriter"), tiny_tokenizer_dir, seed=2)


@pytest.fixture()
def toy_csv(tmp_path) -> dict[str, str]:
    """A custom task in CSV: train (400 rows) and dev (100 rows) of :func:`toy_rows`."""
    files = {}
    for split, n, seed in (("train", 400, 0), ("dev", 100, 1)):
        p = tmp_path / f"{split}.csv"
        p.write_text("sentence,label\n" + "".join(f"{t},{'pos' if y else 'neg'}\n" for t, y in toy_rows(n, seed)))
        files[split] = str(p)
    return files


@pytest.fixture(scope="session")
def tiny_rte_teacher_dir(tmp_path_factory, tiny_teacher_dir) -> Path:
    """The tiny teacher with RTE's label names (the same weights): labels are checked against the task's."""
    import json
    import shutil

    d = tmp_path_factory.mktemp("tiny-rte-teacher")
    shutil.copytree(tiny_teacher_dir, d, dirs_exist_ok=True)
    config = json.loads((d / "config.json").read_text())
    config["id2label"] = {"0": "entailment", "1": "not_entailment"}
    config["label2id"] = {"entailment": 0, "not_entailment": 1}
    (d / "config.json").write_text(json.dumps(config))
    return d
