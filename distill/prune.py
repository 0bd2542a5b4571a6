"""A student cut out of the teacher: structured pruning of depth, width, heads and MLP neurons.

Minitron (Muralidharan et al. 2024, "Compact Language Models via Pruning and Knowledge Distillation", §2)
initialises a small model by *pruning* a large one along every axis, ranking each unit by its activations
on a small calibration set, and then recovers accuracy with knowledge distillation. Compared with a randomly
initialised student of the same shape, the pruned student starts with the teacher's word embeddings, attention
patterns and feed-forward features, which matters most when the distillation budget is small (a CPU, minutes).

Importance (all measured on the teacher, over the real tokens of ``calibration_rows`` transfer-set texts):

* hidden channel ``c``: mean ``|h_c|`` over the embedding output and every layer output (all post-LayerNorm);
* attention head: mean L2 norm of the head's context vector (its input to the attention output projection);
* MLP neuron: mean ``|GELU(x W_1 + b_1)|``;
* layer: block importance ``1 - cos(h_in, h_out)`` (Men et al. 2024, ShortGPT); the most important
  ``num_hidden_layers`` layers are kept in their order (or the ``layers`` given).

Heads of different sizes: a student head of size ``d_s = g * d_t`` (``g`` a whole number) is ``g`` teacher heads
side by side, its query scaled by ``sqrt(g)`` so that its pre-softmax score is the *sum* of theirs (BERT divides
by ``sqrt(d_s)`` where the teacher divided by ``sqrt(d_t)``). Kept channels go through every weight and
LayerNorm; LayerNorm then normalises over the kept channels only, so the pruned student approximates the
teacher and distillation does the rest.
"""

from __future__ import annotations

import math

import torch

from ..errors import DfkdError
from .data import LengthGroupedBatchSampler
from .students import STUDENTS, bert_student_config


def _bert_parts(model):
    base = getattr(model, model.base_model_prefix, None)
    if model.config.model_type != "bert" or base is None or not hasattr(base, "encoder"):
        raise DfkdError(f"teacher_pruned needs a BERT teacher (model_type 'bert'); got {model.config.model_type!r}")
    return base


@torch.inference_mode()
def teacher_importance(teacher, tokenizer, texts: list[str], max_length: int = 128, batch_size: int = 64) -> dict:
    """Activation-based importance of the teacher's channels, heads, neurons and layers (see the module docstring).

    Args:
        teacher: a BERT ``...ForSequenceClassification`` (any device).
        tokenizer: the teacher's tokenizer.
        texts: calibration texts (non-empty).

    Returns:
        ``{"channels": (H,), "heads": (L, h), "neurons": (L, I), "layers": (L,)}`` float tensors on the CPU;
        larger = more important.

    Raises:
        DfkdError: no texts, or a teacher that is not BERT.
    """
    base = _bert_parts(teacher)
    if not texts:
        raise DfkdError("teacher_pruned needs calibration texts; expected a non-empty transfer set")
    cfg = teacher.config
    n_layers, n_heads = cfg.num_hidden_layers, cfg.num_attention_heads
    head_dim = cfg.hidden_size // n_heads
    device = next(teacher.parameters()).device
    heads = torch.zeros(n_layers, n_heads)
    neurons = torch.zeros(n_layers, cfg.intermediate_size)
    channels = torch.zeros(cfg.hidden_size)
    layers = torch.zeros(n_layers)
    tokens = 0
    mask_now: list[torch.Tensor] = []  # the current batch's (B, T) token mask, read by the hooks

    def head_hook(i):
        def hook(_module, args):
            ctx = args[0].float()
            norms = ctx.view(*ctx.shape[:2], n_heads, head_dim).norm(dim=-1)  # (B, T, h)
            heads[i] += (norms * mask_now[0][..., None]).sum((0, 1)).cpu()
        return hook

    def neuron_hook(i):
        def hook(_module, args):
            neurons[i] += (args[0].float().abs() * mask_now[0][..., None]).sum((0, 1)).cpu()
        return hook

    handles = []
    for i, layer in enumerate(base.encoder.layer):
        handles.append(layer.attention.output.dense.register_forward_pre_hook(head_hook(i)))
        handles.append(layer.output.dense.register_forward_pre_hook(neuron_hook(i)))
    was_training = teacher.training
    teacher.eval()
    # batches of similar lengths (as for inference): every sum below runs over real tokens only, so the order of
    # the texts changes nothing but the padding computed and thrown away (half to two thirds of the work on RTE)
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    batches = LengthGroupedBatchSampler([len(x) for x in enc["input_ids"]], batch_size, shuffle=False).batches()
    try:
        for idx in batches:
            batch = tokenizer.pad([{k: v[i] for k, v in enc.items()} for i in idx], return_tensors="pt").to(device)
            mask = batch["attention_mask"].float()
            mask_now[:] = [mask]
            states = base(**batch, output_hidden_states=True).hidden_states  # L + 1 of (B, T, H)
            for h in states:
                channels += (h.float().abs() * mask[..., None]).sum((0, 1)).cpu()
            for i in range(n_layers):
                cos = torch.nn.functional.cosine_similarity(states[i].float(), states[i + 1].float(), dim=-1)
                layers[i] += ((1 - cos) * mask).sum().cpu()
            tokens += int(mask.sum())
    finally:
        for handle in handles:
            handle.remove()
        teacher.train(was_training)
    return {"channels": channels / (tokens * (n_layers + 1)), "heads": heads / tokens,
            "neurons": neurons / tokens, "layers": layers / tokens}


