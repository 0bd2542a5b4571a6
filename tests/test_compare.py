"""``compare`` end to end on tiny models, and the teacher-embedding initialisation of config students."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dfkd.compare import ARMS, CompareConfig, run_compare
from dfkd.errors import DfkdError

from conftest import write_sst2


def _tiny_sst2_run(tmp_path, teacher, seeds: int, max_steps: int) -> CompareConfig:
    """The original arm on a fixture SST-2 with a 1-layer student, out in ``tmp_path / "run"``."""
    return CompareConfig(task="sst2", data_dir=str(write_sst2(tmp_path / "SST-2")), teacher=str(teacher),
                         student={"type": "config", "num_hidden_layers": 1, "hidden_size": 16,
                                  "num_attention_heads": 2, "intermediate_size": 32},
                         arms=["original"], seeds=seeds,
                         training={"batch_size": 16, "max_steps": max_steps, "max_length": 16,
                                   "checkpoint_every": 0},
                         val_size=16, out=str(tmp_path / "run"))


@pytest.mark.slow
def test_compare_writes_results_table_and_chart(tmp_path, tiny_teacher_dir):
    config = _tiny_sst2_run(tmp_path, tiny_teacher_dir, seeds=2, max_steps=6).replace(latency=True)
    result = run_compare(config)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    arm = saved["arms"]["original"]
    assert [s["seed"] for s in arm["per_seed"]] == [0, 1] and len(arm["scores"]) == 2
    mean = sum(arm["scores"]) / 2
    assert arm["mean"] == pytest.approx(mean)
    assert arm["std"] == pytest.approx(abs(arm["scores"][0] - arm["scores"][1]) / 2 ** 0.5)
    assert arm["pct_of_teacher"] == pytest.approx(100 * mean / saved["teacher"]["main"])
    assert arm["transfer_rows"] == 160 and arm["latency_ms_b1"] > 0 and arm["params"] > 0
    assert set(arm["stages_s"]) >= {"generate_s", "label_s", "setup_s", "distill_s", "eval_s"}
    trained = [json.loads((tmp_path / "run" / "original" / f"seed-{s}" / "student" / "dfkd_training.json")
                          .read_text()) for s in (0, 1)]  # the set-up before each seed's loop, as its run recorded it
    assert all(t["setup_seconds"] > 0 for t in trained)
    assert arm["stages_s"]["setup_s"] == pytest.approx(sum(t["setup_seconds"] for t in trained), abs=0.11)
    for s in arm["per_seed"]:  # the selected checkpoint: the first evaluation with the best held-out agreement
        history = json.loads((tmp_path / "run" / "original" / f"seed-{s['seed']}" / "student"
                              / "dfkd_training.json").read_text())["history"]
        best = max(h["val"] for h in history)
        assert s["best_step"] == next(h["step"] for h in history if h["val"] == best)
        assert s["best_val_agreement"] == pytest.approx(best)
    assert (tmp_path / "run" / "chart.png").stat().st_size > 1000
    assert "| original |" in result["table"] and result["table"] == (tmp_path / "run" / "results.md").read_text().strip()
    dev_labels = [int(line.rsplit("\t", 1)[1]) for line in (Path(config.data_dir) / "dev.tsv").read_text().splitlines()[1:]]
    majority = max((0, 1), key=dev_labels.count)
    floor = saved["majority_baseline"]
    assert floor["label"] == majority and floor["main"] == pytest.approx(dev_labels.count(majority) / len(dev_labels))
    assert f"Answering the majority class ({majority}) to every dev row scores {floor['main']:.4f}" in result["table"]
    # gap recovered over that floor, per seed and for the mean, by hand
    t_main = saved["teacher"]["main"]
    assert saved["floor"] == pytest.approx(floor["main"])

    def gap(x):  # a random tiny teacher may be no better than the floor: then there is no gap to recover
        return None if t_main <= floor["main"] else pytest.approx(100 * (x - floor["main"]) / (t_main - floor["main"]))

    assert [s["gap_recovered"] for s in arm["per_seed"]] == [gap(s["main"]) for s in arm["per_seed"]]
    assert arm["gap_recovered"] == gap(mean)
    # kappa by another route: the saved students re-run on dev, their classes against the teacher's saved logits
    from sklearn.metrics import cohen_kappa_score
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from dfkd.distill.label import predict_logits
    from dfkd.tasks import load_task

    t_pred = np.asarray(json.loads((tmp_path / "run" / "teacher_eval.json").read_text())["logits"]).argmax(-1)
    dev = load_task("sst2", "dev", config.data_dir)
    kappas = []
    for s in arm["per_seed"]:
        folder = tmp_path / "run" / "original" / f"seed-{s['seed']}" / "student"
        s_pred = predict_logits(AutoModelForSequenceClassification.from_pretrained(folder),
                                AutoTokenizer.from_pretrained(folder), dev, max_length=16).argmax(-1)
        expected = 0.0 if len(set(s_pred)) < 2 else cohen_kappa_score(s_pred, t_pred)
        assert s["kappa"] == pytest.approx(expected, abs=1e-9)
        kappas.append(expected)
    assert arm["kappa"] == pytest.approx(sum(kappas) / 2)
    # speed-ups: the teacher timed in turns with the first seed's student, recorded next to it
    assert arm["teacher_latency_ms_b1"] > 0 and arm["teacher_latency_ms_b32"] > 0
    assert arm["speedup"] == pytest.approx(arm["teacher_latency_ms_b1"] / arm["latency_ms_b1"])
    assert arm["speedup_b32"] == pytest.approx(arm["teacher_latency_ms_b32"] / arm["latency_ms_b32"])
    assert arm["per_seed"][0]["teacher_latency_ms_b1"] == arm["teacher_latency_ms_b1"]
    gap_cell = "–" if arm["gap_recovered"] is None else f"{arm['gap_recovered']:.1f}"
    assert f"| {gap_cell} | {arm['agreement']:.4f} | {arm['kappa']:.2f} |" in result["table"]
    # where it was timed, read here by another route: /proc/cpuinfo's first model name, torch's threads and version
    import os
    import platform

    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.is_file() else []
    cpu = names[0] if names else (platform.processor() or "unknown")
    machine = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "torch": torch.__version__, "device": "cpu"}
    for timed in (saved["teacher"]["machine"], arm["machine"]):
        assert {k: timed[k] for k in machine} == machine and isinstance(timed["native_cpu_bf16"], bool)
    assert result["table"].endswith(f"\n\nTimed on {cpu} ({machine['torch_threads']} torch threads of "
                                    f"{machine['cores']} cores, torch {torch.__version__}, cpu).")
    # resuming a finished run recomputes nothing and gives the same scores
    again = run_compare(config)
    assert again["arms"]["original"]["scores"] == arm["scores"]
    # its results alone (students and transfer set gone, e.g. another machine) resume it: no distillation
    import shutil

    import dfkd.distill.distiller as distiller

    shutil.rmtree(tmp_path / "run" / "original")
    real_distill = distiller.distill
    distiller.distill = lambda *a, **k: pytest.fail("a recorded row was distilled again")
    try:
        reused = run_compare(config)
    finally:
        distiller.distill = real_distill
    assert reused["reused_rows"] == ["original"] and reused["arms"]["original"]["scores"] == arm["scores"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["arms"]["original"]["per_seed"] == arm["per_seed"]
    # a row recorded with the same settings but not among this run's arms stays recorded (after this run's rows)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    saved["arms"] = {"ood": {**arm, "transfer_set": "ood"}, **saved["arms"]}
    (tmp_path / "run" / "results.json").write_text(json.dumps(saved))
    kept = json.loads(json.dumps(run_compare(config)["arms"]))
    assert list(kept) == ["original", "ood"] and kept["ood"]["transfer_set"] == "ood"
    assert list(json.loads((tmp_path / "run" / "results.json").read_text())["arms"]) == ["original", "ood"]
    # settings of another arm changed: this arm's row is still reused, the other arm's recorded row is dropped
    distiller.distill = lambda *a, **k: pytest.fail("a row whose own settings did not change was distilled again")
    try:
        other = run_compare(config.replace(arm_settings={"ood": {"size": 5}}))
    finally:
        distiller.distill = real_distill
    assert other["reused_rows"] == ["original"] and list(other["arms"]) == ["original"]
    # a setting that changes the figures: the row is run again (seeds 1 instead of 2)
    fewer = run_compare(config.replace(seeds=1))
    assert "reused_rows" not in fewer and len(fewer["arms"]["original"]["scores"]) == 1
    # other training settings: the students they would replace are refused by the checks, before any work
    distiller.distill = lambda *a, **k: pytest.fail("distilled before the saved students were checked")
    try:
        with pytest.raises(DfkdError, match=r"^task sst2: .*original/seed-0/student holds a finished run with other "
                                            r"settings \(max_steps 6 -> 7\); expected the same settings to resume: "
                                            r"remove .*original/seed-\* to run row 'original' again, or use a new "
                                            r"output folder$"):
            run_compare(config.replace(training={**config.training, "max_steps": 7}))
    finally:
        distiller.distill = real_distill
    (tmp_path / "run" / "results.json").unlink()  # from here on the transfer set's own checks are exercised
    # other generator settings into the same folder: refused, not a stale transfer set reused
    with pytest.raises(DfkdError, match=r"holds a transfer set built with other generator settings .*"
                                        r"expected \[\['original', \{'limit': 40\}\]\] to resume"):
        run_compare(config.replace(arm_settings={"original": {"limit": 40}}))
    # a transfer set from a dfkd that did not record its settings: refused with its own reason
    card_path = tmp_path / "run" / "original" / "transfer_set" / "dfkd_card.json"
    card = json.loads(card_path.read_text())
    del card["generator_settings"]
    card_path.write_text(json.dumps(card))
    with pytest.raises(DfkdError, match=r"did not record its generator settings; expected one built with "
                                        r"\[\['original', \{\}\]\]: remove it or use a new output folder"):
        run_compare(config)


@pytest.mark.slow
def test_outputs_of_another_teacher_are_refused_not_mixed_with_the_rebuilt_one(tmp_path, tiny_teacher_dir):
    import hashlib
    import shutil

    from transformers import BertForSequenceClassification

    from dfkd.files import weights_sha256

    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_teacher_dir, teacher)
    # the digest by an independent route: the one weight file's name, then its bytes
    (weights,) = teacher.glob("*.safetensors")
    assert weights_sha256(teacher) == hashlib.sha256(weights.name.encode() + weights.read_bytes()).hexdigest()
    assert weights_sha256(tmp_path / "nowhere") is None and weights_sha256("bert-base-uncased") is None
    config = _tiny_sst2_run(tmp_path, teacher, seeds=1, max_steps=4)
    first = run_compare(config)
    digest = weights_sha256(teacher)
    assert first["teacher"]["teacher_sha256"] == digest
    card = json.loads((tmp_path / "run" / "original" / "transfer_set" / "dfkd_card.json").read_text())
    assert card["teacher_sha256"] == digest
    # the teacher is replaced in place (same path, another build): its old scores and labels are refused
    model = BertForSequenceClassification.from_pretrained(teacher)
    with torch.no_grad():
        model.classifier.bias.add_(1.0)
    model.save_pretrained(teacher)
    assert weights_sha256(teacher) != digest
    with pytest.raises(DfkdError, match=rf"^task sst2: .*run/teacher_eval.json was made with another teacher "
                                        rf"\(weights sha256 {digest[:12]}\.\.\.\), not .*teacher as it is now"):
        run_compare(config)
    (tmp_path / "run" / "teacher_eval.json").unlink()
    with pytest.raises(DfkdError, match=r"run/original/transfer_set was made with another teacher"):
        run_compare(config)
    # outputs of a dfkd that recorded no digest are taken as they are (nothing to compare)
    del card["teacher_sha256"]
    (tmp_path / "run" / "original" / "transfer_set" / "dfkd_card.json").write_text(json.dumps(card))
    again = run_compare(config)
    assert again["teacher"]["teacher_sha256"] == weights_sha256(teacher)
    assert "reused_rows" not in again  # the recorded row was measured against the old teacher: run again


@pytest.mark.slow
def test_arms_with_the_same_generator_settings_share_one_transfer_set(tmp_path, tiny_teacher_dir, monkeypatch):
    from dfkd.compare import Arm

    monkeypatch.setitem(ARMS._items, "original-again", Arm("original-again", (("original", {}),), "same data"))
    data = write_sst2(tmp_path / "SST-2", n_train=40, n_dev=16)
    config = CompareConfig(task="sst2", data_dir=str(data), teacher=str(tiny_teacher_dir),
                           student={"type": "config", "num_hidden_layers": 1, "hidden_size": 16,
                                    "num_attention_heads": 2, "intermediate_size": 32},
                           arms=["original", "original-again"], seeds=1,
                           variants={"pruned": {"arm": "original", "student": {
                               "type": "teacher_pruned", "num_hidden_layers": 1, "hidden_size": 16,
                               "num_attention_heads": 1, "intermediate_size": 32}}},
                           training={"batch_size": 8, "max_steps": 2, "max_length": 16, "checkpoint_every": 0},
                           val_size=8, latency=False, out=str(tmp_path / "run"))
    result = run_compare(config)
    arms = result["arms"]
    assert arms["original-again"]["transfer_set"] == "original" and not (tmp_path / "run" / "original-again" /
                                                                         "transfer_set").exists()
    # a variant reuses the arm's transfer set; the pruned student (built from the teacher) runs through compare
    assert arms["pruned"]["transfer_set"] == "original" and arms["pruned"]["params"] == arms["original"]["params"]  # same shape
    # one seed has no standard deviation: null in the JSON, "(1 seed)" in the table
    assert arms["original"]["std"] is None and f"| original | {arms['original']['mean']:.4f} (1 seed) |" in result["table"]
    # different settings for one of them: its own transfer set; a variant with generator settings of its own
    # builds its own too (shared with a later variant of the same settings), one whose settings are its arm's
    # uses the arm's
    few = {"arm": "original", "arm_settings": {"limit": 12}}
    arms = run_compare(config.replace(out=str(tmp_path / "run2"), arm_settings={"original-again": {"limit": 20}},
                                      variants={"few": few, "few-again": {**few, "training": {"max_steps": 1}},
                                                "same": {"arm": "original-again", "arm_settings": {"limit": 20}}}))["arms"]
    assert arms["original-again"]["transfer_set"] == "original-again" and arms["original-again"]["transfer_rows"] == 20
    assert arms["few"]["transfer_set"] == "few" and arms["few"]["transfer_rows"] == 12
    assert arms["few-again"]["transfer_set"] == "few" and not (tmp_path / "run2" / "few-again").joinpath(
        "transfer_set").exists()
    assert arms["same"]["transfer_set"] == "original-again" and arms["same"]["transfer_rows"] == 20
    assert json.loads((tmp_path / "run2" / "few" / "transfer_set" / "dfkd_card.json").read_text())[
        "generator_settings"] == [["original", {"limit": 12}]]


@pytest.mark.slow
def test_rows_runs_only_the_named_rows_and_keeps_the_others_recorded(tmp_path, tiny_teacher_dir):
    import dfkd.distill.distiller as distiller

    data = write_sst2(tmp_path / "SST-2", n_train=40, n_dev=16)
    few = {"arm": "original", "arm_settings": {"limit": 12}}
    config = CompareConfig(task="sst2", data_dir=str(data), teacher=str(tiny_teacher_dir),
                           student={"type": "config", "num_hidden_layers": 1, "hidden_size": 16,
                                    "num_attention_heads": 2, "intermediate_size": 32},
                           arms=["original"], seeds=1,
                           variants={"few": few, "few-again": {**few, "training": {"max_steps": 1}}},
                           training={"batch_size": 8, "max_steps": 2, "max_length": 16, "checkpoint_every": 0},
                           val_size=4, latency=False, out=str(tmp_path / "run"))
    # unknown row names: one error line naming every row of the preset, before any output exists
    with pytest.raises(DfkdError, match=r"^rows \['few', 'nope'\]: \['nope'\] not in the preset; expected some of "
                                        r"\['original', 'few', 'few-again'\]$"):
        run_compare(config.replace(rows=["few", "nope"]))
    with pytest.raises(DfkdError, match=r"^rows \[\]: no row named; expected some of"):
        run_compare(config.replace(rows=[]))
    with pytest.raises(DfkdError, match="expected no rows with limits"):
        run_compare(config.replace(rows=["original"], limits=[0, None]))
    assert not (tmp_path / "run").exists()
    first = run_compare(config.replace(rows=["few-again"]))["arms"]
    assert list(first) == ["few-again"] and first["few-again"]["per_seed"][0]["steps"] == 1
    # its transfer set lives where the full run keeps it: with "few", the first row of those settings
    assert first["few-again"]["transfer_set"] == "few" and (tmp_path / "run" / "few" / "transfer_set").is_dir()
    assert not (tmp_path / "run" / "few-again" / "transfer_set").exists()
    # the other rows run; the named one is reused, and the rows come in the preset's order
    calls = []
    real = distiller.distill
    distiller.distill = lambda *a, **k: calls.append(k) or real(*a, **k)
    try:
        full = run_compare(config)
    finally:
        distiller.distill = real
    assert len(calls) == 2 and full["reused_rows"] == ["few-again"] and list(full["arms"]) == ["original", "few",
                                                                                              "few-again"]
    assert full["arms"]["few-again"] == first["few-again"] and full["arms"]["few"]["transfer_rows"] == 12
    # re-running one row (its record removed) distils that row only, and every other row stays recorded
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    del saved["arms"]["original"]
    (tmp_path / "run" / "results.json").write_text(json.dumps(saved))
    calls.clear()
    distiller.distill = lambda *a, **k: calls.append(k) or real(*a, **k)
    try:
        again = run_compare(config.replace(rows=["original"]))
    finally:
        distiller.distill = real
    assert len(calls) == 1 and list(again["arms"]) == ["original", "few", "few-again"]
    assert again["arms"]["few"] == full["arms"]["few"] and again["arms"]["original"]["transfer_rows"] == 40


def test_a_run_wide_schedule_trains_every_row_unless_a_variant_has_its_own(tmp_path, tiny_teacher_dir):
    data = write_sst2(tmp_path / "SST-2", n_train=40, n_dev=16)
    config = CompareConfig(task="sst2", data_dir=str(data), teacher=str(tiny_teacher_dir),
                           student={"type": "config", "num_hidden_layers": 1, "hidden_size": 16,
                                    "num_attention_heads": 2, "intermediate_size": 32},
                           arms=["original"], seeds=1,
                           stages=[{"losses": {"kd_weight": 0, "extra": [{"name": "hidden_mse", "mapping": "last"}]},
                                    "training": {"max_steps": 2}}, {"training": {"max_steps": 3}}],
                           variants={"one-stage": {"arm": "original", "stages": [{"training": {"max_steps": 1}}]}},
                           training={"batch_size": 8, "max_steps": 7, "max_length": 16, "checkpoint_every": 0},
                           val_size=8, latency=False, out=str(tmp_path / "run"))
    arms = run_compare(config)["arms"]
    assert arms["original"]["per_seed"][0]["steps"] == 2 + 3 and arms["one-stage"]["per_seed"][0]["steps"] == 1
    record = json.loads((tmp_path / "run" / "original" / "seed-0" / "student" / "dfkd_training.json").read_text())
    assert [st["steps"] for st in record["stages"]] == [2, 3]
    # the schedule is a run-wide setting: its rows are not reused, and the students trained on the old schedule
    # are refused rather than taken for the new one (a schedule that differs only before its last stage too)
    shorter_first = [config.stages[0] | {"training": {"max_steps": 1}}, config.stages[1]]
    for other in ([{"training": {"max_steps": 4}}], shorter_first):
        with pytest.raises(DfkdError, match=r"seed-0/student holds a finished run with another stage schedule; "
                                            r"expected the same settings to resume: remove .*original/seed-\* to "
                                            r"run row 'original' again, or use a new output folder$"):
            run_compare(config.replace(stages=other))
    # a bad schedule, run-wide or a variant's, is refused before any work, with no output folder
    for bad, message in ((dict(stages={"training": {}}), r"^stages: expected a non-empty JSON list of stages"),
                         (dict(variants={"v": {"stages": [{"epochs": 2}]}}),
                          r"^variant 'v' stages\[1\]: unknown key 'epochs'")):
        with pytest.raises(DfkdError, match=message):
            run_compare(config.replace(out=str(tmp_path / "bad"), **bad))
        assert not (tmp_path / "bad").exists()


def test_compare_rejects_unknown_arm_and_preset_keys(tmp_path):
    with pytest.raises(DfkdError, match="unknown compare arm 'magic'; expected one of: augment, ood, ood\\+adversarial, original"):
        run_compare(CompareConfig(arms=["magic"], out=str(tmp_path / "x")))
    with pytest.raises(DfkdError, match=r"task sst2: no arms to compare; expected at least one of: augment, ood, "
                                        r"ood\+adversarial, original$"):
        run_compare(CompareConfig(arms=[], out=str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()
    bad = tmp_path / "p.json"
    bad.write_text('{"task": "sst2", "epochs": 3}')
    with pytest.raises(DfkdError, match=r"p.json: unknown key 'epochs'; expected one of: arm_settings, arms"):
        CompareConfig.from_file(bad)
    # a generator is an arm of its own name without a second registration; only recipes beyond that are registered
    from dfkd.compare import get_arm

    assert "original" not in ARMS and get_arm("original").generators == (("original", {}),)
    assert ARMS.get("ood+adversarial").strategy == "adversarial"


def test_compare_refuses_a_bad_generator_value_before_its_first_arm(tmp_path, tiny_teacher_dir):
    """A value only the third arm's generator would reject stops the compare before the first arm runs."""
    data = write_sst2(tmp_path / "SST-2")
    base = CompareConfig(task="sst2", data_dir=str(data), teacher=str(tiny_teacher_dir), arms=["original", "augment", "ood"],
                         training={"max_steps": 1}, out=str(tmp_path / "run"))
    cases = [({"ood": {"selection_order": "hard"}},
              r"^arm_settings\.ood \(ood generator\): ood selection_order 'hard': expected one of "
              r"\['uncertain', 'confident', 'random'\]$"),
             ({"ood": {"pair_mix": {"adjacent": 0.0}}},
              r"^arm_settings\.ood \(ood generator\): ood pair_mix \{'adjacent': 0\.0\}: expected proportions >= 0, "
              r"at least one positive$"),
             ({"ood": {"rewrite_prob": 1.5}}, r"ood rewrite_prob 1\.5: expected a share of tokens in \(0, 1\]$"),
             ({"augment": {"replace_prob": 2.0}},
              r"^arm_settings\.augment \(augment generator\): replace_prob must be in \[0, 1\], got 2\.0$"),
             ({"augment": {"method": "tang", "p_mask": 0.7, "p_pos": 0.5}}, r"p_mask \+ p_pos <= 1, got p_mask=0\.7"),
             ({"augment": {"method": "tang", "top_k": 3}},
              r"augmentation method 'tang': unknown key 'top_k'")]
    for settings, message in cases:
        with pytest.raises(DfkdError, match=message):
            run_compare(base.replace(arm_settings=settings))
        assert not (tmp_path / "run").exists()
    # a variant row's own generator settings are checked the same way, named as the variant's
    with pytest.raises(DfkdError, match=r"^variant 'low' arm_settings \(augment generator\): replace_prob must be "
                                        r"in \[0, 1\], got 2\.0$"):
        run_compare(base.replace(variants={"low": {"arm": "augment", "arm_settings": {"replace_prob": 2.0}}}))
    assert not (tmp_path / "run").exists()
    # and a row's own training settings: unknown keys, and model selection on rows its transfer set lacks
    for variant, message in [({"arm": "original", "training": {"lr": 0.1}}, r"^variant 'v' training: unknown key 'lr'"),
                             ({"arm": "ood", "training": {"selection_source": "original"}},
                              r"^task sst2: row 'v' selects on 'original' rows but its transfer set has rows of "
                              r"\['ood'\] only; expected one of those as selection_source$")]:
        with pytest.raises(DfkdError, match=message):
            run_compare(base.replace(variants={"v": variant}))
        assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_rebalanced_variant_trains_on_the_teachers_classes_in_the_given_shares(tmp_path, tiny_teacher_dir):
    from transformers import AutoTokenizer, BertForSequenceClassification

    from dfkd.transfer import load_transfer_set

    data = write_sst2(tmp_path / "SST-2", n_train=40, n_dev=16)
    # the tiny teacher with its decision threshold moved to the 30th percentile of its margin on the train texts,
    # so that it predicts both classes, about 30 / 70
    tok = AutoTokenizer.from_pretrained(tiny_teacher_dir)
    model = BertForSequenceClassification.from_pretrained(tiny_teacher_dir)
    texts = [line.split("\t")[0].strip() for line in (data / "train.tsv").read_text().splitlines()[1:]]
    with torch.no_grad():
        logits = model(**tok(texts, padding=True, truncation=True, max_length=16, return_tensors="pt")).logits
        model.classifier.bias[1] -= (logits[:, 1] - logits[:, 0]).quantile(0.3)
    model.save_pretrained(tmp_path / "teacher")
    tok.save_pretrained(tmp_path / "teacher")
    config = CompareConfig(task="sst2", data_dir=str(data), teacher=str(tmp_path / "teacher"),
                           # the teacher's own shape, at a low lr, so that the one-step students predict both classes
                           student={"type": "teacher_pruned", "num_hidden_layers": 2, "hidden_size": 32,
                                    "num_attention_heads": 2, "intermediate_size": 64, "hidden_dropout_prob": 0.1,
                                    "attention_probs_dropout_prob": 0.1},
                           arms=["original"], seeds=1, variants={"balanced": {"arm": "original", "rebalance": [1, 1]}},
                           training={"batch_size": 8, "max_steps": 1, "max_length": 16, "checkpoint_every": 0,
                                     "learning_rate": 1e-5},
                           val_size=4, latency=False, out=str(tmp_path / "run"))
    arms = run_compare(config)["arms"]
    counts = np.bincount(np.asarray(load_transfer_set(tmp_path / "run" / "original" / "transfer_set")[0]
                                    ["teacher_logits"]).argmax(1), minlength=2)
    assert 0 < counts[0] < counts[1]
    # the variant keeps every row of the scarcer class and as many of the other: the largest 50 / 50 subset
    assert arms["original"]["transfer_rows"] == 40 and arms["balanced"]["transfer_rows"] == 2 * counts[0]
    assert arms["balanced"]["transfer_set"] == "original"
    assert arms["balanced"]["teacher_label_shares"]["transfer_set"] == [0.5, 0.5]
    assert "rebalance" in arms["balanced"]["description"]
    # each student's predicted classes on dev, from its saved model run here without dfkd's scorer
    dev = [line.split("\t")[0].strip() for line in (data / "dev.tsv").read_text().splitlines()[1:]]
    for row in ("original", "balanced"):
        folder = tmp_path / "run" / row / "seed-0" / "student"
        student = BertForSequenceClassification.from_pretrained(folder).eval()
        with torch.no_grad():
            predicted = student(**tok(dev, padding=True, truncation=True, max_length=16,
                                      return_tensors="pt")).logits.argmax(1).numpy()
        want = np.bincount(predicted, minlength=2) / len(dev)
        assert arms[row]["per_seed"][0]["dev_label_shares"] == pytest.approx(want, abs=1e-4)
        if row == "original":  # both classes, and not the teacher's shares (0.375 / 0.625 on dev)
            assert 0 < want[0] < 1 and abs(want[0] - arms[row]["teacher_label_shares"]["dev_teacher"][0]) > 0.1
    assert "Students' predicted classes on dev, % of rows, per seed: original " in \
        (tmp_path / "run" / "results.md").read_text()


