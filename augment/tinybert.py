"""TinyBERT's data augmentation (Jiao et al. 2020, "TinyBERT", §3.2 and Algorithm 1), batched.

For each text, split into words as BERT's basic tokenizer does (whitespace, then punctuation; the fast
tokenizer's pre-tokenizer gives the same words with their character spans). A word is a *candidate* if
it is alphabetic (a-z after lower-casing and accent stripping) and not a stop word. Its replacements:

* a word that is one WordPiece: the ``top_k`` masked-LM predictions at its position (the word masked,
  all else kept), minus ``##`` pieces, special tokens and the word itself. With ``mlm_context="pair"``
  (default, as the reference) the MLM reads ``[CLS] masked sentence [SEP] original sentence [SEP]``;
  with ``"single"`` it reads ``[CLS] masked sentence [SEP]``;
* a word of several pieces: its ``top_k`` nearest neighbours by cosine in the word vectors (itself
  excluded); a word missing from the vectors keeps only itself.

Each variant replaces every candidate word with probability ``replace_prob`` by a uniformly drawn
replacement (:func:`~dfkd.augment.base.draw_variants`); ``num_aug`` distinct variants per text.
Replacements take the original word's case (Title/UPPER) and are spliced into the original string, so
the text reads naturally ("won't" stays "won't").

Differences from the reference script (``TinyBERT/data_augmentation.py``), all deliberate:

* speed: all masked copies of a batch of texts go through the MLM together, in length-sorted batches
  under ``torch.inference_mode()``, and the MLM head is applied only at the masked positions (the
  reference runs one full forward, with vocabulary logits at every position, per word); vector
  neighbours are computed once per distinct word per run with one matrix product per block of words;
* the word itself is removed from the MLM's candidates (the reference keeps it); ``num_aug`` counts
  distinct variants (the reference makes ``N`` draws and drops duplicates, often returning fewer);
* stop words are gensim's list plus the contraction pieces of the reference's NLTK list (s, t, ll,
  wasn, didn, ...; ``nltk.download`` is not available here);
* pair tasks are handled by :func:`~dfkd.augment.base.augment_dataset`, each variant with its own row's
  partner (the reference pairs second-sentence variants with the last first-sentence variant).
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable

import torch

from ..distill.mlm import load_mlm, masked_logits
from ..distill.vectors import WordVectors
from ..errors import DfkdError
from .base import AUGMENTERS, Augmenter, draw_variants, match_case, rng_for

#: Contraction pieces that BERT's basic tokenizer splits off ("won't" -> won ' t, "wasn't" -> wasn ' t),
#: as in the reference's (NLTK's) stop-word list; replacing them would garble negations.
CONTRACTION_PIECES = frozenset({"s", "t", "d", "ll", "m", "re", "ve", "ain", "aren", "couldn", "didn", "doesn",
                                "don", "hadn", "hasn", "haven", "isn", "ma", "mightn", "mustn", "needn", "shan",
                                "shouldn", "wasn", "weren", "won", "wouldn"})


def default_stop_words() -> frozenset[str]:
    """gensim's English stop words (337) plus :data:`CONTRACTION_PIECES`."""
    from gensim.parsing.preprocessing import STOPWORDS

    return frozenset(STOPWORDS) | CONTRACTION_PIECES


def _plain(word: str) -> str:
    return unicodedata.normalize("NFD", word.lower()).encode("ascii", "ignore").decode()


def is_candidate(word: str, stop_words: Iterable[str]) -> bool:
    """TinyBERT's rule: alphabetic (a-z after lower-casing and stripping accents) and not a stop word."""
    plain = _plain(word)
    return bool(plain) and plain.isascii() and plain.isalpha() and len(plain) == len(word) and plain not in stop_words


