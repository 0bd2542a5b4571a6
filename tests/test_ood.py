"""Out-of-domain sampling: cleaning, deduplication, length matching, pair mix, teacher-guided selection."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from dfkd.errors import DfkdError
from dfkd.zeroshot import ood_generator
from dfkd.zeroshot.ood import (
    candidate_documents,
    clean_sentence,
    perturb,
    rebalance_by_teacher,
    sample_pairs,
    select_by_teacher,
    splice,
)

NEWS = [
    "Stocks rose on Monday after the central bank held rates. Traders said the move was expected by most.",
    "stocks rose on Monday after the central bank held rates.",  # duplicate, other case
    "<p>Click here</p> for the best deals on new phones today",
    "Visit http://example.com to read more about the storm damage",
    "= = Early life = =",
    "The new phone ships next month with a larger screen. Reviewers praised its battery life.",
    "Short one.",
    "1234 5678 9012 3456 7890 !!!! ???? 1234",
    "The team won the final match in extra time. Fans celebrated in the streets all night long.",
    "Oil prices fell sharply as supply worries eased in Asian markets. Analysts expect further declines.",
]


@pytest.fixture()
def news_file(tmp_path):
    p = tmp_path / "news.txt"
    p.write_text("\n".join(NEWS) + "\n")
    return p


def test_clean_sentence_rules():
    assert clean_sentence("  The  cat sat   on the mat . ", 3, 10) == "The cat sat on the mat ."
    assert clean_sentence("the 1 @-@ 2 win was a well @-@ known upset", 3, 20) == "the 1-2 win was a well-known upset"
    assert clean_sentence("<b>bold</b> words in a sentence here", 3, 20) is None
    assert clean_sentence("see https://x.org for the full story now", 3, 20) is None
    assert clean_sentence(" = = History = = ", 1, 20) is None
    assert clean_sentence("12 34 56 78 90 12 34 56", 3, 20) is None  # under 70% letters
    assert clean_sentence("two words", 3, 20) is None and clean_sentence("a b c d e", 1, 4) is None


def test_documents_split_clean_and_deduplicate(news_file, tmp_path):
    docs = candidate_documents([str(news_file)], 4, 40)
    flat = [s for d in docs for s in d]
    assert flat[:2] == ["Stocks rose on Monday after the central bank held rates.",
                        "Traders said the move was expected by most."]
    assert len(flat) == len({s.lower() for s in flat}) == 8  # 4 two-sentence lines; dup, markup, junk, short gone
    assert not any("http" in s or "<p>" in s or "=" in s for s in flat)
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.txt").write_text(NEWS[5] + "\n")
    (folder / "b.txt").write_text(NEWS[8] + "\n")
    assert sum(map(len, candidate_documents([str(folder)], 4, 40))) == 4
    with pytest.raises(DfkdError, match="missing out-of-domain text"):
        candidate_documents([str(tmp_path / "nope.txt")], 4, 40)


def test_pair_mix_counts_and_kinds():
    docs = [[f"doc {d} sentence {i} has several words" for i in range(5)] for d in range(40)]
    rng = random.Random(0)
    rows = sample_pairs(docs, 100, {"adjacent": 0.4, "random": 0.3, "perturbed": 0.3}, rng)
    kinds = [k for _, _, k in rows]
    assert (kinds.count("adjacent"), kinds.count("random"), kinds.count("perturbed")) == (40, 30, 30)
    for a, b, k in rows:
        da, ia = int(a.split()[1]), int(a.split()[3])
        if k == "adjacent":
            assert b == f"doc {da} sentence {ia + 1} has several words"
        elif k == "perturbed":
            assert set(b.split()) <= set(a.split()) and b != a
        else:
            assert a != b


def test_rewritten_pairs_take_their_copy_from_the_rewriter_and_need_one():
    from dfkd.zeroshot.ood import ood_rows

    docs = [[f"doc {d} sentence {i} has several words" for i in range(5)] for d in range(20)]
    ds = ood_rows(True, docs, 40, 0, {"random": 0.5, "rewritten": 0.5}, rewrite=lambda ts: [t.upper() for t in ts])
    rewritten = [(a, b) for a, b in zip(ds["text"], ds["text_pair"], strict=True) if b == a.upper()]
    assert len(rewritten) == 20 and len(ds) == 40
    with pytest.raises(DfkdError, match="'rewritten' pairs need a masked-LM rewriter"):
        ood_rows(True, docs, 10, 0, {"rewritten": 1.0})
    with pytest.raises(DfkdError, match=r"unknown pair kind\(s\) \['copied'\]"):
        ood_rows(True, docs, 10, 0, {"copied": 1.0})


@pytest.fixture()
def rigged_rewriter(tmp_path, tiny_rewriter_dir):
    """The tiny masked LM with its output bias rigged: [SEP] +200, "good" +100, "fine" +50 over every other id."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_rewriter_dir)
    model = AutoModelForMaskedLM.from_pretrained(tiny_rewriter_dir)
    bias = model.cls.predictions.decoder.bias
    with torch.no_grad():
        for word, boost in (("[SEP]", 200.0), ("good", 100.0), ("fine", 50.0)):
            bias[tok.convert_tokens_to_ids(word)] += boost
    model.save_pretrained(tmp_path / "rigged")
    tok.save_pretrained(tmp_path / "rigged")
    return tmp_path / "rigged"


