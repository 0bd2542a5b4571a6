"""The BiLSTM student of Tang et al. 2019 ("Distilling Task-Specific Knowledge from BERT into Simple Neural
Networks", §3.1, Fig. 1): word embedding -> BiLSTM -> max-pooling over time -> MLP (ReLU) -> logits; pair
tasks encode both sentences with the same (siamese) BiLSTM into ``u`` and ``v`` and classify
``[u; v; |u - v|; u * v]``.

It has its own word-level tokenizer (a vocabulary built from the transfer set's texts with the
``tokenizers`` library, BERT's lower-casing and punctuation splitting), optionally initialised from word
vectors (e.g. GloVe). Model and tokenizer are registered with the ``transformers`` Auto classes, so a
saved BiLSTM student loads with ``AutoModelForSequenceClassification`` / ``AutoTokenizer`` like any other.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence
from transformers import AutoConfig, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

SPECIALS = ["[PAD]", "[UNK]", "[SEP]", "[CLS]", "[MASK]"]


class BiLSTMConfig(PretrainedConfig):
    """Settings of :class:`BiLSTMForSequenceClassification` (defaults: 300-d embeddings, 300 hidden units per
    direction, one layer, a 400-unit ReLU layer; with word vectors the embedding width is theirs)."""

    model_type = "dfkd-bilstm"

    def __init__(self, vocab_size: int = 30000, embedding_dim: int = 300, hidden_size: int = 300,
                 num_layers: int = 1, mlp_hidden: int = 400, dropout: float = 0.1, pair: bool = False,
                 pad_token_id: int = 0, **kwargs):
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        self.vocab_size, self.embedding_dim, self.hidden_size = vocab_size, embedding_dim, hidden_size
        self.num_layers, self.mlp_hidden, self.dropout, self.pair = num_layers, mlp_hidden, dropout, pair


class BiLSTMForSequenceClassification(PreTrainedModel):
    """Embedding ``(V, E)`` -> BiLSTM (``2H`` per token) -> masked max-pool -> MLP -> ``(B, num_labels)`` logits.

    Inputs as the student tokenizer makes them: ``input_ids``/``attention_mask`` ``(B, L)`` and, for pair
    tasks, ``token_type_ids`` (0: first sentence, 1: second); ``[SEP]`` and ``[CLS]`` are not encoded.
    """

    config_class = BiLSTMConfig
    base_model_prefix = "bilstm"
    main_input_name = "input_ids"

    def __init__(self, config: BiLSTMConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=config.pad_token_id)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden_size, num_layers=config.num_layers,
                            batch_first=True, bidirectional=True,
                            dropout=config.dropout if config.num_layers > 1 else 0.0)
        features = 2 * config.hidden_size * (4 if config.pair else 1)
        self.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(features, config.mlp_hidden), nn.ReLU(),
                                        nn.Dropout(config.dropout), nn.Linear(config.mlp_hidden, config.num_labels))
        self.post_init()

    def get_input_embeddings(self):
        return self.embeddings

    def set_input_embeddings(self, value):
        self.embeddings = value

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.1)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()

    def encode(self, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Max-pooled BiLSTM states ``(B, 2H)`` of the tokens where ``keep`` ``(B, L)`` is True, in order."""
        rows = [r[k] for r, k in zip(ids, keep.bool())]
        lengths = torch.tensor([max(1, len(r)) for r in rows])
        rows = [r if len(r) else r.new_full((1,), self.config.pad_token_id) for r in rows]
        padded = pad_sequence(rows, batch_first=True, padding_value=self.config.pad_token_id)
        packed = pack_padded_sequence(self.embeddings(padded), lengths, batch_first=True, enforce_sorted=False)
        states, _ = self.lstm(packed)
        states, _ = torch.nn.utils.rnn.pad_packed_sequence(states, batch_first=True, padding_value=float("-inf"))
        return states.max(1).values

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **_):
        special = input_ids.new_zeros(input_ids.shape, dtype=torch.bool)
        for i in (getattr(self.config, "sep_token_id", None), getattr(self.config, "cls_token_id", None)):
            if i is not None:
                special |= input_ids == i
        real = (attention_mask.bool() if attention_mask is not None else torch.ones_like(special)) & ~special
        if self.config.pair:
            types = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
            u, v = self.encode(input_ids, real & (types == 0)), self.encode(input_ids, real & (types == 1))
            features = torch.cat([u, v, (u - v).abs(), u * v], dim=-1)
        else:
            features = self.encode(input_ids, real)
        logits = self.classifier(features)
        loss = None
        if labels is not None:
            loss = (nn.functional.mse_loss(logits.squeeze(-1), labels.float()) if self.config.num_labels == 1
                    else nn.functional.cross_entropy(logits, labels))
        return SequenceClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(BiLSTMConfig.model_type, BiLSTMConfig, exist_ok=True)
