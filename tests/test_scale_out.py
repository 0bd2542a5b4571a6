"""Scale-out through accelerate, proven: 2 CPU processes (``torchrun``, accelerate's gloo group on the CPU) run
``dfkd label`` and ``dfkd distill`` on tiny models, and their outputs match what one process writes.

On GPUs the same commands run under ``accelerate launch``; on one CPU-only machine accelerate's own launcher
starts a single process, so the test uses ``torchrun`` with ``ACCELERATE_USE_CPU=1``, as accelerate documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dfkd.cli import main

from conftest import write_sst2

pytestmark = pytest.mark.slow


def _launch(args: list[str], tmp_path, port: int) -> None:
    """``ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 -m dfkd.cli <args>``; fails the test with its output."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "ACCELERATE_USE_CPU": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "dfkd.cli", *args]
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]


@pytest.fixture()
def unlabelled(tmp_path):
    folder = write_sst2(tmp_path / "SST-2", 90, 10)
    ts = tmp_path / "ts"
    assert main(["generate", "--task", "sst2", "--data-dir", str(folder), "--out", str(ts)]) == 0
    return ts


def test_two_processes_label_every_row_once_and_equal_one_process(tmp_path, unlabelled, tiny_teacher_dir):
    from dfkd.transfer import load_transfer_set

    flags = ["--teacher", str(tiny_teacher_dir), "--shard-size", "16", "--max-length", "16"]
    assert main(["label", str(unlabelled), *flags, "--out", str(tmp_path / "one")]) == 0
    _launch(["label", str(unlabelled), *flags, "--out", str(tmp_path / "two")], tmp_path, 29561)
    one, _ = load_transfer_set(tmp_path / "one")
    two, card = load_transfer_set(tmp_path / "two")
    assert card["labelling_processes"] == 2 and card["labelled_rows"] == 90
    assert two["text"] == one["text"]  # every row once, in order
    # equal up to float summation order (the launched processes run 1 thread each, this one 2)
    np.testing.assert_allclose(np.asarray(two["teacher_logits"]), np.asarray(one["teacher_logits"]), atol=1e-6)
    assert not (tmp_path / "two.labelling").exists()


def test_two_process_training_ends_at_the_same_step_count_with_one_output(tmp_path, unlabelled, tiny_teacher_dir):
    assert main(["label", str(unlabelled), "--teacher", str(tiny_teacher_dir), "--max-length", "16"]) == 0
    student = tmp_path / "student.json"
    student.write_text(json.dumps({"type": "config", "num_hidden_layers": 1, "hidden_size": 16,
                                   "num_attention_heads": 2, "intermediate_size": 32}))
    args = ["distill", "--task", "sst2", str(unlabelled), "--teacher", str(tiny_teacher_dir), "--student",
            str(student), "--batch-size", "8", "--max-steps", "6", "--max-length", "16", "--val-size", "10"]
    config = tmp_path / "ckpt.json"
    config.write_text(json.dumps({"checkpoint_every": 3, "eval_every": 3}))
    _launch([*args, "--config", str(config), "--out", str(tmp_path / "two")], tmp_path, 29562)
    summary = json.loads((tmp_path / "two" / "dfkd_training.json").read_text())
    assert summary["steps"] == 6 and summary["train_examples"] == 6 * 8 * 2  # two processes, one batch each
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert json.loads((tmp_path / "one" / "dfkd_training.json").read_text())["steps"] == 6
    # one output folder, written once by the main process; the checkpoint and work folders are gone
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("two")) == ["two"]
    assert (tmp_path / "two" / "model.safetensors").is_file()
