"""Where each encoder family keeps its parts: one small adapter per family, so that pruning, the teacher-layers
student and the importance ranking are written once for all of them.

An :class:`Architecture` names, as attribute paths, the base model's list of layers and, inside a layer, the
attention's query, key, value and output projections and the feed-forward block's input and output projections,
plus the names its config gives the four sizes (depth, width, heads, FFN). Everything else a pruned student needs
(embeddings, LayerNorms, pooler, classification head) is found by shape: a dimension of the teacher's hidden size
is a hidden channel.

Families whose attention keeps per-head state outside these projections (DeBERTa's relative-position
projections, MPNet's relative attention bias) are registered with ``prunable=False``: their students can drop
layers (the teacher-layers student) but not be cut in width, heads or FFN yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DfkdError
from ..registry import Registry

#: the standard names of a model's four sizes (BERT's config names)
SHAPE = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
_BERT_KEYS = {k: k for k in SHAPE}


@dataclass(frozen=True)
class Architecture:
    """Where a model family keeps its layers and projections (paths are dotted attribute names).

    Attributes:
        name: the family (``bert``); model_types: the ``config.model_type`` values it covers.
        layers: the layer list, from the base model (``encoder.layer``).
        query / key / value / attention_output: the attention projections, from a layer; the output projection's
            input is the heads' context vectors ``(B, T, heads * head_dim)``.
        ffn_in / ffn_out: the feed-forward projections, from a layer; ``ffn_out``'s input is the activations
            ``(B, T, intermediate_size)``.
        config_keys: standard size name (:data:`SHAPE`) -> the family's config attribute.
        prunable: width, heads and FFN can be cut (``False``: layers only).
    """

    name: str
    model_types: tuple[str, ...]
    layers: str = "encoder.layer"
    query: str = "attention.self.query"
    key: str = "attention.self.key"
    value: str = "attention.self.value"
    attention_output: str = "attention.output.dense"
    ffn_in: str = "intermediate.dense"
    ffn_out: str = "output.dense"
    config_keys: dict = field(default_factory=lambda: dict(_BERT_KEYS))
    prunable: bool = True

    def roles(self) -> dict[str, tuple[str, str]]:
        """Projection path -> ``(index set of its output rows, of its input columns)``: ``heads`` (kept head
        dimensions), ``neurons`` (kept FFN units) or ``channels`` (kept hidden channels)."""
        return {self.query: ("heads", "channels"), self.key: ("heads", "channels"),
                self.value: ("heads", "channels"), self.attention_output: ("channels", "heads"),
                self.ffn_in: ("neurons", "channels"), self.ffn_out: ("channels", "neurons")}


ARCHITECTURES: Registry[Architecture] = Registry("model family")
ARCHITECTURES.add(Architecture("bert", ("bert", "roberta", "xlm-roberta", "electra", "camembert", "data2vec-text")))
ARCHITECTURES.add(Architecture(
    "distilbert", ("distilbert",), layers="transformer.layer", query="attention.q_lin", key="attention.k_lin",
    value="attention.v_lin", attention_output="attention.out_lin", ffn_in="ffn.lin1", ffn_out="ffn.lin2",
    config_keys={"num_hidden_layers": "n_layers", "hidden_size": "dim", "num_attention_heads": "n_heads",
                 "intermediate_size": "hidden_dim"}))
ARCHITECTURES.add(Architecture(
    "deberta-v2", ("deberta-v2", "deberta"), query="attention.self.query_proj", key="attention.self.key_proj",
    value="attention.self.value_proj", prunable=False))
ARCHITECTURES.add(Architecture(
    "mpnet", ("mpnet",), query="attention.attn.q", key="attention.attn.k", value="attention.attn.v",
    attention_output="attention.attn.o", prunable=False))


def architecture_of(model_or_config) -> Architecture:
    """The :class:`Architecture` of a model, its config, or its ``config.json`` as a dict.

    Raises:
        DfkdError: a model type no registered family covers, naming the covered ones.
    """
    config = getattr(model_or_config, "config", model_or_config)
    model_type = config.get("model_type") if isinstance(config, dict) else getattr(config, "model_type", None)
    for name in ARCHITECTURES:
        arch = ARCHITECTURES.get(name)
        if model_type in arch.model_types:
            return arch
    known = sorted(t for n in ARCHITECTURES for t in ARCHITECTURES.get(n).model_types)
    raise DfkdError(f"model type {model_type!r} has no architecture adapter; expected one of: {', '.join(known)}")


def model_shape(config) -> dict[str, int]:
    """The four sizes of a model (its config object or ``config.json`` dict) under their standard names."""
    arch = architecture_of(config)
    get = config.get if isinstance(config, dict) else (lambda k, d=None: getattr(config, k, d))
    return {std: get(key) for std, key in arch.config_keys.items()}


def attribute(obj, path: str):
    """``obj.<path>`` for a dotted path (``encoder.layer``)."""
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def base_model(model):
    """The encoder under a task head (``model.bert``, ``model.roberta``, ...)."""
    return getattr(model, model.base_model_prefix, model)


def layer_list(model):
    """The model's ``nn.ModuleList`` of transformer layers."""
    return attribute(base_model(model), architecture_of(model).layers)


def keep_layers(model, layers: list[int]):
    """``model`` (changed in place and returned) keeping only the ``layers`` (0-based, in order); its config's depth
    follows."""
    import torch

    arch = architecture_of(model)
    holder_path, _, name = arch.layers.rpartition(".")
    holder = attribute(base_model(model), holder_path) if holder_path else base_model(model)
    old = getattr(holder, name)
    setattr(holder, name, torch.nn.ModuleList([old[i] for i in layers]))
    setattr(model.config, arch.config_keys["num_hidden_layers"], len(layers))
    return model
