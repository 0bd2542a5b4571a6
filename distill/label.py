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
from ..tasks import get_task, task_to_dict
from .data import MODEL_INPUTS, accepted_inputs, encode, loader


def process_state():
    """This process's ``accelerate`` state (index, number of processes, device).

    Honours ``ACCELERATE_USE_CPU`` as :class:`accelerate.Accelerator` does, so that several CPU processes
    (``ACCELERATE_USE_CPU=1 torchrun --nproc_per_node N -m dfkd.cli ...``) form one gloo group.
    """
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def default_device() -> torch.device:
    """This process's device from ``accelerate`` (its own GPU under ``accelerate launch``; CUDA, then Apple MPS,
    then CPU in a single process)."""
    return process_state().device


@torch.inference_mode()
def predict_logits(model, tokenizer, ds: Dataset, batch_size: int = 128, max_length: int = 128,
                   progress: str | None = None) -> np.ndarray:
    """Run a classifier over ``ds`` (``text`` [, ``text_pair``], raw or already encoded).

    Returns:
        ``(len(ds), num_labels)`` float32 logits in the dataset's row order.
    """
    if "input_ids" not in ds.column_names:
        ds = encode(ds, tokenizer, max_length)
    # only the model inputs: labels are not needed here, and may be unknown (-1, or NaN for regression)
    ds = ds.select_columns([c for c in ds.column_names if c in MODEL_INPUTS])
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    dl, sampler = loader(ds, tokenizer, batch_size, shuffle=False)
    out = None
    bar = tqdm(total=len(ds), desc=progress, unit="ex", disable=progress is None, mininterval=2.0)
    for idx, batch in zip(sampler.batches(), dl):
        logits = model(**{k: v.to(device) for k, v in accepted_inputs(model, batch).items()}).logits.float().cpu().numpy()
        if out is None:
            out = np.zeros((len(ds), logits.shape[-1]), dtype=np.float32)
        out[idx] = logits
        bar.update(len(idx))
    bar.close()
    model.train(was_training)
    return out if out is not None else np.zeros((0, getattr(model.config, "num_labels", 1)), np.float32)


def load_teacher(path_or_name, num_labels: int | None = None, device: torch.device | None = None,
                 role: str = "teacher"):
    """Load a teacher (``AutoModelForSequenceClassification`` + tokenizer) from a folder, asset name or hub id.

    Args:
        role: what the model is to the caller (``teacher``, ``student``, ``model``), named in every error.

    Raises:
        DfkdError: the model or its tokenizer cannot be loaded, or its ``num_labels`` differs from the task's.
    """
    from transformers import AutoModelForSequenceClassification

    from ..assets import resolve

    ref = resolve(path_or_name)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(ref)
    except (OSError, ValueError) as err:
        raise DfkdError(f"cannot load {role} {path_or_name!r}: {str(err).splitlines()[0]}; expected a "
                        "folder saved with save_pretrained (config.json, weights, tokenizer)") from None
    tokenizer = load_tokenizer(ref, role, model.config.vocab_size, path_or_name)
    if num_labels is not None and model.config.num_labels != num_labels:
        raise DfkdError(f"{role} {path_or_name!r} has num_labels={model.config.num_labels} but the task has "
                        f"{num_labels} label(s); expected a {role} fine-tuned on this task's label space")
    return model.to(device or default_device()), tokenizer


#: files one of which a saved tokenizer has (fast, WordPiece, BPE, SentencePiece)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model",
                   "spm.model", "tokenizer.model")