def test_mlm_rewrite_fills_masks_from_the_masked_lm_never_with_the_original_or_a_special_token(rigged_rewriter):
    from dfkd.zeroshot.adversarial import mlm_rewrite

    # every token masked: the masked LM's favourite ordinary token replaces each one, except where it is the
    # original token, which gets the runner-up ([SEP] is never drawn, though its logit is highest)
    out = mlm_rewrite(["the movie was bad", "good good", "a good plot"], rigged_rewriter, mask_prob=1.0)
    assert out == ["good good good good", "fine fine", "good fine good"]
    # a tiny mask share still changes exactly one token per text (at least one is always masked)
    one = mlm_rewrite(["the movie was really bad", "the plot was dull"], rigged_rewriter, mask_prob=1e-9, seed=3)
    for before, after in zip(["the movie was really bad", "the plot was dull"], one, strict=True):
        changed = [(a, b) for a, b in zip(before.split(), after.split(), strict=True) if a != b]
        assert len(changed) == 1 and changed[0][1] == "good"


def test_ood_generator_builds_rewritten_pairs_with_the_masked_lm(tmp_path, rigged_rewriter):
    text = tmp_path / "toy.txt"  # words of the tiny vocabulary, so that no token is [UNK]
    text.write_text("the movie was really dull and the plot was poor. a very boring story and a bad film.\n"
                    "the acting was quite awful. the story was really ugly and the film was very dull.\n")
    ds, card = ood_generator("mrpc", sources=[str(text)], size=4, seed=0, min_words=4,
                             pair_mix={"rewritten": 1.0}, rewriter=str(rigged_rewriter), rewrite_prob=1.0)
    assert len(ds) == 4 and card["ood"]["rewriter"] == {"mlm": str(rigged_rewriter), "mask_prob": 1.0}
    for text, copy in zip(ds["text"], ds["text_pair"], strict=True):
        assert len(copy.split()) == len(text.rstrip(".").split()) and set(copy.split()) <= {"good", "fine"}


def test_perturb_drops_and_swaps():
    rng = random.Random(3)
    words = [f"w{i}" for i in range(200)]
    out = perturb(" ".join(words), rng).split()
    assert 0.75 * 200 < len(out) < 0.95 * 200  # 15% dropped, sd ~ 5 words
    assert sorted(out, key=lambda w: int(w[1:])) != out  # one adjacent swap


class _FixedRng(random.Random):
    """A ``random.Random`` whose ``uniform`` and ``random`` return set values."""

    def __init__(self, uniform: float, coin: float):
        super().__init__(0)
        self._u, self._c = uniform, coin

    def uniform(self, a, b):
        return self._u

    def random(self):
        return self._c


def test_splice_keeps_one_run_of_the_sentence_and_fills_its_length_from_the_neighbour():
    text = "a1 a2 a3 a4 a5 a6 a7 a8 a9 a10"
    nb = "b1 b2 b3 b4 b5 b6 b7 b8"
    # f = 0.3 of 10 words -> k = 3 kept; coin < 0.5: text's head, then the neighbour's last 7 words
    assert splice(text, nb, _FixedRng(0.3, 0.2)) == "a1 a2 a3 b2 b3 b4 b5 b6 b7 b8"
    # f = 0.64 -> k = round(6.4) = 6; coin >= 0.5: the neighbour's first 4 words, then text's last 6
    assert splice(text, nb, _FixedRng(0.64, 0.7)) == "b1 b2 b3 b4 a5 a6 a7 a8 a9 a10"
    # a neighbour shorter than the gap gives what it has; a one-word text keeps its word and takes one more
    assert splice(text, "b1 b2", _FixedRng(0.3, 0.2)) == "a1 a2 a3 b1 b2"
    assert splice("a1", nb, _FixedRng(0.5, 0.2)) == "a1 b8"
    # drawn shares: the kept run is 30-80% of the words and the copy is as long as the text
    rng = random.Random(0)
    long_text = " ".join(f"a{i}" for i in range(1, 41))
    long_nb = " ".join(f"b{i}" for i in range(1, 41))
    for _ in range(200):
        out = splice(long_text, long_nb, rng).split()
        kept = [w for w in out if w.startswith("a")]
        assert len(out) == 40 and 12 <= len(kept) <= 32
        assert " ".join(kept) in long_text  # one contiguous run of the text


