"""Pruning probe behind the quick preset's student (issue 2): what does each axis of pruning cost *before* any
distillation?

A task's teacher (SST-2 by default; any GLUE task with ``--task``, pairs and regression included) is pruned
(``teacher_pruned``, :mod:`dfkd.distill.prune`) along one axis at a time, then along all of them to the BERT-mini
shape (4 layers, hidden 256, 4 heads, intermediate 1024), ranking units on 512 texts of the transfer set (for a pair task, its first and second sentences, as the distiller passes them). Each untrained
student is scored by agreement with the teacher (:func:`dfkd.metrics.agreement`: same class, or Pearson for
regression) on 2,000 other transfer-set rows and by the task's main metric on the GLUE dev set (reported only;
nothing is selected on it). The last line printed is one JSON object.

    python scripts/probe_pruning.py [--transfer-set runs/sst2-quick/original/transfer_set]   # ~3 min on 2 cores
    python scripts/probe_pruning.py --task stsb --transfer-set runs/glue-quick/stsb/original/transfer_set
"""

from __future__ import annotations

import argparse
import json
import random

import numpy as np

from dfkd.assets import resolve
from dfkd.distill.label import load_teacher, predict_logits
from dfkd.distill.prune import prune_teacher, teacher_importance, top_indices
from dfkd.metrics import agreement, compute_metrics, predictions
from dfkd.tasks import get_task, load_task
from dfkd.transfer import load_transfer_set

SHAPES = {  # name: (layers, hidden, heads, intermediate); the teacher is (6, 384, 12, 1536)
    "teacher shape (no pruning)": (6, 384, 12, 1536),
    "heads merged in pairs (12 -> 6)": (6, 384, 6, 1536),
    "intermediate 1536 -> 1024": (6, 384, 12, 1024),
    "hidden 384 -> 256 (8 heads of 32)": (6, 256, 8, 1536),
    "layers 6 -> 4": (4, 384, 12, 1536),
    "all: BERT-mini shape": (4, 256, 4, 1024),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="sst2")
    ap.add_argument("--teacher", help="default: models/teacher-minilm-l6-<task>")
    ap.add_argument("--transfer-set", default="runs/sst2-quick/original/transfer_set")
    ap.add_argument("--data-dir", help="default: glue/<TASK>")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--calibration-rows", type=int, default=512)
    ap.add_argument("--eval-rows", type=int, default=2000)
    args = ap.parse_args()

    task = get_task(args.task)
    teacher, tokenizer = load_teacher(args.teacher or f"models/teacher-minilm-l6-{task.name}", task.num_labels,
                                      device="cpu")
    ds = load_transfer_set(args.transfer_set)[0]
    order = list(range(len(ds)))
    random.Random(0).shuffle(order)
    calibration = [ds[i]["text"] for i in order[:args.calibration_rows]]
    if task.pair:  # the distiller ranks units on the first and the second sentences of the transfer set
        calibration += [ds[i]["text_pair"] for i in order[:args.calibration_rows]]
    held_out = ds.select(order[args.calibration_rows:args.calibration_rows + args.eval_rows])
    target = np.asarray(held_out["teacher_logits"])
    dev = load_task(task, "dev", data_dir=resolve(args.data_dir or f"glue/{task.glue_dir}"))
    gold = np.asarray(dev["label"])
    importance = teacher_importance(teacher, tokenizer, calibration)

    def dev_main(model) -> float:
        logits = predict_logits(model, tokenizer, dev, max_length=args.max_length)
        return compute_metrics(task, predictions(logits, task), gold)[task.main_metric]

    teacher_dev = dev_main(teacher)
    rows = {}
    for name, (layers, hidden, heads, intermediate) in SHAPES.items():
        student = prune_teacher(teacher, importance, layers, hidden, heads, intermediate)
        agree = agreement(task, predict_logits(student, tokenizer, held_out, max_length=args.max_length), target)
        main_dev = dev_main(student)
        rows[name] = {"shape": [layers, hidden, heads, intermediate], "agreement": round(float(agree), 4),
                      f"dev_{task.main_metric}": round(float(main_dev), 4)}
        print(f"{name:40s} agreement {agree:.4f}  dev {task.main_metric} {main_dev:.4f}", flush=True)
    print(json.dumps({"task": task.name, f"teacher_dev_{task.main_metric}": round(float(teacher_dev), 4),
                      "kept_layers": top_indices(importance["layers"], 4).tolist(),
                      "layer_importance": [round(float(x), 4) for x in importance["layers"]], "students": rows}))


if __name__ == "__main__":
    main()