def test_a_bad_rebalance_is_refused_before_any_work(tmp_path, tiny_teacher_dir):
    cases = [("sst2", [1], r"^variant 'v' rebalance \[1\]: expected \"published\" or 2 positive numbers, one per "
                           r"label \(negative, positive\)$"),
             ("sst2", [1, -1], r"^variant 'v' rebalance \[1, -1\]: expected"),
             ("stsb", "published", r"^variant 'v' rebalance: stsb is a regression task; expected class shares"),
             ("mnli", "published", None)]
    for task, shares, message in cases:
        config = CompareConfig(task=task, data_dir=None, teacher=str(tiny_teacher_dir), arms=[],
                               variants={"v": {"rebalance": shares}}, out=str(tmp_path / "run"))
        # published shares exist for MNLI: the check passes on to the next input, the (2-label) teacher
        with pytest.raises(DfkdError, match=message or r"^teacher \S+ has 2 classes \[.*\] but task .mnli. has 3"):
            run_compare(config)
        assert not (tmp_path / "run").exists()


def test_a_rows_own_settings_are_its_arms_generator_settings_and_its_variant():
    from dfkd.compare.provenance import row_settings as _row_settings

    small = {"student": {"type": "config", "hidden_size": 16}}
    config = {"arm_settings": {"original": {"limit": 40}, "ood": {"size": 9}},
              "variants": {"small": small, "small-ood": {**small, "arm": "ood"}}}
    assert _row_settings(config, "ood") == {"arm_settings": {"size": 9}, "variant": None}
    # a variant without "arm" distils on the original arm's transfer set (Variant's default)
    assert _row_settings(config, "small") == {"arm_settings": {"limit": 40}, "variant": small}
    assert _row_settings(config, "small-ood")["arm_settings"] == {"size": 9}
    assert _row_settings({}, "augment") == {"arm_settings": {}, "variant": None}


