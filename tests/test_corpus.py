"""The out-of-domain corpus builder (``ood/general``): split, clean, dedupe across sources, sources kept, card
figures, bad input; and the ood generator reading a corpus folder."""

from __future__ import annotations

import json

import pytest

from dfkd.errors import DfkdError
from dfkd.zeroshot.corpus import CORPUS_SOURCES, build_corpus
from dfkd.zeroshot.ood import CORPUS_CARD, candidate_documents

NEWS = [
    "Stocks rose on Monday after the central bank held rates. Traders said the move was expected by most.",
    "<p>Click here</p> for the best deals on new phones today",
    "Oil prices fell sharply as supply worries eased. Analysts expect further declines. Yes.",
]
WIKI = [
    "The river rises in the northern hills. It flows south for two hundred kilometres.",
    "stocks rose on monday after the central bank held rates!",  # a duplicate of a news sentence (case, punctuation)
]


@pytest.fixture()
def sources(tmp_path):
    news, wiki = tmp_path / "news.txt", tmp_path / "wiki.txt"
    news.write_text("\n".join(NEWS) + "\n")
    wiki.write_text("\n".join(WIKI) + "\n")
    return [str(news), str(wiki)]


def test_corpus_splits_cleans_dedupes_and_keeps_sources(tmp_path, sources):
    from datasets import load_from_disk

    card = build_corpus(sources, tmp_path / "corpus")
    ds = load_from_disk(str(tmp_path / "corpus" / "data"))
    assert ds["text"] == ["Stocks rose on Monday after the central bank held rates.",
                          "Traders said the move was expected by most.",
                          "Oil prices fell sharply as supply worries eased.", "Analysts expect further declines.",
                          "The river rises in the northern hills.", "It flows south for two hundred kilometres."]
    assert ds["source"] == ["news.txt"] * 4 + ["wiki.txt"] * 2
    assert ds["doc"] == [0, 0, 1, 1, 2, 2]  # the markup line kept no sentence, so it is no document
    news, wiki = card["sources"]["news.txt"], card["sources"]["wiki.txt"]
    assert (news["documents"], news["sentences_seen"], news["kept"]) == (3, 6, 4)
    assert (news["dropped_junk"], news["dropped_length"], news["duplicates"]) == (1, 1, 0)  # markup; "Yes."
    assert (wiki["kept"], wiki["duplicates"]) == (2, 1)
    assert card["sentences"] == 6 and card["documents"] == 3
    words = sorted(len(t.split()) for t in ds["text"])
    assert card["words"]["max"] == max(words) and card["words"]["median"] == (words[2] + words[3]) / 2
    assert json.loads((tmp_path / "corpus" / CORPUS_CARD).read_text()) == card


def test_ood_reads_a_corpus_folder_by_document(tmp_path, sources):
    build_corpus(sources, tmp_path / "corpus")
    docs = candidate_documents([str(tmp_path / "corpus")], 5, 40)
    assert docs == [["Stocks rose on Monday after the central bank held rates.",
                     "Traders said the move was expected by most."],
                    ["Oil prices fell sharply as supply worries eased."],  # its second sentence: 4 words, under 5
                    ["The river rises in the northern hills.", "It flows south for two hundred kilometres."]]


def test_corpus_bad_input_is_one_line_and_leaves_nothing(tmp_path, sources):
    out = tmp_path / "corpus"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DfkdError, match=r"corpus source empty\.txt gave no usable sentence \(0 read\)"):
        build_corpus([*sources, str(empty)], out)
    with pytest.raises(DfkdError, match=r"missing corpus source .*nope\.txt"):
        build_corpus([str(tmp_path / "nope.txt")], out)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait est tr\xe8s bon".encode("latin-1"))
    with pytest.raises(DfkdError, match=r"cannot read corpus source .*latin1\.txt"):
        build_corpus([str(bad)], out)
    with pytest.raises(DfkdError, match=r"the corpus sources give 6 usable sentences; expected at least 150000"):
        build_corpus(sources, out, min_sentences=150_000)
    with pytest.raises(DfkdError, match=r"unknown corpus source 'wikipedia'; expected one of: .*news2017"):
        build_corpus(["wikipedia"], out)
    assert not out.exists() and list(tmp_path.glob("corpus*")) == []


def test_shipped_sources_are_registered_and_found():
    assert set(CORPUS_SOURCES) >= {"agnews", "wiki", "lee", "news2017"}
    first = next(CORPUS_SOURCES.get("lee").documents())
    assert first.startswith("Hundreds of people have been forced to vacate their homes")
