"""Where out-of-domain pairs fall against a task's dev pairs (issue 17): word overlap and the teacher's answer.

Zero-shot KD on a pair task trains the student only on the pairs the ``ood`` generator builds. This probe asks
whether those pairs cover the inputs the student is scored on: for the task's dev pairs and for ``--per-kind``
pairs of each kind (:data:`dfkd.zeroshot.ood.PAIR_KINDS`, without ``rewritten``, which needs a masked LM), it
reports the word overlap of the two sides (Jaccard index of their lower-cased word sets) and the share of pairs
the teacher assigns to its last class ("equivalent" on MRPC, "not_entailment" on RTE), per overlap bin. No train
row is read. The last line printed is one JSON object.

    python scripts/probe_pair_overlap.py --task mrpc [--per-kind 400]     # ~2 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import random
import re

import numpy as np
from datasets import Dataset

from dfkd.assets import resolve
from dfkd.distill.label import load_teacher, predict_logits
from dfkd.tasks import get_task, load_task
from dfkd.zeroshot.ood import TYPICAL_WORDS, candidate_documents, sample_pairs

BINS = (0.0, 0.3, 0.45, 0.6, 0.75, 1.01)


def word_overlap(a: str, b: str) -> float:
    """Jaccard index of the two texts' lower-cased word sets (words: runs of letters and digits), in [0, 1]."""
    wa, wb = set(re.findall(r"[a-z0-9]+", a.lower())), set(re.findall(r"[a-z0-9]+", b.lower()))
    return len(wa & wb) / max(1, len(wa | wb))


def profile(model, tokenizer, pairs: list[tuple[str, str]], max_length: int) -> dict:
    """Overlap quantiles and, per overlap bin, the number of pairs and the teacher's share of its last class."""
    ds = Dataset.from_dict({"text": [a for a, _ in pairs], "text_pair": [b for _, b in pairs]})
    last = predict_logits(model, tokenizer, ds, max_length=max_length).argmax(1) == model.config.num_labels - 1
    overlap = np.array([word_overlap(a, b) for a, b in pairs])
    bins = []
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        m = (overlap >= lo) & (overlap < hi)
        bins.append({"overlap": [lo, min(hi, 1.0)], "pairs": int(m.sum()),
                     "last_class_share": round(float(last[m].mean()), 3) if m.any() else None})
    return {"pairs": len(pairs), "overlap_q10_50_90": np.percentile(overlap, [10, 50, 90]).round(3).tolist(),
            "last_class_share": round(float(last.mean()), 3), "bins": bins}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mrpc")
    parser.add_argument("--data-dir", help="default: the task's GLUE folder (glue/<Task>)")
    parser.add_argument("--teacher", help="default: models/teacher-minilm-l6-<task>")
    parser.add_argument("--source", default="ood/general")
    parser.add_argument("--per-kind", type=int, default=400)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    spec = get_task(args.task)
    model, tokenizer = load_teacher(args.teacher or f"models/teacher-minilm-l6-{spec.name}", spec.num_labels)
    dev = load_task(spec, "dev", resolve(args.data_dir or f"glue/{spec.glue_dir}", build=False))
    result = {"task": spec.name, "last_class": spec.label_names[-1],
              "dev": profile(model, tokenizer, list(zip(dev["text"], dev["text_pair"], strict=True)), args.max_length)}
    lo, hi = TYPICAL_WORDS[spec.name]
    docs = candidate_documents([args.source], lo, hi)
    rng = random.Random(args.seed)
    for kind in ("adjacent", "random", "perturbed", "spliced"):
        rows = sample_pairs(docs, args.per_kind, {kind: 1.0}, rng)
        result[kind] = profile(model, tokenizer, [(a, b) for a, b, _ in rows], args.max_length)
    print(f"| pairs | overlap q10 / q50 / q90 | {result['last_class']} | "
          + " | ".join(f"overlap {lo:g}-{min(hi, 1):g}" for lo, hi in zip(BINS[:-1], BINS[1:])) + " |")
    print("|---" * (3 + len(BINS) - 1) + "|")
    for name in ("dev", "adjacent", "random", "perturbed", "spliced"):
        r = result[name]
        cells = [f"{b['pairs']} ({b['last_class_share']:.2f})" if b["pairs"] else "0" for b in r["bins"]]
        print(f"| {name} | {' / '.join(f'{q:.2f}' for q in r['overlap_q10_50_90'])} | {r['last_class_share']:.3f} | "
              + " | ".join(cells) + " |")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