def test_presets_load():
    from pathlib import Path

    for p in sorted(Path(__file__).parents[1].joinpath("configs", "presets").glob("sst2-*.json")):
        cfg = CompareConfig.from_file(p)
        from dfkd.compare import get_arm

        assert cfg.name == p.stem and all(get_arm(a).name == a for a in cfg.arms)


def test_teacher_embedding_projection_preserves_geometry(tiny_teacher_dir):
    from transformers import AutoModelForSequenceClassification

    from dfkd.distill.students import build_student

    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher_dir)
    h = teacher.config.hidden_size
    same = build_student(teacher, {"type": "config", "hidden_size": h, "num_attention_heads": 2,
                                   "embeddings_from_teacher": True})
    t_w = teacher.bert.embeddings.word_embeddings.weight
    s_w = same.bert.embeddings.word_embeddings.weight
    # full-width PCA is a rotation of the centred embeddings: all pairwise distances are unchanged
    torch.testing.assert_close(torch.cdist(s_w, s_w), torch.cdist(t_w, t_w), rtol=1e-4, atol=1e-4)
    narrow = build_student(teacher, {"type": "config", "hidden_size": 8, "num_attention_heads": 2,
                                     "embeddings_from_teacher": True})
    n_w = narrow.bert.embeddings.word_embeddings.weight
    assert n_w.shape == (teacher.config.vocab_size, 8)
    # the kept directions carry the most variance: variance per dimension is non-increasing
    var = n_w.var(0)
    assert (var[:-1] >= var[1:] - 1e-6).all()
    with pytest.raises(DfkdError, match="hidden_size <= the teacher's"):
        build_student(teacher, {"type": "config", "hidden_size": 2 * h, "num_attention_heads": 2,
                                "embeddings_from_teacher": True})