def top_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores, in increasing index order (ties: lower index first)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))[:k]
    return torch.tensor(sorted(order), dtype=torch.long)


@torch.no_grad()
def prune_teacher(teacher, importance: dict, num_hidden_layers: int, hidden_size: int, num_attention_heads: int,
                  intermediate_size: int, layers: list[int] | None = None, **overrides):
    """A ``BertForSequenceClassification`` of the given shape whose weights are slices of the teacher's.

    Args:
        teacher: a BERT ``...ForSequenceClassification``; ``importance``: :func:`teacher_importance`'s output.
        num_hidden_layers / hidden_size / num_attention_heads / intermediate_size: the student's shape, each at
            most the teacher's; the student's head size must be a whole multiple of the teacher's.
        layers: teacher layers to keep (0-based, in order); default: the most important ones.
        overrides: other ``BertConfig`` fields (e.g. dropout).

    Raises:
        DfkdError: a size larger than the teacher's, a head size that is not a multiple of the teacher's,
            or ``layers`` that do not fit.
    """
    from transformers import BertForSequenceClassification

    base = _bert_parts(teacher)
    tc = teacher.config
    config = bert_student_config(teacher, "teacher_pruned", num_hidden_layers, hidden_size, num_attention_heads,
                                 intermediate_size, layer_norm_eps=tc.layer_norm_eps, hidden_act=tc.hidden_act,
                                 **overrides)
    for name, value, limit in (("num_hidden_layers", num_hidden_layers, tc.num_hidden_layers),
                               ("hidden_size", hidden_size, tc.hidden_size),
                               ("intermediate_size", intermediate_size, tc.intermediate_size)):
        if not 1 <= value <= limit:
            raise DfkdError(f"teacher_pruned: {name}={value}; expected 1..{limit} (the teacher's)")
    d_t, d_s = tc.hidden_size // tc.num_attention_heads, hidden_size // num_attention_heads
    group = d_s // d_t
    if d_s % d_t or num_attention_heads * group > tc.num_attention_heads:
        raise DfkdError(f"teacher_pruned: the student's head size {d_s} (hidden/heads) must be a whole multiple of "
                        f"the teacher's {d_t}, with at most {tc.num_attention_heads} teacher heads in all; got "
                        f"{num_attention_heads} heads of {d_s}")
    if layers is None:
        layers = top_indices(importance["layers"], num_hidden_layers).tolist()
    layers = [int(i) for i in layers]
    if len(layers) != num_hidden_layers or any(not 0 <= i < tc.num_hidden_layers for i in layers):
        raise DfkdError(f"teacher_pruned: layers {layers}; expected {num_hidden_layers} indices in "
                        f"0..{tc.num_hidden_layers - 1}")

    student = BertForSequenceClassification(config)
    s_base = student.bert
    ch = top_indices(importance["channels"], hidden_size)

    def take(dst, src, rows=None, cols=None, scale=1.0):
        w = src.weight
        w = w if rows is None else w[rows]
        w = w if cols is None else w[:, cols]
        dst.weight.copy_(w * scale)
        if getattr(dst, "bias", None) is not None:
            dst.bias.copy_((src.bias if rows is None else src.bias[rows]) * scale)

    t_emb, s_emb = base.embeddings, s_base.embeddings
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        getattr(s_emb, name).weight.copy_(getattr(t_emb, name).weight[:, ch])
    take(s_emb.LayerNorm, t_emb.LayerNorm, rows=ch)
    for s_layer, t_index in zip(s_base.encoder.layer, layers):
        t_layer = base.encoder.layer[t_index]
        kept_heads = top_indices(importance["heads"][t_index], num_attention_heads * group)  # g consecutive = 1 head
        dims = (kept_heads[:, None] * d_t + torch.arange(d_t)).reshape(-1)
        t_att, s_att = t_layer.attention, s_layer.attention
        take(s_att.self.query, t_att.self.query, rows=dims, cols=ch, scale=math.sqrt(group))
        take(s_att.self.key, t_att.self.key, rows=dims, cols=ch)
        take(s_att.self.value, t_att.self.value, rows=dims, cols=ch)
        take(s_att.output.dense, t_att.output.dense, rows=ch, cols=dims)
        take(s_att.output.LayerNorm, t_att.output.LayerNorm, rows=ch)
        kept = top_indices(importance["neurons"][t_index], intermediate_size)
        take(s_layer.intermediate.dense, t_layer.intermediate.dense, rows=kept, cols=ch)
        take(s_layer.output.dense, t_layer.output.dense, rows=ch, cols=kept)
        take(s_layer.output.LayerNorm, t_layer.output.LayerNorm, rows=ch)
    if base.pooler is not None and s_base.pooler is not None:
        take(s_base.pooler.dense, base.pooler.dense, rows=ch, cols=ch)
    take(student.classifier, teacher.classifier, cols=ch)
    return student


