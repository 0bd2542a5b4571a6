"""Multi-task ``compare`` (the GLUE table) on tiny models and fixture tasks: a pair task and a regression task,
every field of the summary against values computed here, and the bad presets refused before any work."""

from __future__ import annotations

import json
import random
import statistics

import numpy as np
import pytest
import torch

from dfkd.compare import CompareConfig, run_compare
from dfkd.errors import DfkdError

from conftest import BAD, FILLER, GOOD, tiny_bert_config

STUDENT = {"type": "config", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
           "intermediate_size": 32}
TRAINING = {"batch_size": 8, "max_steps": 4, "max_length": 24, "checkpoint_every": 0}


def _pairs(n: int, seed: int):
    """(sentence 1, sentence 2, same sentiment word class 0/1, similarity 0-5) rows."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.choice(GOOD + BAD), rng.choice(GOOD + BAD)
        s1 = " ".join(rng.sample(FILLER, 3) + [a])
        s2 = " ".join([b] + rng.sample(FILLER, 3))
        same = int((a in GOOD) == (b in GOOD))
        rows.append((s1, s2, same, round(5 * same * rng.uniform(0.6, 1.0), 3)))
    return rows


def write_rte(folder, n_train=48, n_dev=24):
    """RTE's layout: index, sentence1, sentence2, and a string label."""
    folder.mkdir(parents=True)
    names = ["not_entailment", "entailment"]
    for name, n, seed in (("train.tsv", n_train, 0), ("dev.tsv", n_dev, 1)):
        lines = ["index\tsentence1\tsentence2\tlabel"]
        lines += [f"{i}\t{a}\t{b}\t{names[y]}" for i, (a, b, y, _) in enumerate(_pairs(n, seed))]
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def write_stsb(folder, n_train=48, n_dev=24):
    """STS-B's 10 columns, score last."""
    folder.mkdir(parents=True)
    head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    for name, n, seed in (("train.tsv", n_train, 2), ("dev.tsv", n_dev, 3)):
        lines = [head] + [f"{i}\tmain\tx\t2012\t{i:04d}\tnone\tnone\t{a}\t{b}\t{s:.3f}"
                          for i, (a, b, _, s) in enumerate(_pairs(n, seed))]
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def tiny_regression_teacher_dir(tmp_path_factory, tiny_tokenizer_dir):
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(3)
    d = tmp_path_factory.mktemp("tiny-reg-teacher")
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    model = BertForSequenceClassification(tiny_bert_config(len(tok), num_labels=1, problem_type="regression"))
    with torch.no_grad():
        model.classifier.weight.mul_(40.0)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture()
def two_tasks(tmp_path, tiny_rte_teacher_dir, tiny_regression_teacher_dir):
    rte, stsb = write_rte(tmp_path / "RTE"), write_stsb(tmp_path / "STS-B")
    return CompareConfig(
        tasks={"rte": {"data_dir": str(rte), "teacher": str(tiny_rte_teacher_dir)},
               "stsb": {"data_dir": str(stsb), "teacher": str(tiny_regression_teacher_dir),
                        "training": {"max_steps": 3}}},
        student=STUDENT, arms=["original"], seeds=2, training=TRAINING, val_size=8, latency=False,
        out=str(tmp_path / "run"), name="two-tasks")


