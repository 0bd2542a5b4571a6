"""Teacher inference: logits for any dataset, and ``dfkd label`` (write ``teacher_logits`` into a transfer set).

Inference runs in length-sorted batches under ``torch.inference_mode()``. Labelling works in shards of
``shard_size`` rows whose logits are saved as they finish, so an interrupted run resumes at the first
unfinished shard without relabelling or losing rows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm

from ..errors import DfkdError
from ..files import atomic_file
from .data import encode, loader, model_inputs


def default_device() -> torch.device:
    """CUDA when available, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@torch.inference_mode()
def predict_logits(model, tokenizer, ds: Dataset, batch_size: int = 128, max_length: int = 128,
                   progress: str | None = None) -> np.ndarray:
    """Run a classifier over ``ds`` (``text`` [, ``text_pair``], raw or already encoded).

    Returns:
        ``(len(ds), num_labels)`` float32 logits in the dataset's row order.
    """
    if "input_ids" not in ds.column_names:
        ds = encode(ds, tokenizer, max_length)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    dl, sampler = loader(ds, tokenizer, batch_size, shuffle=False)
    out = None
    bar = tqdm(total=len(ds), desc=progress, unit="ex", disable=progress is None, mininterval=2.0)
    for idx, batch in zip(sampler.batches(), dl):
        logits = model(**{k: v.to(device) for k, v in model_inputs(batch).items()}).logits.float().cpu().numpy()
        if out is None:
            out = np.zeros((len(ds), logits.shape[-1]), dtype=np.float32)
        out[idx] = logits
        bar.update(len(idx))
    bar.close()
    model.train(was_training)
    return out if out is not None else np.zeros((0, getattr(model.config, "num_labels", 1)), np.float32)


def load_teacher(path_or_name, num_labels: int | None = None, device: torch.device | None = None):
    """Load a teacher (``AutoModelForSequenceClassification`` + tokenizer) from a folder, asset name or hub id.

    Raises:
        DfkdError: the model cannot be loaded, or its ``num_labels`` differs from the task's.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..assets import resolve

    ref = resolve(path_or_name)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(ref)
        tokenizer = AutoTokenizer.from_pretrained(ref)
    except OSError as err:
        raise DfkdError(f"cannot load teacher {path_or_name!r}: {str(err).splitlines()[0]}; expected a "
                        "folder saved with save_pretrained (config.json, weights, tokenizer)") from None
    if num_labels is not None and model.config.num_labels != num_labels:
        raise DfkdError(f"teacher {path_or_name!r} has num_labels={model.config.num_labels} but the task has "
                        f"{num_labels} label(s); expected a teacher fine-tuned on this task's label space")
    return model.to(device or default_device()), tokenizer


def label_dataset(ds: Dataset, model, tokenizer, work_dir: Path, batch_size: int = 128, max_length: int = 128,
                  shard_size: int = 4096) -> Dataset:
    """Add ``teacher_logits`` ``(num_labels,)`` per row, saving each finished shard under ``work_dir``.

    Shards already in ``work_dir`` (from an interrupted run) are reused, not recomputed.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    n_shards = (len(ds) + shard_size - 1) // shard_size
    parts = []
    bar = tqdm(total=len(ds), desc="teacher labelling", unit="ex", mininterval=2.0)
    for s in range(n_shards):
        f = work_dir / f"logits-{s:05d}.npy"
        rows = range(s * shard_size, min(len(ds), (s + 1) * shard_size))
        if f.exists():
            logits = np.load(f)
        else:
            logits = predict_logits(model, tokenizer, ds.select(rows), batch_size, max_length)
            with atomic_file(f) as tmp:
                np.save(tmp, logits)
        parts.append(logits)
        bar.update(len(rows))
    bar.close()
    logits = np.concatenate(parts) if parts else np.zeros((0, model.config.num_labels), np.float32)
    if "teacher_logits" in ds.column_names:
        ds = ds.remove_columns("teacher_logits")
    return ds.add_column("teacher_logits", [row.tolist() for row in logits])


def label_transfer_set(in_dir: str | Path, teacher: str, out_dir: str | Path | None = None,
                       batch_size: int = 128, max_length: int = 128) -> Path:
    """``dfkd label``: write the teacher's logits into a saved transfer set (in place when ``out_dir`` is None).

    Raises:
        DfkdError: missing transfer set, or a teacher whose ``num_labels`` differs from the card's task.
    """
    from ..transfer import load_transfer_set, save_transfer_set

    in_dir = Path(in_dir)
    out_dir = Path(out_dir) if out_dir else in_dir
    ds, card = load_transfer_set(in_dir)
    model, tokenizer = load_teacher(teacher, card.get("num_labels"))
    work = out_dir.with_name(out_dir.name + ".labelling")
    labelled = label_dataset(ds, model, tokenizer, work, batch_size, max_length)
    card = {**card, "teacher": str(teacher), "labelled_rows": len(labelled)}
    save_transfer_set(labelled, out_dir, card)
    shutil.rmtree(work, ignore_errors=True)
    return out_dir
