"""Losses by hand, the distiller on tiny models, round-trips, labelling resume, trainer resume."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from datasets import Dataset

from dfkd.distill.label import label_dataset, predict_logits
from dfkd.distill.losses import DistillationConfig, HardLabelLoss, LogitMSE, SoftTargetKL
from dfkd.distill.trainer import Callback, Trainer, TrainingConfig, adamw
from dfkd.errors import DfkdError
from dfkd.tasks import TaskSpec, get_task
from dfkd.transfer import load_transfer_set, save_transfer_set, validate

from conftest import toy_rows

SST2 = get_task("sst2")


def test_kd_loss_matches_hand_computed_value_with_t_squared():
    s = torch.tensor([[1.0, 0.0]])
    t = torch.tensor([[0.0, 2.0]])
    T = 2.0
    # at T=2: p_t = softmax([0, 1]), p_s = softmax([0.5, 0])
    pt = [1 / (1 + math.e), math.e / (1 + math.e)]
    ps = [math.exp(0.5) / (math.exp(0.5) + 1), 1 / (math.exp(0.5) + 1)]
    kl = sum(a * math.log(a / b) for a, b in zip(pt, ps))
    got = SoftTargetKL(T)({"logits": s}, {"logits": t}, {})
    assert float(got) == pytest.approx(kl * T * T, rel=1e-6)
    # T² scaling: the same KL at T=1 is not multiplied by anything
    pt1 = torch.softmax(t, -1)[0].tolist()
    ps1 = torch.softmax(s, -1)[0].tolist()
    kl1 = sum(a * math.log(a / b) for a, b in zip(pt1, ps1))
    assert float(SoftTargetKL(1.0)({"logits": s}, {"logits": t}, {})) == pytest.approx(kl1, rel=1e-6)


def test_kd_loss_batch_mean_and_zero_when_equal():
    s = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    assert float(SoftTargetKL(3.0)({"logits": s}, {"logits": s.clone()}, {})) == pytest.approx(0.0, abs=1e-7)
    one = SoftTargetKL(1.0)({"logits": s[:1]}, {"logits": s[1:]}, {})
    both = SoftTargetKL(1.0)({"logits": s}, {"logits": torch.stack([s[1], s[1]])}, {})
    assert float(both) == pytest.approx(float(one) / 2)  # second row contributes 0, mean over 2 rows


def test_logit_mse_and_regression_fallback():
    s = torch.tensor([[1.0, -1.0], [0.0, 2.0]])
    t = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    # ((1)² + (−2)² + 0 + 2²) / 4 = 9/4
    assert float(LogitMSE()({"logits": s}, {"logits": t}, {})) == pytest.approx(2.25)
    r_s, r_t = torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [1.0]])
    assert float(SoftTargetKL(4.0)({"logits": r_s}, {"logits": r_t}, {})) == pytest.approx((1 + 4) / 2)


def test_hard_label_loss_ignores_unlabelled_rows():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [5.0, -5.0]])
    labels = torch.tensor([0, -1, 1])
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(10))) / 2
    assert float(HardLabelLoss()({"logits": logits}, {}, {"labels": labels})) == pytest.approx(expected, rel=1e-5)
    assert float(HardLabelLoss()({"logits": logits}, {}, {"labels": torch.tensor([-1, -1, -1])})) == 0.0


def test_recipe_weights_sum():
    s, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    recipe = DistillationConfig(temperature=1.0, kd_weight=0.5, mse_weight=2.0, ce_weight=1.0).build()
    total, parts = recipe({"logits": s}, {"logits": t}, {"labels": torch.tensor([1])})
    assert set(parts) == {"kd", "logit_mse", "ce"}
    assert float(total) == pytest.approx(0.5 * parts["kd"] + 2.0 * parts["logit_mse"] + parts["ce"], rel=1e-6)
    with pytest.raises(DfkdError, match="loss recipe is empty"):
        DistillationConfig(kd_weight=0).build()


def _labelled_toy(n: int, seed: int = 0) -> Dataset:
    """A transfer set whose fixed teacher is clearly non-uniform: ±3 logits by the sentiment word."""
    rows = toy_rows(n, seed)
    return Dataset.from_dict({"text": [t for t, _ in rows], "source": ["original"] * n,
                              "label": [y for _, y in rows],
                              "teacher_logits": [[-3.0, 3.0] if y else [3.0, -3.0] for _, y in rows]})


def test_adamw_uses_the_fused_kernel_on_cpu_with_the_reference_update():
    torch.manual_seed(0)

    def groups(ps):  # as the Trainer builds them: weight decay on matrices only
        return [{"params": ps[:1], "weight_decay": 0.01}, {"params": ps[1:], "weight_decay": 0.0}]

    fused_params = [torch.nn.Parameter(torch.randn(50, 8)), torch.nn.Parameter(torch.randn(8))]
    loop_params = [torch.nn.Parameter(p.detach().clone()) for p in fused_params]
    start = [p.detach().clone() for p in fused_params]
    fused = adamw(groups(fused_params), lr=1e-2)
    loop = torch.optim.AdamW(groups(loop_params), lr=1e-2, foreach=False)  # the per-tensor reference loop
    assert fused.defaults["fused"] is True
    for _ in range(5):
        grads = [torch.randn_like(p) for p in fused_params]
        for params, opt in ((fused_params, fused), (loop_params, loop)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            opt.step()
    for a, b, a0 in zip(fused_params, loop_params, start):
        assert (a - a0).abs().mean() > 5e-3  # the weights moved (5 steps of about lr = 1e-2 each)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_layer_lr_decay_gives_each_depth_its_learning_rate(tmp_path):
    from transformers import BertForSequenceClassification

    from conftest import tiny_bert_config

    model = BertForSequenceClassification(tiny_bert_config(100))  # 2 encoder layers
    lr, decay = 0.1, 0.5

    def lr_and_wd_of(config):
        trainer = Trainer(model, None, SST2, config, DistillationConfig(kd_weight=0.0, ce_weight=1.0),
                          selection="label", out_dir=tmp_path / "t")
        groups = trainer.param_groups()
        by_id = {id(p): (g.get("lr", config.learning_rate), g["weight_decay"]) for g in groups for p in g["params"]}
        return groups, {name: by_id[id(p)] for name, p in model.named_parameters()}

    groups, got = lr_and_wd_of(TrainingConfig(learning_rate=lr, layer_lr_decay=decay, weight_decay=0.01))
    # Sun et al. (2019) eq. 4 with L = 2: head lr, layer 2 (index 1) lr/2, layer 1 lr/4, embeddings lr/8
    assert got["classifier.weight"] == (lr, 0.01) and got["bert.pooler.dense.bias"] == (lr, 0.0)
    assert got["bert.encoder.layer.1.attention.self.query.weight"] == (pytest.approx(0.05), 0.01)
    assert got["bert.encoder.layer.0.output.LayerNorm.weight"] == (pytest.approx(0.025), 0.0)
    assert got["bert.embeddings.word_embeddings.weight"] == (pytest.approx(0.0125), 0.01)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    # no decay: the two usual groups (weight decay on matrices only), every parameter at the one lr
    groups, got = lr_and_wd_of(TrainingConfig(learning_rate=lr, weight_decay=0.01))
    assert len(groups) == 2 and {v[0] for v in got.values()} == {lr}
    with pytest.raises(DfkdError, match=r"layer_lr_decay 1.5: expected a factor in \(0, 1\]"):
        lr_and_wd_of(TrainingConfig(layer_lr_decay=1.5))


@pytest.mark.slow
def test_distiller_makes_tiny_student_match_teacher(tmp_path, tiny_teacher_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from dfkd.distill.distiller import distill

    spec = {"type": "config", "num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
            "intermediate_size": 64}
    cfg = TrainingConfig(batch_size=16, epochs=6, learning_rate=3e-3, warmup_ratio=0.05, max_length=16,
                         checkpoint_every=0, seed=0)
    summary = distill(_labelled_toy(400), "sst2", str(tiny_teacher_dir), spec, tmp_path / "student", cfg,
                      DistillationConfig(temperature=2.0), val_size=40)
    assert summary["best_val"] >= 0.95
    # round trip: the output loads with the Auto class and reproduces the teacher's decisions on new rows
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "student")
    tok = AutoTokenizer.from_pretrained(tmp_path / "student")
    test = _labelled_toy(100, seed=7)
    logits = predict_logits(model, tok, test)
    assert (logits.argmax(-1) == np.asarray(test["label"])).mean() >= 0.9
    assert model.config.num_hidden_layers == 1 and model.config.id2label[1] == "positive"


def test_selection_on_original_rows_trains_without_their_variants(tmp_path, tiny_teacher_dir):
    from dfkd.distill.distiller import distill

    base = _labelled_toy(20)  # 20 task rows, each followed by 2 variants, as augment_dataset writes them
    ds = Dataset.from_dict({c: [v for v in base[c] for _ in range(3)] for c in base.column_names})
    ds = ds.remove_columns("source").add_column("source", ["original", "augment", "augment"] * 20)
    ds = ds.add_column("origin", [i for i in range(20) for _ in range(3)])
    spec = {"type": "config", "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2,
            "intermediate_size": 32}
    cfg = TrainingConfig(batch_size=2, epochs=1, max_length=16, checkpoint_every=0, selection_source="original")
    summary = distill(ds, "sst2", str(tiny_teacher_dir), spec, tmp_path / "a", cfg, val_size=2)
    assert summary["steps"] == (60 - 2 * 3) // 2  # 2 task rows held out, with their 4 variants
    plain = distill(ds, "sst2", str(tiny_teacher_dir), spec, tmp_path / "b", replace(cfg, selection_source=None),
                    val_size=2)
    assert plain["steps"] == (60 - 2) // 2
    with pytest.raises(DfkdError, match="^no row has source 'ood' to hold out"):
        distill(ds, "sst2", str(tiny_teacher_dir), spec, tmp_path / "c", replace(cfg, selection_source="ood"), val_size=2)


def test_transfer_set_round_trip_and_validation(tmp_path):
    ds = _labelled_toy(10)
    save_transfer_set(ds, tmp_path / "ts", {"generator": "original", "seed": 3})
    back, card = load_transfer_set(tmp_path / "ts")
    assert back.to_dict() == ds.to_dict()
    assert card["rows"] == 10 and card["rows_by_source"] == {"original": 10} and card["seed"] == 3
    assert not (tmp_path / "ts.saving").exists()
    validate(back, SST2)
    with pytest.raises(DfkdError, match="lacks column"):
        validate(back.remove_columns("teacher_logits"), SST2)
    with pytest.raises(DfkdError, match=r"unexpected column\(s\) \['idx'\]"):
        validate(back.add_column("idx", list(range(10))), SST2)
    with pytest.raises(DfkdError, match="needs text_pair"):
        validate(back, get_task("rte"))
    with pytest.raises(DfkdError, match="has 3 label"):
        validate(back, TaskSpec("three", ("a", "b", "c"), ("accuracy",), "accuracy"))
    with pytest.raises(DfkdError, match="is not a transfer set"):
        load_transfer_set(tmp_path / "nothing")


def test_labelling_ignores_unknown_labels_of_augmented_regression_rows(tmp_path, tiny_tokenizer_dir):
    """Augmented STS-B rows carry NaN labels; labelling them once crashed ("cannot be converted to int64")."""
    from datasets import Dataset
    from transformers import AutoTokenizer, BertForSequenceClassification

    from conftest import tiny_bert_config

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    model = BertForSequenceClassification(tiny_bert_config(len(tok), num_labels=1, problem_type="regression"))
    texts = ["the good film", "a dull plot", "the story was nice"]
    rows = Dataset.from_dict({"text": texts, "text_pair": texts[::-1], "label": [3.2, float("nan"), float("nan")]})
    logits = np.asarray(label_dataset(rows, model, tok, tmp_path / "w")["teacher_logits"])
    alone = predict_logits(model, tok, rows.remove_columns("label"))
    assert logits.shape == (3, 1) and np.isfinite(logits).all()
    np.testing.assert_allclose(logits, alone, rtol=1e-5, atol=1e-6)


def test_label_resume_reuses_finished_shards(tmp_path, tiny_teacher_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_teacher_dir)
    tok = AutoTokenizer.from_pretrained(tiny_teacher_dir)
    ds = _labelled_toy(25).remove_columns("teacher_logits")
    full = label_dataset(ds, model, tok, tmp_path / "a", shard_size=10)
    expected = np.asarray(full["teacher_logits"])
    assert expected.shape == (25, 2) and np.abs(expected).max() > 0.5  # non-trivial logits
    np.testing.assert_allclose(expected, predict_logits(model, tok, ds), rtol=1e-5, atol=1e-5)
    # an "interrupted" run left shard 1 behind, with a marker value: it must be reused, not recomputed
    work = tmp_path / "b"
    work.mkdir()
    np.save(work / "logits-00001.npy", np.full((10, 2), 7.0, np.float32))
    resumed = np.asarray(label_dataset(ds, model, tok, work, shard_size=10)["teacher_logits"])
    assert resumed.shape == (25, 2)
    assert (resumed[10:20] == 7.0).all()
    np.testing.assert_allclose(resumed[:10], expected[:10], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(resumed[20:], expected[20:], rtol=1e-5, atol=1e-5)


class _StopAt(Callback):
    """Records the steps it sees and raises KeyboardInterrupt at ``step`` (an interruption)."""

    def __init__(self, step=None):
        self.step, self.seen = step, []

    def on_step_end(self, trainer, step, examples, loss, parts):
        self.seen.append(step)
        if step == self.step:
            raise KeyboardInterrupt


class _Record(Callback):
    """Records every step's loss and every evaluation's score, as the callbacks see them."""

    def __init__(self):
        self.losses, self.evals = [], []

    def on_step_end(self, trainer, step, examples, loss, parts):
        self.losses.append(loss)

    def on_evaluate(self, trainer, step, score, best):
        self.evals.append((step, score))


def _toy_trainer(teacher_dir, out, cfg: TrainingConfig, selection: str = "teacher", callbacks=(), **student):
    """A Trainer of a 1-layer student (built from the tiny teacher; ``student``: more config fields) on SST-2."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from dfkd.distill.students import build_student

    tok = AutoTokenizer.from_pretrained(teacher_dir)
    teacher = AutoModelForSequenceClassification.from_pretrained(teacher_dir)
    spec = {"type": "config", "num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2,
            "intermediate_size": 64, **student}
    return Trainer(build_student(teacher, spec), tok, SST2, cfg, DistillationConfig(), selection, out, list(callbacks))


