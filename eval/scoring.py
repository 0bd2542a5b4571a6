"""``dfkd eval``: score checkpoints on a task's dev split against their teacher.

Per model: the task's GLUE metrics, the main score as % of the teacher's and as the share of the teacher's
gap over the majority answer it recovers, teacher-student agreement (share of equal predictions; Pearson r for
regression) and Cohen's kappa with the teacher, speed-up over the teacher, parameter count, size on disk (MB, weights only)
and CPU latency in milliseconds at batch 1 and batch 32 (median over repeats, ``torch.inference_mode``,
the current ``torch.get_num_threads()``).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset

from ..errors import DfkdError
from ..metrics import (
    agreement,
    compute_metrics,
    floor_score,
    gap_recovered,
    kappa,
    pct_of_teacher,
    predictions,
    speedup,
)
from ..tasks import TaskSpec, get_task, load_task

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


def cpu_name() -> str:
    """The CPU's model name: the first ``model name`` of ``/proc/cpuinfo`` (Linux), else ``platform.processor()``,
    else ``"unknown"``."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    """Where this process's timings and latencies are measured, so figures from different machines are read apart.

    Returns:
        ``{"cpu", "cores", "torch_threads", "torch", "device", "native_cpu_bf16"}``: the CPU's model name
        (:func:`cpu_name`), ``os.cpu_count()``, ``torch.get_num_threads()`` (the threads a CPU forward pass uses),
        torch's version, the device students train on (``"cpu"``, or ``"cuda: <GPU name>"``) and whether the CPU
        computes bfloat16 natively (what ``mixed_precision: "bf16"`` needs to pay). No host name or path.
    """
    import os

    from ..distill.label import default_device
    from ..distill.trainer import native_cpu_bf16

    device = default_device()
    name = device.type
    if device.type == "cuda":
        name = f"cuda: {torch.cuda.get_device_name(device)}"
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": name, "native_cpu_bf16": native_cpu_bf16()}


def machine_line(machines: list[dict]) -> str:
    """One sentence naming the distinct machines of ``machines`` (dicts of :func:`machine_info`), for tables."""
    seen = []
    for m in machines:
        text = (f"{m['cpu']} ({m['torch_threads']} torch threads of {m['cores']} cores, torch {m['torch']}, "
                f"{m['device']})")
        if text not in seen:
            seen.append(text)
    return ("Timed on " + "; ".join(seen) + ".") if seen else ""


def size_on_disk_mb(folder: str | Path) -> float:
    """Megabytes (10^6 bytes) of the weight files in a checkpoint folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return float("nan")
    return sum(f.stat().st_size for f in folder.iterdir() if f.suffix in WEIGHT_SUFFIXES) / 1e6


@torch.inference_mode()
def paired_latency_ms(models: list[tuple], ds: Dataset, batch_size: int, repeats: int = 20, max_length: int = 128,
                      warmup: int = 3) -> list[float]:
    """Median wall time (ms) of one forward pass on CPU of each ``(model, tokenizer)`` in ``models``, timed in
    turns on the same batches, so that their ratio (a speed-up) holds while the machine's speed drifts.

    Batches are consecutive dev rows (padded to their longest), cycled when the dev set is small. In every
    repeat each model runs once on that repeat's batch; the order of the models is reversed every other repeat,
    so neither always runs first. Each model is moved to the CPU in eval mode.

    Returns:
        one median per model, in milliseconds, in the order given.
    """
    for model, _ in models:
        model.to("cpu").eval()
    pair = "text_pair" in ds.column_names
    n = len(ds)
    times: list[list[float]] = [[] for _ in models]
    for r in range(warmup + repeats):
        sub = ds.select([(r * batch_size + i) % n for i in range(batch_size)])[:]
        order = list(range(len(models)))[::(-1) ** r]
        for k in order:
            model, tokenizer = models[k]
            enc = tokenizer(sub["text"], sub["text_pair"] if pair else None, truncation=True,
                            max_length=max_length, padding=True, return_tensors="pt")
            t = time.perf_counter()
            model(**enc)
            if r >= warmup:
                times[k].append((time.perf_counter() - t) * 1000)
    return [statistics.median(t) for t in times]


#: forward passes timed at batch 1 and at batch 32
LATENCY_REPEATS = {1: 50, 32: 10}


def measure_latency(model, tokenizer, dev: Dataset, reference: tuple | None = None, max_length: int = 128) -> dict:
    """CPU latency (ms) of ``model`` at batch 1 and 32 and, with a ``reference`` ``(teacher, tokenizer)``, the
    teacher's timed in turns with it (:func:`paired_latency_ms`) and the speed-ups that follow: the teacher's
    latency over the model's. Each model goes back to the device it came from.

    Returns:
        ``{"latency_ms_b1", "latency_ms_b32"}`` plus, with a reference, ``{"teacher_latency_ms_b1",
        "teacher_latency_ms_b32", "speedup", "speedup_b32"}``.
    """
    pairs = [(model, tokenizer)] + ([reference] if reference is not None else [])
    devices = [next(m.parameters()).device for m, _ in pairs]
    row = {}
    for batch, repeats in LATENCY_REPEATS.items():
        ms = paired_latency_ms(pairs, dev, batch, repeats=repeats, max_length=max_length)
        suffix = f"b{batch}"
        row[f"latency_ms_{suffix}"] = ms[0]
        if reference is not None:
            row[f"teacher_latency_ms_{suffix}"] = ms[1]
            row["speedup" if batch == 1 else f"speedup_{suffix}"] = speedup(ms[1], ms[0])
    for (m, _), device in zip(pairs, devices):
        m.to(device)
    return row