def test_spliced_pairs_come_from_adjacent_sentences_and_need_them():
    def sentence(d, i):
        return " ".join(f"d{d}s{i}w{j}" for j in range(10))

    docs = [[sentence(d, i) for i in range(4)] for d in range(30)]
    rows = sample_pairs(docs, 60, {"random": 0.5, "spliced": 0.5}, random.Random(1))
    spliced = [(a, b) for a, b, k in rows if k == "spliced"]
    assert len(spliced) == 30
    for a, b in spliced:
        d, i = map(int, a.split()[0][1:].split("w")[0].split("s"))
        own, nb, words = a.split(), sentence(d, i + 1).split(), b.split()
        k = sum(w in own for w in words)
        assert len(words) == 10 and 3 <= k <= 8  # 30-80% of the 10 words kept
        assert words in (own[:k] + nb[-(10 - k):], nb[:10 - k] + own[-k:])  # the next sentence fills the rest
    single = [[f"line {i} has five words"] for i in range(10)]
    with pytest.raises(DfkdError, match="no adjacent sentence pairs .* without 'spliced'$"):
        sample_pairs(single, 10, {"random": 0.5, "spliced": 0.5}, random.Random(0))


def test_select_by_teacher_is_class_balanced_and_prefers_uncertain_rows():
    logits = np.array([[4.0, 0.0], [0.1, 0.0], [2.0, 0.0], [3.0, 0.0], [0.0, 0.2], [0.0, 5.0]], np.float32)
    # predicted classes: 0,0,0,0,1,1; entropy order within class 0: row1 > row2 > row3 > row0; class 1: row4 > row5
    assert select_by_teacher(logits, 4).tolist() == [1, 2, 4, 5]
    assert select_by_teacher(logits, 2).tolist() == [1, 4]
    # a class short of rows is filled from the rest, most uncertain first
    skew = np.array([[0.0, 9.0], [0.5, 0.0], [1.0, 0.0], [3.0, 0.0]], np.float32)
    assert select_by_teacher(skew, 3).tolist() == [0, 1, 2]


def test_select_by_teacher_fills_quotas_in_the_chosen_order():
    # predicted class 0: rows 0-2 (entropy order 1 > 2 > 0); class 1: rows 3-7 (entropy order 4 > 5 > 6 > 3 > 7)
    logits = np.array([[2, 0], [0.5, 0], [1, 0], [0, 3], [0, 0.2], [0, 1], [0, 2], [0, 4]], np.float32)
    assert select_by_teacher(logits, 4, order="uncertain").tolist() == [1, 2, 4, 5]
    assert select_by_teacher(logits, 4, order="confident").tolist() == [0, 2, 3, 7]  # lowest entropy first
    assert select_by_teacher(logits, 4, order="random").tolist() == [0, 1, 3, 4]  # pool order (a random sample)
    with pytest.raises(DfkdError, match=r"selection order 'easy': expected one of \['uncertain', 'confident', "
                                        r"'random'\]"):
        select_by_teacher(logits, 4, order="easy")


def test_select_by_teacher_follows_class_shares():
    # predicted class 0: rows 0-2 (entropy order 1 > 2 > 0); class 1: rows 3-7 (entropy order 4 > 5 > 6 > 3 > 7)
    logits = np.array([[2, 0], [0.5, 0], [1, 0], [0, 3], [0, 0.2], [0, 1], [0, 2], [0, 4]], np.float32)
    assert select_by_teacher(logits, 5, (0.2, 0.8)).tolist() == [1, 3, 4, 5, 6]  # quotas 1 and 4
    assert select_by_teacher(logits, 5, (0.6, 0.4)).tolist() == [0, 1, 2, 4, 5]  # quotas 3 and 2
    assert select_by_teacher(logits, 5, (3, 2)).tolist() == [0, 1, 2, 4, 5]  # shares are normalised
    with pytest.raises(DfkdError, match=r"class shares \[0\.5, 0\.3, 0\.2\]: expected 2 positive numbers"):
        select_by_teacher(logits, 5, (0.5, 0.3, 0.2))


