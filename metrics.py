"""GLUE metrics, computed with scikit-learn and scipy under ``evaluate``'s GLUE key names.

``evaluate.load("glue", ...)`` fetches a script from the hub, which is not reachable offline, so the same
definitions are computed here: accuracy, binary F1 of the positive class (index 1), Matthews correlation
(CoLA), Pearson and Spearman correlation (STS-B).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score, matthews_corrcoef

from .tasks import TaskSpec


def predictions(logits: np.ndarray, task: TaskSpec) -> np.ndarray:
    """Logits ``(n, num_labels)`` -> class indices ``(n,)``, or scores ``(n,)`` for regression."""
    logits = np.asarray(logits, dtype=np.float64)
    return logits[:, 0] if task.is_regression else logits.argmax(-1)


def compute_metrics(task: TaskSpec, preds: np.ndarray, refs: np.ndarray) -> dict[str, float]:
    """Score predictions against references with the task's GLUE metrics.

    Args:
        preds: ``(n,)`` class indices, or float scores for regression.
        refs: ``(n,)`` gold labels of the same kind.

    Returns:
        ``{metric key: value}`` with values in [0, 1] ([-1, 1] for correlations), keys as in ``task.metrics``.
    """
    preds, refs = np.asarray(preds), np.asarray(refs)
    out: dict[str, float] = {}
    for key in task.metrics:
        if key == "accuracy":
            out[key] = float(accuracy_score(refs, preds))
        elif key == "f1":
            out[key] = float(f1_score(refs, preds))
        elif key == "matthews_correlation":
            out[key] = float(matthews_corrcoef(refs, preds))
        elif key == "pearson":
            out[key] = float(pearsonr(preds, refs)[0])
        elif key == "spearmanr":
            out[key] = float(spearmanr(preds, refs)[0])
        else:
            raise ValueError(f"unknown metric {key!r}")
    return out


def pct_of_teacher(score: float, teacher_score: float | None) -> float | None:
    """``score`` as a percentage of the teacher's dev score on the same metric; ``None`` when the teacher's is 0
    or unknown (a ratio to nothing)."""
    return 100 * score / teacher_score if teacher_score else None


def gap_recovered(score: float | None, teacher_score: float | None, floor: float | None) -> float | None:
    """The share of the teacher's lead over the floor that a student recovers, in percent:
    ``100 * (score - floor) / (teacher - floor)``.

    This is the normalisation of leaderboards and weak-to-strong generalisation (Burns et al. 2023, "performance
    gap recovered"): 0 for a student no better than the floor (the majority answer; 0 for MCC and Pearson,
    where a constant answer scores 0), 100 for one as good as the teacher, negative below the floor. Unlike
    :func:`pct_of_teacher` it does not credit a student for the floor itself (on MRPC's dev, answering
    "equivalent" everywhere is 93% of an F1-0.873 teacher, and 0% of its gap).

    Returns:
        A percentage, or ``None`` when a value is unknown or the teacher is not above the floor (no gap).
    """
    if score is None or teacher_score is None or floor is None or teacher_score <= floor:
        return None
    return 100 * (score - floor) / (teacher_score - floor)


def floor_score(task: TaskSpec, refs: np.ndarray) -> float:
    """The dev score a student must beat to have learnt anything: the majority answer's main score
    (:func:`majority_baseline`) for classification, 0 for regression (a constant has no correlation)."""
    floor = majority_baseline(task, refs)
    return 0.0 if floor is None else floor["metrics"][task.main_metric]


def majority_baseline(task: TaskSpec, refs: np.ndarray) -> dict | None:
    """The scores of answering the most frequent gold class to every row: the floor a classifier's figures are
    read against (on GLUE's MRPC dev, "equivalent" everywhere scores F1 0.812; on RTE, accuracy 0.527).

    Args:
        refs: ``(n,)`` gold class indices.

    Returns:
        ``{"label": class index, "metrics": {metric key: value}}``; ``None`` for regression (a constant answer
        has no correlation).
    """
    if task.is_regression:
        return None
    refs = np.asarray(refs, dtype=np.int64)
    label = int(np.bincount(refs).argmax())
    return {"label": label, "metrics": compute_metrics(task, np.full_like(refs, label), refs)}


def agreement(task: TaskSpec, student_logits: np.ndarray, teacher_logits: np.ndarray) -> float:
    """Teacher-student agreement: the fraction of equal predicted classes (Pearson r for regression)."""
    s, t = predictions(student_logits, task), predictions(teacher_logits, task)
    if task.is_regression:
        return float(pearsonr(s, t)[0])
    return float((s == t).mean())


def kappa(task: TaskSpec, student_logits: np.ndarray, teacher_logits: np.ndarray) -> float:
    """Fidelity to the teacher beyond chance: Cohen's kappa (Cohen 1960) between the student's and the teacher's
    predicted classes, ``(p_o - p_e) / (1 - p_e)`` with ``p_o`` the observed agreement and ``p_e`` the agreement
    expected from the two prediction marginals (scikit-learn's ``cohen_kappa_score``). For regression, the
    Pearson correlation of the two prediction vectors.

    A constant student (one class or one score everywhere), or a constant teacher, carries no information beyond
    chance: 0 (where the formula is 0 or undefined).

    Args:
        student_logits / teacher_logits: ``(n, num_labels)`` logits (regression: ``(n, 1)``) on the same rows.

    Returns:
        A value in [-1, 1]; 1 for identical predictions.
    """
    s, t = predictions(student_logits, task), predictions(teacher_logits, task)
    if len(np.unique(s)) < 2 or len(np.unique(t)) < 2:
        return 0.0
    if task.is_regression:
        return float(pearsonr(s, t)[0])
    return float(cohen_kappa_score(s, t))


def mean_interval(scores: list[float], level: float = 0.95) -> list[float] | None:
    """The ``level`` confidence interval of the mean of ``scores`` (seeds), Student's t with ``n - 1`` degrees of
    freedom: ``mean ± t_{(1+level)/2, n-1} * s / sqrt(n)`` (``s``: the sample standard deviation), via scipy.

    Returns:
        ``[low, high]``, or ``None`` for fewer than 2 scores.
    """
    from scipy import stats

    if len(scores) < 2:
        return None
    values = np.asarray(scores, dtype=float)
    half = stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return [float(values.mean() - half), float(values.mean() + half)]


def speedup(teacher_ms: float | None, student_ms: float | None) -> float | None:
    """How many times faster the student runs than the teacher: ``teacher_ms / student_ms`` (latencies measured
    in the same run, same batch size); ``None`` when either is unknown."""
    return teacher_ms / student_ms if teacher_ms and student_ms else None


def label_shares(task: TaskSpec, values: np.ndarray, edges: np.ndarray | None = None) -> list[float]:
    """The share of each class (or score bin) among predictions or gold labels.

    Args:
        values: logits ``(n, num_labels)`` (classes by argmax), or labels ``(n,)``; regression: scores ``(n,)``
            or ``(n, 1)``.
        edges: regression only: bin edges ``(k + 1,)`` (default: 5 equal-width bins over ``values``' range).

    Returns:
        ``num_labels`` shares (regression: one per bin), summing to 1 (all zeros when ``n == 0``).
    """
    values = np.asarray(values)
    if task.is_regression:
        scores = values.reshape(len(values), -1)[:, 0] if values.ndim > 1 else values
        if edges is None:
            edges = np.linspace(scores.min(), scores.max(), 6) if len(scores) else np.linspace(0, 1, 6)
        counts = np.histogram(np.clip(scores, edges[0], edges[-1]), bins=edges)[0]
    else:
        labels = values.argmax(1) if values.ndim == 2 else values.astype(int)
        counts = np.bincount(labels, minlength=task.num_labels)
    total = counts.sum()
    return [round(float(c / total), 4) if total else 0.0 for c in counts]
