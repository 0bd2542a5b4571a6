"""Every subcommand run to success through the CLI on tiny models and fixture tasks, with the content of what it
writes checked; every generator behind the one call; every preset read by the strict config loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dfkd.cli import main
from dfkd.config import from_dict, read_json
from dfkd.errors import DfkdError

from conftest import write_glove, write_sst2

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
STUDENT = {"type": "config", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
           "intermediate_size": 32}
NEWS = ["The film festival opened with a great story about a dull town.",
        "A superb new movie was announced on Monday by the studio.",
        "Critics called the plot boring and the acting poor in a review.",
        "The story of the team was lovely and fans said it was nice.",
        "Officials said the awful weather would last until the weekend.",
        "The museum showed a fine collection of paintings from the north.",
        "Investors were nervous after the bank reported weak results today.",
        "A quiet village celebrated its new bridge with music and food.",
        "The minister promised lower taxes for small firms next year.",
        "Scientists found a rare bird living high in the mountains.",
        "The coach praised the young players after a tough season.",
        "Heavy rain flooded several roads in the city on Tuesday.",
        "The old theatre will reopen after a long and costly repair.",
        "Shoppers queued early for the sale at the large store downtown.",
        "The airline cancelled flights because of a strike by pilots."]


@pytest.fixture()
def sst2(tmp_path) -> Path:
    return write_sst2(tmp_path / "SST-2", 60, 20)


@pytest.fixture()
def glove(tmp_path) -> Path:
    return write_glove(tmp_path / "glove.txt")


@pytest.fixture()
def news(tmp_path) -> Path:
    p = tmp_path / "news.txt"
    p.write_text("\n".join(NEWS) + "\n")
    return p


def _ts(path: Path):
    from dfkd.transfer import load_transfer_set

    return load_transfer_set(path)


def generator_test_settings(tiny_rewriter_dir, glove, news) -> dict[str, list[str]]:
    """``--set`` flags that make each registered generator run on tiny models and fixture text."""
    return {"original": [],
            "augment": ["--set", f"mlm={tiny_rewriter_dir}", "--set", f"word_vectors={glove}", "--set", "num_aug=2",
                        "--set", "top_k=3"],
            "ood": ["--set", f'sources=["{news}"]', "--set", "min_words=3"]}


@pytest.mark.slow
def test_generate_works_for_every_registered_generator(tmp_path, sst2, tiny_teacher_dir, tiny_rewriter_dir, glove,
                                                       news, capsys):
    from dfkd.cli.common import generators as _generators

    settings = generator_test_settings(tiny_rewriter_dir, glove, news)
    registry = _generators()
    assert sorted(registry) == sorted(settings), "a new generator needs its tiny settings here"
    for name in registry:
        out = tmp_path / f"ts-{name}"
        assert main(["generate", "--task", "sst2", "--data-dir", str(sst2), "--generator", name, "--limit", "10",
                     "--teacher", str(tiny_teacher_dir), "--out", str(out), *settings[name]]) == 0, name
        ds, card = _ts(out)
        source = registry.get(name).source
        assert card["generator"] == name and card["teacher"] == str(tiny_teacher_dir)
        assert source in card["rows_by_source"] and len(ds[0]["teacher_logits"]) == 2
        if name == "augment":  # the 10 rows plus 2 distinct variants of each (fewer where a row has no candidate)
            assert card["rows_by_source"]["original"] == 10 and 10 < card["rows"] <= 30
        elif name == "ood":  # no task data read: the card records no split or folder
            assert card["rows"] == 10 and card["split"] is None and card["data_dir"] is None
        else:
            assert card["rows"] == 10 and card["split"] == "train"
        assert not out.with_name(out.name + ".partial").exists()
    capsys.readouterr()
    assert main(["generate", "--task", "sst2", "--data-dir", str(sst2), "--generator", "augment", "--set",
                 "num_agu=2", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key 'num_agu' (did you mean 'num_aug'?)" in err[0] and not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_cli_pipeline_label_distill_eval_compare_assets(tmp_path, sst2, tiny_teacher_dir, tiny_rewriter_dir, glove,
                                                        capsys, monkeypatch):
    teacher = str(tiny_teacher_dir)
    ts = tmp_path / "ts"
    assert main(["generate", "--task", "sst2", "--data-dir", str(sst2), "--out", str(ts)]) == 0
    assert "teacher_logits" not in _ts(ts)[0].column_names
    assert main(["label", str(ts), "--teacher", teacher, "--max-length", "16"]) == 0
    ds, card = _ts(ts)
    assert len(ds) == 60 and card["labelled_rows"] == 60 and len(ds[0]["teacher_logits"]) == 2

    student = tmp_path / "student.json"
    student.write_text(json.dumps(STUDENT))
    common = ["--task", "sst2", str(ts), "--teacher", teacher, "--student", str(student), "--batch-size", "8",
              "--max-length", "16", "--val-size", "8"]
    assert main(["distill", *common, "--max-steps", "4", "--out", str(tmp_path / "plain")]) == 0
    plain = json.loads((tmp_path / "plain" / "dfkd_training.json").read_text())
    assert plain["steps"] == 4 and plain["config"]["batch_size"] == 8 and plain["selection"] == "teacher"

    stages = tmp_path / "stages.json"
    stages.write_text(json.dumps([{"losses": {"kd_weight": 0, "extra": [{"name": "hidden_mse", "mapping": "last"}]},
                                   "training": {"max_steps": 2}},
                                  {"losses": {"kd_weight": 1.0}, "training": {"max_steps": 3}}]))
    assert main(["distill", *common, "--stages", str(stages), "--out", str(tmp_path / "staged")]) == 0
    staged = json.loads((tmp_path / "staged" / "dfkd_training.json").read_text())
    assert [s["steps"] for s in staged["stages"]] == [2, 3] and staged["steps"] == 5
    assert not (tmp_path / "staged.stage-1").exists()

    assert main(["distill", *common, "--max-steps", "4", "--adversarial", "--rewriter", str(tiny_rewriter_dir),
                 "--rewriter-steps", "1", "--student-steps", "2", "--out", str(tmp_path / "adv")]) == 0
    adv = json.loads((tmp_path / "adv" / "dfkd_training.json").read_text())
    assert adv["steps"] == 4 and adv["adversarial"]["rewriter_steps"] == 1
    assert _ts(tmp_path / "adv" / "adversarial")[1]["rows_by_source"]["adversarial"] > 0

    capsys.readouterr()
    rows = tmp_path / "eval.json"
    assert main(["eval", "--task", "sst2", "--data-dir", str(sst2), "--teacher", teacher, "--no-latency",
                 "--out", str(rows), str(tmp_path / "plain"), str(tmp_path / "staged")]) == 0
    table = capsys.readouterr().out
    saved = json.loads(rows.read_text())
    assert [r["model"] for r in saved] == ["teacher", str(tmp_path / "plain"), str(tmp_path / "staged")]
    assert saved[0]["agreement"] == 1.0 and saved[0]["pct_of_teacher"] == 100.0
    assert all(0 <= r["metrics"]["accuracy"] <= 1 and 0 <= r["agreement"] <= 1 for r in saved)
    assert str(tmp_path / "plain") in table and "% of teacher" in table

    preset = tmp_path / "preset.json"
    preset.write_text(json.dumps({"task": "sst2", "data_dir": str(sst2), "teacher": teacher, "student": STUDENT,
                                  "arms": ["original", "augment"], "seeds": 1, "val_size": 8, "latency": False,
                                  "arm_settings": {"augment": {"mlm": str(tiny_rewriter_dir), "word_vectors": str(glove),
                                                               "num_aug": 2, "top_k": 3, "limit": 20}},
                                  "training": {"batch_size": 8, "max_steps": 3, "max_length": 16},
                                  "out": str(tmp_path / "cmp")}))
    assert main(["compare", "--preset", str(preset)]) == 0
    res = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert res["arms"]["original"]["transfer_rows"] == 60 and res["arms"]["original"]["per_seed"][0]["steps"] == 3
    assert 20 < res["arms"]["augment"]["transfer_rows"] <= 60
    # the arms' work folders are gone once their transfer sets are saved, and the students did not re-create them
    left = sorted(p.name for p in (tmp_path / "cmp").rglob("*") if p.name.startswith(("generating-", "labelling")))
    assert left == []
    assert "| original |" in capsys.readouterr().out

    monkeypatch.setenv("DFKD_ASSETS", str(tmp_path / "assets"))
    monkeypatch.setenv("DFKD_HOME", str(tmp_path / "home"))
    assert main(["assets"]) == 0
    listing = capsys.readouterr().out
    assert "models/teacher-minilm-l6-rte" in listing and "missing (dfkd assets build)" in listing


def test_dfkd_assets_build_takes_names_or_a_task_and_skips_what_no_default_arm_needs(tmp_path, monkeypatch,
                                                                                      capsys):
    from dfkd import assets, distill, zeroshot  # noqa: F401  (register the real assets before the swap)

    built = []

    def fake(name, **kw):
        return assets.Asset(name, "test", lambda out, n=name: (built.append(n), out.mkdir(parents=True)), "", **kw)

    fakes = {"glue/X": assets.Asset("glue/X", "data"), "models/mlm": fake("models/mlm"),
             "models/t-rte": fake("models/t-rte", task="rte"), "models/t-cola": fake("models/t-cola", task="cola"),
             "models/general": fake("models/general", optional=True)}
    monkeypatch.setattr(assets.ASSETS, "_items", fakes)
    monkeypatch.setenv("DFKD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DFKD_ASSETS", str(tmp_path / "shared"))
    assert main(["assets", "build", "--task", "rte"]) == 0
    assert built == ["models/mlm", "models/t-rte"]
    assert main(["assets", "build", "models/general"]) == 0
    assert built[2:] == ["models/general"] and (tmp_path / "home" / "models" / "general").is_dir()
    assert main(["assets", "build"]) == 0
    assert built[3:] == ["models/t-cola"]  # the rest exist already
    capsys.readouterr()
    for argv, says in ((["assets", "build", "models/nope"], "unknown asset 'models/nope'"),
                       (["assets", "build", "glue/X"], "glue/X is data, not a model dfkd builds"),
                       (["assets", "build", "models/mlm", "--task", "rte"], "names or --task, not both"),
                       (["assets", "list", "models/mlm"], "go with `dfkd assets build`")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and says in err[0], err


def _asset_names(value) -> set[str]:
    """Every string in a preset's JSON that names an asset."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return set().union(*map(_asset_names, value))
    return {value} if isinstance(value, str) and value.startswith(("models/", "ood/", "glue/")) else set()


