"""Augmentation: TinyBERT candidate rules and sampling, batching invariance, pairs, resume; Tang's rates."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset

from dfkd.augment import augment_dataset, build_augmenter, draw_variants
from dfkd.augment.base import Augmenter
from dfkd.augment.tang import TangAugmenter
from dfkd.augment.tinybert import TinyBertAugmenter, is_candidate
from dfkd.distill.vectors import WordVectors
from dfkd.errors import DfkdError

WORDS = ["the", "film", "was", "good", "bad", "great", "fine", "dull", "boring", "movie", "plot", "story",
         "acting", "won", "t", "'", "!", ".", ",", "un", "##believ", "##able", "super", "##b", "42", "very"]
VEC_WORDS = ["unbelievable", "incredible", "amazing", "astonishing", "superb", "excellent", "film", "movie",
             "plot", "story", "dull"]


@pytest.fixture(scope="module")
def tiny_mlm_dir(tmp_path_factory) -> Path:
    """A random tiny BertForMaskedLM whose vocabulary has multi-piece words (un ##believ ##able)."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny-mlm")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    model = BertForMaskedLM(cfg)
    with torch.no_grad():  # spread the logits so that top-k has no near-ties
        model.cls.predictions.bias.copy_(torch.randn(len(vocab)) * 3)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def keyed_vectors():
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=8)
    kv.add_vectors(VEC_WORDS, np.random.default_rng(0).normal(size=(len(VEC_WORDS), 8)).astype(np.float32))
    return kv


def make(tiny_mlm_dir, keyed_vectors, **kw) -> TinyBertAugmenter:
    kw = {"replace_prob": 0.4, "num_aug": 5, "top_k": 4, "device": "cpu", **kw}
    return TinyBertAugmenter(str(tiny_mlm_dir), keyed_vectors, **kw)


def test_candidate_rule_stop_words_and_non_alphabetic():
    stop = {"the", "was", "t"}
    assert is_candidate("film", stop) and is_candidate("Film", stop) and is_candidate("café", stop)
    assert not is_candidate("the", stop) and not is_candidate("The", stop)
    assert not is_candidate("42", stop) and not is_candidate("!", stop) and not is_candidate("film2", stop)


def test_routing_single_piece_to_mlm_and_multi_piece_to_vectors(tiny_mlm_dir, keyed_vectors):
    aug = make(tiny_mlm_dir, keyed_vectors)
    text = "The film won't be unbelievable , 42 !"
    analysed = aug.analyse([text])[0]
    assert [w["word"] for w in analysed] == ["film", "unbelievable"]  # stop words, 42, punctuation, won/t out
    (film_span, film_cands), (unb_span, unb_cands) = aug.candidates([text])[0]
    assert text[slice(*film_span)] == "film" and text[slice(*unb_span)] == "unbelievable"

    # single piece: top-k of an independent full MLM forward on "[CLS] masked [SEP] original [SEP]"
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    mlm = AutoModelForMaskedLM.from_pretrained(tiny_mlm_dir).eval()
    enc = tok(text.replace("film", tok.mask_token), text, return_tensors="pt")
    pos = enc["input_ids"][0].tolist().index(tok.mask_token_id)
    with torch.no_grad():
        top = mlm(**enc).logits[0, pos].topk(4).indices.tolist()
    expected = [t for t in tok.convert_ids_to_tokens(top)
                if not t.startswith("##") and t not in tok.all_special_tokens and t != "film"]
    assert film_cands == (expected or ["film"])

    # multi piece: gensim's own nearest neighbours
    assert unb_cands == [w for w, _ in keyed_vectors.most_similar("unbelievable", topn=4)]


def test_pair_context_changes_mlm_input(tiny_mlm_dir, keyed_vectors):
    pair, single = make(tiny_mlm_dir, keyed_vectors), make(tiny_mlm_dir, keyed_vectors, mlm_context="single")
    analysed = pair.analyse(["the film was dull"])
    (seq_p, types_p, m_p), = [x for x in pair.masked_inputs(analysed) if x[2] == 2]
    (seq_s, types_s, m_s), = [x for x in single.masked_inputs(analysed) if x[2] == 2]
    tok = pair.tokenizer
    assert tok.convert_ids_to_tokens(seq_p) == ["[CLS]", "the", "[MASK]", "was", "dull", "[SEP]",
                                                "the", "film", "was", "dull", "[SEP]"]
    assert types_p == [0] * 6 + [1] * 5
    assert tok.convert_ids_to_tokens(seq_s) == ["[CLS]", "the", "[MASK]", "was", "dull", "[SEP]"]