def test_rebalance_keeps_the_largest_subset_in_the_given_class_shares():
    # predicted classes: rows 0-5 -> 0 (six rows), rows 6-9 -> 1 (four rows)
    logits = np.array([[1.0, 0.0]] * 6 + [[0.0, 1.0]] * 4, np.float32)
    keep = rebalance_by_teacher(logits, (1, 1))
    # equal shares: 4 / 0.5 = 8 rows, every class-1 row and 4 of the 6 class-0 rows, without repetition
    assert len(keep) == 8 and len(set(keep.tolist())) == 8 and keep.tolist() == sorted(keep.tolist())
    assert set(range(6, 10)) <= set(keep.tolist()) and len(set(keep.tolist()) & set(range(6))) == 4
    # class 1 at 0.8: min(6 / 0.2, 4 / 0.8) = 5 rows, 1 of class 0 and all 4 of class 1
    keep = rebalance_by_teacher(logits, (0.2, 0.8))
    assert sorted(int(logits[i].argmax()) for i in keep) == [0, 1, 1, 1, 1]
    # the sample is seeded: the same seed keeps the same rows, other seeds other class-0 rows
    picks = {tuple(rebalance_by_teacher(logits, (1, 1), seed=s).tolist()) for s in range(20)}
    assert rebalance_by_teacher(logits, (1, 1), seed=3).tolist() == rebalance_by_teacher(logits, (1, 1), seed=3).tolist()
    assert len(picks) > 1
    with pytest.raises(DfkdError, match=r"^the teacher predicts no row of class 1; cannot keep the class shares"):
        rebalance_by_teacher(logits[:6], (1, 1))
    with pytest.raises(DfkdError, match=r"^class shares \[1, 0\]: expected 2 positive numbers"):
        rebalance_by_teacher(logits, (1, 0))


def test_generator_reads_no_task_data(news_file, monkeypatch):
    import dfkd.tasks as tasks

    monkeypatch.setattr(tasks, "load_task", lambda *a, **k: pytest.fail("the ood generator read task data"))
    ds, card = ood_generator("sst2", data_dir="/nonexistent", sources=[str(news_file)], size=5, seed=1)
    assert len(ds) == 5 and set(ds["source"]) == {"ood"} and "label" not in ds.column_names
    assert card["ood"]["words"] == [3, 40] and card["ood"]["available_sentences"] == 8
    pairs, _ = ood_generator("mrpc", sources=[str(news_file)], size=6, seed=1,
                             pair_mix={"adjacent": 1, "random": 1, "perturbed": 1}, min_words=4)
    assert pairs.column_names == ["text", "text_pair", "source"] and len(pairs) == 6


