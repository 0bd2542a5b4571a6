"""The augmenter interface, its registry, and the driver that turns a task's rows into a transfer set.

An *augmenter* turns texts into variants of themselves. It owns its models and caches; the driver
:func:`augment_dataset` owns everything else (pair tasks, sources, labels, shards, resuming), so a new
method is one module with one class registered in :data:`AUGMENTERS`.

Determinism: every text's variants come from a random generator seeded by ``(seed, row index, side)``,
never from a shared stream, so the output is the same for any ``Dataset.map`` batch size and process
count, and for a run resumed from its shards.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from pathlib import Path

from datasets import Dataset, concatenate_datasets, load_from_disk
from tqdm.auto import tqdm

from ..errors import DfkdError
from ..files import atomic_dir
from ..registry import Registry
from ..tasks import column


class Augmenter(ABC):
    """Makes up to ``num_aug`` distinct variants of each text.

    Subclasses set :attr:`name`, implement :meth:`augment` and :meth:`settings`, and may implement
    :meth:`fit` (called once with all texts to be augmented before any :meth:`augment`).
    """

    name: str = "augmenter"
    num_aug: int = 1

    @classmethod  # noqa: B027 - optional hook
    def check_settings(cls, settings: dict) -> None:
        """Check setting values without loading anything (``settings``: every ``__init__`` keyword, defaults
        filled in), so a compare refuses a bad value before its first arm. Default: nothing to check.

        Raises:
            DfkdError: a value the method cannot use.
        """

    def fit(self, texts: list[str]) -> None:  # noqa: B027 - optional hook
        """Learn whatever the method needs from the texts to augment (default: nothing)."""

    @abstractmethod
    def augment(self, texts: list[str], keys: list[tuple[int, int]]) -> list[list[str]]:
        """Variants of each text.

        Args:
            texts: the texts of one batch.
            keys: one ``(row index, side)`` per text; the variants of a text depend only on it, the
                augmenter's seed and the text (never on the batch it came in).

        Returns:
            For each text, at most ``num_aug`` distinct variants, none equal to the text itself.
        """

    @abstractmethod
    def settings(self) -> dict:
        """The settings that determine the output (for the provenance card and resume checks)."""


AUGMENTERS: Registry[type[Augmenter]] = Registry("augmentation method")


def rng_for(seed: int, key: tuple[int, int]) -> random.Random:
    """A generator that depends only on ``seed`` and ``key`` (string seeds hash with SHA-512, not ``hash()``)."""
    return random.Random(f"{seed}:{key[0]}:{key[1]}")


def match_case(word: str, like: str) -> str:
    """``word`` in the case pattern of ``like``: Title, UPPER (two or more letters) or as is."""
    if len(like) > 1 and like.isupper():
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def draw_variants(text: str, spans: list[tuple[int, int]], candidates: list[list[str]], replace_prob: float,
                  num_aug: int, rng: random.Random, max_attempts: int | None = None) -> list[str]:
    """Jiao et al. 2020, Algorithm 1's sampling step: each candidate word is replaced, with probability
    ``replace_prob``, by a candidate drawn uniformly; repeated until ``num_aug`` distinct new texts exist
    or ``max_attempts`` (default ``10 * num_aug``) draws were made.

    Args:
        text: the original text; replacements are spliced into it, so untouched parts keep their spelling.
        spans: ``(start, end)`` character spans of the candidate words, in order.
        candidates: for each span, the words it may become (may contain only the word itself).

    Returns:
        The distinct variants (never ``text`` itself), in the order they were drawn.
    """
    if not spans or replace_prob <= 0 or num_aug <= 0:
        return []
    seen = {text}
    out: list[str] = []
    for _ in range(max_attempts or 10 * num_aug):
        pieces, last = [], 0
        for (start, end), cands in zip(spans, candidates):
            choice = rng.choice(cands)  # drawn before the coin, as in the reference
            if rng.random() < replace_prob:
                pieces += [text[last:start], choice]
                last = end
        new = "".join(pieces) + text[last:]
        if new not in seen:
            seen.add(new)
            out.append(new)
            if len(out) == num_aug:
                break
    return out


def _no_label(regression: bool):
    return math.nan if regression else -1


def augment_dataset(ds: Dataset, augmenter: Augmenter, regression: bool = False, work_dir: Path | None = None,
                    batch_size: int = 64, num_proc: int | None = None, shard_size: int = 2000,
                    desc: str | None = None) -> Dataset:
    """Originals plus their variants, as transfer-set rows.

    Every original row is kept (``source=original``, its gold label) and followed by its variants
    (``source=augment``, label unknown: -1, or NaN for regression). Pair tasks augment each side: a variant
    of ``text`` keeps the row's own ``text_pair`` and a variant of ``text_pair`` keeps its own ``text``.
    Every row carries ``origin``, the index in ``ds`` of the row it was derived from (an original: its own),
    so model selection can hold out task rows together with their variants
    (:func:`dfkd.distill.data.held_out_split`).

    With ``work_dir``, each finished shard of ``shard_size`` rows is saved there and reused by a re-run, so
    an interrupted run loses at most one shard and repeats nothing.

    Args:
        ds: rows with ``text`` [, ``text_pair``] [, ``label``] (extra columns are dropped).
        augmenter: a fitted or fittable :class:`Augmenter` (``fit`` is called here on all texts).
        batch_size / num_proc: passed to ``Dataset.map``; the output does not depend on them.

    Raises:
        DfkdError: ``ds`` has no ``text`` column.
    """
    if "text" not in ds.column_names:
        raise DfkdError(f"cannot augment rows without a text column; got columns {ds.column_names}")
    pair = "text_pair" in ds.column_names
    keep = [c for c in ("text", "text_pair", "label") if c in ds.column_names]
    ds = ds.select_columns(keep)
    augmenter.fit(column(ds, "text") + (column(ds, "text_pair") if pair else []))
    none = _no_label(regression)

    def rows(batch, indices):
        n = len(batch["text"])
        texts, keys = list(batch["text"]), [(i, 0) for i in indices]
        if pair:
            texts += batch["text_pair"]
            keys += [(i, 1) for i in indices]
        variants = augmenter.augment(texts, keys)
        out = {c: [] for c in (*keep, "source", "origin")}
        for j in range(n):
            lab = batch["label"][j] if "label" in batch else none
            out["text"].append(batch["text"][j])
            if pair:
                out["text_pair"].append(batch["text_pair"][j])
            if "label" in out:
                out["label"].append(lab)
            out["source"].append("original")
            out["origin"].append(indices[j])
            for side in (0, 1) if pair else (0,):
                for v in variants[side * n + j]:
                    out["text"].append(v if side == 0 else batch["text"][j])
                    if pair:
                        out["text_pair"].append(v if side == 1 else batch["text_pair"][j])
                    if "label" in out:
                        out["label"].append(none)
                    out["source"].append("augment")
                    out["origin"].append(indices[j])
        return out

    parts = []
    n_shards = max(1, math.ceil(len(ds) / shard_size))
    bar = tqdm(total=len(ds), desc=desc or f"augment ({augmenter.name})", unit="ex", mininterval=2.0)
    for s in range(n_shards):
        lo, hi = s * shard_size, min(len(ds), (s + 1) * shard_size)
        done = work_dir / f"shard-{s:05d}" if work_dir else None
        if done is not None and done.is_dir():
            part = load_from_disk(str(done))
        else:
            part = ds.select(range(lo, hi)).map(
                lambda b, idx, lo=lo: rows(b, [lo + i for i in idx]), batched=True, batch_size=batch_size,
                with_indices=True, remove_columns=keep, num_proc=num_proc if num_proc and num_proc > 1 else None,
                load_from_cache_file=False, desc=None)
            if done is not None:
                with atomic_dir(done) as tmp:
                    part.save_to_disk(str(tmp))
                part = load_from_disk(str(done))
        parts.append(part)
        bar.update(hi - lo)
    bar.close()
    return concatenate_datasets(parts) if len(parts) > 1 else parts[0]