def test_a_text_longer_than_max_length_gives_masked_copies_no_longer_than_max_length(tiny_mlm_dir, keyed_vectors):
    aug = make(tiny_mlm_dir, keyed_vectors, max_length=8)  # pair context: the copy alone fills the 8 tokens
    analysed = aug.analyse(["the film was dull and the plot was awful and the story was poor"])
    inputs = aug.masked_inputs(analysed)
    assert inputs and all(len(seq) == len(types) <= 8 for seq, types, _ in inputs)
    assert all(seq[0] == aug.tokenizer.cls_token_id and seq[7] == aug.tokenizer.sep_token_id for seq, _, _ in inputs)
    assert max(m for _, _, m in inputs) <= 6  # words past the window get no masked-LM candidates
    aug.candidates(["the film was dull and the plot was awful and the story was poor"])  # runs within the MLM


def test_missing_word_keeps_itself_and_case_is_kept(tiny_mlm_dir, keyed_vectors):
    aug = make(tiny_mlm_dir, keyed_vectors, replace_prob=1.0)
    (span, cands), = [c for c in aug.candidates(["Superb"])[0]]
    assert cands and all(c[0].isupper() for c in cands)  # neighbours of "superb", title-cased
    no_vectors = make(tiny_mlm_dir, None, replace_prob=1.0)
    assert no_vectors.candidates(["superb"])[0] == [((0, 6), ["superb"])]
    assert no_vectors.augment(["superb"], [(0, 0)]) == [[]]  # nothing to replace it with


def test_replace_prob_zero_gives_only_originals(tiny_mlm_dir, keyed_vectors):
    ds = Dataset.from_dict({"text": ["the film was dull", "great plot"], "label": [0, 1]})
    out = augment_dataset(ds, make(tiny_mlm_dir, keyed_vectors, replace_prob=0.0))
    assert out["source"] == ["original", "original"] and out["text"] == ds["text"]


def test_replaced_word_rate_is_close_to_replace_prob():
    rng = random.Random(0)
    words = [f"w{i}" for i in range(40)]
    text = " ".join(words)
    spans, pos = [], 0
    for w in words:
        spans.append((pos, pos + len(w)))
        pos += len(w) + 1
    cands = [[f"x{i}", f"y{i}"] for i in range(40)]
    variants = draw_variants(text, spans, cands, 0.4, 500, rng)
    assert len(variants) == 500 and len(set(variants)) == 500 and text not in variants
    rate = statistics.fmean(sum(a != b for a, b in zip(v.split(), words)) / 40 for v in variants)
    assert abs(rate - 0.4) < 0.01  # 20,000 Bernoulli(0.4) draws: sd 0.0035


def test_output_reads_naturally(tiny_mlm_dir, keyed_vectors):
    aug = make(tiny_mlm_dir, keyed_vectors, replace_prob=1.0, num_aug=3)
    (variants,) = aug.augment(["It won't be dull, but unbelievable!"], [(0, 0)])
    assert variants and all("won't" in v and v.endswith("!") and ", but " in v for v in variants)


def test_identical_output_for_any_batch_size_and_process_count(tiny_mlm_dir, keyed_vectors):
    rng = random.Random(1)
    texts = [" ".join(rng.choices(["the", "film", "plot", "dull", "great", "unbelievable", "superb", "movie",
                                   "was", "acting", "story", "boring"], k=rng.randint(2, 9))) for _ in range(30)]
    ds = Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(30)]})
    aug = make(tiny_mlm_dir, keyed_vectors)
    runs = [augment_dataset(ds, aug, batch_size=b)[:] for b in (1, 7, 64)]
    runs.append(augment_dataset(ds, make(tiny_mlm_dir, keyed_vectors), batch_size=4, num_proc=2)[:])
    assert all(r == runs[0] for r in runs[1:])
    assert runs[0]["source"].count("original") == 30 and runs[0]["source"].count("augment") > 60
    # the variants of a row depend on its index, not on the rows around it
    assert augment_dataset(ds.select([3]), aug)["text"][0] == texts[3]


def test_pair_rows_keep_their_own_partner(tiny_mlm_dir, keyed_vectors):
    ds = Dataset.from_dict({"text": ["the film was dull", "great acting"],
                            "text_pair": ["boring plot", "superb story"], "label": [0, 1]})
    out = augment_dataset(ds, make(tiny_mlm_dir, keyed_vectors, num_aug=3))
    assert out.column_names == ["text", "text_pair", "label", "source", "origin"]
    current = None
    firsts = seconds = 0
    for row in out:
        if row["source"] == "original":
            current = row
            assert ds[row["origin"]]["text"] == row["text"]  # an original's origin is its own index
            continue
        assert row["origin"] == current["origin"]  # a variant's is its original's
        assert row["label"] == -1
        assert (row["text_pair"] == current["text_pair"]) != (row["text"] == current["text"])
        firsts += row["text_pair"] == current["text_pair"]
        seconds += row["text"] == current["text"]
    assert firsts > 0 and seconds > 0