@pytest.mark.slow
def test_two_task_preset_writes_per_task_outputs_and_a_summary(tmp_path, two_tasks):
    result = run_compare(two_tasks)
    out = tmp_path / "run"
    saved = json.loads((out / "results.json").read_text())
    assert list(saved["tasks"]) == ["rte", "stsb"] and saved["excluded_from_average"] == []
    pcts, teacher_scores = [], []
    for task, metric in (("rte", "accuracy"), ("stsb", "pearson")):
        own = json.loads((out / task / "results.json").read_text())  # the per-task output
        assert own["task"] == task and own["main_metric"] == metric
        arm = saved["tasks"][task]["arms"]["original"]
        scores = own["arms"]["original"]["scores"]
        assert len(scores) == 2 and arm["scores"] == scores
        assert arm["mean"] == pytest.approx(statistics.fmean(scores))
        assert arm["std"] == pytest.approx(abs(scores[0] - scores[1]) / 2 ** 0.5)
        teacher = own["teacher"]["main"]
        assert saved["tasks"][task]["teacher"]["main"] == teacher
        assert arm["pct_of_teacher"] == pytest.approx(100 * statistics.fmean(scores) / teacher)
        pcts.append(arm["pct_of_teacher"])
        teacher_scores.append(100 * teacher)
        cell = f"{100 * arm['mean']:.1f} ± {100 * arm['std']:.1f} ({arm['pct_of_teacher']:.1f}%)"
        assert cell in result["table"]
        # the teacher's classes (score bins) on the transfer set, next to dev's, counted here independently
        from dfkd.tasks import get_task, load_task
        from dfkd.transfer import load_transfer_set

        ts, _ = load_transfer_set(out / task / "original" / "transfer_set")
        logits, dev = np.asarray(ts["teacher_logits"]), load_task(task, "dev", two_tasks.tasks[task]["data_dir"])
        shares = own["arms"]["original"]["teacher_label_shares"]
        if task == "rte":
            assert shares["bins"] == list(get_task("rte").label_names)
            assert shares["transfer_set"] == pytest.approx([np.mean(logits.argmax(1) == c) for c in (0, 1)], abs=1e-4)
            assert shares["dev_gold"] == pytest.approx([np.mean(np.asarray(dev["label"]) == c) for c in (0, 1)],
                                                       abs=1e-4)
        else:
            gold = np.asarray(dev["label"], dtype=float)
            lo, hi = gold.min(), gold.max()
            assert shares["bins"] == pytest.approx(np.linspace(lo, hi, 6), abs=1e-3)
            first_bin = np.mean(np.clip(logits[:, 0], lo, hi) < lo + (hi - lo) / 5)
            assert shares["transfer_set"][0] == pytest.approx(first_bin, abs=1e-4)
            assert sum(shares["dev_gold"]) == pytest.approx(1.0, abs=1e-3)
        assert "Teacher's predicted classes" in (out / task / "results.md").read_text()
        # each student's own classes (score bins) on dev, from its saved model run here without dfkd's scorer
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        for seed in (0, 1):
            folder = out / task / "original" / f"seed-{seed}" / "student"
            model, tok = AutoModelForSequenceClassification.from_pretrained(folder).eval(), \
                AutoTokenizer.from_pretrained(folder)
            with torch.no_grad():
                out_logits = model(**tok(list(dev["text"]), list(dev["text_pair"]), padding=True, truncation=True,
                                         max_length=24, return_tensors="pt")).logits.numpy()
            got = own["arms"]["original"]["per_seed"][seed]["dev_label_shares"]
            if task == "rte":
                want = [np.mean(out_logits.argmax(1) == c) for c in (0, 1)]
            else:
                want = np.histogram(np.clip(out_logits[:, 0], lo, hi), bins=np.linspace(lo, hi, 6))[0] / len(dev)
            assert got == pytest.approx(want, abs=1e-4)
        assert "Students' predicted classes on dev" in (out / task / "results.md").read_text()
    # the stsb override of max_steps applied to that task only
    assert json.loads((out / "stsb" / "results.json").read_text())["arms"]["original"]["per_seed"][0]["steps"] == 3
    assert json.loads((out / "rte" / "results.json").read_text())["arms"]["original"]["per_seed"][0]["steps"] == 4
    summary = saved["summary"]["original"]
    assert summary["avg_pct_of_teacher"] == pytest.approx((pcts[0] + pcts[1]) / 2)
    assert summary["tasks"] == ["rte", "stsb"]
    assert saved["teacher_avg_score"] == pytest.approx(sum(teacher_scores) / 2)
    lines = result["table"].splitlines()
    assert lines[0] == "|  | rte (acc) | stsb (Pearson) | avg | avg % of teacher |"
    assert lines[2].startswith("| teacher |") and lines[3].endswith(f"| {summary['avg_pct_of_teacher']:.1f} |")
    assert (out / "chart.png").stat().st_size > 1000 and (out / "results.md").read_text().strip() == result["table"]
    # the majority floor: RTE's (classification) from its dev labels counted here, none for STS-B (regression)
    from dfkd.tasks import load_task

    gold = np.asarray(load_task("rte", "dev", two_tasks.tasks["rte"]["data_dir"])["label"])
    major = int(np.bincount(gold).argmax())
    floor = saved["tasks"]["rte"]["majority_baseline"]
    assert floor["label"] == major and floor["main"] == pytest.approx(np.mean(gold == major))
    assert floor["pct_of_teacher"] == pytest.approx(100 * floor["main"] / teacher_scores[0] * 100)
    assert "majority_baseline" not in saved["tasks"]["stsb"]
    assert f"| majority answer (floor) | {100 * floor['main']:.1f} ({floor['pct_of_teacher']:.1f}%) | – | – | – |" \
        in result["table"]


