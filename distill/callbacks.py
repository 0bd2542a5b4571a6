"""Side concerns of a training run as callbacks on its events (Hugging Face Trainer's model): the progress bar."""

from __future__ import annotations

from tqdm.auto import tqdm


class Callback:
    """Hooks on training events (HF Trainer style) of a :class:`dfkd.distill.trainer.Trainer`. Override what you
    need."""

    def on_train_begin(self, trainer, total_steps: int, done_steps: int) -> None: ...

    def on_step_end(self, trainer, step: int, examples: int, loss: float, parts: dict) -> None: ...

    def on_evaluate(self, trainer, step: int, score: float, best: float) -> None: ...

    def on_train_end(self, trainer) -> None: ...


class ProgressBar(Callback):
    """tqdm bar counting examples, with the rate in examples/s, the running loss and the val and best selection
    scores (none for ``selection="last"``, which scores nothing)."""

    def __init__(self, desc: str = "training"):
        self.desc = desc
        self.bar = None
        self.loss = None

    def on_train_begin(self, trainer, total_steps, done_steps):
        if trainer.accelerator.is_local_main_process:
            bs = trainer.config.batch_size * trainer.accelerator.num_processes
            self.bar = tqdm(total=total_steps * bs, initial=done_steps * bs, desc=self.desc, unit="ex",
                            dynamic_ncols=True, mininterval=2.0)

    def on_step_end(self, trainer, step, examples, loss, parts):
        if self.bar is not None:
            self.loss = loss if self.loss is None else 0.98 * self.loss + 0.02 * loss
            self.bar.update(examples)
            if step % 20 == 0:
                self.bar.set_postfix(loss=f"{self.loss:.4f}", refresh=False)

    def on_evaluate(self, trainer, step, score, best):
        if self.bar is not None and trainer.selection != "last":  # "last" scores nothing: no val to show
            self.bar.set_postfix(loss=f"{self.loss or 0:.4f}", val=f"{score:.4f}", best=f"{best:.4f}")

    def on_train_end(self, trainer):
        if self.bar is not None:
            self.bar.close()
