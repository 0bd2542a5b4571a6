"""Layer-wise distillation losses: TinyBERT's embedding, hidden-state and attention MSE (Jiao et al. 2020, §3.1,
eqs. 7-11), DistilBERT's cosine loss (Sanh et al. 2019, §3), and layer mappings.

Outputs are dicts: ``hidden_states`` is the tuple ``(embeddings, layer 1, ..., layer N)`` of ``(B, L, H)``
tensors and ``attentions`` the tuple ``(layer 1, ..., layer N)`` of ``(B, heads, L, L)`` **pre-softmax**
attention scores, both as ``transformers`` returns them with ``output_hidden_states`` /
``output_attentions``. ``transformers`` returns post-softmax probabilities as "attentions"; to get the
scores TinyBERT uses, :func:`use_attention_scores` switches a model to the attention function
:func:`attention_with_scores` (registered with ``transformers.AttentionInterface``), which computes the same
attention but returns ``Q K^T / sqrt(d)`` before the mask and the softmax.

Padding: every loss here averages over real tokens only (``attention_mask``); for attention, over
(query, key) pairs that are both real. The reference implementation averages over padded positions too,
which weighs short sentences less and pulls padded rows towards each other.

Layer mapping (student layer ``m`` -> teacher layer ``g(m)``, 1-based; 0 is the embedding layer):

* ``uniform``: ``g(m) = m * N / M`` (TinyBERT's default; needs ``N`` divisible by ``M``);
* ``last``: ``g(m) = N - M + m`` (the top ``M`` teacher layers, as Patient KD's "PKD-last");
* an explicit list of ``M`` teacher layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DfkdError
from .losses import LOSSES

SCORES_IMPLEMENTATION = "dfkd_scores"


def layer_mapping(mapping: str | list[int], student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """``[(student layer, teacher layer), ...]`` for student layers ``1..M`` (1-based).

    Raises:
        DfkdError: an unknown mapping name, ``uniform`` with ``N`` not divisible by ``M``, a list of the wrong
            length, or a teacher layer outside ``1..N``.
    """
    m, n = student_layers, teacher_layers
    if m < 1 or n < 1:
        raise DfkdError(f"need at least one layer in each model, got student {m}, teacher {n}")
    if mapping == "uniform":
        if n % m:
            raise DfkdError(f"uniform layer mapping needs the teacher's {n} layers to be a multiple of the student's "
                            f"{m}; expected 'last' or an explicit list of {m} teacher layers")
        return [(i, i * n // m) for i in range(1, m + 1)]
    if mapping == "last":
        if m > n:
            raise DfkdError(f"'last' mapping needs a student no deeper than the teacher ({m} > {n})")
        return [(i, n - m + i) for i in range(1, m + 1)]
    if isinstance(mapping, list | tuple):
        if len(mapping) != m:
            raise DfkdError(f"layer mapping lists {len(mapping)} teacher layers for a {m}-layer student; expected {m}")
        if bad := [t for t in mapping if not 1 <= int(t) <= n]:
            raise DfkdError(f"layer mapping names teacher layer(s) {bad}; expected layers 1..{n}")
        return [(i + 1, int(t)) for i, t in enumerate(mapping)]
    raise DfkdError(f"unknown layer mapping {mapping!r}; expected 'uniform', 'last' or a list of teacher layers")


def attention_with_scores(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Eager attention that returns the pre-softmax scores ``Q K^T * scaling`` ``(B, h, L, L)`` as its weights.

    The attention output is the same as ``transformers``' eager attention (mask added, softmax, dropout).
    """
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is None:
        weights = scores
    elif attention_mask.dtype == torch.bool:  # True = attend (the mask format custom implementations receive)
        weights = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    else:  # additive float mask
        weights = scores + attention_mask[..., : key.shape[-2]]
    weights = F.dropout(F.softmax(weights, dim=-1), p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), scores


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(SCORES_IMPLEMENTATION, attention_with_scores)
    # the padding mask is built as for eager attention (additive float); without this it would be None
    AttentionMaskInterface.register(SCORES_IMPLEMENTATION, ALL_MASK_ATTENTION_FUNCTIONS["eager"])


_register()


def use_attention_scores(model, implementation: str = SCORES_IMPLEMENTATION) -> str:
    """Set ``model``'s attention implementation (default: :func:`attention_with_scores`); return the old one.

    Call again with the returned name to switch back (e.g. before ``save_pretrained``).
    """
    previous = model.config._attn_implementation
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(implementation)
    else:
        model.config._attn_implementation = implementation
    return previous


