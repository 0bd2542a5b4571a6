"""Zero-shot KD, no task data: the out-of-domain generator ``ood`` and the ``adversarial`` training strategy.

The ``ood`` generator is registered in :data:`dfkd.transfer.GENERATORS`; ``dfkd ood`` and the
``ood`` arm of ``dfkd compare`` run it. See :mod:`dfkd.zeroshot.ood` for the rules.
"""

from __future__ import annotations

from datasets import Dataset

from ..errors import DfkdError
from ..metrics import label_shares
from ..tasks import TaskSpec, get_task
from ..transfer import register_generator
from . import (
    adversarial,  # noqa: F401  (registers the training strategy "adversarial")
    corpus,  # noqa: F401  (registers the asset ood/general)
)
from .adversarial import mlm_rewrite
from .ood import (
    GLUE_TRAIN_SIZES,
    PAIR_MIX,
    PUBLISHED_LABEL_SHARES,
    TYPICAL_WORDS,
    candidate_documents,
    check_ood_settings,
    ood_rows,
    select_by_teacher,
)

__all__ = ["ood_generator"]


@register_generator("ood", "ood", reads_task_data=False, check=check_ood_settings,
                    description="zero-shot KD: out-of-domain text shaped like the task's inputs")
def ood_generator(task: str | TaskSpec, *, data_dir=None, seed: int = 0, split: str = "train",
                  limit: int | None = None, work_dir=None, sources: tuple[str, ...] | list[str] = ("ood/general",), size: int | None = None,
                  multiple: float = 2.0, min_words: int | None = None, max_words: int | None = None,
                  pair_mix: dict[str, float] | None = None, teacher: str | None = None,
                  pool_factor: float = 3.0, selection_order: str = "uncertain",
                  rewriter: str = "models/mlm-minilm-l6", rewrite_prob: float = 0.15,
                  perturbed_share: float = 0.0, perturbation: str = "words") -> tuple[Dataset, dict]:
    """Out-of-domain rows for ``task`` (``source=ood``, no label); the task's own data is never read.

    Args:
        data_dir / split / work_dir: the common generator call; ignored (no task data is read, and the job is
            fast).
        limit: the rows wanted when ``size`` is not given (the common call's row count).
        sources: corpus folders (:mod:`dfkd.zeroshot.corpus`; default ``ood/general``, built on first use),
            text files, folders of ``*.txt`` or ``hub:<dataset>[/<config>]``.
        size: rows wanted; default ``multiple`` x the task's published train size.
        min_words / max_words: length range; default the task's typical range (:data:`TYPICAL_WORDS`).
        pair_mix: pair tasks: proportions of ``adjacent``, ``random``, ``perturbed`` and ``rewritten`` pairs
            (default :data:`PAIR_MIX`).
        rewriter / rewrite_prob: for ``rewritten`` pairs, the masked LM and the share of tokens it rewrites
            (:func:`dfkd.zeroshot.adversarial.mlm_rewrite`); not loaded otherwise.
        perturbed_share: single-sentence tasks: the share of candidate rows that are perturbed sentences (words
            dropped, one adjacent swap; :func:`dfkd.zeroshot.ood.ood_rows`), e.g. ungrammatical text for CoLA's
            "unacceptable" class; pair tasks set ``perturbed`` in ``pair_mix`` instead.
        perturbation: how those rows are edited: ``words`` (dropped, one swap) or ``grammar`` (one agreement, case,
            argument-structure or word-order violation, :func:`dfkd.zeroshot.ood.corrupt`).
        teacher: if given, keep ``size`` of ``pool_factor * size`` candidates so that the teacher's predicted
            classes come in the task's published class shares (:data:`PUBLISHED_LABEL_SHARES`; equal shares for
            other tasks; score bins evenly for regression), each class filled in ``selection_order``
            (:data:`SELECTION_ORDERS`: most uncertain first, most confident first, or at random; see
            :func:`select_by_teacher`).

    Returns:
        The rows and ``{"ood": {...}}`` for the card (length range, target and actual rows, selection).

    Raises:
        DfkdError: a setting value :func:`check_ood_settings` refuses; ``perturbed_share`` for a pair task; no
            size for a task without a published train size; no usable sentences.
    """
    spec = get_task(task)
    if spec.pair and perturbed_share:
        raise DfkdError(f"ood perturbed_share is for single-sentence tasks; {spec.name} is a pair task: expected "
                        "pair_mix with a 'perturbed' share instead")
    lo, hi = TYPICAL_WORDS.get(spec.name, (3, 40))
    lo, hi = min_words or lo, max_words or hi
    size = size if size is not None else limit
    if size is None:
        if spec.name not in GLUE_TRAIN_SIZES:
            raise DfkdError(f"task {spec.name!r} has no published train size; expected size=<rows> for the "
                            "out-of-domain set")
        size = int(round(multiple * GLUE_TRAIN_SIZES[spec.name]))
    docs = candidate_documents(list(sources), lo, hi)
    available = sum(map(len, docs))
    if available < 2:
        raise DfkdError(f"only {available} usable sentence(s) of {lo}-{hi} words in {list(sources)}; expected "
                        "more general text")
    pool = int(round(size * pool_factor)) if teacher else size
    mix = (pair_mix or PAIR_MIX) if spec.pair else None
    rewrites = bool(mix and mix.get("rewritten"))
    ds = ood_rows(spec.pair, docs, pool, seed, mix,
                  rewrite=(lambda texts: mlm_rewrite(texts, rewriter, rewrite_prob, seed)) if rewrites else None,
                  perturbed_share=perturbed_share, perturbation=perturbation)
    info = {"sources": list(sources), "words": [lo, hi], "available_sentences": available, "target_rows": size,
            "pair_mix": mix, "selection": None}
    if perturbed_share:
        info["perturbed_share"] = perturbed_share
        info["perturbation"] = perturbation
    if rewrites:
        info["rewriter"] = {"mlm": rewriter, "mask_prob": rewrite_prob}
    if teacher:
        from ..distill.label import load_teacher, predict_logits

        model, tokenizer = load_teacher(teacher, spec.num_labels)
        logits = predict_logits(model, tokenizer, ds, progress="teacher-guided selection")
        shares = PUBLISHED_LABEL_SHARES.get(spec.name) if not spec.is_regression else None
        keep = select_by_teacher(logits, size, shares, selection_order)
        ds = ds.select(keep)
        info["selection"] = {"teacher": teacher, "pool_rows": pool,
                             "rule": ("10 equal-width score bins, evenly" if spec.is_regression else
                                      "teacher argmax in the task's published class shares"),
                             "order": selection_order,
                             "target_shares": list(shares) if shares else None,
                             "teacher_shares_pool": None if spec.is_regression else label_shares(spec, logits),
                             "teacher_shares_kept": None if spec.is_regression else label_shares(spec, logits[keep])}
    info["rows"] = len(ds)
    return ds, {"ood": info}
