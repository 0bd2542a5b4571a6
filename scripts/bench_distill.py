"""Benchmark the student's training step: seconds per optimizer step in float32 and under bfloat16 autocast.

    python scripts/bench_distill.py [--teacher models/teacher-minilm-l6-sst2] [--student configs/presets/glue-quick.json]
                                    [--lengths 24 48 80 200] [--batch-size 32] [--steps 12] [--warmup 3]

Answers two questions a user asks before a long ``compare``: how fast does this machine train the student, and
does ``training.mixed_precision: "bf16"`` pay here? It times dfkd's own step, as :class:`dfkd.distill.trainer.Trainer`
takes it: the student built by :func:`dfkd.distill.students.build_student` from a ``config`` spec of the given
student's shape and dropout (a student JSON, or a preset's ``student``; a ``teacher_pruned`` student of the same
shape is as fast: only its starting weights differ), trained word embeddings, :func:`dfkd.distill.trainer.adamw`
(fused), the model and optimizer prepared by the ``Accelerator`` of :func:`dfkd.distill.trainer.make_accelerator`
(which autocasts the forward pass), gradient clipping at 1.0 and the soft-target loss at T = 2
(:class:`dfkd.distill.losses.SoftTargetKL`) against fixed random teacher logits. Every batch has exactly ``length``
tokens (no padding), so a length stands for a transfer set whose batches pad to it.

Prints one row per (length, precision) with the mean seconds per step over ``--steps`` after ``--warmup``
untimed steps, then the bf16 speed-up per length; the last line is one JSON object with the machine
(:func:`dfkd.eval.scoring.machine_info`: CPU, threads, torch, native bfloat16) and every figure. Run it alone on
the cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def time_steps(model, accelerator, optimizer, length: int, batch_size: int, steps: int, warmup: int,
               vocab_size: int, num_labels: int) -> float:
    """Mean wall seconds of one step (forward, loss, backward, clip, AdamW) over ``steps`` after ``warmup``."""
    import torch

    from dfkd.distill.losses import SoftTargetKL

    loss_fn = SoftTargetKL(temperature=2.0)
    gen = torch.Generator().manual_seed(length)
    device = accelerator.device
    ids = torch.randint(1000, vocab_size, (batch_size, length), generator=gen).to(device)
    mask = torch.ones_like(ids)
    teacher = {"logits": torch.randn(batch_size, num_labels, generator=gen).to(device)}
    times = []
    model.train()
    for i in range(warmup + steps):
        start = time.perf_counter()
        logits = model(input_ids=ids, attention_mask=mask).logits  # prepare() wrapped forward in the autocast
        loss = loss_fn({"logits": logits.float()}, teacher, {})
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return sum(times) / len(times)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", default="models/teacher-minilm-l6-sst2",
                    help="teacher whose vocabulary and label space the student takes (asset name or folder)")
    ap.add_argument("--student", default="configs/presets/glue-quick.json",
                    help="student JSON, or a preset whose 'student' is used; its shape and dropout are timed")
    ap.add_argument("--lengths", type=int, nargs="+", default=[24, 48, 80, 200], help="tokens per example")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=12, help="timed steps per (length, precision)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--precisions", nargs="+", default=["no", "bf16"], help="mixed_precision values to time")
    args = ap.parse_args(argv)

    import torch

    from dfkd.distill.label import load_teacher
    from dfkd.distill.students import build_student
    from dfkd.distill.trainer import adamw, make_accelerator
    from dfkd.errors import DfkdError
    from dfkd.eval.scoring import machine_info

    try:
        with open(args.student) as f:
            spec = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        sys.exit(f"error: cannot read student config {args.student}: {err}; expected a student JSON such as "
                 "configs/students/bert-mini.json or a preset")
    spec = spec.get("student", spec) if isinstance(spec, dict) else spec
    if not isinstance(spec, dict):
        sys.exit(f"error: {args.student} holds no student object; expected a student JSON such as "
                 "configs/students/bert-mini.json or a preset with a 'student'")
    shape = {k: spec[k] for k in ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size",
                                  "hidden_dropout_prob", "attention_probs_dropout_prob") if k in spec}
    try:
        teacher, _ = load_teacher(args.teacher, device=torch.device("cpu"))
    except DfkdError as err:
        sys.exit(f"error: {err}")
    vocab_size, num_labels = teacher.config.vocab_size, teacher.config.num_labels
    rows = []
    for length in args.lengths:
        for precision in args.precisions:
            torch.manual_seed(0)
            accelerator = make_accelerator(precision)
            try:  # every row builds the same shape: a bad one fails at the first, before anything is printed
                model = build_student(teacher, {"type": "config", **shape})
            except DfkdError as err:
                sys.exit(f"error: {err}")
            optimizer = adamw(model.parameters(), lr=2e-4, weight_decay=0.01)
            model, optimizer = accelerator.prepare(model, optimizer)
            s = time_steps(model, accelerator, optimizer, length, args.batch_size, args.steps, args.warmup,
                           vocab_size, num_labels)
            rows.append({"length": length, "mixed_precision": precision, "s_per_step": round(s, 4)})
            print(f"length {length:4d}  {precision:4s}  {s:.3f} s/step  ({args.batch_size / s:.0f} examples/s)",
                  flush=True)
    speedup = {}
    if "no" in args.precisions:
        for length in args.lengths:
            base = next(r["s_per_step"] for r in rows if r["length"] == length and r["mixed_precision"] == "no")
            for r in rows:
                if r["length"] == length and r["mixed_precision"] != "no":
                    speedup[f"{r['mixed_precision']}@{length}"] = round(base / r["s_per_step"], 2)
                    print(f"length {length:4d}  {r['mixed_precision']} speed-up over float32: "
                          f"{base / r['s_per_step']:.2f}x")
    report = {"machine": machine_info(), "student": shape, "batch_size": args.batch_size, "steps": args.steps,
              "rows": rows, "bf16_speedup": speedup}
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