@pytest.mark.slow
def test_retime_times_recorded_students_again_without_training(tmp_path, tiny_teacher_dir):
    """--retime: every recorded row's first student is timed again with the teacher; no student is trained or
    scored again, the seed's cached scores carry the new timing, and a row whose student is gone keeps its own."""
    from dfkd.compare import make_plan, run_plan

    config = _tiny_sst2_run(tmp_path, tiny_teacher_dir, seeds=1, max_steps=2).replace(latency=True)
    run_compare(config)
    path = tmp_path / "run" / "results.json"
    weights = tmp_path / "run" / "original" / "seed-0" / "student" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    saved = json.loads(path.read_text())
    arm = saved["arms"]["original"]
    for target in (arm, arm["per_seed"][0]):  # figures no real timing can give (the tiny teacher can take < 1 ms)
        target.update(latency_ms_b1=1e6, latency_ms_b32=1e6, teacher_latency_ms_b1=1e-6, teacher_latency_ms_b32=1e-6,
                      speedup=999.0, speedup_b32=999.0)
    path.write_text(json.dumps(saved))
    run_plan(make_plan(config), retime=True)
    new = json.loads(path.read_text())["arms"]["original"]
    assert new["scores"] == arm["scores"] and new["per_seed"][0]["train_seconds"] == arm["per_seed"][0]["train_seconds"]
    assert weights.stat().st_mtime_ns == stamp  # nothing trained again
    assert 0 < new["latency_ms_b1"] < 1e6 and new["teacher_latency_ms_b1"] > 1e-6
    assert new["speedup"] == pytest.approx(new["teacher_latency_ms_b1"] / new["latency_ms_b1"])
    assert new["speedup_b32"] == pytest.approx(new["teacher_latency_ms_b32"] / new["latency_ms_b32"])
    assert new["per_seed"][0]["latency_ms_b1"] == new["latency_ms_b1"]
    cached = json.loads((tmp_path / "run" / "original" / "seed-0" / "eval.json").read_text())
    assert cached["latency_ms_b1"] == new["latency_ms_b1"] and cached["main"] == arm["scores"][0]
    # a row whose student is gone keeps the figures it has
    import shutil

    shutil.rmtree(weights.parent)
    run_plan(make_plan(config), retime=True)
    assert json.loads(path.read_text())["arms"]["original"]["speedup"] == new["speedup"]
