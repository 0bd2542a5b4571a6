"""The size sweep (``students``) with int8 quantization: a tiny end-to-end run, the frontier's table and chart, and
a sweep naming an unknown student refused before any work."""

from __future__ import annotations

import json

import pytest

from dfkd.compare import CompareConfig, make_plan, run_compare
from dfkd.errors import DfkdError

from conftest import write_sst2

SIZES = {"2x32-ffn32": {"type": "teacher_pruned", "num_hidden_layers": 2, "hidden_size": 32,
                        "num_attention_heads": 2, "intermediate_size": 32},
         "1x16": {"type": "teacher_pruned", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 1,
                  "intermediate_size": 32}}


def _sweep(tmp_path, teacher, **over) -> CompareConfig:
    folder = tmp_path / "SST-2"
    data = folder if folder.exists() else write_sst2(folder, n_train=60, n_dev=24)
    return CompareConfig(task="sst2", data_dir=str(data), teacher=str(teacher), arms=["original"], students=SIZES,
                         quantize=True, seeds=2, val_size=12, out=str(tmp_path / "run"),
                         training={"batch_size": 8, "max_steps": 3, "max_length": 16, "checkpoint_every": 0},
                         **over)


@pytest.mark.slow
def test_a_size_sweep_crosses_arms_with_students_and_scores_int8_students(tmp_path, tiny_teacher_dir):
    from dfkd.metrics import gap_recovered

    result = run_compare(_sweep(tmp_path, tiny_teacher_dir))
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert list(saved["arms"]) == ["original@2x32-ffn32", "original@1x16"]
    big, small = saved["arms"]["original@2x32-ffn32"], saved["arms"]["original@1x16"]
    assert big["student_name"] == "2x32-ffn32" and small["student_name"] == "1x16"
    assert big["params"] > small["params"]
    cfg = json.loads((tmp_path / "run" / "original@1x16" / "seed-0" / "student" / "config.json").read_text())
    assert (cfg["num_hidden_layers"], cfg["hidden_size"]) == (1, 16)
    assert big["transfer_set"] == small["transfer_set"] == "original"  # one transfer set for the whole sweep
    t_main, floor = saved["teacher"]["main"], saved["floor"]
    for a in (big, small):
        q = a["int8"]
        assert len(q["scores"]) == 2 and q["latency_ms_b1"] > 0 and q["speedup"] > 0
        assert q["mean"] == pytest.approx(sum(q["scores"]) / 2)
        assert q["gap_recovered"] == gap_recovered(q["mean"], t_main, floor) or \
            q["gap_recovered"] == pytest.approx(gap_recovered(q["mean"], t_main, floor))
        assert a["speedup"] == pytest.approx(a["teacher_latency_ms_b1"] / a["latency_ms_b1"])
        assert q["speedup"] == pytest.approx(q["teacher_latency_ms_b1"] / q["latency_ms_b1"])
    assert "Size-speed frontier:" in result["table"] and "| original | 1x16 |" in result["table"]
    assert (tmp_path / "run" / "frontier.png").stat().st_size > 1000


def test_a_sweep_naming_an_unknown_student_is_refused_before_any_work(tmp_path, tiny_teacher_dir):
    with pytest.raises(DfkdError, match=r"students.tiny: unknown student 'bert-mini-prunned' \(did you mean "
                                        r"'bert-mini-pruned'\?\)"):
        make_plan(_sweep(tmp_path, tiny_teacher_dir).replace(students={"tiny": "bert-mini-prunned"}))
    with pytest.raises(DfkdError, match=r"hidden_size=64; expected 1..32"):
        make_plan(_sweep(tmp_path, tiny_teacher_dir).replace(students={"wide": {**SIZES["1x16"], "hidden_size": 64}}))
    assert not (tmp_path / "run").exists()


def test_a_named_student_spec_is_read_from_configs_students(tmp_path, tiny_teacher_dir):
    plan = make_plan(_sweep(tmp_path, tiny_teacher_dir).replace(students={"mini": "bilstm"}))
    assert plan.tasks[0].rows[0].student["type"] == "bilstm"


def test_a_preset_or_variant_student_may_be_named_and_a_task_names_its_own(tmp_path, tiny_teacher_dir):
    """``student`` (preset, task or variant) takes a file name from ``configs/students/`` as ``students`` does."""
    from pathlib import Path

    shipped = json.loads((Path(__file__).resolve().parents[1] / "configs" / "students" / "bilstm.json").read_text())
    base = _sweep(tmp_path, tiny_teacher_dir).replace(students=None, student="bilstm",
                                                      variants={"v": {"arm": "original", "student": SIZES["1x16"]}})
    rows = {r.name: r.student for r in make_plan(base).tasks[0].rows}
    assert rows == {"original": shipped, "v": SIZES["1x16"]}
    with pytest.raises(DfkdError, match=r"^variant 'v' student: unknown student 'bilstmm' \(did you mean 'bilstm'\?\)"):
        make_plan(base.replace(variants={"v": {"arm": "original", "student": "bilstmm"}}))
    assert not (tmp_path / "run").exists()


