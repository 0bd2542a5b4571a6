"""A user's own task through the main job: files, save_to_disk folders, labels against the teacher's, lengths
from the data, the transfer set's card, and bad input refused before any work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dfkd.compare import CompareConfig, run_compare
from dfkd.errors import DfkdError
from dfkd.tasks import align_labels, custom_task, load_task

from conftest import toy_rows

STUDENT = {"type": "config", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
           "intermediate_size": 32}
TRAINING = {"batch_size": 16, "max_steps": 4, "checkpoint_every": 0}


def _write_csv(folder: Path, names=("negative", "positive"), n_train: int = 120, n_dev: int = 40) -> Path:
    """train.csv / dev.csv of :func:`toy_rows` with the label written as ``names[label]``."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 0), ("dev", n_dev, 1)):
        (folder / f"{split}.csv").write_text(
            "review,sentiment\n" + "".join(f"{t},{names[y]}\n" for t, y in toy_rows(n, seed)))
    return folder


def _config(tmp_path, task: dict, teacher, **kw) -> CompareConfig:
    return CompareConfig(task=task, data_dir=None, teacher=str(teacher), student=STUDENT, arms=["original"], seeds=1,
                         training=dict(TRAINING), val_size=16, latency=False, out=str(tmp_path / "run"), **kw)


@pytest.mark.slow
def test_compare_on_a_csv_task_whose_labels_come_in_another_order(tmp_path, tiny_teacher_dir, capsys):
    folder = _write_csv(tmp_path / "data")
    # the task names its classes positive, negative: the teacher's order is negative, positive
    task = {"name": "reviews", "data_dir": str(folder), "files": {"train": "train.csv", "dev": "dev.csv"},
            "text": "review", "label": "sentiment", "label_names": ["positive", "negative"]}
    result = run_compare(_config(tmp_path, task, tiny_teacher_dir))
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["task"] == "reviews" and saved["main_metric"] == "accuracy"
    assert saved["label_names"] == ["negative", "positive"]
    assert saved["config"]["task"] == task  # recorded as given: relative file names, no machine path
    assert "labels put in the teacher" in saved["notes"][0] and "positive -> 1, negative -> 0" in saved["notes"][0]
    assert "positive -> 1, negative -> 0" in capsys.readouterr().out
    # the lengths came from the data: the 99th percentile of train's token lengths with the teacher's tokenizer
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir_of(tiny_teacher_dir))
    lengths = sorted(len(tok(t)["input_ids"]) for t, _ in toy_rows(120, 0))
    assert saved["max_length"] == int(np.ceil(np.quantile(lengths, 0.99)))
    assert saved["lengths"]["truncated_share"] == pytest.approx(np.mean(np.asarray(lengths) > saved["max_length"]))
    # gold labels by name in the teacher's order: the majority floor is the share of "positive" or "negative"
    gold = [y for _, y in toy_rows(40, 1)]
    majority = max((0, 1), key=gold.count)
    assert saved["majority_baseline"]["label"] == majority
    assert saved["majority_baseline"]["main"] == pytest.approx(gold.count(majority) / 40)
    # the teacher's dev score, recomputed from its saved dev logits against gold in its own order
    logits = np.asarray(json.loads((tmp_path / "run" / "teacher_eval.json").read_text())["logits"])
    assert saved["teacher"]["main"] == pytest.approx(float((logits.argmax(-1) == np.asarray(gold)).mean()))
    card = json.loads((tmp_path / "run" / "original" / "transfer_set" / "dfkd_card.json").read_text())
    assert card["task_spec"]["label_names"] == ["negative", "positive"]
    assert "labels put in the teacher" in result["table"]


