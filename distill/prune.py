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

import copy
import math

import torch

from ..errors import DfkdError
from .architectures import SHAPE, architecture_of, attribute, base_model, keep_layers, layer_list, model_shape
from .data import LengthGroupedBatchSampler, accepted_inputs
from .students import STUDENTS, student_shape


@torch.inference_mode()
def teacher_importance(teacher, tokenizer, texts: list[str], max_length: int = 128, batch_size: int = 64) -> dict:
    """Activation-based importance of the teacher's channels, heads, neurons and layers (see the module docstring).

    Args:
        teacher: a ``...ForSequenceClassification`` of a family with an adapter
            (:mod:`dfkd.distill.architectures`), on any device.
        tokenizer: the teacher's tokenizer.
        texts: calibration texts (non-empty).

    Returns:
        ``{"channels": (H,), "heads": (L, h), "neurons": (L, I), "layers": (L,)}`` float tensors on the CPU;
        larger = more important.

    Raises:
        DfkdError: no texts, or a model family without an adapter.
    """
    arch = architecture_of(teacher)
    base = base_model(teacher)
    if not texts:
        raise DfkdError("teacher_pruned needs calibration texts; expected a non-empty transfer set")
    shape = model_shape(teacher.config)
    n_layers, n_heads = shape["num_hidden_layers"], shape["num_attention_heads"]
    head_dim = shape["hidden_size"] // n_heads
    device = next(teacher.parameters()).device
    heads = torch.zeros(n_layers, n_heads)
    neurons = torch.zeros(n_layers, shape["intermediate_size"])
    channels = torch.zeros(shape["hidden_size"])
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
    for i, layer in enumerate(layer_list(teacher)):
        handles.append(attribute(layer, arch.attention_output).register_forward_pre_hook(head_hook(i)))
        handles.append(attribute(layer, arch.ffn_out).register_forward_pre_hook(neuron_hook(i)))
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
            states = base(**accepted_inputs(base, batch), output_hidden_states=True).hidden_states  # L + 1 of (B, T, H)
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


def calibrated_importance(model, tokenizer, texts: list[str], calibration_rows: int = 512, seed: int = 0) -> dict:
    """:func:`teacher_importance` of ``model`` over a ``seed``-ed sample of ``calibration_rows`` of ``texts`` (all of
    them, in order, when there are no more than that)."""
    import random

    rows = list(texts)
    if len(rows) > calibration_rows:
        rows = random.Random(seed).sample(rows, calibration_rows)
    return teacher_importance(model, tokenizer, rows)


def top_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores, in increasing index order (ties: lower index first)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))[:k]
    return torch.tensor(sorted(order), dtype=torch.long)


