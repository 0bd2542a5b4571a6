"""Where STS-B students fall short of their teacher on dev: Pearson per genre (issue 16).

glue-quick's STS-B students agree with their teacher on held-out rows of their own transfer set (Pearson 0.4-0.9)
and far less on dev (0.2-0.5). GLUE's STS-B files carry each pair's genre (``main-captions``, ``main-news``,
``main-forum(s)``), and dev holds three times train's share of forum pairs. This probe scores the teacher and each
given student on dev and reports, per genre and overall: the number of pairs, each model's Pearson with the gold
score, and each student's Pearson with the teacher. The last line printed is one JSON object.

    python scripts/probe_stsb_genres.py runs/glue-quick-general/stsb/ood+general/seed-0/student [more students ...]
        [--teacher models/teacher-minilm-l6-stsb] [--data-dir <assets>/glue/STS-B]     # ~1 minute per model, 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr

from dfkd.assets import resolve
from dfkd.distill.label import load_teacher, predict_logits
from dfkd.errors import DfkdError
from dfkd.tasks import column, load_task


def load_dev_with_genres(data_dir: Path):
    """STS-B dev as :func:`dfkd.tasks.load_task` gives it, and its ``genre`` column (an extra column of the same
    load), forum genres merged (train says ``main-forum``, dev ``main-forums``).

    Returns:
        ``(dev, genres)``: the dataset (``text``, ``text_pair``, ``label``) and an ``(N,)`` array of genre names.

    Raises:
        DfkdError: no dev file, or no ``genre`` column.
    """
    dev = load_task("stsb", "dev", data_dir, extra_columns=["genre"])
    genres = np.asarray([{"main-forums": "main-forum"}.get(g, g) for g in dev["genre"]])
    return dev.remove_columns("genre"), genres


def by_genre(scores: np.ndarray, reference: np.ndarray, genres: np.ndarray) -> dict:
    """Pearson of ``scores`` with ``reference`` over all rows and within each genre (3 decimals)."""
    out = {"all": round(float(pearsonr(scores, reference)[0]), 3)}
    for g in sorted(set(genres)):
        keep = genres == g
        out[str(g)] = round(float(pearsonr(scores[keep], reference[keep])[0]), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("students", nargs="+", help="student folders (compare's <row>/seed-<n>/student)")
    parser.add_argument("--teacher", default="models/teacher-minilm-l6-stsb")
    parser.add_argument("--data-dir", default=None, help="a local GLUE STS-B folder (default: the shared asset)")
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args(argv)
    try:
        data_dir = Path(args.data_dir) if args.data_dir else Path(resolve("glue/STS-B"))
        dev, genres = load_dev_with_genres(data_dir)
        gold = np.asarray(column(dev, "label"), dtype=np.float64)
        teacher, tokenizer = load_teacher(args.teacher, num_labels=1)
        t_scores = predict_logits(teacher, tokenizer, dev, max_length=args.max_length, progress="teacher")[:, 0]
        result = {"rows": {str(g): int((genres == g).sum()) for g in sorted(set(genres))},
                  "teacher": {"with_gold": by_genre(t_scores, gold, genres)}, "students": {}}
        for folder in args.students:
            model, s_tokenizer = load_teacher(folder, num_labels=1)
            s = predict_logits(model, s_tokenizer, dev, max_length=args.max_length, progress=Path(folder).parent.name)[:, 0]
            result["students"][folder] = {"with_gold": by_genre(s, gold, genres),
                                          "with_teacher": by_genre(s, t_scores, genres)}
    except DfkdError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"rows per genre: {result['rows']}")
    print(f"teacher, with gold: {result['teacher']['with_gold']}")
    for folder, r in result["students"].items():
        print(f"{folder}: with gold {r['with_gold']}; with the teacher {r['with_teacher']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