@AUGMENTERS.register("tinybert")
class TinyBertAugmenter(Augmenter):
    """TinyBERT word replacement (see the module docstring).

    Args:
        mlm: masked LM (folder, asset name, hub id, or a model object with ``tokenizer``).
        word_vectors: for multi-piece words: a name, file or object accepted by :meth:`WordVectors.load`;
            ``None`` leaves multi-piece words unchanged.
        replace_prob / num_aug / top_k: the paper's p (0.4), N (20) and M (15).
        mlm_context: ``"pair"`` (masked sentence [SEP] original sentence, as the reference) or ``"single"``.
        seed: variants of row ``i`` depend only on ``seed``, ``i`` and the text.
        max_vectors: keep the first N word vectors (the reference keeps 100,000 GloVe words).
        stop_words: words never replaced (default :func:`default_stop_words`).
        mlm_batch_size: masked copies per MLM forward; max_length: tokens per masked copy.
        device: default CUDA, else MPS, else CPU.

    Raises:
        DfkdError: bad settings, an unloadable MLM or word vectors.
    """

    name = "tinybert"

    def __init__(self, mlm="models/mlm-minilm-l6", word_vectors="glove-6b-50d", replace_prob: float = 0.4,
                 num_aug: int = 20, top_k: int = 15, mlm_context: str = "pair", seed: int = 0,
                 max_vectors: int | None = 100_000, stop_words: Iterable[str] | None = None,
                 mlm_batch_size: int = 128, max_length: int = 512, tokenizer=None, device=None) -> None:
        self.check_settings({"mlm_context": mlm_context, "replace_prob": replace_prob, "num_aug": num_aug,
                             "top_k": top_k})
        self.replace_prob, self.num_aug, self.top_k = replace_prob, num_aug, top_k
        self.mlm_context, self.seed, self.max_vectors = mlm_context, seed, max_vectors
        self.mlm_batch_size = mlm_batch_size
        self.stop_words = frozenset(stop_words) if stop_words is not None else default_stop_words()
        self._sources = {"mlm": str(mlm) if isinstance(mlm, str) else type(mlm).__name__,
                         "word_vectors": str(word_vectors) if isinstance(word_vectors, str | None) else
                         type(word_vectors).__name__}
        self.model, self.tokenizer = load_mlm(mlm, tokenizer, device)
        self.max_length = min(max_length, getattr(self.model.config, "max_position_embeddings", max_length))
        self.vectors = WordVectors.load(word_vectors, max_vectors) if word_vectors is not None else None
        self._neighbour_cache: dict[str, list[str]] = {}
        self._pid = os.getpid()
        vocab = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        special = set(self.tokenizer.all_special_tokens)
        self._vocab = vocab
        self._bad_id = torch.tensor([t is None or t.startswith("##") or t in special or
                                     (t.startswith("[") and t.endswith("]")) for t in vocab])

    @classmethod
    def check_settings(cls, settings: dict) -> None:
        if settings["mlm_context"] not in ("pair", "single"):
            raise DfkdError(f"mlm_context must be 'pair' or 'single', got {settings['mlm_context']!r}")
        if not 0.0 <= settings["replace_prob"] <= 1.0:
            raise DfkdError(f"replace_prob must be in [0, 1], got {settings['replace_prob']}")
        if settings["num_aug"] < 0 or settings["top_k"] < 1:
            raise DfkdError(f"need num_aug >= 0 and top_k >= 1, got num_aug={settings['num_aug']}, "
                            f"top_k={settings['top_k']}")

    def settings(self) -> dict:
        return {"method": self.name, "replace_prob": self.replace_prob, "num_aug": self.num_aug,
                "top_k": self.top_k, "mlm_context": self.mlm_context, "seed": self.seed,
                "max_vectors": self.max_vectors, "stop_words": len(self.stop_words), **self._sources}

    # ------------------------------------------------------------------ analysis
    def analyse(self, texts: list[str]) -> list[list[dict]]:
        """Candidate words of each text.

        Returns:
            Per text, one dict per candidate word: ``span`` (start, end) in characters, ``word`` (surface),
            ``pieces`` (token positions in the text's WordPiece ids) and ``ids`` (the text's WordPiece ids).
        """
        enc = self.tokenizer(texts, add_special_tokens=False, truncation=False)
        out = []
        for b, text in enumerate(texts):
            ids, positions = enc["input_ids"][b], {}
            for pos, w in enumerate(enc.word_ids(b)):
                if w is not None:
                    positions.setdefault(w, []).append(pos)
            words = []
            for w, pieces in positions.items():
                span = enc.word_to_chars(b, w)
                surface = text[span.start:span.end]
                if is_candidate(surface, self.stop_words):
                    words.append({"span": (span.start, span.end), "word": surface, "pieces": pieces, "ids": ids})
            out.append(words)
        return out

    def _asks_mlm(self, word: dict) -> bool:
        """A single-piece word whose position fits in the MLM's first segment."""
        return len(word["pieces"]) == 1 and word["pieces"][0] < self.max_length - 2

    def masked_inputs(self, analysed: list[list[dict]]) -> list[tuple[list[int], list[int], int]]:
        """The MLM inputs for the single-piece candidate words, in order of :meth:`analyse`'s output.

        Returns:
            One ``(input_ids, token_type_ids, mask position)`` per single-piece word whose position fits in
            ``max_length`` (others get no MLM candidates).
        """
        tok = self.tokenizer
        cls_id, sep_id, mask_id = tok.cls_token_id, tok.sep_token_id, tok.mask_token_id
        out = []
        for words in analysed:
            for w in words:
                if not self._asks_mlm(w):
                    continue
                pos = w["pieces"][0]
                first = list(w["ids"][: self.max_length - 2])
                first[pos] = mask_id
                seq = [cls_id, *first, sep_id]
                types = [0] * len(seq)
                if self.mlm_context == "pair":
                    room = self.max_length - 1 - len(seq)  # none when the first copy fills max_length
                    second = list(w["ids"][:room]) if room > 0 else []
                    if second:
                        seq += [*second, sep_id]
                        types += [1] * (len(second) + 1)
                out.append((seq, types, pos + 1))
        return out

    @torch.inference_mode()
    def predict_masked(self, inputs: list[tuple[list[int], list[int], int]]) -> torch.Tensor:
        """Top-``top_k`` token ids at each input's masked position: ``(len(inputs), top_k)`` int64.

        Identical inputs are run once; the rest go through the MLM in length-sorted batches of
        ``mlm_batch_size``, and the MLM head is applied only to the masked positions' hidden states.
        """
        if not inputs:
            return torch.zeros((0, self.top_k), dtype=torch.long)
        if os.getpid() != self._pid:  # a Dataset.map worker (forked): torch's thread pool is not fork-safe
            torch.set_num_threads(1)
            self._pid = os.getpid()
        keys = [(tuple(seq), m) for seq, _, m in inputs]
        first_of: dict[tuple, int] = {}
        for i, k in enumerate(keys):
            first_of.setdefault(k, i)
        order = sorted(first_of.values(), key=lambda i: -len(inputs[i][0]))
        found: dict[tuple, torch.Tensor] = {}
        device = next(self.model.parameters()).device
        pad = self.tokenizer.pad_token_id or 0
        for s in range(0, len(order), self.mlm_batch_size):
            chunk = order[s:s + self.mlm_batch_size]
            width = len(inputs[chunk[0]][0])
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            types = torch.zeros((len(chunk), width), dtype=torch.long)
            att = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, i in enumerate(chunk):
                seq, tt, _ = inputs[i]
                ids[r, :len(seq)] = torch.tensor(seq)
                types[r, :len(seq)] = torch.tensor(tt)
                att[r, :len(seq)] = 1
            where = torch.zeros_like(ids, dtype=torch.bool)
            where[torch.arange(len(chunk)), torch.tensor([inputs[i][2] for i in chunk])] = True
            feed = {"input_ids": ids.to(device), "attention_mask": att.to(device)}
            if "token_type_ids" in self.tokenizer.model_input_names:
                feed["token_type_ids"] = types.to(device)
            logits = masked_logits(self.model, where.to(device), **feed)
            idx = logits.float().topk(self.top_k, dim=-1).indices.cpu()
            for r, i in enumerate(chunk):
                found[keys[i]] = idx[r]
        return torch.stack([found[k] for k in keys])

    def neighbours(self, words: list[str]) -> dict[str, list[str]]:
        """Vector neighbours (``top_k``, lower-cased lookup) of each word, computed once per word per run."""
        keys = {w: w.lower() for w in words}
        missing = [k for k in dict.fromkeys(keys.values()) if k not in self._neighbour_cache]
        if missing:
            if self.vectors is None:
                self._neighbour_cache.update({k: [] for k in missing})
            else:
                self._neighbour_cache.update(self.vectors.neighbours(missing, self.top_k))
        return {w: self._neighbour_cache[k] for w, k in keys.items()}

    # ------------------------------------------------------------------ the method
    def candidates(self, texts: list[str]) -> list[list[tuple[tuple[int, int], list[str]]]]:
        """Per text, ``(span, replacements)`` for every candidate word (replacements in the word's case)."""
        analysed = self.analyse(texts)
        tops = self.predict_masked(self.masked_inputs(analysed)).tolist()
        bad = self._bad_id.tolist()
        near = self.neighbours([w["word"] for words in analysed for w in words if len(w["pieces"]) > 1])
        out, k = [], 0
        for words in analysed:
            row = []
            for w in words:
                surface = w["word"]
                if self._asks_mlm(w):
                    found = [self._vocab[i] for i in tops[k] if not bad[i]]
                    k += 1
                elif len(w["pieces"]) == 1:
                    found = []  # beyond max_length: keeps itself
                else:
                    found = near[surface]
                found = [match_case(c, surface) for c in found if c.lower() != surface.lower()]
                row.append((w["span"], found or [surface]))
            out.append(row)
        return out

    def augment(self, texts: list[str], keys: list[tuple[int, int]]) -> list[list[str]]:
        """``num_aug`` distinct variants per text (fewer if the text has too few candidate words)."""
        out = []
        for text, key, row in zip(texts, keys, self.candidates(texts)):
            spans = [span for span, _ in row]
            cands = [c for _, c in row]
            out.append(draw_variants(text, spans, cands, self.replace_prob, self.num_aug, rng_for(self.seed, key)))
        return out
