"""The common training loop: teacher fine-tuning and student distillation both run through :class:`Trainer`.

* Device and processes come from Hugging Face ``accelerate`` (``Accelerator()`` auto-detects CPU/GPU;
  ``accelerate launch`` scales out with torch DDP underneath). No global state, no hard-coded device.
* AdamW (no weight decay on biases and LayerNorm; torch's fused kernel where the device has one, see
  :func:`adamw`) with linear warm-up and linear decay (``transformers.get_linear_schedule_with_warmup``).
* Model selection on a validation slice held out from the training data — never the GLUE dev set —
  by teacher agreement (distillation) or by the task's main metric against gold labels (teacher training).
  With ``ema_decay`` the scored and saved weights are an exponential moving average of the live ones.
* Resumable: every ``checkpoint_every`` steps the model, optimizer, scheduler and RNG states
  (``accelerator.save_state``) and the loop position go to a work folder next to the output; re-running the
  same command continues from there. The output folder appears only when training is complete
  (written to a temporary folder, then renamed).
* Side concerns are callbacks (:class:`Callback`): the tqdm progress bar shows loss and examples/s.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import set_seed
from datasets import Dataset
from transformers import get_linear_schedule_with_warmup

from ..config import from_dict
from ..errors import DfkdError
from ..files import atomic_dir
from ..metrics import agreement, compute_metrics, predictions
from ..registry import Registry
from ..tasks import TaskSpec
from .callbacks import Callback, ProgressBar
from .data import accepted_inputs, encode, loader
from .label import predict_logits
from .losses import DistillationConfig
from .settings import (  # noqa: F401  (the settings' names are dfkd.distill.trainer's too)
    MIXED_PRECISION,
    TrainingConfig,
    adamw,
    bf16_is_fast,
    layer_depth,
    make_accelerator,
    native_cpu_bf16,
)


class Trainer:
    """Trains a sequence classifier on a (transfer) set with a loss recipe and keeps the best model.

    Args:
        model: a ``transformers`` sequence-classification model (or any module returning ``.logits``
            ``(B, num_labels)`` from ``input_ids``/``attention_mask``/``token_type_ids``).
        tokenizer: its tokenizer; saved with the model.
        task: label space and metrics (``None`` for a model that is not a classifier, e.g. the masked LM of
            :class:`dfkd.distill.mlm.MaskedLMTrainer`, which overrides the hooks that use it).
        config: optimisation settings.
        losses: loss recipe; ``teacher_logits`` must be in the data when it needs them (``None``: the subclass's
            :meth:`training_step` computes its own loss).
        selection: ``"teacher"`` (agreement with ``teacher_logits`` on the validation slice),
            ``"label"`` (the task's main metric against ``label``) or ``"last"`` (keep the final weights, e.g.
            for an intermediate-layer stage whose logits are not trained yet).
        out_dir: final checkpoint folder; the work folder for resuming is ``<out_dir>.partial``.
        callbacks: extra :class:`Callback` objects; a :class:`ProgressBar` is always added.
    """

    def __init__(self, model, tokenizer, task: TaskSpec | None, config: TrainingConfig,
                 losses: DistillationConfig | None,
                 selection: str, out_dir: str | Path, callbacks: list[Callback] | None = None,
                 desc: str = "training", teacher=None):
        if selection not in ("teacher", "label", "last"):
            raise ValueError(f"selection must be 'teacher', 'label' or 'last', got {selection!r}")
        self.model, self.tokenizer, self.task = model, tokenizer, task
        self.config, self.losses, self.selection = config, losses, selection
        self.out_dir = Path(out_dir)
        self.work_dir = self.out_dir.with_name(self.out_dir.name + ".partial")
        self.callbacks = [ProgressBar(desc), *(callbacks or [])]
        self.accelerator = make_accelerator(config.mixed_precision)
        self.teacher = teacher
        self.average = None  # torch AveragedModel of the weights when config.ema_decay > 0 (set up in fit)
        #: seconds the caller spent preparing this run (loading the teacher, building the student); :meth:`fit`
        #: adds its own set-up (tokenising, building the loader and optimizer) and reports the sum
        self.setup_seconds = 0.0
        self.recipe = losses.build(model, teacher) if losses is not None else None
        self.internals = self.recipe.needs - {"logits"} if self.recipe is not None else set()
        if self.internals and teacher is None:
            raise DfkdError(f"the loss recipe reads the teacher's {sorted(self.internals)}; expected a teacher model "
                            "to run during training")

    # ------------------------------------------------------------------ helpers
    def _emit(self, event: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(self, *args)

    def _recipe_modules(self) -> list[torch.nn.Module]:
        return self.recipe.modules() if self.recipe is not None else []

    def _settings(self) -> dict:
        """What a resumed run must share with the interrupted one (also recorded in ``dfkd_training.json``)."""
        return {"config": asdict(self.config), "losses": asdict(self.losses) if self.losses is not None else None,
                **self.extra_settings()}

    def predict(self, ds: Dataset) -> np.ndarray:
        """Logits ``(n, num_labels)`` for a (possibly encoded) dataset, in the dataset's row order."""
        model = self.accelerator.unwrap_model(self.model)
        return predict_logits(model, self.tokenizer, ds, self.config.eval_batch_size, self.config.max_length)

    def score(self, ds: Dataset) -> float:
        """The model-selection score on an encoded validation set (higher is better)."""
        if self.selection == "last":
            return 0.0  # every evaluation ties; the trainer keeps the latest weights
        logits = self.predict(ds)
        if self.selection == "teacher":
            return agreement(self.task, logits, np.asarray(ds["teacher_logits"]))
        metrics = compute_metrics(self.task, predictions(logits, self.task), np.asarray(ds["label"]))
        return metrics[self.task.main_metric]

    # ------------------------------------------------------------------ extension points
    def param_groups(self) -> list[dict]:
        """AdamW parameter groups (``torch.optim`` format; a group without ``lr`` gets ``config.learning_rate``).

        Default: weight decay on weight matrices, none on biases and norms; learned projections of layer-wise
        losses are trained with the student. ``freeze_word_embeddings`` removes the word embeddings first.
        With ``layer_lr_decay`` < 1 each group is split by depth (:func:`layer_depth`) and given its decayed lr.

        Raises:
            DfkdError: ``layer_lr_decay`` set for a model without numbered encoder layers (its range is checked
                when the config is made).
        """
        cfg = self.config
        if cfg.freeze_word_embeddings:
            emb = self.model.get_input_embeddings()
            emb.weight.requires_grad_(False)
        n_layers = getattr(getattr(self.model, "config", None), "num_hidden_layers", None)
        if cfg.layer_lr_decay < 1.0 and not n_layers:
            raise DfkdError("layer_lr_decay needs a model with numbered encoder layers (config.num_hidden_layers); "
                            f"expected 1.0 for {type(self.model).__name__}")
        # (no weight decay?, depth) -> parameters; the two depth-0 groups always exist, as without decay
        groups: dict[tuple[bool, int], list] = {(False, 0): [], (True, 0): []}
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            no_decay = p.ndim < 2 or "LayerNorm" in name or "norm" in name.lower()
            depth = layer_depth(name, n_layers) if cfg.layer_lr_decay < 1.0 else 0
            groups.setdefault((no_decay, depth), []).append(p)
        for module in self._recipe_modules():  # learned projections of layer-wise losses: at the full lr
            groups[(False, 0)].extend(p for p in module.parameters() if p.requires_grad)
        return [{"params": params, "weight_decay": 0.0 if no_decay else cfg.weight_decay,
                 **({"lr": cfg.learning_rate * cfg.layer_lr_decay ** depth} if depth else {})}
                for (no_decay, depth), params in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0]))]

    def make_loader(self, train: Dataset):
        """Tokenise the training set; return ``(DataLoader, LengthGroupedBatchSampler)`` (shuffled, seeded)."""
        cfg = self.config
        train = encode(train, self.tokenizer, cfg.max_length)
        return loader(train, self.tokenizer, cfg.batch_size, shuffle=True, seed=cfg.seed,
                      regression=self.task is not None and self.task.is_regression)

    def prepare_val(self, val: Dataset):
        """The validation slice in the form :meth:`score` takes (default: tokenised)."""
        return encode(val, self.tokenizer, self.config.max_length, desc="tokenising validation slice")

    def training_step(self, batch: dict, step: int) -> tuple[float, dict]:
        """One optimizer step of the model on ``batch`` (``step`` steps done before it).

        Returns:
            The loss value and its named parts (for callbacks). Subclasses (e.g. adversarial KD) override it.
        """
        student, teacher = self.forward_outputs(batch)
        loss, parts = self.recipe(student, teacher, batch)
        self.optimizer_step(loss)
        return loss.item(), parts

    def optimizer_step(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss``, clip the student's gradients, step the optimizer and the schedule."""
        acc, cfg = self.accelerator, self.config
        acc.backward(loss)
        if cfg.max_grad_norm:
            acc.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()

    def extra_settings(self) -> dict:
        """Hook: more settings that a resumed run must share (recorded in ``dfkd_training.json``)."""
        return {}

    def forward_outputs(self, batch: dict) -> tuple[dict, dict]:
        """Student outputs (with gradients) and teacher outputs for the loss recipe.

        Teacher logits come from the transfer set (``teacher_logits``); hidden states and attention scores,
        when a term needs them, from running the teacher on the batch without gradients.
        """
        flags = {"output_hidden_states": "hidden_states" in self.internals,
                 "output_attentions": "attentions" in self.internals}
        out = self.model(**accepted_inputs(self.model, batch), **{k: v for k, v in flags.items() if v})
        student = {"logits": out.logits}
        teacher = {"logits": batch["teacher_logits"]} if "teacher_logits" in batch else {}
        if self.internals:
            with torch.no_grad():
                t_out = self.teacher(**accepted_inputs(self.teacher, batch), **{k: v for k, v in flags.items() if v})
            teacher.setdefault("logits", t_out.logits)
            for key in self.internals:
                student[key], teacher[key] = getattr(out, key), getattr(t_out, key)
        return student, teacher

    def prepare_extra(self) -> None:
        """Hook: prepare more models/optimizers with ``self.accelerator`` (before a checkpoint is loaded)."""

    def save_extra(self, checkpoint_dir: Path) -> None:
        """Hook: save more loop state into a checkpoint folder being written."""

    def load_extra(self, checkpoint_dir: Path) -> None:
        """Hook: restore what :meth:`save_extra` wrote."""

    def finish_extra(self, final_dir: Path, summary: dict) -> None:
        """Hook: write more outputs into the final folder before it is renamed into place (``summary``: what
        :meth:`fit` returns)."""

    # ------------------------------------------------------------------ main loop
    def fit(self, train: Dataset, val: Dataset) -> dict:
        """Train, select the best model on ``val`` and write it to ``out_dir``.

        Args:
            train / val: datasets with ``text`` [, ``text_pair``] and ``label`` and/or ``teacher_logits``.

        Returns:
            A summary dict: ``steps``, ``best_val`` (selection score), ``train_seconds`` (the training loop's
            wall time, s), ``setup_seconds`` (the set-up before the loop, s to the millisecond: :attr:`setup_seconds` plus
            tokenising and building the loader and optimizer, summed over resumed calls), ``train_examples``,
            ``history`` (one ``{"step", "train_loss", "val"}`` per evaluation: the mean training loss since the
            previous evaluation and the selection score, as HF Trainer's ``log_history``), ``config``. When
            ``out_dir`` already holds a finished run, returns its saved summary.

        Raises:
            DfkdError: ``out_dir`` or its work folder holds a run with other settings.
        """
        settings = self._settings()
        done = self._finished_run(settings)
        if done is not None:
            return done
        started = time.perf_counter()
        val = self._setup(train, val)
        state = self._restore(settings)
        state["setup_seconds"] += self.setup_seconds + time.perf_counter() - started
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._train_loop(state, val)
        summary = {"steps": state["step"], "train_examples": state["step"] * self.config.batch_size
                   * self.accelerator.num_processes, "best_val": state["best"], "best_step": state["best_step"],
                   "selection": self.selection, "train_seconds": round(state["train_seconds"], 1),
                   "setup_seconds": round(state["setup_seconds"], 3),
                   "history": state["history"], **settings}
        if self.accelerator.is_main_process:
            self._finish(self.work_dir / "best", summary)
        self.accelerator.wait_for_everyone()
        return summary

    # ------------------------------------------------------------------ parts of fit
    def _finished_run(self, settings: dict) -> dict | None:
        """The saved summary of a finished run in ``out_dir`` (``None`` if there is none); refuses other settings."""
        summary_file = self.out_dir / "dfkd_training.json"
        if summary_file.exists():
            done = _with_config_defaults(json.loads(summary_file.read_text()))
            if {k: done.get(k) for k in settings} != settings:
                raise DfkdError(f"{self.out_dir} holds a finished run with other settings; expected the same "
                                "settings to resume, or a new output folder")
            return done
        loop_file = self.work_dir / "checkpoint" / "loop.json"
        if loop_file.exists() and _with_config_defaults(json.loads(loop_file.read_text()).get("settings", settings)) \
                != settings:
            raise DfkdError(f"{self.work_dir} holds an interrupted run with other settings; expected the same "
                            "settings to resume, or delete that folder")
        return None

    def _setup(self, train: Dataset, val: Dataset) -> Dataset:
        """Tokenise, build the data loader, optimizer and schedule, and prepare them with ``accelerate``.

        Returns the tokenised validation slice."""
        cfg, acc = self.config, self.accelerator
        set_seed(cfg.seed)
        val = self.prepare_val(val)
        dl, self.sampler = self.make_loader(train)
        # with N processes each optimizer step takes N batches (one per process): steps count per process, as in
        # HF Trainer; accelerate steps the schedule N times per step, so it is built for N x the steps
        n = acc.num_processes
        self.steps_per_epoch = math.ceil(len(self.sampler) / n)
        self.total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * self.steps_per_epoch))
        optimizer = adamw(self.param_groups(), lr=cfg.learning_rate)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * self.total_steps) * n,
                                                    self.total_steps * n)
        self.model, self.optimizer, self.dl, self.scheduler = acc.prepare(self.model, optimizer, dl, scheduler)
        for module in self._recipe_modules():
            module.to(acc.device)
            acc.register_for_checkpointing(module)  # learned projections resume with the student
        if cfg.ema_decay:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.average = AveragedModel(acc.unwrap_model(self.model),
                                         multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay))
            acc.register_for_checkpointing(self.average)  # the average resumes with the weights
        if self.internals:
            self.teacher.to(acc.device).eval()
            if "attentions" in self.internals:
                from .layerwise import use_attention_scores

                self._attn = {id(m): use_attention_scores(acc.unwrap_model(m)) for m in (self.model, self.teacher)}
        self.prepare_extra()
        return val

    def _restore(self, settings: dict) -> dict:
        """The loop state: fresh, or restored from the work folder's checkpoint (model, optimizer, schedule,
        RNG states) and best model."""
        acc = self.accelerator
        state = {"step": 0, "best": -math.inf, "best_step": 0, "train_seconds": 0.0, "setup_seconds": 0.0,
                 "settings": settings, "history": [], "loss_sum": 0.0, "loss_steps": 0}
        ckpt = self.work_dir / "checkpoint"
        self._resume_rng = None
        if (ckpt / "loop.json").exists():
            acc.load_state(str(ckpt))
            state = {**state, **json.loads((ckpt / "loop.json").read_text())}  # an older dfkd's: no history
            self.load_extra(ckpt)
            # a new data-loader iterator draws from torch's RNG; restore it after that draw (first batch)
            self._resume_rng = torch.load(ckpt / f"torch_rng-{acc.process_index}.pt")
        best_file = self.work_dir / "best" / "score.json"
        if best_file.exists():  # a best model saved after the last checkpoint
            saved = json.loads(best_file.read_text())
            if saved["best"] > state["best"]:
                state["best"], state["best_step"] = saved["best"], saved["best_step"]
        return state

    @contextmanager
    def _averaged_weights(self):
        """Within the block the model holds the weight average (``config.ema_decay``), so that any
        :meth:`score` (a subclass's too) and the saved model see it; the live weights come back after."""
        if self.average is None:
            yield
            return
        params = list(self.accelerator.unwrap_model(self.model).parameters())
        live = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, a in zip(params, self.average.module.parameters(), strict=True):
                p.copy_(a)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, w in zip(params, live, strict=True):
                    p.copy_(w)

    def _evaluate(self, state: dict, step: int, val: Dataset) -> None:
        """Score the model (its weight average, with ``ema_decay``) on ``val``; the main process keeps it in
        ``<work>/best`` when it is the best so far."""
        acc = self.accelerator
        with self._averaged_weights():
            score = self.score(val)
            if (score > state["best"] or self.selection == "last") and acc.is_main_process:
                state["best"], state["best_step"] = score, step
                with atomic_dir(self.work_dir / "best") as tmp:
                    acc.unwrap_model(self.model).save_pretrained(tmp)
                    (tmp / "score.json").write_text(json.dumps({"best": score, "best_step": step}))
        mean_loss = state["loss_sum"] / state["loss_steps"] if state["loss_steps"] else None
        state["history"].append({"step": step, "train_loss": mean_loss, "val": score})
        state["loss_sum"], state["loss_steps"] = 0.0, 0
        self._emit("on_evaluate", step, score, state["best"])

    def _checkpoint(self, state: dict) -> None:
        """Save everything a resumed run needs to ``<work>/checkpoint`` (every process writes its RNG state;
        the main process renames the folder into place)."""
        acc = self.accelerator
        target = self.work_dir / "checkpoint"
        tmp = target.with_name(target.name + ".tmp")
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        torch.save(torch.get_rng_state(), tmp / f"torch_rng-{acc.process_index}.pt")
        acc.wait_for_everyone()
        if acc.is_main_process:
            self.save_extra(tmp)
            (tmp / "loop.json").write_text(json.dumps(state))
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        acc.wait_for_everyone()

    def _train_loop(self, state: dict, val: Dataset) -> None:
        """Optimizer steps from ``state["step"]`` to the budget, with evaluations and checkpoints on schedule."""
        cfg, acc = self.config, self.accelerator
        total, per_epoch = self.total_steps, self.steps_per_epoch
        self._emit("on_train_begin", total, state["step"])
        step = state["step"]
        self.model.train()
        started = time.perf_counter() - state["train_seconds"]
        while step < total:
            epoch, skip = divmod(step, per_epoch)
            self.sampler.position(epoch, skip * acc.num_processes)  # batches of all processes already seen
            for batch in self.dl:
                if self._resume_rng is not None:
                    torch.set_rng_state(self._resume_rng)
                    self._resume_rng = None
                loss, parts = self.training_step(batch, step)
                if self.average is not None:
                    self.average.update_parameters(acc.unwrap_model(self.model))
                step += 1
                state["loss_sum"] += loss
                state["loss_steps"] += 1
                self._emit("on_step_end", step, len(batch["input_ids"]) * acc.num_processes, loss, parts)
                if (cfg.eval_every and step % cfg.eval_every == 0) or step % per_epoch == 0 or step == total:
                    self._evaluate(state, step, val)
                state["step"], state["train_seconds"] = step, time.perf_counter() - started
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total:
                    self._checkpoint(state)
                if step >= total:
                    break
        state["train_seconds"] = time.perf_counter() - started
        self._emit("on_train_end")

    def _finish(self, best_dir: Path, summary: dict) -> None:
        """Turn the best weights into the output folder: model + tokenizer + summary, then atomic rename."""
        model = type(self.accelerator.unwrap_model(self.model)).from_pretrained(best_dir)
        previous = getattr(self, "_attn", {}).get(id(self.model))
        if previous is not None:  # save with the attention implementation it came with, not the scores one
            from .layerwise import use_attention_scores

            use_attention_scores(model, previous)
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        with atomic_dir(self.out_dir, ".final") as final:
            model.save_pretrained(final)
            self.tokenizer.save_pretrained(final)
            (final / "dfkd_training.json").write_text(json.dumps(summary, indent=2))
            self.finish_extra(final, summary)
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _with_config_defaults(settings: dict) -> dict:
    """Saved run settings with every :class:`TrainingConfig` field a run of an older dfkd did not record (added
    since, e.g. ``ema_decay``) at its default, so that such a run still counts as having the same settings."""
    if settings.get("config") is None:
        return settings
    return {**settings, "config": {**asdict(TrainingConfig()), **settings["config"]}}