def test_wnli_is_shown_but_not_averaged():
    from dfkd.compare import summarise

    def res(metric, teacher, scores):
        return {"main_metric": metric, "teacher": {"main": teacher},
                "arms": {"original": {"mean": statistics.fmean(scores), "std": None, "scores": scores,
                                      "transfer_rows": 10, "pct_of_teacher": 100 * statistics.fmean(scores) / teacher}}}

    s = summarise({"rte": res("accuracy", 0.6, [0.54]), "wnli": res("accuracy", 0.5, [0.56])})
    assert s["excluded_from_average"] == ["wnli"] and s["summary"]["original"]["tasks"] == ["rte"]
    assert s["summary"]["original"]["avg_pct_of_teacher"] == pytest.approx(90.0)
    assert s["teacher_avg_score"] == pytest.approx(60.0)


def test_the_summary_chart_draws_gap_recovered_and_cuts_bars_below_minus_100(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from dfkd.compare.report import plot_summary

    def arm(gap, std):
        return {"gap_recovered": gap, "gap_recovered_std": std}

    results = {"name": "g", "summary": {"original": {}, "augment": {}},
               "tasks": {"sst2": {"arms": {"original": arm(79.6, 1.4), "augment": arm(76.7, 1.9)}},
                         "mrpc": {"arms": {"original": arm(-2.2, 4.4), "augment": arm(-164.4, 19.2)}},
                         "stsb": {"arms": {"original": arm(47.5, 12.0)}}}}
    monkeypatch.setattr(plt, "close", lambda fig: None)
    plot_summary(results, tmp_path / "c.png")
    ax = plt.gcf().axes[0]
    bars = sorted((round(p.get_x() + p.get_width() / 2, 2), round(p.get_height(), 1)) for p in ax.patches)
    # two bars side by side on sst2 (x 0) and mrpc (x 1), one on stsb (x 2); -164.4 is cut at -100 and labelled
    assert bars == [(-0.2, 79.6), (0.2, 76.7), (0.8, -2.2), (1.2, -100.0), (2.0, 47.5)]
    assert [t.get_text() for t in ax.texts] == ["-164"]
    assert ax.get_ylim() == (-100.0, 115.0)
    plt.close("all")


def test_the_summary_chart_gives_each_of_many_arms_its_own_colour(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from dfkd.compare.report import plot_summary

    arms = [f"original@s{i}" for i in range(12)]  # a size sweep's rows: more than the default cycle's 10 colours
    results = {"name": "g", "summary": {a: {} for a in arms},
               "tasks": {"sst2": {"arms": {a: {"gap_recovered": 50.0 + i, "gap_recovered_std": 1.0}
                                           for i, a in enumerate(arms)}}}}
    monkeypatch.setattr(plt, "close", lambda fig: None)
    plot_summary(results, tmp_path / "c.png")
    colours = {tuple(p.get_facecolor()) for p in plt.gcf().axes[0].patches}
    assert len(colours) == 12
    plt.close("all")


@pytest.mark.parametrize("gaps, bottom", [
    ([(79.6, 1.4), (101.3, 0.5)], -10.0),   # nothing below 0: the axis keeps a little room under the floor
    ([(79.6, 1.4), (-2.2, 4.4)], -20.0),    # -2.2 - 4.4 = -6.6, 5 below it is -11.6, down to the next ten
    ([(79.6, 1.4), (-41.2, 46.8)], -100.0),  # -88 - 5 = -93 -> -100
])
def test_the_summary_chart_reaches_down_to_its_lowest_error_bar(tmp_path, monkeypatch, gaps, bottom):
    import matplotlib.pyplot as plt

    from dfkd.compare.report import plot_summary

    results = {"name": "g", "summary": {"original": {}},
               "tasks": {f"t{i}": {"arms": {"original": {"gap_recovered": g, "gap_recovered_std": e}}}
                         for i, (g, e) in enumerate(gaps)}}
    monkeypatch.setattr(plt, "close", lambda fig: None)
    plot_summary(results, tmp_path / "c.png")
    assert plt.gcf().axes[0].get_ylim() == (bottom, 115.0)
    plt.close("all")


def test_the_summary_splits_time_into_transfer_sets_students_and_teacher():
    from dfkd.compare import format_summary_table, summarise

    def arm(transfer_set, generate, label, distill, evaluate, setup=None):
        stages = {"generate_s": generate, "label_s": label, "distill_s": distill, "eval_s": evaluate}
        return {"mean": 0.5, "std": None, "scores": [0.5], "transfer_rows": 10, "pct_of_teacher": 80.0,
                "transfer_set": transfer_set, "stages_s": stages if setup is None else {**stages, "setup_s": setup}}

    # a rebalanced row reads the augment row's transfer set: that set's 30 + 60 s count once; the students'
    # set-up counts where recorded (an older row has none): 100 + 8 + 200 + 7 + 24 + 150 + 5 + 6 = 500
    rte = {"main_metric": "accuracy", "teacher": {"main": 0.625, "stages_s": {"eval_s": 12.0}},
           "arms": {"original": arm("original", 0.0, 18.0, 100.0, 8.0),
                    "augment": arm("augment", 30.0, 60.0, 200.0, 7.0, setup=24.0),
                    "rebalanced": arm("augment", 30.0, 60.0, 150.0, 5.0, setup=6.0)}}
    old = {"main_metric": "pearson", "teacher": {"main": 0.625}, "arms": {"original": {
        "mean": 0.5, "std": None, "scores": [0.5], "transfer_rows": 10, "pct_of_teacher": 80.0}}}  # no stages kept
    s = summarise({"rte": rte, "stsb": old})
    assert s["tasks"]["rte"]["seconds"] == {"transfer_sets": 108.0, "students": 500.0, "teacher": 12.0}
    assert s["tasks"]["stsb"]["seconds"] is None
    assert s["seconds"] == {"transfer_sets": 108.0, "students": 500.0, "teacher": 12.0}
    table = format_summary_table({**s, "name": "t"})
    assert ("Time, minutes: transfer sets 1.8 (generating and labelling each once, as recorded when it was built), "
            "students 8.3 (setting up, distilling and scoring every seed), teacher scoring 0.2; per task (transfer "
            "sets / students): rte 1.8 / 8.3. Not in these sums: stsb (recorded without stage times).") in table
    assert summarise({"stsb": old})["seconds"] is None and "Time, minutes" not in format_summary_table(
        {**summarise({"stsb": old}), "name": "t"})


def test_the_summary_names_every_machine_its_tasks_were_timed_on():
    from dfkd.compare import format_compare_table, format_summary_table, summarise

    a = {"cpu": "CPU A", "cores": 2, "torch_threads": 2, "torch": "2.13.0", "device": "cpu", "native_cpu_bf16": True}
    b = {**a, "cpu": "CPU B", "torch_threads": 1}

    def res(teacher_machine, *row_machines):
        arms = {f"arm{i}": {"mean": 0.5, "std": None, "scores": [0.5], "transfer_rows": 10, "pct_of_teacher": 80.0,
                            "agreement": 0.9, "params": 1e6, "latency_ms_b1": 1.0, "latency_ms_b32": 2.0,
                            "stages_s": {}, **({"machine": m} if m else {})} for i, m in enumerate(row_machines)}
        return {"main_metric": "accuracy", "teacher": {"main": 0.625, "params": 2e6, "latency_ms_b1": 1.0,
                                                       "latency_ms_b32": 2.0, "stages_s": {},
                                                       **({"machine": teacher_machine} if teacher_machine else {})},
                "arms": arms}

    # rte: teacher and first row on A, a row reused from B's results; stsb: recorded before machines were
    rte, stsb = res(a, a, b), res(None, None)
    assert format_compare_table(rte).endswith(
        "\n\nTimed on CPU A (2 torch threads of 2 cores, torch 2.13.0, cpu); "
        "CPU B (1 torch threads of 2 cores, torch 2.13.0, cpu).")
    assert "Timed on" not in format_compare_table(stsb)
    s = summarise({"rte": rte, "stsb": stsb})
    assert s["tasks"]["rte"]["machines"] == [a, b] and s["tasks"]["stsb"]["machines"] == []
    assert ("\nTimed on CPU A (2 torch threads of 2 cores, torch 2.13.0, cpu); CPU B (1 torch threads of 2 cores, "
            "torch 2.13.0, cpu).") in format_summary_table({**s, "name": "t"})


def test_the_summary_says_which_student_each_task_distils_into_and_how_fast_it_is():
    from dfkd.compare import format_summary_table, summarise

    def res(student, *latencies):  # teacher 12 ms at batch 1 and 96 ms at batch 32; one arm per student latency pair
        arms = {f"arm{i}": {"mean": 0.5, "std": None, "scores": [0.5], "transfer_rows": 10, "pct_of_teacher": 80.0,
                            "params": 11_200_000, "latency_ms_b1": b1, "latency_ms_b32": b32}
                for i, (b1, b32) in enumerate(latencies)}
        return {"main_metric": "accuracy", "config": {"student": student},
                "teacher": {"main": 0.625, "latency_ms_b1": 12.0, "latency_ms_b32": 96.0}, "arms": arms}

    spec = {"type": "teacher_pruned", "num_hidden_layers": 4, "hidden_size": 256}  # FFN: the builder's default, 1024
    # sst2: 12/4 = 3 and 12/6 = 2 at batch 1 (mean 2.5), 96/32 = 3 and 96/24 = 4 at batch 32 (mean 3.5);
    # rte: an arm with a recorded speed-up keeps it (1.25) over its latencies' ratio (12/12 = 1)
    rte = res("minilm-l6-ffn1024-pruned", (12.0, 96.0))
    rte["arms"]["arm0"].update(speedup=1.25, speedup_b32=1.5)
    s = summarise({"sst2": res(spec, (4.0, 32.0), (6.0, 24.0)), "rte": rte})
    assert s["tasks"]["sst2"]["student"] == "teacher_pruned 4x256, FFN 1024"
    assert summarise({"rte": res({"type": "checkpoint", "path": "runs/x"}, (12.0, 96.0))})["tasks"]["rte"]["student"] \
        == "checkpoint"
    assert summarise({"rte": res({"type": "my_student", "depth": 2}, (12.0, 96.0))})["tasks"]["rte"]["student"] \
        == "my_student"  # a type registered by the user's own code, absent when the summary is written
    sweep = res(spec, (4.0, 32.0))
    sweep["config"]["students"] = {"4x256": spec, "2x128": {**spec, "num_hidden_layers": 2, "hidden_size": 128}}
    swept = summarise({"sst2": sweep})
    assert swept["tasks"]["sst2"]["student"] is None and swept["tasks"]["sst2"]["speedup"] is None
    table = format_summary_table({**swept, "name": "t"})
    assert "| student |" not in table and "the mean of the tasks'." in table and "below" not in table
    assert s["tasks"]["sst2"]["speedup"] == pytest.approx(2.5) and s["tasks"]["sst2"]["speedup_b32"] == pytest.approx(3.5)
    assert s["tasks"]["rte"]["speedup"] == pytest.approx(1.25) and s["tasks"]["rte"]["speedup_b32"] == pytest.approx(1.5)
    assert ("| | sst2 | rte |\n|---|---|---|\n| student | teacher_pruned 4x256, FFN 1024 | minilm-l6-ffn1024-pruned |\n"
            "| params (M) | 11.2 | 11.2 |\n| speed-up b1 / b32 | 2.5x / 3.5x | 1.2x / 1.5x |") in format_summary_table(
        {**s, "name": "t"}).replace("|  |", "| |")


@pytest.mark.parametrize("change, message", [
    (lambda c, d: c.replace(tasks=[]), "task list is empty"),
    (lambda c, d: c.replace(tasks={"rte": {"data_dir": str(d / "nowhere"), "teacher": c.tasks["rte"]["teacher"]}}),
     "task rte: data folder .*nowhere not found or incomplete; expected a folder with train.tsv and dev.tsv"),
    (lambda c, d: c.replace(tasks={"stsb": {**c.tasks["stsb"], "teacher": c.tasks["rte"]["teacher"]}}),
     "is a classification model but task 'stsb' is a regression task; expected a teacher of the task's kind"),
    (lambda c, d: c.replace(arm_settings={"original": {"limit": 49}}),
     "task rte: arm 'original' limit 49 is larger than the train split \\(48 rows\\); expected at most 48"),
    (lambda c, d: c.replace(tasks={"rte": {**c.tasks["rte"], "trainig": {}}}),
     "preset tasks.rte: unknown key 'trainig' \\(did you mean 'training'\\?\\)"),
    (lambda c, d: c.replace(tasks={"qqp": {}}), "task qqp: data folder glue/QQP not found"),
])
def test_bad_multi_task_presets_fail_before_any_work(tmp_path, two_tasks, change, message):
    with pytest.raises(DfkdError, match=message):
        run_compare(change(two_tasks, tmp_path))
    assert not (tmp_path / "run").exists()


def test_a_default_teacher_of_another_task_is_refused(tmp_path, two_tasks, monkeypatch):
    import dfkd.distill  # noqa: F401  (registers the default teachers)

    monkeypatch.setenv("DFKD_HOME", str(tmp_path / "empty-cache"))  # not built: refused by its registered task

    bad = two_tasks.replace(tasks={"stsb": {**two_tasks.tasks["stsb"], "teacher": "models/teacher-minilm-l6-sst2"}},
                            out=str(tmp_path / "run"))
    with pytest.raises(DfkdError, match="teacher models/teacher-minilm-l6-sst2 is built for task 'sst2', not 'stsb'"):
        run_compare(bad)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_limits_sweep_draws_the_data_efficiency_curve(tmp_path, tiny_rte_teacher_dir):
    news = tmp_path / "news.txt"
    news.write_text("\n".join(f"The {w} film was a {v} story about the plot. Then the acting was {v} and {w} too."
                              for w in ("good", "bad", "dull", "fine") for v in ("great", "poor", "lovely", "boring",
                                                                               "nice")) + "\n")
    rte = write_rte(tmp_path / "RTE")
    config = CompareConfig(task="rte", data_dir=str(rte), teacher=str(tiny_rte_teacher_dir), student=STUDENT,
                           arms=["original", "ood"], arm_settings={"ood": {"sources": [str(news)], "size": 12}},
                           seeds=2, training={**TRAINING, "max_steps": 2}, val_size=4, latency=False,
                           limits=[0, 20, None], out=str(tmp_path / "curve"), name="curve")
    result = run_compare(config)
    out = tmp_path / "curve"
    curve = json.loads((out / "results.json").read_text())["curve"]["rte"]
    assert curve["limits"] == [0, 20, None] and list(curve["arms"]) == ["ood", "original"]
    ood, original = curve["arms"]["ood"], curve["arms"]["original"]
    assert [p["limit"] for p in ood] == [0] and [p["limit"] for p in original] == [20, None]
    assert [p["examples"] for p in original] == [20, 48] and [p["transfer_rows"] for p in original] == [20, 48]
    for limit, points in (("0", ood), ("20", original[:1]), ("all", original[1:])):
        own = json.loads((out / f"limit-{limit}" / "results.json").read_text())  # each point is a compare run
        arm = own["arms"][next(iter(own["arms"]))]
        assert points[0]["scores"] == arm["scores"] and points[0]["pct_of_teacher"] == arm["pct_of_teacher"]
        assert points[0]["mean"] == pytest.approx(statistics.fmean(arm["scores"]))
    assert not (out / "limit-0" / "original").exists()  # zero-shot points never read the task's train split
    assert "| original | – |" in result["table"] and (out / "curve.png").stat().st_size > 1000
    # a point's folder may also record rows of arms it does not run (kept with the same settings, e.g. copied
    # from a full compare): they are not points of the curve
    zero = json.loads((out / "limit-0" / "results.json").read_text())
    zero["arms"]["original"] = json.loads((out / "limit-all" / "results.json").read_text())["arms"]["original"]
    (out / "limit-0" / "results.json").write_text(json.dumps(zero))
    again = json.loads(json.dumps(run_compare(config)))
    assert [p["limit"] for p in again["curve"]["rte"]["arms"]["original"]] == [20, None]
    with pytest.raises(DfkdError, match="limit 49 is larger than the train split \\(48 rows\\)"):
        run_compare(config.replace(limits=[0, 49], out=str(tmp_path / "bad")))
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_zero_shot_arms_run_without_the_train_file(tmp_path, tiny_teacher_dir, tiny_rewriter_dir, monkeypatch):
    """The zero-shot guard: the ood arms (plain and adversarial) build, label, prune a student from the
    teacher with out-of-domain text, distil and score with no train file in the task folder; only dev is read,
    for the final score."""
    import dfkd.compare.plan as plan
    import dfkd.compare.runner as runner
    import dfkd.tasks as tasks

    from conftest import toy_rows, write_sst2

    data = write_sst2(tmp_path / "SST-2", 20, 30)
    (data / "train.tsv").unlink()
    news = tmp_path / "news.txt"
    rng = random.Random(0)
    news.write_text("\n".join(f"{t}. {rng.choice(FILLER)} the {rng.choice(GOOD + BAD)} story again."
                              for t, _ in toy_rows(80, 5)) + "\n")
    splits = []
    real_load = tasks.load_task
    for module in (tasks, plan, runner):  # every read of a split goes through one of these names
        monkeypatch.setattr(module, "load_task", lambda task, split, *a, **k: splits.append(split) or
                            real_load(task, split, *a, **k))
    config = CompareConfig(
        task="sst2", data_dir=str(data), teacher=str(tiny_teacher_dir), arms=["ood", "ood+adversarial"],
        arm_settings={"ood": {"sources": [str(news)], "size": 40, "min_words": 3},
                      "ood+adversarial": {"sources": [str(news)], "size": 40, "min_words": 3}},
        student={"type": "teacher_pruned", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 1,
                 "intermediate_size": 32},
        strategies={"adversarial": {"rewriter": str(tiny_rewriter_dir), "student_steps": 2, "rewriter_steps": 1,
                                    "adversarial_rows": 4}},
        seeds=1, training=TRAINING, val_size=8, latency=False, out=str(tmp_path / "run"))
    result = run_compare(config)
    assert set(splits) == {"dev"}
    for arm in ("ood", "ood+adversarial"):
        a = result["arms"][arm]
        assert a["transfer_rows"] == 40 and a["per_seed"][0]["steps"] == 4 and 0 <= a["mean"] <= 1


def test_summary_only_assembles_recorded_tasks_and_refuses_missing_or_other_settings(tmp_path, two_tasks):
    from dfkd.compare import summarise_runs
    from dfkd.compare.provenance import portable_config as _portable_config
    from dfkd.errors import DfkdError

    def record(task_config, teacher, scores, wall):
        mean = statistics.fmean(scores)
        res = {"main_metric": "accuracy" if task_config.task == "rte" else "pearson",
               "config": _portable_config(task_config), "teacher": {"main": teacher}, "wall_seconds": wall,
               "arms": {"original": {"mean": mean, "std": statistics.stdev(scores), "scores": scores,
                                     "transfer_rows": 48, "pct_of_teacher": 100 * mean / teacher}}}
        out = tmp_path / "run" / task_config.task
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(res))

    rte, stsb = two_tasks.task_configs()
    with pytest.raises(DfkdError, match=r"task rte: no results at .*run/rte/results.json; expected a finished run "
                                        r"of that task \(dfkd compare --preset ... --tasks rte\)"):
        summarise_runs(two_tasks)
    record(rte, 0.60, [0.54, 0.57], 100.0)  # 92.5% of the teacher
    record(stsb, 0.80, [0.60, 0.64], 50.0)  # 77.5%
    result = summarise_runs(two_tasks)
    assert result["summary"]["original"]["avg_pct_of_teacher"] == pytest.approx((92.5 + 77.5) / 2)
    assert result["summary"]["original"]["avg_score"] == pytest.approx((55.5 + 62.0) / 2)
    assert result["teacher_avg_score"] == pytest.approx(70.0) and result["wall_seconds"] == pytest.approx(150.0)
    assert "| original | 55.5 ± 2.1 (92.5%) | 62.0 ± 2.8 (77.5%) | 58.8 | 85.0 |" in result["table"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["summary"] == result["summary"]
    assert "averaged over" not in result["table"]
    # a task without one of the arms: that arm's average is over the other tasks, and the table says so
    two_arms = two_tasks.replace(arms=["original", "ood"])
    rte2, stsb2 = two_arms.task_configs()
    record(rte2, 0.60, [0.54, 0.57], 100.0)
    record(stsb2, 0.80, [0.60, 0.64], 50.0)
    res = json.loads((tmp_path / "run" / "rte" / "results.json").read_text())
    res["arms"]["ood"] = {**res["arms"]["original"], "mean": 0.48, "scores": [0.48, 0.48], "std": 0.0,
                          "pct_of_teacher": 80.0}
    (tmp_path / "run" / "rte" / "results.json").write_text(json.dumps(res))
    result = summarise_runs(two_arms)
    assert result["summary"]["ood"] == {"avg_pct_of_teacher": 80.0, "avg_score": 48.0, "tasks": ["rte"],
                                        # recorded without a majority floor, kappa or latencies: not made up
                                        "avg_gap_recovered": None, "avg_kappa": None, "avg_speedup": None,
                                        "avg_speedup_b32": None}
    assert "| ood | 48.0 ± 0.0 (80.0%) | – | 48.0 | 80.0 |" in result["table"]
    assert "ood: averaged over rte only (no figure for the other tasks)." in result["table"]
    res["config"]["arm_settings"] = {"ood": {"size": 99}}  # that row was run with other ood settings: left out
    (tmp_path / "run" / "rte" / "results.json").write_text(json.dumps(res))
    result = summarise_runs(two_arms)
    assert "ood" not in result["summary"] and "| ood |" not in result["table"]
    assert result["summary"]["original"]["avg_pct_of_teacher"] == pytest.approx((92.5 + 77.5) / 2)
    record(stsb.replace(seeds=5), 0.80, [0.60, 0.64], 50.0)  # recorded with other settings: refused
    with pytest.raises(DfkdError, match=r"task stsb: .*stsb/results.json was run with other settings \(seeds\); "
                                        "expected the preset's, or run that task again"):
        summarise_runs(two_tasks)