AutoModelForSequenceClassification.register(BiLSTMConfig, BiLSTMForSequenceClassification, exist_ok=True)


def build_word_tokenizer(texts, max_vocab: int = 30000, min_frequency: int = 1, pair: bool = False):
    """A word-level ``PreTrainedTokenizerFast``: BERT normalisation (lower case, accents stripped) and
    punctuation splitting, the ``max_vocab`` most frequent words of ``texts`` plus :data:`SPECIALS`.

    Encodes ``a`` as ``a [SEP]`` and a pair as ``a [SEP] b [SEP]`` (token types 0 / 1).
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=max_vocab, min_frequency=min_frequency,
                                                            special_tokens=SPECIALS))
    sep = tk.token_to_id("[SEP]")
    tk.post_processor = processors.TemplateProcessing(single="$A [SEP]", pair="$A [SEP] $B:1 [SEP]:1",
                                                      special_tokens=[("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]", sep_token="[SEP]",
                                   cls_token="[CLS]", mask_token="[MASK]",
                                   model_input_names=["input_ids", "token_type_ids", "attention_mask"])


def build_bilstm_student(teacher, texts, pair: bool = False, word_vectors=None, max_vocab: int = 30000,
                         embedding_dim: int = 300, hidden_size: int = 300, num_layers: int = 1, mlp_hidden: int = 400,
                         dropout: float = 0.1, max_vectors: int | None = None):
    """A BiLSTM student and its word tokenizer, built from the transfer set's ``texts``.

    Args:
        teacher: gives the label space (``num_labels``, ``id2label``); nothing else is shared.
        texts: the transfer set's texts (both sides for pair tasks), for the vocabulary.
        pair: siamese encoding of two sentences (pair tasks).
        word_vectors: initialise embeddings from these (see :meth:`dfkd.distill.vectors.WordVectors.load`);
            ``embedding_dim`` then becomes the vectors' width. Words without a vector keep a random init.

    Returns:
        ``(model, tokenizer)``.
    """
    tokenizer = build_word_tokenizer(texts, max_vocab)
    vectors = None
    if word_vectors is not None:
        from .vectors import WordVectors

        vectors = WordVectors.load(word_vectors, max_vectors)
        embedding_dim = vectors.unit.shape[1]
    c = teacher.config
    config = BiLSTMConfig(vocab_size=len(tokenizer), embedding_dim=embedding_dim, hidden_size=hidden_size,
                          num_layers=num_layers, mlp_hidden=mlp_hidden, dropout=dropout, pair=pair,
                          pad_token_id=tokenizer.pad_token_id, sep_token_id=tokenizer.sep_token_id,
                          cls_token_id=tokenizer.cls_token_id, num_labels=c.num_labels, id2label=c.id2label,
                          label2id=c.label2id, problem_type=c.problem_type)
    model = BiLSTMForSequenceClassification(config)
    if vectors is not None:
        with torch.no_grad():
            table = model.embeddings.weight
            scale = table.norm(dim=1).mean().item()  # unit GloVe vectors get the random init's typical norm
            hits = 0
            for word, i in tokenizer.get_vocab().items():
                j = vectors.index.get(word)
                if j is not None and word not in SPECIALS:
                    table[i] = torch.from_numpy(vectors.unit[j]) * scale
                    hits += 1
            model.config.word_vector_coverage = round(hits / max(1, len(tokenizer) - len(SPECIALS)), 4)
    return model, tokenizer