class _Weights(Callback):
    """Copies the live weights after every step."""

    def __init__(self):
        self.after_step = []

    def on_step_end(self, trainer, step, examples, loss, parts):
        model = trainer.accelerator.unwrap_model(trainer.model)
        self.after_step.append({k: v.detach().clone() for k, v in model.named_parameters()})


def test_ema_decay_saves_the_moving_average_of_the_weights_and_keeps_training_the_live_ones(tmp_path,
                                                                                          tiny_teacher_dir):
    from transformers import AutoModelForSequenceClassification

    ds = _labelled_toy(110)
    # 10 steps per epoch, a budget of 3: one evaluation, at step 3; "last" keeps (and saves) what it scored
    cfg = TrainingConfig(batch_size=10, max_steps=3, learning_rate=1e-2, max_length=16, checkpoint_every=0,
                         ema_decay=0.25, seed=0)
    weights = _Weights()
    trainer = _toy_trainer(tiny_teacher_dir, tmp_path / "s", cfg, "last", [weights])
    trainer.fit(ds.select(range(100)), ds.select(range(100, 110)))
    w1, w2, w3 = weights.after_step
    saved = dict(AutoModelForSequenceClassification.from_pretrained(tmp_path / "s").named_parameters())
    live = dict(trainer.accelerator.unwrap_model(trainer.model).named_parameters())
    moved = 0
    for name, last in w3.items():
        # by hand: the first step copies the weights, then avg <- d * avg + (1 - d) * weights with d = 0.25
        expected = 0.25 * (0.25 * w1[name] + 0.75 * w2[name]) + 0.75 * last
        torch.testing.assert_close(saved[name], expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(live[name].detach(), last)  # evaluation swapped the live weights back
        moved += not torch.allclose(expected, last)
    assert moved > 0  # the average differs from the last weights, so the check above tells them apart
    with pytest.raises(DfkdError, match="ema_decay 1.0: expected a factor in \\[0, 1\\)"):
        TrainingConfig(ema_decay=1.0)


def test_trainer_history_has_each_evaluation_with_the_mean_loss_since_the_last(tmp_path, tiny_teacher_dir):
    ds = _labelled_toy(120)
    # 10 steps per epoch; evaluations at steps 4, 8 (eval_every), 10 (epoch end), 12 (budget)
    cfg = TrainingConfig(batch_size=10, max_steps=12, learning_rate=1e-3, max_length=16, eval_every=4,
                         checkpoint_every=0, seed=0)
    rec = _Record()
    summary = _toy_trainer(tiny_teacher_dir, tmp_path / "s", cfg, callbacks=[rec]).fit(ds.select(range(100)), ds.select(range(100, 120)))
    history = summary["history"]
    assert [h["step"] for h in history] == [4, 8, 10, 12]
    windows = [rec.losses[0:4], rec.losses[4:8], rec.losses[8:10], rec.losses[10:12]]
    for h, w, (step, score) in zip(history, windows, rec.evals, strict=True):
        assert h["train_loss"] == pytest.approx(sum(w) / len(w), rel=1e-6)
        assert (h["step"], h["val"]) == (step, score)
    saved = json.loads((tmp_path / "s" / "dfkd_training.json").read_text())
    assert saved["history"] == history


def test_finished_run_conflict_names_each_changed_setting_from_the_saved_summary_alone(tmp_path):
    from dataclasses import asdict

    from dfkd.distill.distiller import Stage, finished_run_conflict

    config, losses = TrainingConfig(max_steps=300, seed=1), DistillationConfig(temperature=2.0)
    assert finished_run_conflict(tmp_path, config, losses) is None  # no finished run: nothing to refuse
    saved = {"config": asdict(config), "losses": asdict(losses), "steps": 300}
    del saved["config"]["ema_decay"]  # recorded by an older dfkd: the field's default counts as the same
    (tmp_path / "dfkd_training.json").write_text(json.dumps(saved))
    assert finished_run_conflict(tmp_path, config, losses) is None
    assert finished_run_conflict(tmp_path, replace(config, max_steps=200), replace(losses, temperature=1.0)) == \
        "holds a finished run with other settings (max_steps 300 -> 200, temperature 2.0 -> 1.0)"
    # a one-stage schedule's overrides are the run's settings; a run of several stages is compared by schedule
    assert finished_run_conflict(tmp_path, replace(config, max_steps=9), losses,
                                 [Stage(training={"max_steps": 300})]) is None
    assert finished_run_conflict(tmp_path, config, losses, [{"training": {"max_steps": 2}}, {}]) == \
        "holds a finished run with another stage schedule"


@pytest.mark.slow
@pytest.mark.parametrize("ema_decay", [0.0, 0.8])
def test_trainer_resume_gives_the_same_model_as_an_uninterrupted_run(tmp_path, tiny_teacher_dir, ema_decay):
    from transformers import AutoModelForSequenceClassification

    ds = _labelled_toy(220)
    train, val = ds.select(range(200)), ds.select(range(200, 220))
    # one epoch of 20 steps, validated only at its end: the output is the step-20 weights
    cfg = TrainingConfig(batch_size=10, max_steps=20, learning_rate=1e-3, max_length=16, checkpoint_every=4,
                         eval_every=0, ema_decay=ema_decay, seed=0)

    def run(out, callbacks=()):
        torch.manual_seed(123)
        return _toy_trainer(tiny_teacher_dir, out, cfg, callbacks=callbacks, hidden_dropout_prob=0.2).fit(train, val)

    straight = run(tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed", [_StopAt(14)])  # last checkpoint at step 12, mid-epoch: steps 13-14 redone
    assert not (tmp_path / "resumed").exists() and (tmp_path / "resumed.partial" / "checkpoint").exists()
    second = _StopAt()
    summary = run(tmp_path / "resumed", [second])
    assert second.seen == list(range(13, 21))  # resumed, not restarted
    assert summary["steps"] == 20 and not (tmp_path / "resumed.partial").exists()
    # the mean loss of the one evaluation covers steps 1-20 across the interruption, as without it
    assert [h["step"] for h in summary["history"]] == [20]
    assert summary["history"][0]["train_loss"] == pytest.approx(straight["history"][0]["train_loss"], rel=1e-5)
    # a run saved by a dfkd without a newer field (ema_decay) is the same run when that field is at its default
    summary_file = tmp_path / "straight" / "dfkd_training.json"
    saved = json.loads(summary_file.read_text())
    del saved["config"]["ema_decay"]
    summary_file.write_text(json.dumps(saved))
    if ema_decay:
        with pytest.raises(DfkdError, match="holds a finished run with other settings"):
            run(tmp_path / "straight")
    else:
        assert run(tmp_path / "straight")["steps"] == 20
    cfg = replace(cfg, learning_rate=2e-3)  # same folder, other settings: refuse rather than reuse
    with pytest.raises(DfkdError, match="holds a finished run with other settings"):
        run(tmp_path / "straight")
    a = AutoModelForSequenceClassification.from_pretrained(tmp_path / "straight").state_dict()
    b = AutoModelForSequenceClassification.from_pretrained(tmp_path / "resumed").state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_students_from_teacher_layers_and_mismatch_errors(tiny_teacher_dir):
    from transformers import AutoModelForSequenceClassification

    from dfkd.distill.students import build_student, check_compatible

    teacher = AutoModelForSequenceClassification.from_pretrained(tiny_teacher_dir)
    student = build_student(teacher, {"type": "teacher_layers", "layers": [1]})
    assert student.config.num_hidden_layers == 1
    torch.testing.assert_close(student.bert.encoder.layer[0].output.dense.weight,
                               teacher.bert.encoder.layer[1].output.dense.weight)
    with pytest.raises(DfkdError, match="out of range; the teacher has layers 0..1"):
        build_student(teacher, {"type": "teacher_layers", "layers": [0, 5]})
    with pytest.raises(DfkdError, match="unknown student type 'lstm'"):
        build_student(teacher, {"type": "lstm"})
    other = build_student(teacher, {"type": "config", "hidden_size": 32, "num_attention_heads": 2})
    other.config.num_labels = 3
    with pytest.raises(DfkdError, match="num_labels=3 differs"):
        check_compatible(teacher, other)


class _LinearDtypes(Callback):
    """Records the dtype of every student Linear output during the first training step."""

    def __init__(self):
        self.dtypes, self.handles = set(), []

    def on_train_begin(self, trainer, total_steps, done_steps):
        model = trainer.accelerator.unwrap_model(trainer.model)
        self.handles = [m.register_forward_hook(lambda mod, inp, out: self.dtypes.add(out.dtype))
                        for m in model.modules() if isinstance(m, torch.nn.Linear)]

    def on_step_end(self, trainer, step, examples, loss, parts):
        for h in self.handles:
            h.remove()
        self.handles = []


def test_mixed_precision_bf16_autocasts_the_forward_and_keeps_float32_weights_and_losses(tmp_path, tiny_teacher_dir,
                                                                                       monkeypatch):
    from transformers import AutoModelForSequenceClassification

    from dfkd.distill import settings as trainer_module  # make_accelerator and native_cpu_bf16 live there

    ds = _labelled_toy(110)
    cfg = TrainingConfig(batch_size=10, max_steps=20, learning_rate=1e-2, max_length=16, checkpoint_every=0,
                         eval_every=10, mixed_precision="bf16", seed=0)
    seen, rec = _LinearDtypes(), _Record()
    monkeypatch.setattr(trainer_module, "native_cpu_bf16", lambda: True)
    trainer = _toy_trainer(tiny_teacher_dir, tmp_path / "bf16", cfg, "teacher", [seen, rec])
    forward, logits_dtypes = trainer.forward_outputs, set()

    def recorded(batch):
        student, teacher = forward(batch)
        logits_dtypes.add(student["logits"].dtype)
        return student, teacher

    trainer.forward_outputs = recorded
    summary = trainer.fit(ds.select(range(100)), ds.select(range(100, 110)))
    assert seen.dtypes == {torch.bfloat16}  # every matrix product of the student ran in bfloat16
    assert logits_dtypes == {torch.float32}  # what the loss recipe reads
    assert summary["config"]["mixed_precision"] == "bf16"
    saved = AutoModelForSequenceClassification.from_pretrained(tmp_path / "bf16")
    assert {p.dtype for p in saved.parameters()} == {torch.float32}
    # float32 from the same seed and batches: the first step (same initial weights) scores the same loss up to
    # bfloat16's rounding (8 bits of mantissa: ~0.4% per product), not bit for bit; the saved models differ
    plain_losses = _Record()
    plain = _toy_trainer(tiny_teacher_dir, tmp_path / "fp32", replace(cfg, mixed_precision="no"),
                         callbacks=[plain_losses])
    plain.fit(ds.select(range(100)), ds.select(range(100, 110)))
    assert rec.losses[0] != plain_losses.losses[0]
    assert rec.losses[0] == pytest.approx(plain_losses.losses[0], rel=2e-2)
    a = AutoModelForSequenceClassification.from_pretrained(tmp_path / "fp32").state_dict()
    b = saved.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)

    with pytest.raises(DfkdError, match="mixed_precision .fp8.: expected one of no, bf16, fp16, auto"):
        TrainingConfig(mixed_precision="fp8")
    monkeypatch.setattr(trainer_module, "native_cpu_bf16", lambda: False)
    with pytest.warns(UserWarning, match="no native bfloat16"):
        trainer_module.make_accelerator("bf16")
    # "auto": bfloat16 only where it is fast (no GPU here: the CPU's native support decides)
    if not torch.cuda.is_available():
        assert trainer_module.make_accelerator("auto").mixed_precision == "no"
        monkeypatch.setattr(trainer_module, "native_cpu_bf16", lambda: True)
        assert trainer_module.make_accelerator("auto").mixed_precision == "bf16"


def test_progress_bar_shows_val_scores_only_when_the_selection_scores_something():
    from types import SimpleNamespace

    from dfkd.distill.callbacks import ProgressBar

    class _Bar:
        def __init__(self):
            self.postfix = None

        def set_postfix(self, **fields):
            self.postfix = fields

    progress = ProgressBar()
    progress.bar, progress.loss = _Bar(), 0.25
    progress.on_evaluate(SimpleNamespace(selection="last"), 10, 0.0, 0.0)  # "last" scores every evaluation 0.0
    assert progress.bar.postfix is None
    progress.on_evaluate(SimpleNamespace(selection="teacher"), 20, 0.75, 0.8)
    assert progress.bar.postfix == {"loss": "0.2500", "val": "0.7500", "best": "0.8000"}