class CountingAugmenter(Augmenter):
    """Deterministic fake: variant k of a text is ``text + " #k"``; can fail after ``fail_after`` calls."""

    name = "counting"

    def __init__(self, fail_after: int | None = None):
        self.calls, self.fail_after, self.num_aug = [], fail_after, 2

    def augment(self, texts, keys):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt
        self.calls.append([k[0] for k in keys])
        return [[f"{t} #{k[0]}.{j}" for j in range(2)] for t, k in zip(texts, keys)]

    def settings(self):
        return {}


def test_augment_resume_reuses_finished_shards(tmp_path):
    ds = Dataset.from_dict({"text": [f"row {i}" for i in range(10)], "label": [0] * 10})
    full = augment_dataset(ds, CountingAugmenter(), shard_size=4, batch_size=2)[:]
    with pytest.raises(KeyboardInterrupt):
        augment_dataset(ds, CountingAugmenter(fail_after=3), work_dir=tmp_path, shard_size=4, batch_size=2)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".tmp")) == ["shard-00000"]
    again = CountingAugmenter()
    resumed = augment_dataset(ds, again, work_dir=tmp_path, shard_size=4, batch_size=2)[:]
    assert resumed == full
    assert sorted(i for call in again.calls for i in call) == list(range(4, 10))  # shard 0 not redone


def fake_tagger(texts):
    """Nouns are words starting with n, verbs with v, everything else DT."""
    return [[(w, "NN" if w[0] == "n" else "VB" if w[0] == "v" else "DT", " ") for w in t.split()] for t in texts]


def tang_texts():
    """20 texts of 200 words: long enough that dropping unchanged or duplicate variants biases no rate."""
    rng = random.Random(0)
    nouns, verbs = [f"n{i}" for i in range(50)], [f"v{i}" for i in range(50)]
    return [" ".join(rng.choice(nouns if j % 2 else verbs) for j in range(200)) for _ in range(20)]


def test_tang_masking_rate():
    texts = tang_texts()
    aug = TangAugmenter(p_mask=0.1, p_pos=0.0, p_ng=0.0, num_aug=20, tagger=fake_tagger)
    aug.fit(texts)
    variants = aug.augment(texts, [(i, 0) for i in range(len(texts))])
    words = [w for vs in variants for v in vs for w in v.split()]
    assert len(words) == 20 * 20 * 200
    assert abs(words.count("[MASK]") / len(words) - 0.1) < 0.005  # sd ~ 0.0011


def test_tang_pos_replacement_rate_and_same_tag():
    texts = tang_texts()
    aug = TangAugmenter(p_mask=0.0, p_pos=0.1, p_ng=0.0, num_aug=20, tagger=fake_tagger)
    aug.fit(texts)
    variants = aug.augment(texts, [(i, 0) for i in range(len(texts))])
    changed = total = 0
    for text, vs in zip(texts, variants):
        for v in vs:
            for a, b in zip(text.split(), v.split()):
                total += 1
                changed += a != b
                assert a[0] == b[0]  # same POS tag
    # a replacement draws the same word back with probability ~1/50
    assert abs(changed / total - 0.1 * 49 / 50) < 0.005


def test_tang_ngram_sampling_keeps_a_window():
    texts = tang_texts()[:5]
    aug = TangAugmenter(p_mask=0.0, p_pos=0.0, p_ng=1.0, num_aug=20, tagger=fake_tagger)
    aug.fit(texts)
    for text, vs in zip(texts, aug.augment(texts, [(i, 0) for i in range(5)])):
        assert vs
        for v in vs:
            assert 1 <= len(v.split()) <= 5 and f" {v} " in f" {text} "


def test_bad_settings_are_one_clear_error(tiny_mlm_dir, keyed_vectors):
    with pytest.raises(DfkdError, match="augmentation method 'tinybert': unknown key 'p_mask'"):
        build_augmenter("tinybert", p_mask=0.1)
    with pytest.raises(DfkdError, match="unknown augmentation method"):
        build_augmenter("eda")
    with pytest.raises(DfkdError, match="mlm_context"):
        make(tiny_mlm_dir, keyed_vectors, mlm_context="both")
    with pytest.raises(DfkdError, match="missing word vectors"):
        WordVectors.load("/nonexistent/glove.txt")


def test_word_vectors_from_glove_and_word2vec_text(tmp_path, keyed_vectors):
    glove = tmp_path / "glove.txt"
    glove.write_text("".join(w + " " + " ".join(f"{x:.6f}" for x in keyed_vectors[w]) + "\n" for w in VEC_WORDS))
    w2v = tmp_path / "w2v.txt"
    keyed_vectors.save_word2vec_format(str(w2v), binary=False)
    for path in (glove, w2v):
        wv = WordVectors.load(str(path))
        assert wv.words == VEC_WORDS and wv.unit.dtype == np.float32
        assert wv.neighbours(["film"], 3)["film"] == [w for w, _ in keyed_vectors.most_similar("film", topn=3)]
    assert WordVectors.load(str(glove), limit=4).words == VEC_WORDS[:4]
    assert wv.neighbours(["nope"], 3) == {"nope": []}