def load_tokenizer(ref, role: str = "teacher", vocab_size: int | None = None, name=None):
    """A model's tokenizer, refused when it is missing: ``transformers`` builds an empty tokenizer (special
    tokens only) for a folder without tokenizer files, which would silently map every word to ``[UNK]``.

    Args:
        ref: a model folder or hub id; ``role`` names the model in errors; ``vocab_size``: the model's, which a
            real tokenizer covers at least half of.

    Raises:
        DfkdError: no tokenizer files in the folder, or a tokenizer far smaller than the model's vocabulary.
    """
    from transformers import AutoTokenizer

    name = name or ref
    folder = Path(str(ref))
    if folder.is_dir() and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise DfkdError(f"{role} {name} has no tokenizer; expected one of {', '.join(TOKENIZER_FILES)} in {folder} "
                        "(save it with tokenizer.save_pretrained)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref)
    except (OSError, ValueError, TypeError) as err:
        raise DfkdError(f"{role} {name} has no usable tokenizer ({str(err).splitlines()[0][:120]}); expected its "
                        "tokenizer files beside the model") from None
    if vocab_size and len(tokenizer) < vocab_size // 2:
        raise DfkdError(f"{role} {name}'s tokenizer has {len(tokenizer)} tokens for a vocabulary of {vocab_size}; "
                        "expected the tokenizer the model was trained with")
    return tokenizer


def label_dataset(ds: Dataset, model, tokenizer, work_dir: Path, batch_size: int = 128, max_length: int = 128,
                  shard_size: int = 4096) -> Dataset:
    """Add ``teacher_logits`` ``(num_labels,)`` per row, saving each finished shard under ``work_dir``.

    Shards already in ``work_dir`` (from an interrupted run) are reused, not recomputed. Under ``accelerate
    launch`` (or ``torchrun``) with N processes, process ``i`` labels shards ``i, i+N, ...``; every process then
    returns the whole labelled set, equal to a single process's (each row labelled once).
    """
    state = process_state()
    work_dir.mkdir(parents=True, exist_ok=True)
    n_shards = (len(ds) + shard_size - 1) // shard_size
    files = [work_dir / f"logits-{s:05d}.npy" for s in range(n_shards)]
    mine = [s for s in range(n_shards) if s % state.num_processes == state.process_index]
    bar = tqdm(total=sum(min(len(ds), (s + 1) * shard_size) - s * shard_size for s in mine),
               desc="teacher labelling", unit="ex", mininterval=2.0, disable=not state.is_local_main_process)
    for s in mine:
        rows = range(s * shard_size, min(len(ds), (s + 1) * shard_size))
        if not files[s].exists():
            logits = predict_logits(model, tokenizer, ds.select(rows), batch_size, max_length)
            with atomic_file(files[s]) as tmp:
                np.save(tmp, logits)
        bar.update(len(rows))
    bar.close()
    state.wait_for_everyone()
    parts = [np.load(f) for f in files]
    state.wait_for_everyone()  # every process has read every shard before a caller removes work_dir
    logits = np.concatenate(parts) if parts else np.zeros((0, model.config.num_labels), np.float32)
    if "teacher_logits" in ds.column_names:
        ds = ds.remove_columns("teacher_logits")
    return ds.add_column("teacher_logits", [row.tolist() for row in logits])


def label_transfer_set(in_dir: str | Path, teacher: str, out_dir: str | Path | None = None,
                       batch_size: int = 128, max_length: int = 128, shard_size: int = 4096) -> Path:
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
    labelled = label_dataset(ds, model, tokenizer, work, batch_size, max_length, shard_size)
    state = process_state()
    card = {**card, "teacher": str(teacher), "labelled_rows": len(labelled), "labelling_processes": state.num_processes}
    if state.is_main_process:  # one writer; the others wait for it
        save_transfer_set(labelled, out_dir, card)
        shutil.rmtree(work, ignore_errors=True)
    state.wait_for_everyone()
    return out_dir


def make_transfer_set(generators, task, data_dir, out_dir: str | Path, teacher=None, tokenizer=None,
                      seed: int = 0, max_length: int = 128, card: dict | None = None,
                      work_dir: str | Path | None = None) -> tuple[Dataset, dict]:
    """Generate, label and save a transfer set: the one generate -> label -> save flow of ``dfkd generate`` and
    of every ``compare`` arm.

    Each ``(generator, settings)`` pair is built with :func:`dfkd.transfer.build_transfer_set` (its finished
    parts kept in ``work_dir/generating-<i>``, so an interrupted build resumes), the parts are concatenated,
    labelled by ``teacher`` when one is given (shards in ``work_dir/labelling``) and saved to ``out_dir`` with a
    card; the work folder is then removed.

    Args:
        generators: ``[(generator name, settings), ...]``.
        teacher / tokenizer: a loaded teacher and its tokenizer; ``None``: the rows are saved unlabelled.
        card: fields added to the saved card (``generators``, ``generator_settings`` and ``stages_s`` are set).
        work_dir: the temporary folder (default: ``<out_dir>.partial``).

    Returns:
        ``(dataset, card)``: the saved copy, read back (not the work folders' memory-mapped rows), and its card
        with ``stages_s`` (``generate_s``, ``label_s``: wall seconds).

    Raises:
        DfkdError: what a generator or the labelling raises; nothing is left at ``out_dir`` then.
    """
    import json
    import time

    from ..transfer import build_transfer_set, concatenate_transfer_sets, load_transfer_set, save_transfer_set

    out_dir = Path(out_dir)
    work = Path(work_dir) if work_dir else out_dir.with_name(out_dir.name + ".partial")
    stages, parts, cards = {"generate_s": 0.0}, [], []
    for i, (gen, settings) in enumerate(generators):
        t = time.perf_counter()
        ds_part, card_part = build_transfer_set(gen, task, data_dir, seed, work_dir=work / f"generating-{i}",
                                                **settings)
        stages["generate_s"] = round(stages["generate_s"] + time.perf_counter() - t, 1)
        parts.append(ds_part)
        cards.append(card_part)
    ds = concatenate_transfer_sets(parts)
    if teacher is not None:
        t = time.perf_counter()
        ds = label_dataset(ds, teacher, tokenizer, work / "labelling", max_length=max_length)
        stages["label_s"] = round(time.perf_counter() - t, 1)
    recipe = json.loads(json.dumps([list(g) for g in generators]))  # as JSON gives it back
    spec = get_task(task)
    full = {**(cards[0] if len(cards) == 1 else {}), **(card or {}), "generators": cards,
            "generator_settings": recipe, "stages_s": stages, "task": spec.name,
            **({"task_spec": task_to_dict(spec)} if spec.is_custom else {}), "max_length": max_length}
    save_transfer_set(ds, out_dir, full)
    ds, full = load_transfer_set(out_dir)
    shutil.rmtree(work, ignore_errors=True)
    return ds, full
