"""BERT with a task head (the paper's Figure 4), and the Hugging Face folders they save to.

1. **Heads.** ``ClassificationHead`` reads one vector per sequence (the pooled [CLS], or the
   mean of the tokens) and gives a label per sequence (sentiment, paraphrase, entailment), or
   reads every token and gives a label per token (part of speech); ``SpanHead`` gives a start
   and an end score per token (question answering). ``BertForSequenceClassification``,
   ``BertForTokenClassification`` and ``BertForQuestionAnswering`` put a head on a ``BertModel``.
2. **Saving.** :func:`save_for_transformers` writes such a model as a Hugging Face folder
   (``id2label`` in config.json) that ``transformers.pipeline`` loads; :func:`load_finetuned`
   reads it back.

``bertlab.finetune`` trains them (and re-exports every name here).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from bertlab import hf
from bertlab.bert import BertConfig, BertModel, initialize
from bertlab.bert_checks import BertConfigError
from bertlab.checkpoint import CheckpointError, save_weights
from bertlab.probe import mean_pool

__all__ = [
    "ClassificationHead",
    "SpanHead",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertForQuestionAnswering",
    "parameters_with_gradients",
    "save_for_transformers",
    "load_finetuned",
]

# ----------------------------------------------------------------------------------------------
# 1. Heads: the paper's figure 4 (sentence (pair) classification, tagging, spans)
# ----------------------------------------------------------------------------------------------


class ClassificationHead(nn.Module):
    """dropout + Linear on the last dimension: one label per sequence from a pooled vector
    (B, H) -> (B, num_labels) for SST-2, MRPC, RTE, or one per token (B, T, H) -> (B, T,
    num_labels) for part-of-speech tagging."""

    def __init__(self, config: BertConfig, num_labels: int):
        super().__init__()
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden, num_labels)
        initialize(self, config)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(features))  # (..., H) -> (..., num_labels)


class SpanHead(nn.Module):
    """Answer spans (SQuAD): a start and an end score per token, from one Linear(H, 2)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.classifier = nn.Linear(config.hidden, 2)
        initialize(self, config)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start, end = self.classifier(hidden).unbind(dim=-1)  # (B, T) each
        return start, end


def _check_labels(num_labels: int) -> None:
    if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
        raise BertConfigError(f"num_labels must be a positive integer, got {num_labels!r}.")


def _encoder(bert: BertConfig | BertModel) -> BertModel:
    return bert if isinstance(bert, BertModel) else BertModel(bert)


class BertForSequenceClassification(nn.Module):
    """``BertModel`` + ``ClassificationHead`` on the pooled vector; logits (B, num_labels).

    Pass a ``BertConfig`` for a fresh model or a (pretrained) ``BertModel`` to fine-tune it.
    ``pooling="cls"`` is BERT's choice: the pooled [CLS] vector (tanh(Linear(h_[CLS]))).
    ``pooling="mean"`` averages the last layer over the real tokens instead, which suits encoders
    trained that way (sentence-transformers models such as all-MiniLM-L6-v2, whose pooler was
    never trained); the pooler is then unused.
    """

    def __init__(self, bert: BertConfig | BertModel, num_labels: int, pooling: str = "cls"):
        super().__init__()
        _check_labels(num_labels)
        if pooling not in ("cls", "mean"):
            raise BertConfigError(f"pooling must be 'cls' or 'mean', got {pooling!r}.")
        self.bert = _encoder(bert)
        self.config = self.bert.config
        self.pooling = pooling
        self.head = ClassificationHead(self.config, num_labels)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None) -> torch.Tensor:
        out = self.bert(input_ids, token_type_ids, attention_mask)
        if self.pooling == "mean":
            return self.head(mean_pool(out.last_hidden_state, attention_mask))  # (B, num_labels)
        return self.head(out.pooled)  # (B, num_labels)


class BertForTokenClassification(nn.Module):
    """``BertModel`` + ``ClassificationHead`` on every token; logits (B, T, num_labels)."""

    def __init__(self, bert: BertConfig | BertModel, num_labels: int):
        super().__init__()
        _check_labels(num_labels)
        self.bert = _encoder(bert)
        self.config = self.bert.config
        self.head = ClassificationHead(self.config, num_labels)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None) -> torch.Tensor:
        return self.head(self.bert(input_ids, token_type_ids, attention_mask).last_hidden_state)


class BertForQuestionAnswering(nn.Module):
    """``BertModel`` + ``SpanHead``; forward returns (start_logits, end_logits), each (B, T)."""

    def __init__(self, bert: BertConfig | BertModel):
        super().__init__()
        self.bert = _encoder(bert)
        self.config = self.bert.config
        self.head = SpanHead(self.config)

    def forward(
        self, input_ids, token_type_ids=None, attention_mask=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.bert(input_ids, token_type_ids, attention_mask).last_hidden_state)