def test_dfkd_assets_in_a_fresh_process_lists_every_asset_the_presets_name(tmp_path):
    """`dfkd assets build` runs in its own process: every asset a preset names must be registered there, not only
    after some other module happened to be imported (models/student-l4-h256-general was missing once)."""
    import os
    import subprocess
    import sys

    wanted = set().union(*(_asset_names(read_json(p, expect=(dict, list))) for p in CONFIGS.rglob("*.json")))
    assert "models/student-l4-h256-general" in wanted
    wanted |= {"ood/general", "models/mlm-minilm-l6"}  # the generators' defaults, named by no preset
    env = dict(os.environ, DFKD_HOME=str(tmp_path / "home"), DFKD_ASSETS=str(tmp_path / "assets"))
    out = subprocess.run([sys.executable, "-c", "from dfkd.cli import main; raise SystemExit(main(['assets']))"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    listed = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    assert wanted <= listed, sorted(wanted - listed)


def _presets():
    return sorted(p for p in CONFIGS.rglob("*.json"))


@pytest.mark.parametrize("path", _presets(), ids=lambda p: p.name)
def test_every_preset_is_read_by_the_strict_loader_and_a_misspelt_copy_is_refused(path, tmp_path):
    from dfkd.compare import CompareConfig, make_plan
    from dfkd.distill.distiller import read_stages
    from dfkd.distill.students import check_student_spec

    data = read_json(path, expect=(dict, list))
    bad = tmp_path / path.name
    if isinstance(data, list):  # a stage schedule
        assert len(read_stages(data, path.name)) == len(data)
        data[0]["trainig"] = data[0].pop("training")
        with pytest.raises(DfkdError, match=r"\[1\]: unknown key 'trainig' \(did you mean 'training'\?\)"):
            read_stages(data, path.name)
    elif "type" in data:  # a student spec
        check_student_spec(data, path.name)
        data["num_hiden_layers" if "num_hidden_layers" in data else "hiden_size"] = 2
        with pytest.raises(DfkdError, match=r"unknown key 'num_hiden_layers|hiden_size'"):
            check_student_spec(data, path.name)
    elif isinstance(data.get("task"), dict):  # your own task: its files and teacher are the user's, not here
        from dfkd.config import from_dict
        from dfkd.tasks import CustomTask

        config = CompareConfig.from_file(path)
        from_dict(CustomTask, {k: v for k, v in config.task.items() if k != "data_dir"}, path.name)
        data["training"]["max_step"] = 5
        bad.write_text(json.dumps(data))
        with pytest.raises(DfkdError, match=r"unknown key 'max_step' \(did you mean 'max_steps'\?\)"):
            make_plan(CompareConfig.from_file(bad).replace(out=str(tmp_path / "run")))
    else:  # a compare preset: every task's config, arms and settings
        make_plan(CompareConfig.from_file(path).replace(out=str(tmp_path / "run")))
        assert not (tmp_path / "run").exists()
        data["training"]["max_step"] = 5
        bad.write_text(json.dumps(data))
        with pytest.raises(DfkdError, match=r"unknown key 'max_step' \(did you mean 'max_steps'\?\)"):
            make_plan(CompareConfig.from_file(bad).replace(out=str(tmp_path / "run")))


def test_strict_loader_names_the_key_its_place_and_a_close_match():
    from dfkd.distill.trainer import TrainingConfig

    with pytest.raises(DfkdError, match=r"^training settings: unknown key 'max_step' \(did you mean 'max_steps'\?\); "
                                        r"expected one of: batch_size, checkpoint_every"):
        TrainingConfig.from_dict({"max_step": 5})
    with pytest.raises(DfkdError, match=r"^x: max_steps must be int \| None, got \"5\"$"):
        TrainingConfig.from_dict({"max_steps": "5"}, "x")
    assert TrainingConfig.from_dict({"max_steps": 5, "learning_rate": 1}).learning_rate == 1  # an int is a float
    with pytest.raises(DfkdError, match="expected a JSON object"):
        from_dict(TrainingConfig, [1], "y")


def test_cli_config_file_typo_is_one_line(tmp_path, capsys, sst2):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"max_step": 5}')
    assert main(["distill", "--task", "sst2", str(tmp_path / "none"), "--teacher", "t", "--student", "s",
                 "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --config {cfg}: unknown key 'max_step' (did you mean 'max_steps'?); expected one of: "
                   "batch_size, checkpoint_every, ema_decay, epochs, eval_batch_size, eval_every, freeze_word_embeddings, "
                   "layer_lr_decay, learning_rate, max_grad_norm, max_length, max_steps, mixed_precision, seed, selection_source, "
                   "warmup_ratio, weight_decay"]
    assert not (tmp_path / "o").exists()


def test_cli_unknown_mixed_precision_is_one_line(tmp_path, capsys, sst2):
    assert main(["distill", "--task", "sst2", str(tmp_path / "none"), "--teacher", "t", "--student", "s",
                 "--mixed-precision", "fp8", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: mixed_precision 'fp8': expected one of no, bf16, fp16, auto"]
    assert not (tmp_path / "o").exists()


def test_compare_summary_only_of_an_unfinished_multi_task_run_is_one_line(tmp_path, capsys):
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "glue"
    assert main(["compare", "--preset", str(root / "configs" / "presets" / "glue-quick.json"), "--out", str(out),
                 "--summary-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: task cola: no results at {out / 'cola' / 'results.json'}; expected a finished run of "
                   "that task (dfkd compare --preset ... --tasks cola)"]
    assert main(["compare", "--preset", str(root / "configs" / "presets" / "sst2-quick.json"), "--summary-only"]) == 2
    assert capsys.readouterr().err.strip() == ("error: a summary needs a multi-task preset; expected a preset with "
                                               "a tasks list")
    assert not out.exists()


def test_committed_records_hold_no_machine_paths():
    """Cards, tables and notes name packages, asset names and repository-relative paths, never a machine's."""
    import re

    root = CONFIGS.parent
    pattern = re.compile(r"(/work/|/root/|/home/|/tmp/|/Users/|site-packages|[A-Z]:\\\\)")
    files = [p for p in (root / "docs").rglob("*") if p.suffix in (".json", ".md", ".txt")]
    files += [root / "README.md", *CONFIGS.rglob("*.json")]
    found = [f"{p.relative_to(root)}: {m.group(0)}" for p in files for m in [pattern.search(p.read_text())] if m]
    assert found == []


def test_a_glue_task_without_data_dir_reads_the_local_asset_and_falls_back_to_the_hub(tmp_path, monkeypatch):
    """`dfkd teacher --task sst2` offline used to go to the hub although glue/SST-2 was on disk."""
    import argparse

    from dfkd.cli.common import task_of as _task

    args = argparse.Namespace(task="sst2", data_dir=None, train_file=None, dev_file=None)
    monkeypatch.setenv("DFKD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DFKD_ASSETS", str(tmp_path / "assets"))
    assert _task(args)[1] is None  # nothing on disk: the hub (nyu-mll/glue)
    folder = write_sst2(tmp_path / "assets" / "glue" / "SST-2")
    spec, data_dir = _task(args)
    assert spec.name == "sst2" and data_dir == folder
    assert _task(argparse.Namespace(task="cola", data_dir=None, train_file=None, dev_file=None))[1] is None


def test_dfkd_teacher_fine_tunes_what_the_tasks_recipe_names_unless_base_is_given(tmp_path, monkeypatch, capsys):
    from dfkd.distill import teacher

    seen, settings = [], []

    def fake_train(spec, base, out, data_dir, config, **kwargs):
        seen.append((spec.name, base))
        settings.append((config.epochs, kwargs["val_size"], kwargs["restarts"]))
        return {"task": spec.name, "base": base, "dev_metrics": {}, "wall_seconds": 0.0}

    monkeypatch.setattr(teacher, "train_teacher", fake_train)
    monkeypatch.setenv("DFKD_ASSETS", str(tmp_path / "assets"))  # no local GLUE folders: nothing is read
    main(["teacher", "--task", "rte", "--out", str(tmp_path / "a")])
    main(["teacher", "--task", "cola", "--out", str(tmp_path / "b")])
    main(["teacher", "--task", "rte", "--base", "minilm-l6", "--restarts", "3", "--out", str(tmp_path / "c")])
    assert seen == [("rte", "models/teacher-minilm-l6-mrpc"), ("cola", "minilm-l6"), ("rte", "minilm-l6")]
    # a task of the user's own: SST-2's optimisation settings, the base encoder, a tenth of train held out
    (tmp_path / "train.csv").write_text("text,label\ngood film,pos\nbad film,neg\n")
    main(["teacher", "--task", "reviews", "--train-file", str(tmp_path / "train.csv"), "--out", str(tmp_path / "d")])
    assert seen[-1] == ("reviews", "minilm-l6")
    restarts = {t: r.restarts for t, r in teacher.TEACHER_RECIPES.items()}
    assert settings == [(4.0, 0.1, restarts["rte"]), (5.0, 0.1, restarts["cola"]), (4.0, 0.1, 3), (1.5, 0.1, 1)]
    assert teacher.TEACHER_RECIPES["mrpc"].base == "minilm-l6"  # the recipe RTE starts from starts from the encoder