def test_cli_ood_with_teacher_selection_and_labels(tmp_path, news_file, tiny_teacher_dir, capsys):
    from dfkd.cli import main

    out = tmp_path / "ood"
    assert main(["ood", "--task", "sst2", "--source", str(news_file), "--size", "4", "--select-teacher",
                 str(tiny_teacher_dir), "--pool-factor", "2", "--selection-order", "random", "--perturbed-share",
                 "0.5", "--teacher", str(tiny_teacher_dir), "--out", str(out)]) == 0
    card = json.loads((out / "dfkd_card.json").read_text())
    assert card["generator"] == "ood" and card["rows"] == 4 and card["ood"]["selection"]["pool_rows"] == 8
    assert card["ood"]["selection"]["order"] == "random" and card["ood"]["perturbed_share"] == 0.5
    assert card["settings"]["selection_order"] == "random"
    assert card["rows_by_source"] == {"ood": 4} and card["teacher"] == str(tiny_teacher_dir)
    capsys.readouterr()
    assert main(["ood", "--task", "sst2", "--source", str(tmp_path / "none.txt"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing out-of-domain text" in err[0] and not (tmp_path / "x").exists()


def test_ood_generator_refuses_an_unknown_selection_order_before_reading_any_text(tmp_path):
    from dfkd.zeroshot import ood_generator

    with pytest.raises(DfkdError, match=r"ood selection_order 'hard': expected one of \['uncertain', 'confident', "
                                        r"'random'\]"):
        ood_generator("sst2", sources=[str(tmp_path / "absent.txt")], size=10, selection_order="hard")


def test_perturbed_share_makes_that_share_of_single_sentence_rows_perturbed_copies(tmp_path):
    from dfkd.zeroshot import ood_generator
    from dfkd.zeroshot.ood import ood_rows

    docs = [[f"doc {d} sentence {i} has several more words" for i in range(5)] for d in range(20)]
    plain = ood_rows(False, docs, 40, 0)
    assert ood_rows(False, docs, 40, 0, perturbed_share=0.0)["text"] == plain["text"]  # 0: the rows as before
    ds = ood_rows(False, docs, 40, 0, perturbed_share=0.25)
    originals = {s for d in docs for s in d}
    edited = [t for t in ds["text"] if t not in originals]
    # 10 of 40 rows are copies with words dropped and one adjacent swap: never a corpus sentence, only its words
    assert len(ds) == 40 and len(edited) == 10
    assert all(set(t.split()) <= set(docs[0][0].split()) | {str(n) for n in range(20)} for t in edited)
    assert len(set(ds["text"]) & originals) == 30
    with pytest.raises(DfkdError, match=r"ood perturbed_share 1\.5: expected a share of rows in \[0, 1\]"):
        ood_generator("cola", sources=[str(tmp_path / "absent.txt")], size=10, perturbed_share=1.5)
    with pytest.raises(DfkdError, match="ood perturbed_share is for single-sentence tasks; mrpc is a pair task"):
        ood_generator("mrpc", sources=[str(tmp_path / "absent.txt")], size=10, perturbed_share=0.3)


@pytest.mark.parametrize("text, kind, expected", [
    # (the only violation of that kind the sentence allows, so the edit is known by hand)
    ("The dogs are loud.", "agreement", {"The dogs is loud."}),
    ("Yesterday he left early.", "case", {"Yesterday him left early."}),
    ("Jo saw me.", "case", {"Jo saw I."}),  # "I" is written upper-case wherever it stands
    ("She hurt herself badly.", "reflexive", {f"She hurt {r} badly." for r in
                                              ("himself", "itself", "themselves", "myself", "ourselves")}),
    ("They will make cakes.", "verb_form", {"They will making cakes."}),
    ("Fans went to games.", "drop", {"Fans went games."}),
    ("Fans went to games.", "double", {"Fans went to to games."}),
    ("Prices rose sharply.", "swap", {"rose Prices sharply.", "Prices sharply rose."}),
])
def test_corrupt_makes_one_violation_of_the_drawn_kind(text, kind, expected):
    from dfkd.zeroshot.ood import corrupt

    seen = {}
    for seed in range(200):
        out, k = corrupt(text, random.Random(seed))
        seen.setdefault(k, set()).add(out)
    assert seen[kind] == expected
    assert corrupt("Hello", random.Random(0)) is None  # one word: nothing to corrupt


def test_corrupt_keeps_case_and_punctuation_and_draws_only_kinds_that_apply():
    from dfkd.zeroshot.ood import corrupt

    kinds = {corrupt("Prices rose.", random.Random(s))[1] for s in range(50)}
    assert kinds == {"swap"}  # no agreement, case, reflexive, modal or function word to edit
    outs = {corrupt("Is it, they asked?", random.Random(s)) for s in range(300)}
    assert ("Are it, they asked?", "agreement") in outs  # capital kept
    assert ("Is it, them asked?", "case") in outs  # comma stays where it was
    assert ("it Is, they asked?", "swap") in outs  # the words move, the comma stays in place


def test_grammar_perturbation_edits_that_share_of_single_sentence_rows_with_one_violation(tmp_path):
    from dfkd.zeroshot.ood import ood_rows

    docs = [[f"The team {d} is playing well in game {i}." for i in range(5)] for d in range(20)]
    originals = {s for d in docs for s in d}
    ds = ood_rows(False, docs, 40, 0, perturbed_share=0.25, perturbation="grammar")
    edited = [t for t in ds["text"] if t not in originals]
    assert len(ds) == 40 and len(edited) == 10
    # each edited row is a corpus sentence with one edit: a word swapped for another form, dropped, doubled or
    # moved, so its word count differs from a corpus sentence's (9) by at most one
    assert all(abs(len(t.split()) - 9) <= 1 for t in edited)
    with pytest.raises(DfkdError, match=r"ood perturbation 'shuffle': expected one of \['words', 'grammar'\]"):
        ood_generator("cola", sources=[str(tmp_path / "absent.txt")], size=10, perturbation="shuffle")
    with pytest.raises(DfkdError, match="ood perturbation 'grammar' edits the perturbed_share of the rows, which is 0"):
        ood_generator("cola", sources=[str(tmp_path / "absent.txt")], size=10, perturbation="grammar")