@pytest.mark.slow
def test_compare_on_a_save_to_disk_task(tmp_path, tiny_teacher_dir):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"sentence": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    parts = {split: Dataset.from_dict({"sentence": [t for t, _ in toy_rows(n, seed)],
                                       "label": [y for _, y in toy_rows(n, seed)]}, features=features)
             for split, n, seed in (("train", 100, 0), ("validation", 30, 1))}
    DatasetDict(parts).save_to_disk(str(tmp_path / "disk"))
    task = {"name": "disk-task", "disk": str(tmp_path / "disk"), "text": "sentence"}
    run_compare(_config(tmp_path, task, tiny_teacher_dir))
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["task"] == "disk-task" and saved["label_names"] == ["negative", "positive"]
    assert saved["arms"]["original"]["transfer_rows"] == 100
    gold = [y for _, y in toy_rows(30, 1)]
    assert saved["majority_baseline"]["main"] == pytest.approx(max(gold.count(0), gold.count(1)) / 30)


def tiny_tokenizer_dir_of(teacher: Path) -> Path:
    return teacher  # the tiny teacher's folder holds its tokenizer


def test_label_alignment_maps_refuses_and_checks_the_kind():
    task = custom_task("t", {}, label_names=["pos", "neg"])
    aligned, note = align_labels(task, {"0": "NEG", "1": "POS"}, teacher_regression=False)
    assert aligned.label_names == ("neg", "pos") and aligned.file_label_names == ("pos", "neg")
    assert note == "task t: labels put in the teacher's order (pos -> 1, neg -> 0)"
    assert align_labels(task, {0: "pos", 1: "neg"}, False) == (task, None)  # already in order
    with pytest.raises(DfkdError, match=r"^task 't' has labels \['pos', 'neg'\] but the teacher knows "
                                        r"\['good', 'bad'\]; expected the same label names"):
        align_labels(task, {0: "good", 1: "bad"}, False)
    with pytest.raises(DfkdError, match=r"^teacher is a regression model but task 't' is a classification task"):
        align_labels(task, {0: "LABEL_0"}, True)
    reg = custom_task("r", {}, regression=True)
    with pytest.raises(DfkdError, match=r"^teacher is a classification model but task 'r' is a regression task"):
        align_labels(reg, {0: "a", 1: "b"}, False)
    with pytest.raises(DfkdError, match=r"generic label names \['LABEL_0', 'LABEL_1'\].*--confirm-generic-labels"):
        align_labels(task, {0: "LABEL_0", 1: "LABEL_1"}, False)
    assert align_labels(task, {0: "LABEL_0", 1: "LABEL_1"}, False, confirm_generic=True) == (task, None)
    zero_shot = custom_task("z", {})  # no data: the teacher names the classes
    named, note = align_labels(zero_shot, {0: "neg", 1: "pos"}, False)
    assert named.label_names == ("neg", "pos") and named.metrics == ("accuracy", "f1") and "from the teacher" in note


def test_integer_labels_keep_indexing_the_files_order_after_alignment(tmp_path):
    path = tmp_path / "dev.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in toy_rows(20, 3)))
    task = custom_task("t", {"dev": str(path)}, label_names=["pos", "neg"])  # 0 = pos, 1 = neg in the file
    aligned, _ = align_labels(task, {0: "neg", 1: "pos"}, False)
    got = list(load_task(aligned, "dev")["label"])
    assert got == [1 - y for _, y in toy_rows(20, 3)]  # file 0 (pos) is the teacher's 1