def test_the_frontier_table_and_chart_draw_each_arm_through_its_students(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from dfkd.compare.report import format_frontier_table, frontier_rows, plot_frontier

    def row(student, gap, speed, q_gap):
        return {"student_name": student, "params": 4e6, "gap_recovered": gap, "gap_recovered_std": 2.0,
                "kappa": 0.5, "speedup": speed, "speedup_b32": 2 * speed,
                "int8": {"gap_recovered": q_gap, "gap_recovered_std": None, "speedup": 2 * speed,
                         "speedup_b32": 3 * speed}}

    results = {"task": "mrpc", "arms": {"original@big": row("big", 80.0, 1.5, 78.0),
                                        "original@mid": row("mid", 30.0, 2.0, 20.0),  # beaten by small in both
                                        "original@small": row("small", 40.0, 4.0, 35.0),
                                        "ood@big": row("big", 60.0, 1.5, 55.0), "bilstm": {"params": 1e6}}}
    assert {a: [s for s, _ in rows] for a, rows in frontier_rows(results).items()} == {
        "original": ["big", "mid", "small"], "ood": ["big"]}
    table = format_frontier_table(results)
    assert "| original | small | 4.00 | 4.00 | 8.00 | 40.0 ± 2.0 | 0.50 | 35.0 | 8.00 / 12.00 |" in table
    monkeypatch.setattr(plt, "close", lambda fig: None)
    plot_frontier(results, tmp_path / "f.png")
    left, right = plt.gcf().axes
    # per panel: every student as a marker, and a line through the frontier only (mid is slower and worse than small)
    drawn = [line for line in left.lines if len(line.get_xdata()) > 1 and line.get_xdata()[0] != 0]
    markers = sorted({tuple(line.get_xdata()) for line in drawn if line.get_linestyle() == "None"})  # and error caps
    fronts = sorted((line.get_linestyle(), tuple(line.get_xdata())) for line in drawn if line.get_linestyle() != "None")
    assert markers == [(1.5, 2.0, 4.0), (3.0, 4.0, 8.0)]
    assert fronts == [("-", (1.5, 4.0)), ("--", (3.0, 8.0))]
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["original", "original (int8)", "ood", "ood (int8)"]
    plt.close("all")


@pytest.mark.parametrize("points, front", [
    ([(1.5, 80.0), (2.0, 30.0), (4.0, 40.0)], [(1.5, 80.0), (4.0, 40.0)]),
    ([(1.0, 50.0), (2.0, 60.0), (3.0, 60.0)], [(3.0, 60.0)]),  # a tie in gap: the faster one beats the others
    ([(2.0, 10.0)], [(2.0, 10.0)]),
])
def test_the_frontier_keeps_the_students_no_other_beats_in_speed_and_gap(points, front):
    from dfkd.compare.report import pareto_front

    assert pareto_front(points) == front


def test_one_shot_and_gradual_pruning_to_the_same_shape_get_their_own_table_and_chart(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from dfkd.compare.report import format_pruning_table, plot_pruning, pruning_pairs

    shape = {"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 1024}
    students = {"4x256": "bert-mini-pruned", "4x256-gradual": {"type": "gradual_pruned", **shape},
                "2x128": {"type": "teacher_pruned", **shape, "hidden_size": 128, "num_attention_heads": 2}}

    def row(student, gap, distill_s):
        return {"student_name": student, "params": 4e6, "gap_recovered": gap, "gap_recovered_std": 1.5, "kappa": 0.3,
                "speedup": 2.0, "speedup_b32": 3.0, "stages_s": {"distill_s": distill_s}}

    results = {"task": "mrpc", "config": {"students": students},
               "arms": {"original@4x256": row("4x256", -0.9, 100.0), "original@4x256-gradual": row("4x256-gradual", -3.1, 700.0),
                        "original@2x128": row("2x128", 4.1, 50.0), "ood@4x256": row("4x256", 10.0, 90.0)}}
    assert pruning_pairs(results) == [("4x256", "4x256-gradual")]  # the named spec's shape, defaults filled in
    table = format_pruning_table(results, pruning_pairs(results))
    assert "| original | 4x256 | -0.9 ± 1.5 | 0.30 | 4x256-gradual | -3.1 ± 1.5 | 0.30 | 100 / 700 |" in table
    assert "| ood |" not in table  # no gradual student there
    monkeypatch.setattr(plt, "close", lambda fig: None)
    plot_pruning(results, pruning_pairs(results), tmp_path / "p.png")
    heights = sorted(round(p.get_height(), 1) for p in plt.gcf().axes[0].patches)
    assert heights == [-3.1, -0.9]
    plt.close("all")
