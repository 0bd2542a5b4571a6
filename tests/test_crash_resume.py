"""Crash-resume, proven: ``label``, ``augment``, ``distill`` and ``compare`` are killed with SIGKILL at a random
point in a subprocess (tiny models); re-running the same command gives the output of an uninterrupted run, with
no lost or repeated rows, the same final scores, and no partial folder left behind."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import write_glove, write_sst2

pytestmark = pytest.mark.slow
PARTIAL = (".partial", ".tmp", ".labelling", ".saving", ".final", ".building")


def _run(args: list[str], cwd: Path, kill_after: float | None = None) -> float:
    """Run ``python -m dfkd.cli <args>``; with ``kill_after``, SIGKILL it after that many seconds (if still
    running). Returns the wall time."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dfkd.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
        return time.perf_counter() - started
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-1500:] + err[-3000:]
    return time.perf_counter() - started


def _crash_then_resume(args_for, tmp_path: Path, seed: int) -> tuple[Path, Path]:
    """Reference run into ``ref``; the same command into ``resumed`` killed at a random point of the reference's
    duration (after start-up), then re-run to the end. Returns both output paths."""
    ref, resumed = tmp_path / "ref", tmp_path / "resumed"
    seconds = _run(args_for(ref), tmp_path)
    kill_at = random.Random(seed).uniform(0.45, 0.9) * seconds
    _run(args_for(resumed), tmp_path, kill_after=kill_at)
    _run(args_for(resumed), tmp_path)
    left = [p.name for p in tmp_path.rglob("*") if p.name.endswith(PARTIAL)]
    assert left == [], f"partial folders left behind: {left}"
    return ref, resumed


@pytest.fixture()
def sst2(tmp_path) -> Path:
    return write_sst2(tmp_path / "SST-2", 600, 40)


def _load(path: Path):
    from dfkd.transfer import load_transfer_set

    return load_transfer_set(path)


def test_label_killed_and_resumed(tmp_path, sst2, tiny_teacher_dir):
    from dfkd.cli import main

    assert main(["generate", "--task", "sst2", "--data-dir", str(sst2), "--out", str(tmp_path / "ts")]) == 0
    ref, resumed = _crash_then_resume(
        lambda out: ["label", str(tmp_path / "ts"), "--teacher", str(tiny_teacher_dir), "--shard-size", "8",
                     "--batch-size", "4", "--max-length", "16", "--out", str(out)], tmp_path, seed=1)
    (a, _), (b, _) = _load(ref), _load(resumed)
    assert b["text"] == a["text"] and len(b) == 600
    np.testing.assert_array_equal(np.asarray(b["teacher_logits"]), np.asarray(a["teacher_logits"]))


def test_augment_killed_and_resumed(tmp_path, sst2, tiny_rewriter_dir):
    glove = write_glove(tmp_path / "glove.txt")
    ref, resumed = _crash_then_resume(
        lambda out: ["augment", "--task", "sst2", "--data-dir", str(sst2), "--mlm", str(tiny_rewriter_dir),
                     "--word-vectors", str(glove), "--num-aug", "3", "--top-k", "3", "--batch-size", "8",
                     "--out", str(out)], tmp_path, seed=2)
    (a, ca), (b, cb) = _load(ref), _load(resumed)
    assert b[:] == a[:] and cb["rows_by_source"] == ca["rows_by_source"] and ca["rows_by_source"]["original"] == 600


def _labelled(tmp_path, sst2, teacher) -> Path:
    from dfkd.cli import main

    ts = tmp_path / "ts"
    assert main(["generate", "--task", "sst2", "--data-dir", str(sst2), "--teacher", str(teacher), "--out",
                 str(ts)]) == 0
    return ts


def test_distill_killed_and_resumed(tmp_path, sst2, tiny_teacher_dir):
    from safetensors.torch import load_file

    ts = _labelled(tmp_path, sst2, tiny_teacher_dir)
    student = tmp_path / "student.json"
    student.write_text(json.dumps({"type": "config", "num_hidden_layers": 2, "hidden_size": 32,
                                   "num_attention_heads": 2, "intermediate_size": 64}))
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"checkpoint_every": 10, "eval_every": 20}))
    ref, resumed = _crash_then_resume(
        lambda out: ["distill", "--task", "sst2", str(ts), "--teacher", str(tiny_teacher_dir), "--student",
                     str(student), "--config", str(config), "--batch-size", "8", "--max-steps", "120",
                     "--max-length", "16", "--val-size", "40", "--out", str(out)], tmp_path, seed=3)
    a, b = (json.loads((p / "dfkd_training.json").read_text()) for p in (ref, resumed))
    assert b["steps"] == a["steps"] == 120 and b["best_val"] == a["best_val"] and b["best_step"] == a["best_step"]
    wa, wb = load_file(ref / "model.safetensors"), load_file(resumed / "model.safetensors")
    diff = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert diff <= 1e-6, f"weights differ by {diff}"


def test_mlm_killed_and_resumed(tmp_path, tiny_base_dir):
    """The masked LM trains through the common Trainer: an interrupted fit resumes to the same weights and card."""
    from safetensors.torch import load_file

    rng = random.Random(0)
    words = ["film", "movie", "plot", "story", "good", "bad", "very", "was", "the", "a"]
    text = tmp_path / "text.txt"
    text.write_text("\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(1200)))
    ref, resumed = _crash_then_resume(
        lambda out: ["mlm", "--base", str(tiny_base_dir), "--text", str(text), "--layers", "1", "--epochs", "8",
                     "--batch-size", "16", "--checkpoint-every", "20", "--out", str(out)], tmp_path, seed=5)
    a, b = (json.loads((p / "dfkd_mlm.json").read_text()) for p in (ref, resumed))
    assert b["steps"] == a["steps"] == 8 * 13 and b["best_step"] == a["best_step"]  # 200 lines after 1000 held out
    assert (b["top1"], b["top5"]) == (a["top1"], a["top5"]) and b["examples"] == a["examples"]
    wa, wb = load_file(ref / "model.safetensors"), load_file(resumed / "model.safetensors")
    diff = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert diff <= 1e-6, f"weights differ by {diff}"


def test_compare_killed_and_resumed(tmp_path, sst2, tiny_teacher_dir):
    def args(out):
        preset = tmp_path / f"{out.name}.json"
        preset.write_text(json.dumps({
            "task": "sst2", "data_dir": str(sst2), "teacher": str(tiny_teacher_dir), "arms": ["original"],
            "student": {"type": "config", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
                        "intermediate_size": 32},
            "seeds": 3, "val_size": 40, "latency": False, "out": str(out),
            "training": {"batch_size": 8, "max_steps": 40, "max_length": 16, "checkpoint_every": 10}}))
        return ["compare", "--preset", str(preset)]

    ref, resumed = _crash_then_resume(args, tmp_path, seed=4)
    a, b = (json.loads((p / "results.json").read_text()) for p in (ref, resumed))
    assert b["arms"]["original"]["scores"] == a["arms"]["original"]["scores"]
    assert b["teacher"]["main"] == a["teacher"]["main"] and b["arms"]["original"]["transfer_rows"] == 600