def test_parquet_files_load(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = toy_rows(12, 4)
    pq.write_table(pa.table({"text": [t for t, _ in rows], "label": ["b" if y else "a" for _, y in rows]}),
                   tmp_path / "train.parquet")
    task = custom_task("p", {"train": str(tmp_path / "train.parquet")})
    assert task.label_names == ("a", "b")
    assert list(load_task(task, "train")["label"]) == [y for _, y in rows]


def test_lengths_from_data_by_hand(tiny_teacher_dir):
    from transformers import AutoTokenizer

    from dfkd.distill.data import length_from_data

    tok = AutoTokenizer.from_pretrained(tiny_teacher_dir)
    texts = ["good"] * 98 + ["the film was good and the plot was dull"] * 2  # 3 tokens, and 11 for 2%
    got = length_from_data(tok, texts, quantile=0.98)
    assert got == {"max_length": 8, "quantile": 0.98, "truncated_share": 0.02, "rows": 100}  # at least 8 tokens
    got = length_from_data(tok, texts, quantile=0.99, cap=10)
    assert got["max_length"] == 10 and got["truncated_share"] == 0.02  # 0.99 quantile is 11, capped at 10


def _bad(tmp_path, task, teacher, match, **kw):
    with pytest.raises(DfkdError, match=match):
        run_compare(_config(tmp_path, task, teacher, **kw))
    assert not (tmp_path / "run").exists()


def test_bad_own_tasks_are_refused_before_any_work(tmp_path, tiny_teacher_dir, tiny_base_dir, monkeypatch):
    folder = _write_csv(tmp_path / "data")
    files = {"train": "train.csv", "dev": "dev.csv"}
    base = {"name": "reviews", "data_dir": str(folder), "files": files, "text": "review", "label": "sentiment"}
    _bad(tmp_path, {**base, "text": "sentence"}, tiny_teacher_dir,
         r"^\S+train.csv: missing column\(s\) \['sentence'\]; the file has \['review', 'sentiment'\]$")
    other = _write_csv(tmp_path / "other", names=("bad", "good"))
    _bad(tmp_path, {**base, "data_dir": str(other)}, tiny_teacher_dir,
         r"^task 'reviews' has labels \['bad', 'good'\] but the teacher \S+ knows \['negative', 'positive'\]")
    _bad(tmp_path, {**base, "kind": "regression"}, tiny_teacher_dir,
         r"is a classification model but task 'reviews' is a regression task")
    no_tok = tmp_path / "no-tokenizer"
    no_tok.mkdir()
    for f in tiny_teacher_dir.iterdir():
        if f.name in ("config.json", "model.safetensors"):
            (no_tok / f.name).write_bytes(f.read_bytes())
    _bad(tmp_path, base, no_tok, r"^teacher \S+no-tokenizer has no tokenizer; expected one of tokenizer.json")
    (folder / "empty.csv").write_text("review,sentiment\n")
    _bad(tmp_path, {**base, "files": {**files, "dev": "empty.csv"}}, tiny_teacher_dir, r"empty.csv has no data rows")
    import dfkd.task_data

    monkeypatch.setattr(dfkd.task_data, "hub_reachable", lambda *a, **k: False)
    _bad(tmp_path, {"name": "hub", "dataset": "someone/no-such-dataset"}, tiny_teacher_dir,
         r"^task 'hub': dataset 'someone/no-such-dataset' is not in the local cache and this machine is offline")


@pytest.mark.slow
def test_the_transfer_sets_card_gives_distill_its_task(tmp_path, tiny_teacher_dir, toy_csv):
    def dfkd(*args):
        return subprocess.run([sys.executable, "-m", "dfkd.cli", *args], capture_output=True, text=True, cwd=tmp_path)

    made = dfkd("generate", "--generator", "original", "--task", "toy", "--train-file", toy_csv["train"], "--dev-file", toy_csv["dev"],
                "--text-column", "sentence", "--label-names", "neg,pos", "--teacher", str(tiny_teacher_dir),
                "--out", "ts")
    assert made.returncode != 0 and "has labels ['neg', 'pos'] but the teacher" in made.stderr  # names differ
    made = dfkd("generate", "--generator", "original", "--task", "toy", "--train-file", toy_csv["train"], "--dev-file", toy_csv["dev"],
                "--text-column", "sentence", "--teacher", str(tiny_teacher_dir), "--out", "ts",
                "--label-names", "negative,positive")
    assert made.returncode != 0 and "is outside the label set of 'toy'" in made.stderr
    rows = [f"{t},{'positive' if y else 'negative'}" for t, y in toy_rows(60, 5)]
    (tmp_path / "t.csv").write_text("sentence,label\n" + "\n".join(rows) + "\n")
    made = dfkd("generate", "--generator", "original", "--task", "toy", "--train-file", "t.csv", "--text-column", "sentence",
                "--teacher", str(tiny_teacher_dir), "--out", "ts")
    assert made.returncode == 0, made.stderr
    card = json.loads((tmp_path / "ts" / "dfkd_card.json").read_text())
    assert card["task_spec"]["name"] == "toy" and card["task_spec"]["label_names"] == ["negative", "positive"]
    student = tmp_path / "student.json"
    student.write_text(json.dumps(STUDENT))
    done = dfkd("distill", "ts", "--teacher", str(tiny_teacher_dir), "--student", str(student), "--out", "s",
                "--max-steps", "2", "--batch-size", "8", "--val-size", "8")
    assert done.returncode == 0, done.stderr
    missing = dfkd("eval", "--task", "toy", "--dev-file", "t.csv", "--text-column", "sentence", "no-such-student")
    assert missing.returncode != 0 and "cannot load model 'no-such-student'" in missing.stderr


@pytest.mark.slow
def test_a_zero_shot_compare_needs_no_train_file_and_takes_the_teachers_label_names(tmp_path, tiny_teacher_dir):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "dev.csv").write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in toy_rows(30, 2)))
    (tmp_path / "ood.txt").write_text("".join(f"{t} scene {i}.\n" for i, (t, _) in enumerate(toy_rows(3000, 9))))
    task = {"name": "zs", "files": {"dev": str(folder / "dev.csv")}}
    config = _config(tmp_path, task, tiny_teacher_dir).replace(
        arms=["ood"], arm_settings={"ood": {"sources": [str(tmp_path / "ood.txt")], "size": 60}})
    with pytest.raises(DfkdError, match=r"^task 'zs' has class indices \['0', '1'\] for labels, so they cannot be "
                                        r"checked against the teacher \S+'s \['negative', 'positive'\]"):
        run_compare(config)
    assert not (tmp_path / "run").exists()
    config = config.replace(confirm_generic_labels=True)
    run_compare(config)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["label_names"] == ["negative", "positive"]  # from the teacher: the file has class indices only
    assert "class indices read as the teacher" in saved["notes"][0]
    assert not (tmp_path / "run" / "original").exists() and saved["arms"]["ood"]["transfer_rows"] == 60
    gold = [y for _, y in toy_rows(30, 2)]
    assert saved["majority_baseline"]["main"] == pytest.approx(max(gold.count(0), gold.count(1)) / 30)
    # no task file at all: scored on held-out out-of-domain rows the teacher labels, which no transfer set keeps
    run_compare(config.replace(task={"name": "zs"}, out=str(tmp_path / "nodev")))
    saved = json.loads((tmp_path / "nodev" / "results.json").read_text())
    assert saved["dev_source"] == "held-out out-of-domain rows labelled by the teacher"
    assert saved["label_names"] == ["negative", "positive"] and saved["teacher"]["main"] == 1.0
    assert any("no dev data: every score is agreement with the teacher" in n for n in saved["notes"])
    from datasets import load_from_disk

    held_out = set(load_from_disk(str(tmp_path / "nodev" / "held_out_dev"))["text"])
    trained = set(load_from_disk(str(tmp_path / "nodev" / "ood" / "transfer_set"))["text"])
    assert held_out and trained and saved["arms"]["ood"]["transfer_rows"] == len(trained - held_out)
    arm = saved["arms"]["ood"]
    assert arm["mean"] == pytest.approx(arm["agreement"])  # accuracy against the teacher's answers is agreement
    shares = arm["teacher_label_shares"]["dev_gold"]
    assert saved["floor"] == pytest.approx(max(shares))  # the majority of the teacher's answers
    with pytest.raises(DfkdError, match=r"read the train split, but the task has no train data"):
        run_compare(config.replace(arms=["original"], out=str(tmp_path / "none")))