def evaluate_model(task: TaskSpec, model, tokenizer, dev: Dataset, teacher_logits: np.ndarray | None = None,
                   teacher_main: float | None = None, latency: bool = True, folder: str | Path | None = None,
                   max_length: int = 128, reference: tuple | None = None) -> dict:
    """Score one loaded model on an already loaded dev split.

    Args:
        reference: ``(teacher, tokenizer)`` to time in turns with the model (:func:`measure_latency`), so that
            the row's speed-ups compare the two in the same minutes.

    Returns:
        ``{"metrics", "main", "pct_of_teacher", "agreement", "kappa", "params", "size_mb", "latency_ms_b1",
        "latency_ms_b32", "logits"}`` (with a ``reference``, also its ``teacher_latency_ms_b1/b32`` and
        ``speedup``/``speedup_b32``); ``logits`` is ``(n, num_labels)``; teacher-relative fields are
        ``None`` without a teacher (``kappa``: :func:`dfkd.metrics.kappa`).
    """
    from ..distill.label import predict_logits
    from ..distill.students import count_parameters

    logits = predict_logits(model, tokenizer, dev, max_length=max_length)
    metrics = compute_metrics(task, predictions(logits, task), np.asarray(dev["label"]))
    main = metrics[task.main_metric]
    row = {"metrics": metrics, "main": main,
           "pct_of_teacher": pct_of_teacher(main, teacher_main),
           "agreement": agreement(task, logits, teacher_logits) if teacher_logits is not None else None,
           "kappa": kappa(task, logits, teacher_logits) if teacher_logits is not None else None,
           "params": count_parameters(model), "size_mb": size_on_disk_mb(folder) if folder else None,
           "latency_ms_b1": None, "latency_ms_b32": None, "logits": logits}
    if latency:
        row.update(measure_latency(model, tokenizer, dev, reference, max_length))
    return row


def quantize_int8(model):
    """A copy of ``model`` with every ``torch.nn.Linear`` quantized to int8 weights with dynamic int8 activations
    (torch's ``quantize_dynamic``: what a CPU deployment ships; embeddings and LayerNorms stay float32). CPU only.
    """
    import copy

    from torch.ao.quantization import quantize_dynamic

    return quantize_dynamic(copy.deepcopy(model).to("cpu").eval(), {torch.nn.Linear}, dtype=torch.qint8)


def evaluate_models(task: str | TaskSpec, models: list[str], data_dir=None, teacher: str | None = None,
                    split: str = "dev", latency: bool = True) -> list[dict]:
    """``dfkd eval``: score each checkpoint (and the teacher first, when given) on ``split``.

    Raises:
        DfkdError: a checkpoint that cannot be loaded or whose ``num_labels`` differs from the task's.
    """
    from ..assets import resolve
    from ..distill.label import load_teacher

    spec = get_task(task)
    dev = load_task(spec, split, data_dir)
    floor = floor_score(spec, np.asarray(dev["label"]))
    rows, t_logits, t_main, t_pair = [], None, None, None
    refs = ([("teacher", teacher)] if teacher else []) + [(m, m) for m in models]
    for name, ref in refs:
        model, tokenizer = load_teacher(ref, spec.num_labels, role="teacher" if name == "teacher" else "model")
        row = evaluate_model(spec, model, tokenizer, dev, t_logits, t_main, latency, folder=resolve(ref, build=False),
                             reference=t_pair)  # each model timed in turns with the teacher
        if name == "teacher":
            t_logits, t_main, t_pair = row["logits"], row["main"], (model, tokenizer)
            row["pct_of_teacher"], row["agreement"], row["kappa"] = 100.0, 1.0, 1.0
            row["speedup"] = row["speedup_b32"] = 1.0 if latency else None
        row["gap_recovered"] = gap_recovered(row["main"], t_main, floor)
        row.setdefault("speedup", None)
        row.setdefault("speedup_b32", None)
        row.pop("logits")
        rows.append({"model": name, **row})
    if not rows:
        raise DfkdError("no models to evaluate")
    return rows


def _fmt(v, spec: str = ".4f") -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def format_eval_table(task: TaskSpec, rows: list[dict]) -> str:
    """A markdown table of :func:`evaluate_models` rows."""
    keys = list(task.metrics)
    head = ["model", *keys, "% of teacher", "gap recovered %", "agreement", "κ", "params (M)", "size (MB)",
            "ms @ b1", "ms @ b32", "speed-up b1", "speed-up b32"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], *(_fmt(r["metrics"][k]) for k in keys), _fmt(r["pct_of_teacher"], ".1f"),
                 _fmt(r.get("gap_recovered"), ".1f"), _fmt(r["agreement"]), _fmt(r.get("kappa"), ".3f"),
                 _fmt(r["params"] / 1e6, ".2f"), _fmt(r["size_mb"], ".1f"),
                 _fmt(r["latency_ms_b1"], ".1f"), _fmt(r["latency_ms_b32"], ".1f"),
                 _fmt(r.get("speedup"), ".2f"), _fmt(r.get("speedup_b32"), ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
