"""GLUE loaders against fixture files with each TSV quirk, custom tasks, bad input, and metrics by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dfkd.errors import DfkdError
from dfkd.metrics import (
    agreement,
    compute_metrics,
    floor_score,
    gap_recovered,
    kappa,
    majority_baseline,
    speedup,
)
from dfkd.tasks import TASKS, custom_task, get_task, load_task

from conftest import FIXTURES

GLUE = FIXTURES / "glue"


def test_registry_has_all_nine_glue_tasks_with_metric_keys():
    assert sorted(TASKS.names()) == sorted(["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"])
    assert get_task("SST-2").name == "sst2"
    assert get_task("stsb").is_regression and get_task("stsb").num_labels == 1
    assert get_task("mnli").num_labels == 3
    assert get_task("cola").main_metric == "matthews_correlation"
    assert get_task("mrpc").metrics == ("accuracy", "f1")
    assert get_task("stsb").metrics == ("pearson", "spearmanr")


def test_cola_has_no_header():
    ds = load_task("cola", "dev", GLUE / "CoLA")
    assert len(ds) == 3
    assert ds[0]["text"] == "Our friends won't buy this analysis, let alone the next one we propose."
    assert list(ds["label"]) == [1, 0, 1]
    assert "text_pair" not in ds.column_names


def test_sst2_strips_trailing_space():
    ds = load_task("sst2", "dev", GLUE / "SST-2")
    assert ds[0] == {"text": "it 's a charming and often affecting journey .", "label": 1}
    assert list(ds["label"]) == [1, 0, 1]


def test_mrpc_bom_header_and_pairs():
    ds = load_task("mrpc", "dev", GLUE / "MRPC")
    assert ds.column_names == ["text", "text_pair", "label"]
    assert ds[0]["text"] == "He said the foodservice pie business doesn't fit."
    assert ds[1]["text_pair"] == 'His wife said he was "100 percent behind George Bush".'
    assert list(ds["label"]) == [1, 0]


def test_stsb_ten_columns_float_scores():
    ds = load_task("stsb", "dev", GLUE / "STS-B")
    assert list(ds["label"]) == [5.0, 4.75, 0.5]
    assert ds[2]["text_pair"] == "The man is slicing a tomato."


def test_string_labels_rte_qnli_mnli():
    assert list(load_task("rte", "dev", GLUE / "RTE")["label"]) == [1, 0]  # not_entailment=1, entailment=0
    assert list(load_task("qnli", "dev", GLUE / "QNLI")["label"]) == [0, 1]
    matched = load_task("mnli", "dev", GLUE / "MNLI")
    assert list(matched["label"]) == [1, 2]  # neutral, contradiction
    assert matched[0]["text_pair"] == "Everyone really likes the newest benefits"
    assert list(load_task("mnli", "dev_mismatched", GLUE / "MNLI")["label"]) == [2]
    assert list(load_task("mnli", "train", GLUE / "MNLI")["label"]) == [1]


def test_custom_csv_and_jsonl(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text('review,stars\n"great, really",good\nawful,bad\n')
    spec = custom_task("reviews", {"train": str(csv)}, "review", "stars")
    assert spec.label_names == ("bad", "good") and spec.metrics == ("accuracy", "f1")
    ds = load_task(spec, "train")
    assert ds[0] == {"text": "great, really", "label": 1}
    jl = tmp_path / "d.jsonl"
    jl.write_text('{"a": "x y", "b": "z", "y": 0.5}\n{"a": "p", "b": "q", "y": 1.5}\n')
    reg = custom_task("sim", {"train": str(jl)}, "a", "y", text_pair_column="b", regression=True)
    ds = load_task(reg, "train")
    assert list(ds["label"]) == [0.5, 1.5] and ds[1]["text_pair"] == "q"


@pytest.mark.parametrize("content,message", [
    ("sentence\tlabel\nfine film \t7\n", "label '7' is outside the label set"),
    ("sentence\tlabel\n \t1\n", "empty text in column 'sentence'"),
    ("text\tlabel\nfine film\t1\n", "missing column(s) ['sentence']"),
])
def test_bad_rows_give_one_clear_error(tmp_path, content, message):
    (tmp_path / "dev.tsv").write_text(content)
    with pytest.raises(DfkdError) as err:
        load_task("sst2", "dev", tmp_path)
    assert message in str(err.value) and "dev.tsv" in str(err.value)


def test_unknown_task_split_and_missing_file(tmp_path):
    with pytest.raises(DfkdError, match="unknown task 'sst3'; expected one of: cola"):
        get_task("sst3")
    with pytest.raises(DfkdError, match="has no split 'test'"):
        load_task("sst2", "test", tmp_path)
    with pytest.raises(DfkdError, match="missing data file .*train.tsv"):
        load_task("sst2", "train", tmp_path)


def test_metrics_against_hand_computed_values():
    refs = np.array([1, 0, 1, 1, 0, 0])
    preds = np.array([1, 0, 0, 1, 1, 0])
    # TP=2, TN=2, FP=1, FN=1: accuracy 4/6, precision = recall = 2/3 -> F1 2/3, MCC = (4-1)/sqrt(3*3*3*3) = 1/3
    out = compute_metrics(get_task("mrpc"), preds, refs)
    assert out == pytest.approx({"accuracy": 4 / 6, "f1": 2 / 3})
    assert compute_metrics(get_task("cola"), preds, refs)["matthews_correlation"] == pytest.approx(1 / 3)
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 5.0])
    # Pearson by hand: mean x 2.5, mean y 2.75; dx = -1.5 -.5 .5 1.5, dy = -1.75 .25 -.75 2.25;
    # Σdx·dy = 2.625 - .125 - .375 + 3.375 = 5.5, Σdx² = 5, Σdy² = 8.75
    r = 5.5 / math.sqrt(5 * 8.75)
    # Spearman: ranks y = 1,3,2,4 -> Σd² = 2, rho = 1 - 6*2/(4*15) = 0.8
    assert compute_metrics(get_task("stsb"), x, y) == pytest.approx({"pearson": r, "spearmanr": 0.8})


def test_agreement_counts_equal_argmax():
    s = np.array([[2.0, 1.0], [0.0, 1.0], [0.0, 3.0]])
    t = np.array([[5.0, 1.0], [3.0, 1.0], [0.0, 1.0]])
    assert agreement(get_task("sst2"), s, t) == pytest.approx(2 / 3)


def test_majority_baseline_scores_the_most_frequent_gold_class_everywhere():
    mrpc = get_task("mrpc")
    floor = majority_baseline(mrpc, np.array([1, 1, 0, 1]))
    # "equivalent" (1) to all four: accuracy 3/4; F1 = 2 * precision 3/4 * recall 1 / (3/4 + 1) = 6/7
    assert floor["label"] == 1
    assert floor["metrics"] == pytest.approx({"accuracy": 0.75, "f1": 6 / 7})
    cola = majority_baseline(get_task("cola"), np.array([0, 0, 1]))
    assert cola["label"] == 0 and cola["metrics"]["matthews_correlation"] == 0.0  # a constant answer: MCC 0
    assert majority_baseline(get_task("stsb"), np.array([0.5, 3.2])) is None


def test_gap_recovered_reads_a_score_against_the_floor_and_the_teacher():
    # MRPC-like: floor F1 0.812, teacher 0.873; a student at the floor recovers 0%, one at the teacher 100%
    assert gap_recovered(0.812, 0.873, 0.812) == pytest.approx(0.0)
    assert gap_recovered(0.873, 0.873, 0.812) == pytest.approx(100.0)
    assert gap_recovered(0.8425, 0.873, 0.812) == pytest.approx(50.0)
    assert gap_recovered(0.787, 0.873, 0.812) == pytest.approx(100 * -0.025 / 0.061)  # below the floor: negative
    assert gap_recovered(0.5, 0.5, 0.5) is None and gap_recovered(None, 0.9, 0.5) is None  # no gap, no score
    assert floor_score(get_task("mrpc"), np.array([1, 1, 0, 1])) == pytest.approx(6 / 7)
    assert floor_score(get_task("stsb"), np.array([0.5, 3.2])) == 0.0  # a constant has no correlation


def test_kappa_against_hand_computed_values():
    sst2 = get_task("sst2")
    onehot = np.eye(2)
    t = onehot[[1, 1, 1, 0, 0, 0]]
    s = onehot[[1, 1, 0, 0, 0, 1]]
    # observed agreement 4/6; both predict 1 half the time: chance 0.5*0.5 + 0.5*0.5 = 0.5 -> (2/3 - 1/2) / (1/2) = 1/3
    assert kappa(sst2, s, t) == pytest.approx(1 / 3)
    assert kappa(sst2, t, t) == pytest.approx(1.0)
    # a majority-class student agrees with the teacher on half the rows, and gets kappa 0
    assert kappa(sst2, onehot[[1] * 6], t) == 0.0
    # 3 classes: s = [0,1,2,2,1,0], t = [0,1,2,1,1,0]: p_o = 5/6; marginals s (2,2,2)/6, t (2,3,1)/6:
    # p_e = (2*2 + 2*3 + 2*1) / 36 = 1/3 -> kappa = (5/6 - 1/3) / (2/3) = 3/4
    three = np.eye(3)
    mnli = get_task("mnli")
    assert kappa(mnli, three[[0, 1, 2, 2, 1, 0]], three[[0, 1, 2, 1, 1, 0]]) == pytest.approx(0.75)
    # regression: the Pearson r of the two prediction vectors; a constant student 0
    stsb = get_task("stsb")
    x, y = np.array([[1.0], [2.0], [3.0], [4.0]]), np.array([[1.0], [3.0], [2.0], [5.0]])
    assert kappa(stsb, x, y) == pytest.approx(5.5 / math.sqrt(5 * 8.75))
    assert kappa(stsb, np.full((4, 1), 2.5), y) == 0.0


def test_speedup_is_the_teacher_latency_over_the_students():
    assert speedup(17.0, 8.5) == pytest.approx(2.0)
    assert speedup(None, 8.5) is None and speedup(17.0, None) is None


def test_student_and_teacher_are_timed_in_turns_on_the_same_batches(monkeypatch):
    """paired_latency_ms on a fake clock: each model's median is its own forward time, the two alternate which
    runs first, both see the same rows, and measure_latency's speed-up is their ratio."""
    import torch
    from datasets import Dataset

    from dfkd.eval import scoring

    clock, calls = [0.0], []

    class Fake(torch.nn.Module):
        def __init__(self, name, seconds):
            super().__init__()
            self.name, self.seconds, self.weight = name, seconds, torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids):
            calls.append((self.name, input_ids[:, 0].tolist()))
            clock[0] += self.seconds

    def tokenizer(texts, pairs, **kw):
        return {"input_ids": torch.tensor([[int(t)] for t in texts])}

    monkeypatch.setattr(scoring.time, "perf_counter", lambda: clock[0])
    dev = Dataset.from_dict({"text": [str(i) for i in range(5)], "label": [0] * 5})
    student, teacher = Fake("student", 0.002), Fake("teacher", 0.006)
    assert scoring.paired_latency_ms([(student, tokenizer), (teacher, tokenizer)], dev, 2, repeats=3, warmup=1) == \
        [pytest.approx(2.0), pytest.approx(6.0)]
    assert [c[0] for c in calls] == ["student", "teacher", "teacher", "student"] * 2
    assert [c[1] for c in calls[::2]] == [[0, 1], [2, 3], [4, 0], [1, 2]]  # consecutive rows, cycled, shared
    assert [c[1] for c in calls[::2]] == [c[1] for c in calls[1::2]]
    calls.clear()
    row = scoring.measure_latency(student, tokenizer, dev, reference=(teacher, tokenizer))
    assert row == {"latency_ms_b1": pytest.approx(2.0), "latency_ms_b32": pytest.approx(2.0),
                   "teacher_latency_ms_b1": pytest.approx(6.0), "teacher_latency_ms_b32": pytest.approx(6.0),
                   "speedup": pytest.approx(3.0), "speedup_b32": pytest.approx(3.0)}
    assert len(calls) == 2 * (3 + 50) + 2 * (3 + 10)  # warm-up and timed passes of both, at batch 1 and 32


def test_mean_interval_by_hand():
    from dfkd.metrics import mean_interval

    # 5 seeds: mean 0.6, s = sqrt(0.025 / 4) = 0.0790569; t_0.975,4 = 2.776445 -> half-width 0.0981621
    low, high = mean_interval([0.5, 0.55, 0.6, 0.65, 0.7])
    assert low == pytest.approx(0.6 - 0.0981621, abs=1e-6) and high == pytest.approx(0.6 + 0.0981621, abs=1e-6)
    assert mean_interval([0.5]) is None
    assert mean_interval([0.5, 0.5]) == [0.5, 0.5]