def test_cli_augment_writes_a_transfer_set_with_card(tmp_path, tiny_mlm_dir, keyed_vectors, capsys):
    import json

    from dfkd.cli import main

    kv = tmp_path / "vectors.kv"
    keyed_vectors.save(str(kv))
    fixtures = Path(__file__).parent / "fixtures" / "glue" / "SST-2"
    out = tmp_path / "aug"
    argv = ["augment", "--task", "sst2", "--data-dir", str(fixtures), "--method", "tinybert", "--num-aug", "3",
            "--mlm", str(tiny_mlm_dir), "--word-vectors", str(kv), "--out", str(out)]
    assert main(argv) == 0
    card = json.loads((out / "dfkd_card.json").read_text())
    assert card["generator"] == "augment" and card["augmenter"]["num_aug"] == 3
    assert card["augmenter"]["replace_prob"] == 0.4 and card["rows_by_source"]["original"] == 3
    assert not (tmp_path / "aug.partial").exists()
    capsys.readouterr()
    assert main([*argv[:-1], str(tmp_path / "bad"), "--p-mask", "0.2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "augmentation method 'tinybert': unknown key 'p_mask'" in err[0]
    assert not (tmp_path / "bad").exists()


def test_default_tagger_gives_penn_tags_and_natural_text():
    from dfkd.augment.tang import _join, default_tagger

    tagger = default_tagger()  # NLTK's if its data is installed, else spaCy's (the pos extra)
    (tagged,) = tagger(["The film wasn't good."])
    assert [(w, t) for w, t, _ in tagged] == [("The", "DT"), ("film", "NN"), ("was", "VBD"), ("n't", "RB"),
                                              ("good", "JJ"), (".", ".")]
    assert _join([(w, ws) for w, _, ws in tagged]) == "The film wasn't good."
    aug = TangAugmenter(num_aug=5, tagger=tagger)
    texts = ["The film wasn't good.", "A dull, boring plot.", "Great acting and a lovely story."]
    aug.fit(texts)
    variants = aug.augment(texts, [(i, 0) for i in range(3)])
    assert all(len(vs) == 5 and len(set(vs)) == 5 and t not in vs for t, vs in zip(texts, variants))


def test_regression_pair_rows_keep_the_score_unknown_on_variants_and_each_side_is_augmented():
    """STS-B-like rows: originals keep their float score, variants get NaN (the teacher labels them), and every
    variant changes exactly one side, keeping its own row's partner."""
    import math

    ds = Dataset.from_dict({"text": ["a man is dancing", "a child rides"], "text_pair": ["a man dances", "kids ride"],
                            "label": [4.75, 1.5]})
    out = augment_dataset(ds, CountingAugmenter(), regression=True)
    rows = out[:]
    originals = [i for i, s in enumerate(rows["source"]) if s == "original"]
    assert [rows["label"][i] for i in originals] == [4.75, 1.5]
    variants = [i for i, s in enumerate(rows["source"]) if s == "augment"]
    assert len(variants) == 2 * 2 * 2 and all(math.isnan(rows["label"][i]) for i in variants)
    for i in variants:
        base = max(j for j in originals if j < i)
        same_first = rows["text"][i] == rows["text"][base]
        same_second = rows["text_pair"][i] == rows["text_pair"][base]
        assert same_first != same_second and (rows["text"][i] + rows["text_pair"][i]).count(" #") == 1


def test_a_direct_generator_call_is_checked_as_a_registry_call_and_the_registry_keeps_the_plain_function(tmp_path):
    from dfkd.augment import augment_generator
    from dfkd.transfer import GENERATORS

    absent = tmp_path / "no-task-folder"  # a check that ran after reading the task would name this folder
    with pytest.raises(DfkdError, match=r"^augment batch_size 0: expected at least 1 row per batch$"):
        augment_generator("sst2", data_dir=absent, batch_size=0)
    # the method's own settings arrive through **settings and are checked too
    with pytest.raises(DfkdError, match=r"augmentation method 'tinybert': unknown key 'num_augs' \(did you mean 'num_aug'\?\)"):
        augment_generator("sst2", data_dir=absent, num_augs=4)
    with pytest.raises(DfkdError, match=r"^unknown augmentation method 'nope'; expected one of: tang, tinybert$"):
        augment_generator("sst2", data_dir=absent, method="nope")
    assert augment_generator.__wrapped__ is GENERATORS.get("augment").fn
