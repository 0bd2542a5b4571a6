"""Data-augmentation generators: TinyBERT word replacement and Tang et al.'s rules.

``build_augmenter(method, **settings)`` makes a registered :class:`Augmenter`; the transfer-set
generator ``augment`` (registered in :data:`dfkd.transfer.GENERATORS`) keeps a task's rows and
adds their variants, so ``dfkd augment``, ``dfkd generate --generator augment`` and the ``augment`` arm
of ``dfkd compare`` all run the same code.
"""

from __future__ import annotations

import json
from pathlib import Path

from datasets import Dataset

from ..config import check_keywords, keyword_defaults
from ..distill.vectors import WordVectors
from ..errors import DfkdError
from ..tasks import TaskSpec, get_task
from ..transfer import original, register_generator
from . import tang, tinybert  # noqa: F401 - registers the methods
from .base import AUGMENTERS, Augmenter, augment_dataset, draw_variants

__all__ = ["AUGMENTERS", "Augmenter", "WordVectors", "augment_dataset", "build_augmenter", "draw_variants"]


def build_augmenter(method: str, **settings) -> Augmenter:
    """An augmenter from :data:`AUGMENTERS` by name.

    Raises:
        DfkdError: unknown method, or a setting the method does not take (the message lists those it does).
    """
    cls = AUGMENTERS.get(method)
    check_keywords(cls.__init__, settings, f"augmentation method {method!r}", skip=("self",))
    return cls(**settings)


def check_augment_settings(settings: dict) -> None:
    """Check the ``augment`` generator's settings (``method``, ``batch_size``, ``num_proc`` and the method's own,
    defaults filled in) without loading the masked LM or the word vectors: what
    :func:`dfkd.transfer.check_generator_settings` runs before a compare starts.

    Raises:
        DfkdError: unknown method; a setting it does not take or a value it refuses
            (:meth:`Augmenter.check_settings`); ``batch_size`` below 1.
    """
    own = {k: v for k, v in settings.items() if k not in ("method", "batch_size", "num_proc")}
    cls = AUGMENTERS.get(settings["method"])
    check_keywords(cls.__init__, own, f"augmentation method {settings['method']!r}", skip=("self",))
    cls.check_settings({**keyword_defaults(cls.__init__, skip=("self",)), **own})
    if settings["batch_size"] < 1:
        raise DfkdError(f"augment batch_size {settings['batch_size']}: expected at least 1 row per batch")


@register_generator("augment", "augment", check=check_augment_settings,
                    description="augmented KD: the task's rows plus augmented variants")
def augment_generator(task: str | TaskSpec, *, data_dir=None, seed: int = 0, split: str = "train",
                      limit: int | None = None, work_dir: str | Path | None = None, method: str = "tinybert",
                      batch_size: int = 64, num_proc: int | None = None, **settings) -> tuple[Dataset, dict]:
    """The task's ``split`` rows (``source=original``) plus ``num_aug`` variants of each (``source=augment``).

    Args:
        limit: augment a seeded sample of this many rows (the "little data" setting).
        method: a name in :data:`AUGMENTERS`; ``settings`` go to it (e.g. ``num_aug``, ``mlm``).
        work_dir: keep finished shards here so an interrupted run resumes.

    Returns:
        The rows and ``{"augmenter": <its full settings>}`` for the provenance card.
    """
    spec = get_task(task)
    rows = original(spec, data_dir=data_dir, seed=seed, split=split, limit=limit)
    augmenter = build_augmenter(method, seed=seed, **settings)
    if work_dir is not None:
        work_dir = Path(work_dir)
        _claim(work_dir, {"task": spec.name, "split": split, "limit": limit, "rows": len(rows),
                          "data_dir": str(data_dir) if data_dir else None, **augmenter.settings()})
    ds = augment_dataset(rows, augmenter, regression=spec.num_labels == 1, work_dir=work_dir,
                         batch_size=batch_size, num_proc=num_proc)
    return ds, {"augmenter": augmenter.settings()}


def _claim(work_dir: Path, request: dict) -> None:
    """Record what ``work_dir``'s shards are made of; refuse to mix them with shards of other settings."""
    request = json.loads(json.dumps(request, default=str))
    f = work_dir / "request.json"
    if f.is_file():
        old = json.loads(f.read_text())
        if old != request:
            diff = sorted(k for k in old.keys() | request.keys() if old.get(k) != request.get(k))
            raise DfkdError(f"{work_dir} holds an interrupted augmentation with other settings ({', '.join(diff)}); "
                            "expected the same settings to resume, or remove that folder to start over")
        return
    work_dir.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(request, indent=2))
