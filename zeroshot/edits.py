"""Edits of out-of-domain sentences that give a teacher's other classes something to answer: perturbed copies
(words dropped, one swap), one grammatical violation (CoLA's "unacceptable"), and splices of two sentences (pairs
with partial word overlap, as paraphrase corpora have)."""

from __future__ import annotations

import random


def perturb(text: str, rng: random.Random, drop: float = 0.15) -> str:
    """A near-paraphrase: each word dropped with probability ``drop`` (at least one kept), one adjacent swap."""
    words = text.split()
    kept = [w for w in words if rng.random() >= drop] or [rng.choice(words)]
    if len(kept) > 2:
        i = rng.randrange(len(kept) - 1)
        kept[i], kept[i + 1] = kept[i + 1], kept[i]
    return " ".join(kept)


#: :func:`corrupt`'s one-word substitutions, each a minimal-pair violation in the manner of BLiMP (Warstadt et al.
#: 2020): subject-verb and determiner-noun agreement, pronoun case and reflexive agreement. Each maps both ways.
AGREEMENT_SWAPS = {"is": "are", "was": "were", "has": "have", "does": "do", "isn't": "aren't", "wasn't": "weren't",
                   "hasn't": "haven't", "doesn't": "don't", "this": "these", "that": "those", "much": "many"}
CASE_SWAPS = {"he": "him", "she": "her", "they": "them", "we": "us", "i": "me", "who": "whom"}
REFLEXIVES = ("himself", "herself", "itself", "themselves", "myself", "ourselves")
MODALS = frozenset({"will", "would", "can", "could", "should", "may", "might", "must", "shall"})
#: Function words :func:`corrupt` drops (an argument-structure violation, "went the store") or doubles.
FUNCTION_WORDS = frozenset({"the", "a", "an", "to", "of", "in", "on", "for", "with", "by", "at", "from", "is", "are",
                            "was", "were", "has", "have", "and"})
#: The kinds of edit :func:`corrupt` makes.
CORRUPTIONS = ("agreement", "case", "reflexive", "verb_form", "drop", "double", "swap")


def _two_way(table: dict[str, str]) -> dict[str, str]:
    return {**table, **{v: k for k, v in table.items()}}


_AGREEMENT, _CASE = _two_way(AGREEMENT_SWAPS), _two_way(CASE_SWAPS)
_PUNCT = ".,;:!?\"'()"


def _with_core(word: str, core: str) -> str:
    """``word`` with its letters (what lies between leading and trailing punctuation) replaced by ``core``."""
    stripped = word.strip(_PUNCT)
    return word.replace(stripped, core, 1) if stripped else word


def _same_case(word: str, like: str) -> str:
    if word == "i":
        return "I"
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


def corrupt(text: str, rng: random.Random) -> tuple[str, str] | None:
    """One grammatical violation in ``text``, a minimal pair of it: ``(corrupted text, kind)``, or ``None``.

    CoLA's unacceptable sentences differ from acceptable ones by one violation of agreement, case, argument
    structure or word order (Warstadt et al. 2019), not by dropped content; word-dropped news is "unacceptable"
    to a CoLA teacher for other reasons. One edit of a kind drawn uniformly from those that apply
    (:data:`CORRUPTIONS`), at a uniformly drawn position:

    - ``agreement``: a verb or determiner of :data:`AGREEMENT_SWAPS` swapped for its other number
      ("the dogs is", "these dog");
    - ``case``: a pronoun swapped for its other case ("him left", :data:`CASE_SWAPS`);
    - ``reflexive``: a reflexive swapped for another ("she hurt themselves");
    - ``verb_form``: the word after a modal given ``-ing`` ("will making");
    - ``drop``: a function word (:data:`FUNCTION_WORDS`) removed ("went the store");
    - ``double``: a function word repeated ("to to");
    - ``swap``: two adjacent words exchanged.

    Words are whitespace-split; punctuation stays in place (a word ``is,`` is matched as ``is``, and becomes
    ``are,``). Returns ``None`` for a text of fewer than two words.
    """
    words = text.split()
    if len(words) < 2:
        return None
    bare = [w.strip(_PUNCT) for w in words]
    core = [b.lower() for b in bare]
    function_words = [i for i, c in enumerate(core) if c in FUNCTION_WORDS]
    options: dict[str, list[int]] = {
        "agreement": [i for i, c in enumerate(core) if c in _AGREEMENT],
        "case": [i for i, c in enumerate(core) if c in _CASE],
        "reflexive": [i for i, c in enumerate(core) if c in REFLEXIVES],
        "verb_form": [i + 1 for i, c in enumerate(core[:-1]) if c in MODALS and core[i + 1].isalpha()
                      and core[i + 1] not in MODALS | {"not", "be", "have"} and not core[i + 1].endswith("ing")],
        "drop": function_words,
        "double": function_words,
        "swap": list(range(len(words) - 1)),
    }
    kind = rng.choice([k for k in CORRUPTIONS if options[k]])
    i = rng.choice(options[kind])
    c = core[i]
    out = list(words)
    if kind in ("agreement", "case"):
        out[i] = _with_core(words[i], _same_case({"agreement": _AGREEMENT, "case": _CASE}[kind][c], bare[i]))
    elif kind == "reflexive":
        out[i] = _with_core(words[i], _same_case(rng.choice([r for r in REFLEXIVES if r != c]), bare[i]))
    elif kind == "verb_form":
        stem = c[:-1] if c.endswith("e") and not c.endswith("ee") else c
        out[i] = _with_core(words[i], stem + "ing")
    elif kind == "drop":
        del out[i]
    elif kind == "double":
        out.insert(i, bare[i])
    else:  # the words change places, their punctuation stays
        out[i], out[i + 1] = _with_core(words[i], bare[i + 1]), _with_core(words[i + 1], bare[i])
    return " ".join(out), kind


def splice(text: str, neighbour: str, rng: random.Random, keep: tuple[float, float] = (0.3, 0.8)) -> str:
    """A partly overlapping copy of ``text``: one run of its words kept, the rest of its length from ``neighbour``.

    A share ``f ~ U(keep)`` of ``text``'s ``n`` words is kept as one run (``k = max(1, round(f * n))`` words): with
    probability 1/2 its first ``k`` words followed by ``neighbour``'s last ``n - k``, else ``neighbour``'s first
    ``n - k`` followed by ``text``'s last ``k`` (fewer if ``neighbour`` is shorter; at least one of its words). With
    ``neighbour`` the next sentence of the same document, the copy stays on topic and about as long as ``text``
    but shares only part of its content: the middle ground of word overlap between a near-copy and an unrelated
    sentence, where paraphrase and similarity pairs lie.
    """
    words, other = text.split(), neighbour.split()
    k = min(len(words), max(1, round(len(words) * rng.uniform(*keep))))
    m = max(1, len(words) - k)
    if rng.random() < 0.5:
        return " ".join(words[:k] + other[-m:])
    return " ".join(other[:m] + words[-k:])
