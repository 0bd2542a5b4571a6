"""Students, one registry: each builder takes the teacher and a spec dict and returns a fresh model.

Every student is a ``transformers`` sequence-classification model, so its checkpoint loads with
``AutoModelForSequenceClassification``. It shares the teacher's tokenizer, except a ``bilstm`` (its own word
vocabulary) and a ``pretrained`` checkpoint with another vocabulary, which keep their own tokenizer (logit-level
losses only). Students cut out of the teacher work for every family with an adapter in
:mod:`dfkd.distill.architectures`.

Spec dicts (``configs/students/*.json``)::

    {"type": "config", "num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4,
     "intermediate_size": 1024}                      # BERT-style, randomly initialised
    {"type": "checkpoint", "path": "runs/student"}   # continue from a saved student
    {"type": "pretrained", "path": "<folder or hub id>"}  # any small pretrained encoder, a new head
    {"type": "teacher_layers", "layers": [0, 2, 4]}  # DistilBERT-style: copy these teacher layers
    {"type": "teacher_pruned", "num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4,
     "intermediate_size": 1024}                      # Minitron-style: the teacher pruned to this shape
    {"type": "gradual_pruned", "num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4,
     "intermediate_size": 1024, "steps_per_stage": 200}  # CoFi-style: pruned in steps while distilling
    {"type": "bilstm", "word_vectors": "glove-6b-50d"}  # Tang et al.: BiLSTM with its own word vocabulary
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from ..errors import DfkdError
from ..registry import Registry

STUDENTS: Registry = Registry("student type")


def _labels(teacher) -> dict:
    c = teacher.config
    return {"num_labels": c.num_labels, "id2label": c.id2label, "label2id": c.label2id,
            "problem_type": c.problem_type}


def bert_student_config(teacher, kind: str, num_hidden_layers: int, hidden_size: int, num_attention_heads: int,
                        intermediate_size: int, **overrides):
    """The ``BertConfig`` of a BERT student: the given shape with the teacher's vocabulary, label space, max
    positions, token types and padding id, plus ``overrides`` (other ``BertConfig`` fields, e.g. dropout).

    Raises:
        DfkdError: ``hidden_size`` not divisible by ``num_attention_heads``, or an override that is not a
            ``BertConfig`` field (``BertConfig`` itself would silently keep a misspelt one); ``kind`` names the
            student type in the message.
    """
    from transformers import BertConfig

    if hidden_size % num_attention_heads:
        raise DfkdError(f"hidden_size {hidden_size} must be divisible by num_attention_heads {num_attention_heads}")
    defaults = BertConfig()
    if unknown := sorted(k for k in overrides if not hasattr(defaults, k)):
        raise DfkdError(f"student type {kind!r}: unknown setting(s) {unknown}; expected the builder's arguments or "
                        "BertConfig fields (e.g. hidden_dropout_prob)")
    tc = teacher.config
    return BertConfig(vocab_size=tc.vocab_size, hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
                      num_attention_heads=num_attention_heads, intermediate_size=intermediate_size,
                      max_position_embeddings=tc.max_position_embeddings,
                      type_vocab_size=getattr(tc, "type_vocab_size", 2), pad_token_id=tc.pad_token_id,
                      **_labels(teacher), **overrides)


@STUDENTS.register("config")
def from_config(teacher, num_hidden_layers: int = 4, hidden_size: int = 256, num_attention_heads: int = 4,
                intermediate_size: int = 1024, embeddings_from_teacher: bool = False, **overrides):
    """A BERT classifier with the teacher's vocabulary, label space and max positions.

    The encoder is randomly initialised. With ``embeddings_from_teacher``, the word, position and
    token-type embeddings start as the teacher's projected onto their top ``hidden_size`` principal
    directions (PCA of the teacher's word embeddings, ``(V, H_t) -> (V, H_s)``), so the student starts
    with the teacher's lexical geometry even when ``H_s < H_t``.

    Raises:
        DfkdError: ``hidden_size`` not divisible by ``num_attention_heads``; ``embeddings_from_teacher``
            with a student wider than the teacher or a teacher without BERT-style embeddings.
    """
    from transformers import BertForSequenceClassification

    config = bert_student_config(teacher, "config", num_hidden_layers, hidden_size, num_attention_heads,
                                 intermediate_size, **overrides)
    student = BertForSequenceClassification(config)
    if embeddings_from_teacher:
        project_teacher_embeddings(teacher, student)
    return student


@torch.no_grad()
def project_teacher_embeddings(teacher, student) -> None:
    """Copy the teacher's embeddings into the student through a PCA projection ``P`` ``(H_t, H_s)``.

    ``P`` holds the top ``H_s`` principal directions of the centred teacher word-embedding matrix;
    every embedding table ``E_t`` ``(n, H_t)`` becomes ``(E_t - mean) @ P`` (word) or ``E_t @ P`` (positions,
    token types). The embedding LayerNorm keeps its default init.
    """
    t_emb = getattr(teacher, teacher.base_model_prefix).embeddings
    s_emb = getattr(student, student.base_model_prefix).embeddings
    words = t_emb.word_embeddings.weight.float()
    h_s = s_emb.word_embeddings.weight.shape[1]
    if h_s > words.shape[1]:
        raise DfkdError(f"embeddings_from_teacher needs hidden_size <= the teacher's ({words.shape[1]}), got {h_s}")
    centred = words - words.mean(0, keepdim=True)
    # principal directions = eigenvectors of the (H_t, H_t) scatter matrix, largest eigenvalue first
    _, vectors = torch.linalg.eigh(centred.T @ centred)
    proj = vectors.flip(-1)[:, :h_s]
    s_emb.word_embeddings.weight.copy_(centred @ proj)
    for name in ("position_embeddings", "token_type_embeddings"):
        t, s = getattr(t_emb, name, None), getattr(s_emb, name, None)
        if t is not None and s is not None and t.weight.shape[0] == s.weight.shape[0]:
            s.weight.copy_(t.weight.float() @ proj)


@STUDENTS.register("checkpoint")
def from_checkpoint(teacher, path: str):
    """A saved student (any ``AutoModelForSequenceClassification`` folder), checked against the teacher;
    ``(model, tokenizer)`` for a student with its own vocabulary (BiLSTM). A general-distilled student
    (``dfkd general``, ``models/student-l4-h256-general``) gets a new classification head sized for the teacher.

    Raises:
        DfkdError: missing folder, or a vocabulary / ``num_labels`` that differs from the teacher's.
    """
    from transformers import AutoModelForSequenceClassification

    from ..assets import resolve

    try:
        folder = Path(resolve(path))
        if (folder / "dfkd_general.json").is_file():  # a task-agnostic student: its head is fitted to the task
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, num_labels=teacher.config.num_labels, problem_type=teacher.config.problem_type,
                ignore_mismatched_sizes=True)
        else:
            model = AutoModelForSequenceClassification.from_pretrained(folder)
    except OSError as err:
        raise DfkdError(f"cannot load student checkpoint {path!r}: {str(err).splitlines()[0]}") from None
    if model.config.model_type == "dfkd-bilstm":  # a student with its own word vocabulary
        from transformers import AutoTokenizer

        check_compatible(teacher, model, own_vocabulary=True)
        return model, AutoTokenizer.from_pretrained(resolve(path))
    check_compatible(teacher, model)
    return model


@STUDENTS.register("teacher_layers")
def from_teacher_layers(teacher, layers: list[int] | None = None, every: int = 2):
    """DistilBERT's initialisation (Sanh et al. 2019, §3): a copy of the teacher keeping a subset of layers.

    Args:
        layers: teacher layer indices to keep, in order (default: every ``every``-th, from layer 0).

    Works for every family with an adapter (:mod:`dfkd.distill.architectures`).

    Raises:
        DfkdError: an index outside the teacher's depth, or a family without an adapter.
    """
    from .architectures import keep_layers, layer_list

    depth = len(layer_list(teacher))
    layers = list(range(0, depth, every)) if layers is None else list(layers)
    if not layers or any(not 0 <= i < depth for i in layers):
        raise DfkdError(f"teacher_layers {layers} out of range; the teacher has layers 0..{depth - 1}")
    return keep_layers(copy.deepcopy(teacher).cpu(), layers)


@STUDENTS.register("pretrained")
def from_pretrained(teacher, tokenizer, path: str):
    """Any pretrained checkpoint (a small encoder from the hub or a folder) with a new classification head sized
    for the teacher's labels (``num_labels``, ``id2label``, ``problem_type`` copied from the teacher).

    A checkpoint whose tokenizer differs from the teacher's keeps its own: the transfer set is text, so logit-level
    losses work across vocabularies; layer-wise losses are refused for it (:func:`dfkd.distill.distiller.distill`).

    Args:
        tokenizer: the teacher's, compared with the checkpoint's own.

    Returns:
        the model, or ``(model, its tokenizer)`` when its vocabulary is not the teacher's.

    Raises:
        DfkdError: the checkpoint or its tokenizer cannot be loaded.
    """
    from transformers import AutoModelForSequenceClassification

    from ..assets import resolve
    from .label import load_tokenizer

    ref = resolve(path)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(ref, ignore_mismatched_sizes=True, **_labels(teacher))
    except (OSError, ValueError) as err:
        raise DfkdError(f"cannot load student checkpoint {path!r}: {str(err).splitlines()[0]}") from None
    own = load_tokenizer(ref, "student", model.config.vocab_size, path)
    if own.get_vocab() == tokenizer.get_vocab() and type(own).__name__ == type(tokenizer).__name__:
        return model
    return model, own


@STUDENTS.register("bilstm")
def bilstm(teacher, texts, pair: bool = False, **settings):
    """Tang et al.'s BiLSTM student with its own word vocabulary (see :mod:`dfkd.distill.bilstm`).

    Returns ``(model, tokenizer)``: the student reads its own token ids, not the teacher's.
    """
    from .bilstm import build_bilstm_student

    return build_bilstm_student(teacher, texts, pair=pair, **settings)


def _bilstm_builder():
    from .bilstm import build_bilstm_student

    return build_bilstm_student


bilstm.passes_to = _bilstm_builder


def build_student_and_tokenizer(teacher, spec: dict, texts: list[str] | None = None, pair: bool = False,
                                tokenizer=None):
    """Build a student from a spec dict ``{"type": ..., **kwargs}`` (see the module docstring).

    Args:
        texts / pair: the transfer set's texts and whether the task is a pair task, for students that build
            their own vocabulary (``bilstm``) or rank the teacher's units on them (``teacher_pruned``).
        tokenizer: the teacher's tokenizer, for students that run the teacher on ``texts``.

    Returns:
        ``(model, tokenizer)``; ``tokenizer`` is ``None`` when the student shares the teacher's.

    Raises:
        DfkdError: unknown type or bad settings.
    """
    import inspect

    spec = dict(spec)
    kind = spec.pop("type", "config")
    builder = STUDENTS.get(kind)
    params = inspect.signature(builder).parameters
    if "texts" in params:
        if texts is None:
            raise DfkdError(f"student type {kind!r} builds its vocabulary from the transfer set; expected its texts")
        spec["texts"] = texts
    if "tokenizer" in params:
        if tokenizer is None:
            raise DfkdError(f"student type {kind!r} runs the teacher on the transfer set; expected its tokenizer")
        spec["tokenizer"] = tokenizer
    if "pair" in params:
        spec["pair"] = pair
    try:
        made = builder(teacher, **spec)
    except TypeError as err:
        raise DfkdError(f"bad settings for student type {kind!r}: {err}") from None
    return made if isinstance(made, tuple) else (made, None)


def student_shape(spec: dict) -> dict | None:
    """The four sizes a student spec builds (:data:`dfkd.distill.architectures.SHAPE`: layers, hidden size,
    heads, FFN size), the spec's own values with its builder's defaults filled in; ``None`` for a builder that
    takes no sizes (``checkpoint``, ``pretrained``, ``teacher_layers``, ``bilstm``).

    Raises:
        DfkdError: an unknown student type.
    """
    import inspect

    from .architectures import SHAPE

    params = inspect.signature(STUDENTS.get(spec.get("type", "config"))).parameters
    if not all(k in params for k in SHAPE):
        return None
    return {k: spec.get(k, params[k].default) for k in SHAPE}


def check_student_spec(spec: dict, where: str = "student spec") -> None:
    """Check a student spec's keys and value types before anything is built (:func:`dfkd.config.check_keywords`).

    A builder that passes further settings on (``**overrides``) accepts what it passes them to: ``BertConfig``
    fields for BERT students, the settings of :func:`dfkd.distill.bilstm.build_bilstm_student` for ``bilstm``.

    Raises:
        DfkdError: not an object, an unknown type, an unknown key (with a close match) or a wrong type.
    """
    from ..config import check_keys, check_keywords, keyword_names

    if not isinstance(spec, dict):
        raise DfkdError(f"{where}: expected a JSON object such as configs/students/bert-mini.json")
    settings = {k: v for k, v in spec.items() if k != "type"}
    builder = STUDENTS.get(spec.get("type", "config"))
    skip = ("teacher", "texts", "tokenizer", "pair")
    own = keyword_names(builder, skip)
    if own is not None:
        check_keywords(builder, settings, where, skip)
        return
    passes_to = getattr(builder, "passes_to", None)
    if passes_to is not None:
        check_keywords(passes_to(), settings, where, skip)
        return
    import inspect

    from transformers import BertConfig
    named = [n for n, p in inspect.signature(builder).parameters.items() if n not in skip and p.kind is not p.VAR_KEYWORD]
    check_keys(settings, named + [k for k in BertConfig().to_dict() if not k.startswith("_")], where)
    check_keywords(builder, {k: v for k, v in settings.items() if k in named}, where, skip)
    if isinstance(settings.get("start"), dict):  # a student that starts from another (gradual_pruned)
        check_student_spec(settings["start"], f"{where}.start")
    if (steps_of := getattr(builder, "stages", None)) is not None:  # its schedule, which checks its own steps
        steps_of(spec)


def check_student_against(spec: dict, teacher_config: dict, where: str = "student") -> None:
    """A student spec checked against the teacher's ``config.json`` (a dict) before any model is loaded: the shape
    a pruned student asks of the teacher, the layers a layer copy keeps. A builder says what it needs with a
    ``check_shape(teacher_config, settings, where)`` attribute; one without takes any teacher.

    Raises:
        DfkdError: what the builder's check finds, e.g. a target larger than the teacher, or heads that do not
            divide the hidden size.
    """
    spec = dict(spec)
    builder = STUDENTS.get(spec.pop("type", "config"))
    check = getattr(builder, "check_shape", None)
    if check is not None:
        check(teacher_config, spec, where)


def _check_layers_spec(source: dict, settings: dict, where: str) -> None:
    """``teacher_layers``' indices against the teacher's depth."""
    layers, depth = settings.get("layers"), source.get("num_hidden_layers")
    if layers is not None and depth is not None and (not layers or any(not 0 <= i < depth for i in layers)):
        raise DfkdError(f"{where}: teacher_layers {layers} out of range; the teacher has layers 0..{depth - 1}")


def _check_config_spec(source: dict, settings: dict, where: str) -> None:
    """A ``config`` student: heads divide its hidden size; with ``embeddings_from_teacher``, no wider than it."""
    hidden, heads = settings.get("hidden_size", 256), settings.get("num_attention_heads", 4)
    if heads < 1 or hidden % heads:
        raise DfkdError(f"{where}: hidden_size {hidden} must be divisible by num_attention_heads {heads}")
    if settings.get("embeddings_from_teacher") and hidden > source.get("hidden_size", hidden):
        raise DfkdError(f"{where}: embeddings_from_teacher needs hidden_size <= the teacher's "
                        f"({source['hidden_size']}), got {hidden}")


from_teacher_layers.check_shape = _check_layers_spec
from_config.check_shape = _check_config_spec


def build_student(teacher, spec: dict, texts: list[str] | None = None, pair: bool = False, tokenizer=None):
    """The model of :func:`build_student_and_tokenizer`."""
    return build_student_and_tokenizer(teacher, spec, texts, pair, tokenizer)[0]


def check_compatible(teacher, student, own_vocabulary: bool = False) -> None:
    """Raise :class:`DfkdError` when teacher and student differ in vocabulary size (unless the student has its
    ``own_vocabulary``) or ``num_labels``."""
    t, s = teacher.config, student.config
    if not own_vocabulary and t.vocab_size != s.vocab_size:
        raise DfkdError(f"student vocabulary ({s.vocab_size}) differs from the teacher's ({t.vocab_size}); "
                        "expected a student that shares the teacher's tokenizer")
    if t.num_labels != s.num_labels:
        raise DfkdError(f"student num_labels={s.num_labels} differs from the teacher's {t.num_labels}")


def count_parameters(model) -> int:
    """Number of parameters (all of them, trainable or not)."""
    return sum(p.numel() for p in model.parameters())
