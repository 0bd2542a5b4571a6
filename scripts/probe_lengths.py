"""Are a compare run's transfer sets shaped like the task's inputs? Sentence lengths in words, per task and arm.

Zero-shot KD trains the student only on out-of-domain sentences drawn from a length range
(:data:`dfkd.zeroshot.ood.TYPICAL_WORDS`, or ``arm_settings.ood.min_words`` / ``max_words``). This probe prints,
for each task of a compare output folder, the word-count percentiles of the task's train sentences (both sides
of a pair) next to those of every transfer set the run built, so a practitioner sees whether the zero-shot
sentences are longer than what the student will be scored on (session 30: they sat near the top of the range,
e.g. STS-B's median 13 words against its train sentences' 8). Words are whitespace-separated tokens. The task's
train file is read only here, to describe it; no generator reads it. The last line printed is one JSON object.

    python scripts/probe_lengths.py --run runs/glue-quick [--tasks cola stsb]      # seconds on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dfkd.assets import resolve
from dfkd.errors import DfkdError
from dfkd.tasks import get_task, load_task
from dfkd.transfer import load_transfer_set

PERCENTILES = (50, 75, 90, 95)


def word_percentiles(texts: list[str]) -> list[float]:
    """The :data:`PERCENTILES` of the texts' word counts (whitespace-separated tokens)."""
    if not texts:
        raise DfkdError("no sentences to measure; expected a non-empty split or transfer set")
    return np.percentile([len(t.split()) for t in texts], PERCENTILES).round(1).tolist()


def sentences(ds) -> list[str]:
    """Every sentence of a dataset: ``text`` and, for pair tasks, ``text_pair``."""
    return list(ds["text"]) + (list(ds["text_pair"]) if "text_pair" in ds.column_names else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a compare output folder (holding <task>/<arm>/transfer_set)")
    parser.add_argument("--tasks", nargs="*", help="default: every task folder of the run")
    args = parser.parse_args()
    run = Path(args.run)
    if not run.is_dir():
        raise SystemExit(f"error: {run} not found; expected a compare output folder")
    tasks = args.tasks or sorted(p.name for p in run.iterdir() if (p / "results.json").is_file())
    result = {}
    print("| task | sentences | rows | words p" + " / p".join(map(str, PERCENTILES)) + " |")
    print("|---|---|---|---|")
    for name in tasks:
        spec = get_task(name)
        train = load_task(spec, "train", resolve(f"glue/{spec.glue_dir}", build=False))
        result[name] = {"train": {"rows": len(train), "words": word_percentiles(sentences(train))}}
        for card in sorted((run / name).glob("*/transfer_set/dfkd_card.json")):
            ds, _ = load_transfer_set(card.parent)
            result[name][card.parent.parent.name] = {"rows": len(ds), "words": word_percentiles(sentences(ds))}
        for part, r in result[name].items():
            print(f"| {name} | {part} | {r['rows']:,} | {' / '.join(f'{w:g}' for w in r['words'])} |")
    print(json.dumps({"percentiles": list(PERCENTILES), "tasks": result}))


if __name__ == "__main__":
    try:
        main()
    except DfkdError as err:
        raise SystemExit(f"error: {err}") from None