def parameters_with_gradients(model: nn.Module) -> dict[str, tuple[int, int]]:
    """After a backward pass: ``{component: (parameters, parameters that got a gradient)}``, per
    top-level part of the encoder (embeddings, each layer, pooler) and for the task head."""
    table: dict[str, list[int]] = {}
    for name, p in model.named_parameters():
        parts = name.split(".")
        if parts[0] != "bert":
            key = "task head"
        elif parts[1] == "layers":
            key = f"layer {parts[2]}"
        else:
            key = parts[1]
        counts = table.setdefault(key, [0, 0])
        counts[0] += p.numel()
        counts[1] += p.numel() if p.grad is not None else 0
    return {k: (n, g) for k, (n, g) in table.items()}


# ----------------------------------------------------------------------------------------------
# 2. Saving for transformers: a folder pipeline() loads
# ----------------------------------------------------------------------------------------------

# our head's parameters -> transformers' names, for each architecture
_HEAD_NAMES = {
    "BertForSequenceClassification": {"head.classifier.weight": "classifier.weight",
                                      "head.classifier.bias": "classifier.bias"},
    "BertForTokenClassification": {"head.classifier.weight": "classifier.weight",
                                   "head.classifier.bias": "classifier.bias"},
    "BertForQuestionAnswering": {"head.classifier.weight": "qa_outputs.weight",
                                 "head.classifier.bias": "qa_outputs.bias"},
}  # fmt: skip
_ARCHITECTURES = {
    "BertForSequenceClassification": BertForSequenceClassification,
    "BertForTokenClassification": BertForTokenClassification,
    "BertForQuestionAnswering": BertForQuestionAnswering,
}


def _key_map(architecture: str, config: BertConfig) -> dict[str, str]:
    """Our parameter names -> transformers' (``bert.`` + BertModel name, and the head's). Only
    sequence classification reads the pooler; the other two have none in transformers."""
    with_pooler = architecture == "BertForSequenceClassification"
    encoder = {
        f"bert.{ours}": f"bert.{theirs}"
        for ours, theirs in hf.hf_key_map(config).items()
        if with_pooler or not ours.startswith("pooler.")
    }
    return encoder | _HEAD_NAMES[architecture]


def save_for_transformers(
    model: nn.Module, tokenizer, folder: str | Path, labels: Sequence[str] | None = None
) -> Path:
    """Write a fine-tuned model as a Hugging Face folder: ``config.json`` (with ``id2label``),
    ``model.safetensors`` and the vocabulary. ``transformers.pipeline("text-classification" /
    "token-classification" / "question-answering", model=folder)`` then runs our model."""
    architecture = type(model).__name__
    if architecture not in _HEAD_NAMES:
        raise TypeError(
            f"save_for_transformers takes one of {', '.join(_HEAD_NAMES)}, got {architecture}; "
            "save an encoder alone with bertlab.hf.save_pretrained."
        )
    if getattr(model, "pooling", "cls") != "cls":
        raise CheckpointError(
            "this classifier reads the mean of the tokens (pooling='mean'), which transformers' "
            "BertForSequenceClassification cannot express (it reads the pooled [CLS]); "
            "fine-tune with pooling='cls' to save it for transformers."
        )
    config = hf.config_to_hf(model.config, architecture)
    if architecture != "BertForQuestionAnswering":
        n = model.head.classifier.out_features
        labels = list(labels) if labels is not None else [f"LABEL_{i}" for i in range(n)]
        if len(labels) != n:
            raise ValueError(f"got {len(labels)} label names for a head of {n} labels.")
        config["id2label"] = dict(enumerate(labels))
        config["label2id"] = {label: i for i, label in enumerate(labels)}
    params = dict(model.named_parameters())
    tensors = {
        theirs: params[ours] for ours, theirs in _key_map(architecture, model.config).items()
    }
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_weights(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    hf.save_tokenizer(tokenizer, folder, model_max_length=model.config.max_position)
    return folder


def load_finetuned(folder: str | Path) -> tuple[nn.Module, object, list[str]]:
    """(model, tokenizer, label names) from a folder of :func:`save_for_transformers` (or any
    transformers BERT folder of those three architectures)."""
    from bertlab.wordpiece import WordPieceTokenizer

    folder = Path(folder)
    config = hf.read_config(folder)  # checks the folder and config.json
    raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    architecture = (raw.get("architectures") or ["?"])[0]
    if architecture not in _ARCHITECTURES:
        raise CheckpointError(
            f"{folder} holds a {architecture}; load_finetuned reads "
            f"{', '.join(_ARCHITECTURES)}. For an encoder alone use bertlab.hf.load_pretrained."
        )
    labels = [raw["id2label"][str(i)] for i in range(len(raw.get("id2label", {})))]
    cls = _ARCHITECTURES[architecture]
    encoder = BertModel(config)
    model = cls(encoder) if cls is BertForQuestionAnswering else cls(encoder, len(labels))
    key_map = {ours: theirs.removeprefix("bert.") for ours, theirs in
               _key_map(architecture, config).items()}  # fmt: skip
    model.load_report = hf._load(folder, config, model, key_map, strict=True)
    tokenizer = WordPieceTokenizer.from_vocab_file(folder / "vocab.txt")
    return model.eval(), tokenizer, labels
