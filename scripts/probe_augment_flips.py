"""Does word-replacement augmentation keep the teacher's answer? (issue 16: why augmented KD trails on RTE)

TinyBERT's augmentation assumes a variant keeps its example's label. This probe reads a labelled augmented
transfer set (``dfkd compare``'s ``<task>/augment/transfer_set``, or ``dfkd augment --teacher``) and compares the
teacher's answer on every variant with its answer on the variant's original row (``origin``): per changed side
(``text`` or ``text_pair``; a pair variant changes one side) and per bin of the share of that side's words
replaced (word replacement keeps the word count, so words are compared position by position). Classification:
the share of variants whose predicted class differs from the original's, and the predicted-class distribution of
originals and variants. Regression: the mean absolute change of the predicted score (label units), and the mean
predicted score of originals and variants. No model is run: the teacher's logits are the transfer set's. The last
line printed is one JSON object.

    python scripts/probe_augment_flips.py runs/glue-quick/rte/augment/transfer_set     # seconds
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from dfkd.errors import DfkdError
from dfkd.tasks import column, get_task
from dfkd.transfer import load_transfer_set

BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.0)


def replaced_share(variant: str, original: str) -> float:
    """Share of ``original``'s whitespace words that differ in ``variant`` at the same position (NaN when the
    word counts differ, i.e. the variant is not a word-for-word replacement)."""
    v, o = variant.split(), original.split()
    if len(v) != len(o) or not o:
        return float("nan")
    return sum(a != b for a, b in zip(v, o)) / len(o)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("transfer_set", help="a labelled transfer set with augmented rows (source 'augment')")
    args = ap.parse_args()
    ds, card = load_transfer_set(args.transfer_set)
    spec = get_task(card["task"])
    if missing := [c for c in ("teacher_logits", "source", "origin") if c not in ds.column_names]:
        raise DfkdError(f"{args.transfer_set} has no {', '.join(missing)} column(s); expected a transfer set labelled "
                        "by a teacher, with augmented rows (dfkd compare's augment arm, or dfkd augment --teacher)")
    logits = np.asarray(column(ds, "teacher_logits"), dtype=np.float64)
    answer = logits[:, 0] if spec.is_regression else logits.argmax(-1)
    source, origin = np.asarray(column(ds, "source")), np.asarray(column(ds, "origin"))
    sides = ("text", "text_pair") if spec.pair else ("text",)
    texts = {s: column(ds, s) for s in sides}
    originals = np.flatnonzero(source == "original")
    row_of = dict(zip(origin[originals].tolist(), originals.tolist()))
    variants = [i for i in np.flatnonzero(source == "augment") if int(origin[i]) in row_of]
    if not variants:
        raise DfkdError(f"{args.transfer_set} has no augmented rows with their original beside them; expected "
                        "source 'augment' rows whose origin is an 'original' row")

    report: dict = {"task": spec.name, "variants": len(variants), "originals": len(originals)}
    if spec.is_regression:  # where the variants' scores sit against their originals'
        report["originals_mean_score"] = round(float(answer[originals].mean()), 3)
        report["variants_mean_score"] = round(float(answer[variants].mean()), 3)
    else:
        names = list(spec.label_names)
        report["originals_predicted"] = {n: round(float(np.mean(answer[originals] == k)), 3) for k, n in enumerate(names)}
        report["variants_predicted"] = {n: round(float(np.mean(answer[variants] == k)), 3) for k, n in enumerate(names)}
    rows = []
    for i in variants:
        j = row_of[int(origin[i])]
        changed = [s for s in sides if texts[s][i] != texts[s][j]]
        side = changed[0] if len(changed) == 1 else "none" if not changed else "both"
        share = replaced_share(texts[side][i], texts[side][j]) if side in sides else float("nan")
        change = abs(answer[i] - answer[j]) if spec.is_regression else float(answer[i] != answer[j])
        rows.append((side, share, change, answer[j]))
    report["by_side"] = {}
    for side in sorted({r[0] for r in rows}):
        mine = [r for r in rows if r[0] == side]
        entry = {"variants": len(mine), "changed": round(float(np.mean([r[2] for r in mine])), 3), "bins": []}
        if not spec.is_regression:  # the flip rate out of each class the teacher gave the original
            entry["changed_from"] = {n: round(float(np.mean([r[2] for r in mine if r[3] == k])), 3)
                                     for k, n in enumerate(spec.label_names) if any(r[3] == k for r in mine)}
        for lo, hi in zip(BINS, BINS[1:]):
            sel = [r[2] for r in mine if lo < r[1] <= hi or (lo == 0.0 and r[1] == 0.0)]
            if sel:
                entry["bins"].append({"replaced": f"({lo}, {hi}]", "variants": len(sel),
                                      "changed": round(float(np.mean(sel)), 3)})
        report["by_side"][side] = entry
    what = "mean |change| of the predicted score" if spec.is_regression else "share whose predicted class changed"
    print(f"{spec.name}: {len(variants)} variants of {len(originals)} rows; {what}, by side and share of words replaced")
    shares = ("originals_mean_score", "variants_mean_score") if spec.is_regression else ("originals_predicted",
                                                                                          "variants_predicted")
    print("  " + "; ".join(f"{k}: {report[k]}" for k in shares))
    for side, entry in report["by_side"].items():
        print(f"  {side}: {entry['variants']} variants, {entry['changed']}"
              + (f" (from each original class: {entry['changed_from']})" if "changed_from" in entry else ""))
        for b in entry["bins"]:
            print(f"    replaced {b['replaced']:>10}: {b['variants']:>6} variants, {b['changed']}")
    print(json.dumps(report))


if __name__ == "__main__":
    try:
        main()
    except DfkdError as err:
        raise SystemExit(f"error: {err}") from None
