"""The library's surface: every preset described and strict, every flag with help, ``dfkd list`` from the
registries, ``compare --dry-run`` writing nothing, and every value ``distill`` would reject refused by
``compare`` before any transfer set is built."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dfkd.cli import build_parser, main
from dfkd.compare import CompareConfig, make_plan, set_value
from dfkd.errors import DfkdError

from conftest import write_sst2

PRESETS = Path(__file__).resolve().parent.parent / "configs" / "presets"


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.json")), ids=lambda p: p.stem)
def test_every_preset_has_a_description_and_loads_strictly(path):
    config = CompareConfig.from_file(path)
    assert config.description and len(config.description) > 20, f"{path.name}: no description"
    assert config.task_configs()


def _subparsers(parser):
    import argparse

    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_flag_of_every_command_has_help():
    missing = []
    for name, sub in _subparsers(build_parser()).items():
        for action in sub._actions:
            if action.dest != "help" and not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_help_shows_the_true_defaults_of_the_settings_dataclasses():
    from dfkd.distill.teacher import DEFAULT_TEACHER_CONFIG
    from dfkd.distill.trainer import TrainingConfig

    subs = _subparsers(build_parser())

    def help_of(command, flag):
        return next(a.help for a in subs[command]._actions if flag in a.option_strings)

    assert help_of("teacher", "--learning-rate").endswith(f"(default: {DEFAULT_TEACHER_CONFIG.learning_rate})")
    assert help_of("teacher", "--seed").endswith(f"(default: {DEFAULT_TEACHER_CONFIG.seed})")
    assert help_of("distill", "--learning-rate").endswith(f"(default: {TrainingConfig().learning_rate})")
    assert help_of("augment", "--num-aug").endswith("(default: 20)")  # the augmenter's own default
    assert help_of("ood", "--selection-order").endswith("(default: uncertain)")


@pytest.mark.parametrize("kind", ["generators", "arms", "students", "losses", "strategies", "tasks", "assets",
                                  "presets"])
def test_dfkd_list_prints_what_the_registries_hold(kind, capsys):
    from dfkd.assets import ASSETS
    from dfkd.compare.config import arm_names, list_presets
    from dfkd.distill.losses import LOSSES
    from dfkd.distill.students import STUDENTS
    from dfkd.distill.trainer import STRATEGIES
    from dfkd.tasks import TASKS
    from dfkd.transfer import GENERATORS

    assert main(["list", kind]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    expected = {"generators": GENERATORS.names(), "arms": arm_names(), "students": STUDENTS.names(),
                "losses": LOSSES.names(), "strategies": STRATEGIES.names(), "tasks": TASKS.names(),
                "assets": ASSETS.names(), "presets": list_presets()}[kind]
    assert names == list(expected) and names
    if kind == "presets":
        assert "glue-quick" in names


def test_a_preset_is_found_by_name(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["compare", "--preset", "sst2-quick", "--out", str(out), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["name"] == "sst2-quick" and plan["tasks"][0]["rows"]["original"]["training"]["max_steps"] == 1100
    assert main(["compare", "--preset", "sst2-quik"]) == 2
    assert "preset 'sst2-quik' not found (did you mean 'sst2-quick'?)" in capsys.readouterr().err


def test_dry_run_prints_the_resolved_plan_and_writes_nothing(tmp_path, tiny_teacher_dir, capsys):
    data = write_sst2(tmp_path / "SST-2")
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({"task": "sst2", "data_dir": str(data), "teacher": str(tiny_teacher_dir),
                                  "arms": ["original", "ood"], "training": {"max_steps": 7},
                                  "student": {"type": "teacher_pruned", "num_hidden_layers": 1, "hidden_size": 16,
                                              "num_attention_heads": 1, "intermediate_size": 32}}))
    out = tmp_path / "run"
    assert main(["compare", "--preset", str(preset), "--out", str(out), "--set", "training.max_steps=9",
                 "--set", "seeds=2", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    task = plan["tasks"][0]
    assert task["seeds"] == 2 and task["teacher_shape"]["hidden_size"] == 32
    assert {r: v["training"]["max_steps"] for r, v in task["rows"].items()} == {"original": 9, "ood": 9}
    assert task["rows"]["ood"]["generators"] == [["ood", {}]] and task["rows"]["original"]["transfer_set"] == "original"
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["SST-2", "p.json"]


def test_set_reaches_inside_and_a_typo_suggests_the_right_key():
    config = set_value(CompareConfig(), "training.max_steps=300")
    assert config.training == {"max_steps": 300}
    config = set_value(config, "arm_settings.ood.size=50")
    assert config.arm_settings == {"ood": {"size": 50}}
    with pytest.raises(DfkdError, match=r"--set max_step: unknown key 'max_step' \(did you mean 'training.max_steps'\?\)"):
        set_value(config, "max_step=3")
    with pytest.raises(DfkdError, match=r"--set seed: unknown key 'seed' \(did you mean 'seeds'\?\)"):
        set_value(config, "seed=3")
    # a key inside a section is checked when the plan reads it, still before any work
    with pytest.raises(DfkdError, match=r"unknown key 'max_step' \(did you mean 'max_steps'\?\)"):
        make_plan(set_value(config, "training.max_step=3"))


BAD_VALUES = [
    ({"student": {"type": "teacher_pruned", "num_hidden_layers": 1, "hidden_size": 64, "num_attention_heads": 1,
                  "intermediate_size": 32}}, r"task sst2: arm 'original': student: hidden_size=64; expected 1..32"),
    ({"student": {"type": "teacher_pruned", "num_hidden_layers": 1, "hidden_size": 15, "num_attention_heads": 2,
                  "intermediate_size": 32}}, r"hidden_size 15 must be divisible by num_attention_heads 2"),
    ({"student": {"type": "gradual_pruned", "num_hidden_layers": 3, "hidden_size": 16, "num_attention_heads": 1,
                  "intermediate_size": 32}}, r"pruning step 2\): num_hidden_layers=3; expected 1..2"),
    ({"student": {"type": "teacher_layers", "layers": [0, 5]}}, r"teacher_layers \[0, 5\] out of range"),
    ({"losses": {"temperature": -1}}, r"losses: temperature -1; expected a number > 0"),
    ({"losses": {"kd_weight": -0.5}}, r"losses: kd_weight -0.5; expected a weight >= 0"),
    ({"losses": {"kd_weight": 0}}, r"the loss recipe is empty"),
    ({"losses": {"extra": [{"name": "hiden_mse"}]}}, r"unknown loss 'hiden_mse'"),
    ({"losses": {"extra": [{"name": "hidden_mse", "mapin": "last"}]}}, r"unknown key 'mapin' \(did you mean 'mapping'\?\)"),
    ({"strategies": {"adversarial": {"mask_prb": 0.2}}, "arms": ["ood+adversarial"]}, r"unknown key 'mask_prb'"),
    ({"training": {"max_steps": 0}}, r"training: max_steps 0; expected at least 1"),
    ({"variants": {"v": {"losses": {"temperature": 0}}}}, r"variant 'v' losses: temperature 0"),
    ({"stages": [{"training": {"max_steps": 0}}]}, r"stages\[1\]: max_steps 0"),
]


@pytest.mark.parametrize("change, message", BAD_VALUES, ids=[m[:30] for _, m in BAD_VALUES])
def test_values_distill_rejects_are_refused_before_any_transfer_set(change, message, tmp_path, tiny_teacher_dir,
                                                                     monkeypatch, capsys):
    import dfkd.distill.label as label

    built = []
    monkeypatch.setattr(label, "make_transfer_set", lambda *a, **k: built.append(1))
    data = write_sst2(tmp_path / "SST-2")
    base = {"task": "sst2", "data_dir": str(data), "teacher": str(tiny_teacher_dir), "arms": ["original"],
            "student": {"type": "config", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
                        "intermediate_size": 32}, "training": {"max_steps": 2}, "out": str(tmp_path / "run")}
    preset = tmp_path / "p.json"
    preset.write_text(json.dumps({**base, **change}))
    assert main(["compare", "--preset", str(preset)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    import re

    assert re.search(message, err[0]), err[0]
    assert not (tmp_path / "run").exists() and built == []
