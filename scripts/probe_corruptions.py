"""What a single-sentence teacher says about edited out-of-domain sentences (issue 17, zero-shot CoLA).

Zero-shot CoLA fails because the out-of-domain text holds almost nothing the teacher calls "unacceptable" that
resembles dev's unacceptable sentences. This probe labels, with the task's teacher: dev's sentences per gold class;
``--n`` corpus sentences as they are; the same sentences with words dropped (:func:`dfkd.zeroshot.ood.perturb`);
and the same sentences with one grammatical violation of each kind (:func:`dfkd.zeroshot.ood.corrupt`,
:data:`dfkd.zeroshot.ood.CORRUPTIONS`). Per group: the share the teacher assigns to class 0 ("unacceptable"),
its mean probability, and, for edited sentences, the mean rise of that probability over the unedited sentence and
the share of edits that raise it. No train row is read. The last line printed is one JSON object.

    python scripts/probe_corruptions.py --task cola [--n 2000]      # ~1 minute on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import random

import numpy as np
from datasets import Dataset
from scipy.special import softmax

from dfkd.assets import resolve
from dfkd.distill.label import load_teacher, predict_logits
from dfkd.tasks import get_task, load_task
from dfkd.zeroshot.ood import CORRUPTIONS, TYPICAL_WORDS, candidate_documents, corrupt, perturb


def class0_probability(model, tokenizer, texts: list[str], max_length: int) -> np.ndarray:
    """``(len(texts),)`` the teacher's softmax probability of class 0."""
    logits = predict_logits(model, tokenizer, Dataset.from_dict({"text": texts}), max_length=max_length)
    return softmax(logits, axis=1)[:, 0]


def summary(p: np.ndarray, base: np.ndarray | None = None) -> dict:
    """Rows, share with P(class 0) > 0.5, mean P(class 0); with ``base`` (the unedited rows) the mean rise and the
    share of rows whose P(class 0) rose."""
    out = {"rows": int(len(p)), "class0_share": round(float((p > 0.5).mean()), 3),
           "mean_p_class0": round(float(p.mean()), 3)}
    if base is not None:
        out |= {"mean_rise": round(float((p - base).mean()), 3), "rose_share": round(float((p > base).mean()), 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="cola")
    parser.add_argument("--data-dir", help="default: the task's GLUE folder (glue/<Task>)")
    parser.add_argument("--teacher", help="default: models/teacher-minilm-l6-<task>")
    parser.add_argument("--source", default="ood/general")
    parser.add_argument("--n", type=int, default=2000, help="corpus sentences drawn (default: 2000)")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    spec = get_task(args.task)
    model, tokenizer = load_teacher(args.teacher or f"models/teacher-minilm-l6-{spec.name}", spec.num_labels)
    prob = lambda texts: class0_probability(model, tokenizer, texts, args.max_length)  # noqa: E731
    dev = load_task(spec, "dev", resolve(args.data_dir or f"glue/{spec.glue_dir}", build=False))
    labels = np.asarray(dev["label"])
    p_dev = prob(dev["text"])
    result = {"task": spec.name, "class0": spec.label_names[0]}
    for c, name in enumerate(spec.label_names):
        result[f"dev {name}"] = summary(p_dev[labels == c])
    lo, hi = TYPICAL_WORDS[spec.name]
    rng = random.Random(args.seed)
    sentences = rng.sample([s for d in candidate_documents([args.source], lo, hi) for s in d], args.n)
    base = prob(sentences)
    result["corpus"] = summary(base)
    result["perturbed"] = summary(prob([perturb(s, rng) for s in sentences]), base)
    edits = [corrupt(s, rng) for s in sentences]
    kept = [i for i, e in enumerate(edits) if e is not None]
    p_edit = prob([edits[i][0] for i in kept])
    kinds = np.array([edits[i][1] for i in kept])
    result["corrupted"] = summary(p_edit, base[kept])
    for kind in CORRUPTIONS:
        m = kinds == kind
        if m.any():
            result[f"corrupted: {kind}"] = summary(p_edit[m], base[kept][m])
    result["examples"] = [edits[i][0] for i in kept[:8]]
    print(f"| sentences | rows | teacher: {result['class0']} | mean P({result['class0']}) | mean rise over the "
          "unedited sentence | edits that raise it |")
    print("|---|---|---|---|---|---|")
    for name, r in result.items():
        if isinstance(r, dict):
            rise = (f"{r['mean_rise']:+.3f} | {r['rose_share']:.3f}" if "mean_rise" in r else "- | -")
            print(f"| {name} | {r['rows']} | {r['class0_share']:.3f} | {r['mean_p_class0']:.3f} | {rise} |")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
