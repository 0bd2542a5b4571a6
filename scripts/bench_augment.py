"""Benchmark TinyBERT augmentation: dfkd's batched augmenter vs the reference's per-word call pattern vs the
batched MLM forward passes alone (the limit).

    python scripts/bench_augment.py [--sentences 500] [--mlm models/mlm-minilm-l6] [--word-vectors glove-6b-50d]

(a) ``dfkd``: :func:`dfkd.augment.augment_dataset` with a fresh :class:`TinyBertAugmenter` (cold neighbour
    cache), ``num_aug`` 20, end to end.
(b) ``per_word``: the reference script's call pattern (``TinyBERT/data_augmentation.py``), re-created: for
    every candidate word, one MLM forward at batch 1 on ``[CLS] masked [SEP] original [SEP]`` with
    vocabulary logits at every position and no ``no_grad`` (as the reference), a full ``argsort`` of the
    masked position; for a multi-piece word, a dot product with the whole vector matrix and a full
    ``argsort``, every time; then the reference's sampling.
(c) ``limit``: only :meth:`TinyBertAugmenter.predict_masked` on the same masked inputs (all of them
    prepared beforehand).

Prints sentences/s for each, the ratios a/b and a/c, GloVe load time and resident memory; the last
line is one JSON object, with the machine it ran on (:func:`dfkd.eval.scoring.machine_info`: CPU, threads,
torch, native bfloat16), since one machine's speed drifts (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time

import numpy as np
import torch


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def per_word_pattern(texts, aug, vectors, top_k, replace_prob, num_aug) -> list[list[str]]:
    """The reference's work per sentence, word by word (see the module docstring)."""
    model, tok = aug.model, aug.tokenizer
    device = next(model.parameters()).device
    rng = random.Random(0)
    out = []
    for words in aug.analyse(texts):
        cands = []
        for w in words:
            if len(w["pieces"]) == 1:
                first = list(w["ids"])
                first[w["pieces"][0]] = tok.mask_token_id
                ids = [tok.cls_token_id, *first, tok.sep_token_id, *w["ids"], tok.sep_token_id]
                types = [0] * (len(first) + 2) + [1] * (len(w["ids"]) + 1)
                logits = model(input_ids=torch.tensor([ids], device=device),
                               token_type_ids=torch.tensor([types], device=device)).logits
                top = torch.argsort(logits[0, w["pieces"][0] + 1], descending=True)[:top_k].tolist()
                found = [t for t in tok.convert_ids_to_tokens(top) if not t.startswith("##")]
            else:
                key = w["word"].lower()
                if key in vectors.index:
                    i = vectors.index[key]
                    dist = vectors.unit @ vectors.unit[i]
                    dist[i] = -np.inf
                    found = [vectors.words[j] for j in np.argsort(-dist)[:top_k]]
                else:
                    found = []
            cands.append(found or [w["word"]])
        variants = []
        text = texts[len(out)]
        for _ in range(num_aug):
            pieces, last = [], 0
            for w, c in zip(words, cands):
                choice = rng.choice(c)
                if rng.random() < replace_prob:
                    pieces += [text[last:w["span"][0]], choice]
                    last = w["span"][1]
            new = "".join(pieces) + text[last:]
            if new != text and new not in variants:
                variants.append(new)
        out.append(variants)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sentences", type=int, default=500)
    ap.add_argument("--data-dir", default="glue/SST-2")
    ap.add_argument("--mlm", default="models/mlm-minilm-l6")
    ap.add_argument("--word-vectors", default="glove-6b-50d")
    ap.add_argument("--num-aug", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=256, help="Dataset.map batch of (a)")
    args = ap.parse_args()

    from dfkd.assets import resolve
    from dfkd.augment import augment_dataset
    from dfkd.augment.tinybert import TinyBertAugmenter
    from dfkd.distill.vectors import WordVectors
    from dfkd.eval.scoring import machine_info
    from dfkd.tasks import load_task

    ds = load_task("sst2", "train", resolve(args.data_dir, build=False)).select(range(args.sentences))
    texts = list(ds["text"])
    rss0 = rss_mb()
    t = time.perf_counter()
    vectors = WordVectors.load(args.word_vectors, 100_000)
    glove_s = time.perf_counter() - t
    rss_glove = rss_mb() - rss0
    t = time.perf_counter()
    full = WordVectors.load(args.word_vectors)
    glove_full_s = time.perf_counter() - t
    full_rows = len(full)
    del full

    def fresh():
        return TinyBertAugmenter(args.mlm, vectors, num_aug=args.num_aug, device="cpu")

    aug = fresh()
    inputs = aug.masked_inputs(aug.analyse(texts))
    aug.predict_masked(inputs[:64])  # warm-up

    print(f"{len(texts)} sentences, {len(inputs)} single-piece candidate words, torch threads "
          f"{torch.get_num_threads()}", flush=True)

    t = time.perf_counter()
    aug.predict_masked(inputs)
    limit_s = time.perf_counter() - t
    print(f"(c) limit    : {limit_s:7.2f} s  {len(texts) / limit_s:8.1f} sentences/s", flush=True)

    a = fresh()
    t = time.perf_counter()
    out = augment_dataset(ds, a, batch_size=args.batch_size)
    dfkd_s = time.perf_counter() - t
    variants = out.filter(lambda s: s == "augment", input_columns="source").num_rows
    print(f"(a) dfkd     : {dfkd_s:7.2f} s  {len(texts) / dfkd_s:8.1f} sentences/s  ({variants} variants)", flush=True)

    t = time.perf_counter()
    ref = per_word_pattern(texts, aug, vectors, aug.top_k, aug.replace_prob, args.num_aug)
    per_word_s = time.perf_counter() - t
    print(f"(b) per word : {per_word_s:7.2f} s  {len(texts) / per_word_s:8.1f} sentences/s  "
          f"({sum(map(len, ref))} variants)", flush=True)

    result = {
        "sentences": len(texts), "masked_inputs": len(inputs), "num_aug": args.num_aug,
        "dfkd_sentences_per_s": round(len(texts) / dfkd_s, 2),
        "per_word_sentences_per_s": round(len(texts) / per_word_s, 2),
        "limit_sentences_per_s": round(len(texts) / limit_s, 2),
        "speedup_vs_per_word": round(per_word_s / dfkd_s, 2),
        "ratio_to_limit": round(dfkd_s / limit_s, 3),
        "glove_load_s_100k": round(glove_s, 2), "glove_rss_mb_100k": round(rss_glove, 1),
        "glove_load_s_full": round(glove_full_s, 2), "glove_rows_full": full_rows,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "variants_written": variants, "torch_threads": torch.get_num_threads(), "machine": machine_info(),
    }
    print(f"speed-up vs per-word: {result['speedup_vs_per_word']}x; time vs limit: {result['ratio_to_limit']}x; "
          f"GloVe 100k load {glove_s:.2f} s (+{rss_glove:.0f} MB RSS)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
