"""Distillation losses, one registry; the distiller asks each for a number given student and teacher outputs.

Outputs are dicts (TextBrewer's adaptor idea): ``{"logits": (B, C)}``, plus ``hidden_states`` and
``attentions`` (pre-softmax scores) for the layer-wise losses of :mod:`dfkd.distill.layerwise`. ``batch`` carries ``labels`` ``(B,)`` when the transfer set has them.

Weights are named explicitly (``kd_weight``, ``mse_weight``, ``ce_weight``) because conventions differ
(torchdistill's α weighs the hard label, HF's distiller's α the soft one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..errors import DfkdError
from ..registry import Registry

LOSSES: Registry[type] = Registry("loss")


@LOSSES.register("kd")
class SoftTargetKL:
    """Hinton et al. 2015, "Distilling the Knowledge in a Neural Network", §2:

    ``T² · KL(softmax(z_t / T) ‖ softmax(z_s / T))``, averaged over the batch.

    The T² factor keeps the gradient magnitude independent of T (as in HF's and torchdistill's
    distillers; TinyBERT's soft cross-entropy omits it). For regression (``C == 1``) softmax is
    meaningless, so this falls back to the logit MSE of :class:`LogitMSE`.

    Shapes: ``logits`` ``(B, C)``; returns a scalar.
    """

    def __init__(self, temperature: float = 1.0):
        if temperature <= 0:
            raise DfkdError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def __call__(self, student: dict, teacher: dict, batch: dict) -> torch.Tensor:
        s, t = student["logits"], teacher["logits"]
        if s.shape[-1] == 1:
            return F.mse_loss(s, t)
        T = self.temperature
        log_p_s = F.log_softmax(s / T, dim=-1)
        log_p_t = F.log_softmax(t / T, dim=-1)
        return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * T * T


@LOSSES.register("logit_mse")
class LogitMSE:
    """Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural Networks", eq. 2:

    ``mean((z_s − z_t)²)`` over batch and classes. Also the distillation loss for regression (STS-B).
    Shapes: ``logits`` ``(B, C)``; returns a scalar.
    """

    def __call__(self, student: dict, teacher: dict, batch: dict) -> torch.Tensor:
        return F.mse_loss(student["logits"], teacher["logits"])


@LOSSES.register("ce")
class HardLabelLoss:
    """Cross-entropy with the gold labels (MSE to the gold score for regression).

    Rows without a label (``labels == -1``; NaN for regression) are ignored; a batch with no labelled row
    contributes 0. Shapes: ``logits`` ``(B, C)``, ``labels`` ``(B,)``; returns a scalar.
    """

    def __call__(self, student: dict, teacher: dict, batch: dict) -> torch.Tensor:
        logits, labels = student["logits"], batch.get("labels")
        if labels is None:
            return logits.sum() * 0.0
        if logits.shape[-1] == 1:
            keep = ~torch.isnan(labels)
            if not keep.any():
                return logits.sum() * 0.0
            return F.mse_loss(logits[keep, 0], labels[keep])
        keep = labels >= 0
        if not keep.any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits[keep], labels[keep])


@dataclass
class DistillationConfig:
    """Which losses the student is trained with, and their weights.

    Attributes:
        temperature: T of the soft-target KL (``kd``).
        kd_weight: weight of :class:`SoftTargetKL`.
        mse_weight: weight of :class:`LogitMSE`.
        ce_weight: weight of :class:`HardLabelLoss` (needs ``label`` in the transfer set).
        extra: further registered losses as ``{"name": ..., "weight": ..., **constructor kwargs}``.
    """

    temperature: float = 1.0
    kd_weight: float = 1.0
    mse_weight: float = 0.0
    ce_weight: float = 0.0
    extra: list[dict] = field(default_factory=list)

    def build(self, student=None, teacher=None) -> LossRecipe:
        """The :class:`LossRecipe`. Layer-wise terms get their shapes (``student_layers``, ``teacher_layers``,
        ``student_hidden``, ``teacher_hidden``) from ``student`` and ``teacher`` unless given in ``extra``.

        Raises:
            DfkdError: an empty recipe, or a layer-wise term without the models to size it.
        """
        import inspect

        dims = {}
        for who, model in (("student", student), ("teacher", teacher)):
            for key, attr in (("layers", "num_hidden_layers"), ("hidden", "hidden_size")):
                value = getattr(model.config, attr, None) if model is not None else None
                if value is not None:
                    dims[f"{who}_{key}"] = value
        terms = []
        if self.kd_weight:
            terms.append(("kd", self.kd_weight, SoftTargetKL(self.temperature)))
        if self.mse_weight:
            terms.append(("logit_mse", self.mse_weight, LogitMSE()))
        if self.ce_weight:
            terms.append(("ce", self.ce_weight, HardLabelLoss()))
        for spec in self.extra:
            spec = dict(spec)
            name, weight = spec.pop("name"), float(spec.pop("weight", 1.0))
            cls = LOSSES.get(name)
            params = inspect.signature(cls.__init__ if isinstance(cls, type) else cls).parameters
            for key in params:
                if key in dims and key not in spec:
                    spec[key] = dims[key]
            if missing := [k for k, p in params.items() if k not in ("self", "args", "kwargs") and
                           p.default is inspect.Parameter.empty and k not in spec]:
                raise DfkdError(f"loss {name!r} needs {missing}; expected the student and teacher models (or "
                                "these values in its settings)")
            terms.append((name, weight, cls(**spec)))
        if not terms:
            raise DfkdError("the loss recipe is empty; set kd_weight, mse_weight or ce_weight above 0")
        return LossRecipe(terms)


#: the settings a layer-wise term gets from the two models when its recipe is built (:meth:`DistillationConfig.build`)
MODEL_DIMS = ("student_layers", "teacher_layers", "student_hidden", "teacher_hidden")


def check_losses(config: DistillationConfig, where: str = "losses") -> None:
    """Every value of a loss recipe checked before any model exists, as :meth:`DistillationConfig.build` and the
    loss constructors would check it once the models are loaded.

    Raises:
        DfkdError: a temperature that is not positive; a negative weight; an empty recipe; an ``extra`` term with
            an unknown loss name (with the known ones), an unknown setting (with a close match) or a wrong type.
    """
    import inspect

    from ..config import check_keys, check_keywords

    if config.temperature <= 0:
        raise DfkdError(f"{where}: temperature {config.temperature}; expected a number > 0 (1: the logits as they are)")
    for key in ("kd_weight", "mse_weight", "ce_weight"):
        if getattr(config, key) < 0:
            raise DfkdError(f"{where}: {key} {getattr(config, key)}; expected a weight >= 0 (0: the term is off)")
    for k, term in enumerate(config.extra, 1):
        at = f"{where}.extra[{k}]"
        if not isinstance(term, dict) or "name" not in term:
            raise DfkdError(f"{at}: expected an object with a loss name, e.g. {{\"name\": \"hidden_mse\", \"weight\": 1.0}}")
        cls = LOSSES.get(term["name"])
        fn = cls.__init__ if isinstance(cls, type) else cls
        named = [n for n in inspect.signature(fn).parameters if n not in ("self", "args", "kwargs")]
        settings = {key: v for key, v in term.items() if key not in ("name", "weight")}
        check_keys(settings, named, at)
        check_keywords(fn, settings, at, skip=("self",))
        weight = term.get("weight", 1.0)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise DfkdError(f"{at}: weight {weight!r}; expected a number >= 0")
        if settings.get("temperature", 1.0) <= 0:
            raise DfkdError(f"{at}: temperature {settings['temperature']}; expected a number > 0")
    if not (config.kd_weight or config.mse_weight or config.ce_weight or config.extra):
        raise DfkdError(f"{where}: the loss recipe is empty; set kd_weight, mse_weight or ce_weight above 0")


class LossRecipe:
    """A weighted sum of loss terms: ``Σ_i w_i · L_i(student, teacher, batch)``.

    Calling it returns ``(total, {name: value})``; the total is a scalar tensor with gradients.
    """

    def __init__(self, terms: list[tuple[str, float, object]]):
        self.terms = terms

    @property
    def needs(self) -> set[str]:
        """Model outputs the terms read: ``logits`` always; ``hidden_states`` / ``attentions`` for layer-wise ones."""
        return {"logits"}.union(*(getattr(fn, "needs", ()) for _, _, fn in self.terms))

    def modules(self) -> list[torch.nn.Module]:
        """Terms with learned parameters (e.g. TinyBERT's projections ``W_h``), to optimise with the student."""
        return [fn for _, _, fn in self.terms if isinstance(fn, torch.nn.Module)]

    def __call__(self, student: dict, teacher: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        total, parts = None, {}
        for name, weight, fn in self.terms:
            value = fn(student, teacher, batch)
            parts[name] = float(value.detach())
            total = weight * value if total is None else total + weight * value
        return total, parts
