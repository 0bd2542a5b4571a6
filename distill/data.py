"""Tokenisation, length-grouped batching and collation shared by labelling, training and evaluation."""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator

import torch
from datasets import Dataset
from torch.utils.data import DataLoader, Sampler

from ..errors import DfkdError
from ..tasks import column

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def encode(ds: Dataset, tokenizer, max_length: int, desc: str = "tokenising") -> Dataset:
    """Add ``input_ids``/``attention_mask``/``token_type_ids`` (unpadded, truncated to ``max_length``).

    ``text`` and the optional ``text_pair`` are encoded as one BERT sequence (pair: ``[CLS] a [SEP] b [SEP]``).
    Other columns (``label``, ``teacher_logits``) are kept.
    """
    pair = "text_pair" in ds.column_names

    def tok(batch):
        return tokenizer(batch["text"], batch["text_pair"] if pair else None, truncation=True,
                         max_length=max_length)

    return ds.map(tok, batched=True, batch_size=1000, desc=desc)


def held_out_split(ds, val_size: int | float, seed: int, min_words: int | None = None, source: str | None = None):
    """Split a dataset into (train, validation slice): ``val_size`` rows (or fraction), seeded shuffle.

    The slice is capped at 10% of the rows (of the ``source`` rows, with ``source``), so a small dataset keeps
    most of its rows for training.

    Args:
        min_words: draw the slice only from rows of at least this many words (``text`` and ``text_pair``
            together); every other row trains. For a train split whose rows are shorter than dev's (SST-2's
            train holds the parse-tree phrases of its sentences, median 7 words; dev holds whole sentences,
            median 19), so that model selection ranks checkpoints on text like dev's. Measured on SST-2's teacher
            (12 words, 3 seeds): no better than a random slice.
        source: draw the slice only from rows of this ``source`` (e.g. ``"original"``: select checkpoints on the
            task's own texts rather than on augmented ones, which students imitate far better than dev); a
            fractional ``val_size`` is then a fraction of those rows. When the dataset has an ``origin`` column
            (the augmenters write it: the index of the task row a row was derived from), every row derived from
            a held-out row leaves training too, so no variant of a validation text is trained on. When every row
            has ``source``, the slice is the one drawn without it.

    Raises:
        DfkdError: the slice would leave no training rows; fewer than ``val_size`` rows have ``min_words``; no
            row has ``source``; ``source`` is given for a dataset with rows of other sources but no ``origin``
            column (its variants of held-out rows could not be kept out of training).
    """
    candidates = None
    if source is not None:
        sources = ds["source"] if "source" in ds.column_names else []
        candidates = [i for i, s in enumerate(sources) if s == source]
        if not candidates:
            raise DfkdError(f"no row has source {source!r} to hold out for model selection; the rows' sources: "
                            f"{sorted(set(sources))}")
        if len(candidates) == len(ds):  # every row qualifies: the same slice as without a source
            return held_out_split(ds, val_size, seed)
        if "origin" not in ds.column_names:
            raise DfkdError(f"cannot hold out {source!r} rows alone: the transfer set has rows of other sources "
                            "but no origin column to keep their variants out of training; expected a transfer "
                            "set built by this dfkd (rebuild it), or no selection source")
    elif min_words:
        pairs = ds["text_pair"] if "text_pair" in ds.column_names else [""] * len(ds)
        candidates = [i for i, (a, b) in enumerate(zip(ds["text"], pairs)) if len(a.split()) + len(b.split()) >= min_words]
    pool = len(candidates) if source is not None else len(ds)  # what a fraction and the 10% cap refer to
    n_val = int(round(val_size * pool)) if isinstance(val_size, float) and val_size < 1 else int(val_size)
    n_val = max(1, min(n_val, pool // 10)) if len(ds) > 1 else 0
    if n_val == 0:
        raise DfkdError(f"need at least 2 examples to hold out a validation slice, got {len(ds)}")
    if candidates is None:
        parts = ds.train_test_split(test_size=n_val, seed=seed, shuffle=True)
        return parts["train"], parts["test"]
    if len(candidates) < n_val:
        raise DfkdError(f"only {len(candidates)} rows have at least {min_words} words; expected at least {n_val} "
                        "for the validation slice (lower min_words or val_size)")
    chosen = set(random.Random(seed).sample(candidates, n_val))
    dropped = chosen
    if source is not None:
        origins = ds["origin"]
        held = {origins[i] for i in chosen}
        dropped = {i for i, o in enumerate(origins) if o in held}
        if len(dropped) == len(ds):
            raise DfkdError(f"holding out {n_val} {source!r} row(s) with the rows derived from them leaves no "
                            f"training rows out of {len(ds)}; expected more {source!r} rows")
    return (ds.select([i for i in range(len(ds)) if i not in dropped]),
            ds.select(sorted(chosen)))


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of similar-length examples, so little compute goes to padding.

    ``shuffle=False``: indices sorted by length (longest first) and cut into batches — for inference.
    ``shuffle=True``: per epoch, the indices are shuffled, cut into pools of ``pool`` batches, each pool
    sorted by length and cut into batches, and the batch order shuffled; the order depends only on
    ``seed`` and the epoch, so a resumed run sees exactly the batches it had not yet seen
    (:meth:`position` with ``skip``). The method is deliberately not called ``set_epoch``: accelerate's
    data loader calls ``set_epoch`` on its batch sampler at every pass, which would reset ``skip``.

    Args:
        lengths: ``(n,)`` token counts of the examples.
    """

    def __init__(self, lengths: list[int], batch_size: int, shuffle: bool, seed: int = 0, pool: int = 50):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = pool
        self.epoch = 0
        self.skip = 0

    def position(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch's batch order and skip its first ``skip`` batches (for resuming)."""
        self.epoch, self.skip = epoch, skip

    def batches(self) -> list[list[int]]:
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = sorted(range(n), key=lambda i: -self.lengths[i])
            return [order[i:i + bs] for i in range(0, n, bs)]
        rng = random.Random(self.seed * 100_003 + self.epoch)
        idx = list(range(n))
        rng.shuffle(idx)
        out = []
        span = bs * self.pool
        for start in range(0, n, span):
            chunk = sorted(idx[start:start + span], key=lambda i: self.lengths[i])
            out.extend(chunk[i:i + bs] for i in range(0, len(chunk), bs))
        rng.shuffle(out)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()[self.skip:]

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size - self.skip


class Collator:
    """Pads model inputs with the tokenizer and stacks ``label`` / ``teacher_logits`` into tensors.

    Produces ``input_ids``/``attention_mask``/``token_type_ids`` ``(B, L)`` long tensors, ``labels`` ``(B,)``
    (long, or float for regression) and ``teacher_logits`` ``(B, num_labels)`` float when present.
    """

    def __init__(self, tokenizer, regression: bool = False):
        self.tokenizer = tokenizer
        self.regression = regression

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        features = [{k: r[k] for k in MODEL_INPUTS if k in r} for r in rows]
        batch = dict(self.tokenizer.pad(features, return_tensors="pt"))
        if "label" in rows[0] and rows[0]["label"] is not None:
            labels = [r["label"] if r["label"] is not None else -1 for r in rows]
            batch["labels"] = torch.tensor(labels, dtype=torch.float if self.regression else torch.long)
        if "teacher_logits" in rows[0]:
            batch["teacher_logits"] = torch.tensor([r["teacher_logits"] for r in rows], dtype=torch.float)
        return batch


def loader(ds: Dataset, tokenizer, batch_size: int, shuffle: bool, seed: int = 0,
           regression: bool = False) -> tuple[DataLoader, LengthGroupedBatchSampler]:
    """A DataLoader over an :func:`encode`-d dataset with length-grouped batches; returns it and its sampler."""
    sampler = LengthGroupedBatchSampler([len(x) for x in column(ds, "input_ids")], batch_size, shuffle, seed)
    keep = [c for c in ds.column_names if c in (*MODEL_INPUTS, "label", "teacher_logits")]
    dl = DataLoader(ds.select_columns(keep), batch_sampler=sampler, collate_fn=Collator(tokenizer, regression))
    return dl, sampler


def model_inputs(batch: dict) -> dict:
    """The subset of a batch that a transformers model's ``forward`` takes."""
    return {k: batch[k] for k in MODEL_INPUTS if k in batch}


def accepted_inputs(model, batch: dict) -> dict:
    """:func:`model_inputs` that ``model.forward`` accepts (DistilBERT takes no ``token_type_ids``)."""
    accepted = _forward_inputs(type(getattr(model, "module", model)))  # a DDP-wrapped model: its module's
    return {k: v for k, v in model_inputs(batch).items() if accepted is None or k in accepted}


@functools.cache
def _forward_inputs(model_class) -> frozenset[str] | None:
    """The :data:`MODEL_INPUTS` a model class's ``forward`` names (``None``: it takes any, ``**kwargs``), read once
    per class rather than per batch."""
    import inspect

    params = inspect.signature(model_class.forward).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return frozenset(k for k in MODEL_INPUTS if k in params)


def length_from_data(tokenizer, texts: list[str], pairs: list[str] | None = None, quantile: float = 0.99,
                     cap: int | None = None) -> dict:
    """A task's token length chosen from its own texts: the ``quantile`` of their token lengths (pairs joined as
    the model reads them, special tokens included), capped by ``cap`` and by what the tokenizer's model accepts.

    Args:
        texts / pairs: the texts (and second texts of a pair task) to measure, e.g. the train split.
        cap: an upper bound, e.g. the model's ``max_position_embeddings``.

    Returns:
        ``{"max_length": int, "quantile": float, "truncated_share": float, "rows": int}``: ``truncated_share`` is the
        share of the rows longer than ``max_length`` (0..1), which a model reading them cuts.

    Raises:
        DfkdError: no texts, or a quantile outside (0, 1].
    """
    import numpy as np

    if not texts:
        raise DfkdError("cannot choose a max_length from no texts; expected the task's rows")
    if not 0 < quantile <= 1:
        raise DfkdError(f"length quantile {quantile}; expected a share in (0, 1]")
    lengths = np.asarray([len(ids) for ids in tokenizer(list(texts), pairs)["input_ids"]])
    limits = [c for c in (cap, getattr(tokenizer, "model_max_length", None)) if c is not None and c < 100_000]
    chosen = int(np.ceil(np.quantile(lengths, quantile)))
    chosen = max(8, min([chosen, *limits]))
    return {"max_length": chosen, "quantile": quantile, "truncated_share": round(float((lengths > chosen).mean()), 4),
            "rows": int(len(lengths))}