def check_pruned_shape(source: dict, shape: dict, where: str, layers=None) -> None:
    """Whether a BERT model whose ``config.json`` is ``source`` can be cut to ``shape`` (:func:`prune_teacher`'s
    rules), read from configs alone, so a run refuses a shape before any work.

    Raises:
        DfkdError: a size outside ``1..`` the source's; heads that do not divide the hidden size; a head size that
            is not a whole multiple of the source's, or needing more source heads than there are; ``layers`` of
            the wrong number or out of range.
    """
    for name in ("num_hidden_layers", "hidden_size", "intermediate_size"):
        value, limit = shape[name], source[name]
        if not 1 <= value <= limit:
            raise DfkdError(f"{where}: {name}={value}; expected 1..{limit} (the teacher's)")
    heads, hidden = shape["num_attention_heads"], shape["hidden_size"]
    if heads < 1 or hidden % heads:
        raise DfkdError(f"{where}: hidden_size {hidden} must be divisible by num_attention_heads {heads}")
    t_heads = source["num_attention_heads"]
    d_t, d_s = source["hidden_size"] // t_heads, hidden // heads
    if d_s % d_t or heads * (d_s // d_t) > t_heads:
        raise DfkdError(f"{where}: the student's head size {d_s} (hidden/heads) must be a whole multiple of "
                        f"the teacher's {d_t}, with at most {t_heads} teacher heads in all; got {heads} heads of {d_s}")
    if isinstance(layers, list):
        depth = source["num_hidden_layers"]
        if len(layers) != shape["num_hidden_layers"] or any(not 0 <= int(i) < depth for i in layers):
            raise DfkdError(f"{where}: layers {layers}; expected {shape['num_hidden_layers']} indices in "
                            f"0..{depth - 1}")


def _check_pruned_spec(source: dict, settings: dict, where: str) -> None:
    """``teacher_pruned``'s spec against the teacher's config (its defaults filled in)."""
    shape = student_shape({**settings, "type": "teacher_pruned"})
    check_pruned_shape(_source_shape(source, where), shape, where, settings.get("layers"))


def _source_shape(source: dict, where: str) -> dict:
    """A teacher's ``config.json`` sizes under the standard names; for a family that can only drop layers, its
    width, heads and FFN as the largest a spec may name (they are kept as they are)."""
    try:
        arch = architecture_of(source)
    except DfkdError as err:
        raise DfkdError(f"{where}: {err}") from None
    shape = model_shape(source)
    if not arch.prunable:
        shape = {**shape, "hidden_size": 10 ** 6, "intermediate_size": 10 ** 6, "num_attention_heads": 10 ** 6}
    return shape


@torch.no_grad()
def prune_teacher(teacher, importance: dict, num_hidden_layers: int, hidden_size: int, num_attention_heads: int,
                  intermediate_size: int, layers: list[int] | None = None, **overrides):
    """A model of the teacher's family and class, of the given shape, whose weights are slices of the teacher's.

    Every parameter of the student is the teacher's parameter of the same name (its layer renumbered) cut to the
    kept units: the attention projections by kept head dimensions, the FFN projections by kept neurons (the
    family's :class:`~dfkd.distill.architectures.Architecture` says which those are), and every dimension of the
    teacher's hidden size by kept channels (embeddings, LayerNorms, pooler, classification head alike).

    Args:
        teacher: a ``...ForSequenceClassification`` of a prunable family; ``importance``:
            :func:`teacher_importance`'s output.
        num_hidden_layers / hidden_size / num_attention_heads / intermediate_size: the student's shape, each at
            most the teacher's; the student's head size must be a whole multiple of the teacher's.
        layers: teacher layers to keep (0-based, in order); default: the most important ones.
        overrides: other config fields of the student (e.g. dropout).

    Raises:
        DfkdError: a family that cannot be pruned, a size larger than the teacher's, a head size that is not a
            multiple of the teacher's, ``layers`` that do not fit, or an override the config does not have.
    """
    arch = architecture_of(teacher)
    if not arch.prunable:
        raise DfkdError(f"{arch.name} models cannot be cut in width, heads or FFN yet; expected a teacher_layers "
                        "student (its own layers)")
    if unknown := sorted(k for k in overrides if not hasattr(teacher.config, k)):
        raise DfkdError(f"teacher_pruned: unknown setting(s) {unknown}; expected fields of the teacher's "
                        f"{type(teacher.config).__name__} (e.g. hidden_dropout_prob)")
    t_shape = model_shape(teacher.config)
    shape = {"num_hidden_layers": num_hidden_layers, "hidden_size": hidden_size,
             "num_attention_heads": num_attention_heads, "intermediate_size": intermediate_size}
    check_pruned_shape(t_shape, shape, "teacher_pruned", layers)
    d_t = t_shape["hidden_size"] // t_shape["num_attention_heads"]
    group = (hidden_size // num_attention_heads) // d_t
    layers = [int(i) for i in (layers if layers is not None else
                               top_indices(importance["layers"], num_hidden_layers).tolist())]
    config = copy.deepcopy(teacher.config)
    for std, value in {**shape, **overrides}.items():
        setattr(config, arch.config_keys.get(std, std), value)
    student = type(teacher)(config)
    ch = top_indices(importance["channels"], hidden_size)
    kept = []  # per student layer: the teacher layer's kept head dimensions and neurons
    for t_index in layers:
        heads = top_indices(importance["heads"][t_index], num_attention_heads * group)  # g side by side = 1 head
        kept.append({"channels": ch, "heads": (heads[:, None] * d_t + torch.arange(d_t)).reshape(-1),
                     "neurons": top_indices(importance["neurons"][t_index], intermediate_size)})
    prefix = f"{teacher.base_model_prefix}.{arch.layers}."
    roles = arch.roles()
    t_params = teacher.state_dict()
    for name, param in student.state_dict().items():
        t_name, role = name, None
        if name.startswith(prefix):
            j, _, rest = name[len(prefix):].partition(".")
            t_name = f"{prefix}{layers[int(j)]}.{rest}"
            role = roles.get(rest.rpartition(".")[0])
        value = t_params[t_name]
        for dim in range(value.dim()):
            if role is not None and dim < 2:  # a projection: (rows, columns) by the role's index sets
                value = value.index_select(dim, kept[int(j)][role[dim]])
            elif value.shape[dim] != param.shape[dim]:
                if value.shape[dim] != t_shape["hidden_size"]:
                    raise DfkdError(f"teacher_pruned: cannot cut {t_name} {tuple(value.shape)} to {tuple(param.shape)}; "
                                    f"expected a dimension of the teacher's hidden size")
                value = value.index_select(dim, ch)
        if role is not None and name.rpartition(".")[0].endswith(arch.query) and group > 1:
            value = value * math.sqrt(group)  # the summed scores of g teacher heads (see the module docstring)
        param.copy_(value)
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
    if not architecture_of(teacher).prunable:
        return teacher_layers_fallback(teacher, num_hidden_layers, layers, "teacher_pruned")
    importance = calibrated_importance(teacher, tokenizer, texts, calibration_rows, seed)
    return prune_teacher(teacher, importance, num_hidden_layers, hidden_size, num_attention_heads,
                         intermediate_size, layers, **overrides)


def teacher_layers_fallback(model, num_hidden_layers: int | None, layers, kind: str):
    """For a family that cannot be cut in width, heads or FFN yet: a copy of ``model`` keeping ``layers`` (or
    :func:`alternate_layers`), with one printed line saying so."""
    arch = architecture_of(model)
    depth = model_shape(model.config)["num_hidden_layers"]
    keep = list(layers) if isinstance(layers, list) else alternate_layers(depth, num_hidden_layers or depth)
    print(f"{kind}: {arch.name} models cannot be cut in width, heads or FFN yet; the student is the teacher's own "
          f"layers {keep} at the teacher's width", flush=True)
    return keep_layers(copy.deepcopy(model).cpu(), keep)


def alternate_layers(depth: int, keep: int) -> list[int]:
    """``keep`` of ``depth`` layers, evenly spaced and anchored at the top one (Patient KD's "skip" strategy and
    DistilBERT's one-in-two, counted from the output side, which feeds the classifier): 6 -> 3 keeps
    ``[1, 3, 5]``, 6 -> 4 keeps ``[1, 2, 4, 5]``.

    Raises:
        DfkdError: ``keep`` outside ``1..depth``.
    """
    if not 1 <= keep <= depth:
        raise DfkdError(f"cannot keep {keep} of {depth} layers; expected 1..{depth}")
    return sorted(depth - 1 - (i * depth) // keep for i in range(keep))


def prune_model(model, tokenizer, texts: list[str], num_hidden_layers: int | None = None,
                hidden_size: int | None = None, num_attention_heads: int | None = None,
                intermediate_size: int | None = None, layers: str | list[int] | None = None,
                calibration_rows: int = 512, seed: int = 0, **overrides):
    """One step of structured pruning: ``model`` cut to a shape, each axis left ``None`` kept as it is.

    The units are ranked on ``model`` itself (:func:`teacher_importance` over a ``seed``-ed sample of
    ``calibration_rows`` texts), so a schedule of steps re-ranks them after each stage of distillation: the
    gradual pruning of CoFi (Xia et al. 2022, §3) and Sheared-LLaMA, done as discrete steps instead of L0 masks.

    Args:
        model: a BERT ``...ForSequenceClassification`` (the teacher, or a student pruned from it).
        layers: which layers a cut in depth keeps: ``"alternate"`` (:func:`alternate_layers`), ``"importance"``
            or ``None`` (block importance, as :func:`prune_teacher`), or indices.
        overrides: ``BertConfig`` fields of the result (e.g. dropout).

    Returns:
        A new model of the shape; with every axis unchanged, an exact copy (same logits).

    Raises:
        DfkdError: a shape larger than ``model``'s or that does not divide into heads, a non-BERT model, no texts.
    """
    current = model_shape(model.config)
    given = {"num_hidden_layers": num_hidden_layers, "hidden_size": hidden_size,
             "num_attention_heads": num_attention_heads, "intermediate_size": intermediate_size}
    shape = {k: given[k] or current[k] for k in SHAPE}
    if layers == "alternate":
        layers = alternate_layers(current["num_hidden_layers"], shape["num_hidden_layers"])
    elif layers == "importance":
        layers = None
    if not architecture_of(model).prunable:
        if shape["num_hidden_layers"] == current["num_hidden_layers"] and layers is None:
            return copy.deepcopy(model).cpu()
        return teacher_layers_fallback(model, shape["num_hidden_layers"], layers, "pruning")
    importance = calibrated_importance(model, tokenizer, texts, calibration_rows, seed)
    return prune_teacher(model, importance, **shape, layers=layers, **overrides)


def check_prune(prune: dict, where: str) -> None:
    """A stage's ``prune`` settings checked against :func:`dfkd.distill.prune.prune_model` (keys, types, sizes).

    Raises:
        DfkdError: not an object, an unknown key (with a close match), a wrong type, a size below 1, or a hidden
            size that the number of heads does not divide.
    """
    import inspect

    from ..config import check_keys, check_keywords
    if not isinstance(prune, dict):
        raise DfkdError(f"{where}: expected an object such as {{\"intermediate_size\": 1024}}")
    skip = ("model", "tokenizer", "texts")
    named = [n for n, p in inspect.signature(prune_model).parameters.items()
             if n not in skip and p.kind is not p.VAR_KEYWORD]
    from transformers import BertConfig

    check_keys(prune, named + [k for k in BertConfig().to_dict() if not k.startswith("_")], where)
    check_keywords(prune_model, {k: v for k, v in prune.items() if k in named}, where, skip)
    sizes = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size")
    if bad := [f"{k}={prune[k]}" for k in sizes if prune.get(k) is not None and prune[k] < 1]:
        raise DfkdError(f"{where}: {', '.join(bad)}; expected sizes of at least 1")
    heads, hidden = prune.get("num_attention_heads"), prune.get("hidden_size")
    if heads and hidden and hidden % heads:
        raise DfkdError(f"{where}: hidden_size {hidden} must be divisible by num_attention_heads {heads}")


#: the order in which gradual pruning cuts the axes (the pruning probe: cutting the FFN alone keeps 0.87 of
#: STS-B's teacher, depth or width alone destroy most of it, so the cheapest cut goes first and width last)
GRADUAL_ORDER = (("intermediate_size",), ("num_hidden_layers",), ("hidden_size", "num_attention_heads"))


@STUDENTS.register("gradual_pruned")
def from_gradual_pruning(teacher, texts, tokenizer, num_hidden_layers: int = 4, hidden_size: int = 256,
                         num_attention_heads: int = 4, intermediate_size: int = 1024, steps_per_stage: int = 200,
                         layers: str | list[int] = "alternate", start: dict | None = None,
                         stage_training: dict | None = None, widths: list[int] | None = None,
                         calibration_rows: int = 512, seed: int = 0, **overrides):
    """Gradual structured pruning while distilling: the student starts as ``start`` (default: the teacher
    itself) and reaches the target shape in steps, each followed by distillation on the transfer set, then
    trains at that shape for the run's budget (CoFi's final fine-tune, Xia et al. 2022).

    This builder returns the starting model; :func:`gradual_stages` gives the schedule that
    :func:`dfkd.distill.distiller.distill` runs: the FFN (``intermediate_size``) is cut first, then depth
    (``layers``: ``"alternate"``, ``"importance"`` or indices), each for ``steps_per_stage`` optimizer steps, and
    hidden width with its heads last, at the start of the final stage (the run's own recipe and budget). Every
    step re-ranks the units on the student as it is then (:func:`prune_model`). A stage's student is saved, so
    an interrupted schedule resumes at its stage.

    Args:
        start: the spec of the model pruning starts from (``teacher_layers``, a ``checkpoint`` of a pretrained
            small model, ...); ``None``: a copy of the teacher.
        steps_per_stage: optimizer steps of distillation after each intermediate cut (> 0).
        stage_training: :class:`~dfkd.distill.trainer.TrainingConfig` fields of the intermediate stages over
            the run's (e.g. ``{"learning_rate": 5e-5}``: a student still the teacher's size trains at a
            fine-tuning rate, not a small student's).
        widths: intermediate hidden sizes, largest first, each cut (with as many heads of the target's head size
            as fit) and distilled for ``steps_per_stage`` steps before the final cut, so that width too comes down
            in steps (e.g. ``[320]`` from 384 to 256); ``None``: width in one cut.
        overrides: ``BertConfig`` fields of the pruned students (e.g. dropout).

    Raises:
        DfkdError: as :func:`prune_model`, a ``steps_per_stage`` below 1, or ``widths`` that do not come down to
            ``hidden_size`` in multiples of its head size.
    """
    from .students import build_student

    if steps_per_stage < 1:
        raise DfkdError(f"gradual_pruned: steps_per_stage {steps_per_stage}; expected at least 1 optimizer step")
    if start is None:
        return copy.deepcopy(teacher).cpu()
    return build_student(teacher, start, texts, tokenizer=tokenizer)


def gradual_stages(spec: dict) -> list[dict]:
    """The pruning steps of a ``gradual_pruned`` student spec, as stage fields: one ``{"prune", "training"}`` per
    intermediate step (``training.max_steps = steps_per_stage``), the last ``{"prune"}`` being the cut to the
    target shape at the start of the final stage. Axes are cut in :data:`GRADUAL_ORDER`; every step carries the
    spec's calibration, seed and ``BertConfig`` overrides.
    """
    import inspect

    from ..config import from_dict
    from .trainer import TrainingConfig

    params = inspect.signature(from_gradual_pruning).parameters
    settings = {k: spec.get(k, p.default) for k, p in params.items()
                if k not in ("teacher", "texts", "tokenizer", "overrides")}
    stage_training = dict(settings["stage_training"] or {})
    from_dict(TrainingConfig, stage_training, "gradual_pruned stage_training")
    if not isinstance(settings["steps_per_stage"], int) or settings["steps_per_stage"] < 1:
        raise DfkdError(f"gradual_pruned: steps_per_stage {settings['steps_per_stage']!r}; expected at least 1 "
                        "optimizer step per pruning stage")
    extra = {k: v for k, v in spec.items() if k not in params and k != "type"}
    common = {"calibration_rows": settings["calibration_rows"], "seed": settings["seed"], **extra}
    steps = []
    for axes in GRADUAL_ORDER:
        prune = {axis: settings[axis] for axis in axes}
        if "num_hidden_layers" in axes:
            prune["layers"] = settings["layers"]
        cuts = [prune]
        if "hidden_size" in axes:
            cuts = [*_width_cuts(settings), prune]
        steps += [{"prune": {**cut, **common}, "training": {**stage_training, "max_steps": settings["steps_per_stage"]}}
                  for cut in cuts]
    steps[-1].pop("training")
    for k, step in enumerate(steps, 1):
        check_prune(step["prune"], f"gradual_pruned (pruning step {k})")
    return steps


def _width_cuts(settings: dict) -> list[dict]:
    """The intermediate width cuts of ``widths``: hidden size and as many heads of the target's head size.

    Raises:
        DfkdError: widths that are not decreasing, not above the target, or not multiples of its head size.
    """
    widths = settings["widths"] or []
    head = settings["hidden_size"] // settings["num_attention_heads"]
    if (not isinstance(widths, list) or any(not isinstance(w, int) or w % head or w <= settings["hidden_size"]
                                            for w in widths) or widths != sorted(set(widths), reverse=True)):
        raise DfkdError(f"gradual_pruned: widths {widths!r}; expected decreasing hidden sizes above hidden_size "
                        f"{settings['hidden_size']}, each a multiple of its head size {head}")
    return [{"hidden_size": w, "num_attention_heads": w // head} for w in widths]


def _check_gradual_spec(source: dict, settings: dict, where: str) -> None:
    """``gradual_pruned``'s spec against the teacher's config: each step's shape, in order, from the teacher's."""
    current = _source_shape(source, where)
    for k, step in enumerate(gradual_stages({"type": "gradual_pruned", **settings}), 1):
        cut = {key: step["prune"].get(key) or current[key] for key in SHAPE}
        layers = step["prune"].get("layers")
        check_pruned_shape(current, cut, f"{where} (pruning step {k})", layers if isinstance(layers, list) else None)
        current = {**current, **cut}


from_teacher_pruned.check_shape = _check_pruned_spec
from_gradual_pruning.stages = gradual_stages
from_gradual_pruning.check_shape = _check_gradual_spec