def _token_mask(batch: dict, like: torch.Tensor) -> torch.Tensor:
    mask = batch.get("attention_mask")
    return torch.ones(like.shape[:2], device=like.device) if mask is None else mask.to(like.dtype)


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``(a - b)^2`` over the positions where ``mask`` (broadcast from the leading dims) is 1.

    Shapes: ``a``, ``b`` ``(B, L, ...)``; ``mask`` ``(B, L)`` or ``(B, ..., L, L)``-broadcastable.
    """
    sq = (a - b) ** 2
    while mask.dim() < sq.dim():
        mask = mask.unsqueeze(-1)
    mask = mask.expand_as(sq)
    return (sq * mask).sum() / mask.sum().clamp_min(1)


class _Projected(nn.Module):
    """Base for losses with a learned student->teacher projection ``W`` (``H_s -> H_t``; TinyBERT's W_e, W_h).

    The projection has a bias, as TinyBERT's reference (``fit_dense = nn.Linear(hidden, fit_size)``) although
    the paper writes ``E^S W_e`` and ``H^S W_h``: the bias takes the part of the teacher's states shared by all tokens
    (about 10% of their energy for the default teacher), so the student's own states need not carry it.
    """

    def __init__(self, student_hidden: int, teacher_hidden: int):
        super().__init__()
        self.proj = nn.Linear(student_hidden, teacher_hidden)


@LOSSES.register("embedding_mse")
class EmbeddingMSE(_Projected):
    """TinyBERT eq. 10: ``MSE(E^S W_e, E^T)`` over real tokens. ``hidden_states[0]`` ``(B, L, H)`` of each."""

    needs = ("hidden_states",)

    def forward(self, student: dict, teacher: dict, batch: dict) -> torch.Tensor:
        s, t = student["hidden_states"][0], teacher["hidden_states"][0]
        return masked_mse(self.proj(s), t, _token_mask(batch, s))


@LOSSES.register("hidden_mse")
class HiddenMSE(_Projected):
    """TinyBERT eq. 9: ``sum over mapped layers of MSE(H^S_m W_h, H^T_g(m))`` over real tokens.

    Args:
        mapping: :func:`layer_mapping` name or list; student_layers / teacher_layers: depths;
        student_hidden / teacher_hidden: widths (one ``W_h`` shared by all mapped layers; see
            :class:`_Projected`).
    """

    needs = ("hidden_states",)

    def __init__(self, student_layers: int, teacher_layers: int, student_hidden: int, teacher_hidden: int,
                 mapping: str | list[int] = "uniform"):
        super().__init__(student_hidden, teacher_hidden)
        self.pairs = layer_mapping(mapping, student_layers, teacher_layers)

    def forward(self, student: dict, teacher: dict, batch: dict) -> torch.Tensor:
        s_h, t_h = student["hidden_states"], teacher["hidden_states"]
        mask = _token_mask(batch, s_h[0])
        return sum(masked_mse(self.proj(s_h[m]), t_h[t], mask) for m, t in self.pairs)


@LOSSES.register("attention_mse")
class AttentionMSE(nn.Module):
    """TinyBERT eq. 8: ``sum over mapped layers of (1/h) sum_heads MSE(A^S_i, A^T_i)`` on pre-softmax scores,
    over (query, key) pairs that are both real tokens.

    When the head counts differ (e.g. a 4-head student, a 12-head teacher), the head-averaged score maps
    are compared instead (TinyBERT's students keep the teacher's head count, so eq. 8 assumes equal ``h``).
    """

    needs = ("attentions",)

    def __init__(self, student_layers: int, teacher_layers: int, mapping: str | list[int] = "uniform"):
        super().__init__()
        self.pairs = layer_mapping(mapping, student_layers, teacher_layers)

    def forward(self, student: dict, teacher: dict, batch: dict) -> torch.Tensor:
        s_a, t_a = student["attentions"], teacher["attentions"]
        tok = _token_mask(batch, s_a[0][:, 0])
        pair_mask = (tok[:, :, None] * tok[:, None, :])[:, None]  # (B, 1, L, L)
        total = 0.0
        for m, t in self.pairs:
            s, tt = s_a[m - 1], t_a[t - 1]
            if s.shape[1] != tt.shape[1]:
                s, tt = s.mean(1, keepdim=True), tt.mean(1, keepdim=True)
            total = total + masked_mse(s, tt, pair_mask.expand(-1, s.shape[1], -1, -1))
        return total


@LOSSES.register("cosine_hidden")
class CosineHidden(nn.Module):
    """DistilBERT §3: ``1 - cos(h^S, h^T)`` of the last hidden states, averaged over real tokens.

    With different widths the student's states go through a learned projection first.
    """

    needs = ("hidden_states",)

    def __init__(self, student_hidden: int, teacher_hidden: int):
        super().__init__()
        self.proj = nn.Identity() if student_hidden == teacher_hidden else nn.Linear(student_hidden, teacher_hidden,
                                                                                     bias=False)

    def forward(self, student: dict, teacher: dict, batch: dict) -> torch.Tensor:
        s, t = self.proj(student["hidden_states"][-1]), teacher["hidden_states"][-1]
        mask = _token_mask(batch, s)
        cos = F.cosine_similarity(s, t, dim=-1)
        return ((1 - cos) * mask).sum() / mask.sum().clamp_min(1)