@dataclass(frozen=True)
class Strategy:
    """A way to train one stage, registered by name in :data:`STRATEGIES`; the distiller runs any of them.

    Attributes:
        name: registry name (``plain``, ``adversarial``).
        build: ``build(student, tokenizer, task, config, losses, selection, out_dir, teacher, settings,
            own_vocabulary, desc) -> Trainer``; ``settings`` is an instance of ``settings_type`` (or ``None``).
        settings_type: the dataclass its settings are read into (strictly, by :func:`dfkd.config.from_dict`).
    """

    name: str
    build: Callable[..., Trainer]
    settings_type: type | None = None

    def read_settings(self, settings: dict | None, where: str):
        """The strategy's settings object from a dict (``None`` when it takes none).

        Raises:
            DfkdError: settings for a strategy that takes none, or a bad key or value.
        """
        if self.settings_type is None:
            if settings:
                raise DfkdError(f"{where}: training strategy {self.name!r} takes no settings, got {sorted(settings)}")
            return None
        return from_dict(self.settings_type, settings or {}, where)


def _build_plain(student, tokenizer, task, config, losses, selection, out_dir, teacher, settings, own_vocabulary,
                 desc):
    return Trainer(student, tokenizer, task, config, losses, selection=selection, out_dir=out_dir, desc=desc,
                   teacher=teacher)


#: Training strategies. ``plain`` is :class:`Trainer`; :mod:`dfkd.zeroshot.adversarial` adds ``adversarial``.
STRATEGIES: Registry[Strategy] = Registry("training strategy")
STRATEGIES.add(Strategy("plain", _build_plain))