@STUDENTS.register("teacher_pruned")
def from_teacher_pruned(teacher, texts, tokenizer, num_hidden_layers: int = 4, hidden_size: int = 256,
                        num_attention_heads: int = 4, intermediate_size: int = 1024, layers: list[int] | None = None,
                        calibration_rows: int = 512, seed: int = 0, **overrides):
    """Minitron's initialisation: the teacher pruned to a BERT shape by activation importance
    (see :mod:`dfkd.distill.prune`).

    Args:
        texts / tokenizer: the transfer set's texts and the teacher's tokenizer; ``calibration_rows`` of the
            texts (a ``seed``-ed sample) rank the teacher's units.
        layers: teacher layers to keep (0-based); default: the ``num_hidden_layers`` most important.
        overrides: other ``BertConfig`` fields (e.g. dropout).

    Raises:
        DfkdError: a non-BERT teacher, a shape that does not fit inside the teacher's, no texts.
    """
    import random

    rows = list(texts)
    if len(rows) > calibration_rows:
        rows = random.Random(seed).sample(rows, calibration_rows)
    importance = teacher_importance(teacher, tokenizer, rows)
    return prune_teacher(teacher, importance, num_hidden_layers, hidden_size, num_attention_heads,
                         intermediate_size, layers, **overrides)
