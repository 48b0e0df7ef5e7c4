"""Fine-tuning BERT: the task heads of the paper's Figure 4, and the tasks the book trains.

BERT fine-tunes one pre-trained encoder for many tasks by adding one small layer on top:

1. **Heads.** ``ClassificationHead`` reads one vector per sequence (the pooled [CLS], or the
   mean of the tokens) and gives a label per sequence (sentiment, paraphrase, entailment), or
   reads every token and gives a label per token (part of speech); ``SpanHead`` gives a start
   and an end score per token (question answering). ``BertForSequenceClassification``,
   ``BertForTokenClassification`` and ``BertForQuestionAnswering`` put a head on a ``BertModel``.
2. **Tasks.** A :class:`ClassificationTask` knows its dataset (through ``bertlab.data``), how to
   turn examples into a batch (one text, or a pair packed as ``[CLS] A [SEP] B [SEP]``), the
   loss and the metric. :func:`task` looks one up by name.
3. **Training.** :func:`train_classifier` fine-tunes (or, with the encoder frozen, trains only
   the head) with ``bertlab.train.Trainer``.
4. **Token tasks.** :func:`align_word_labels` puts each word's label (a ``UPOS_TAGS`` part of
   speech) on its first word piece. SQuAD's metrics, windows and span decoding live in
   ``bertlab.squad``; ``exact_match`` and ``f1`` are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bertlab import data
from bertlab.bert import BertConfig, BertConfigError, BertModel, initialize
from bertlab.squad import exact_match, f1
from bertlab.train import History, TrainConfig, Trainer

__all__ = [
    "ClassificationHead",
    "SpanHead",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertForQuestionAnswering",
    "mean_pool",
    "ClassificationTask",
    "TASKS",
    "task",
    "train_classifier",
    "parameters_with_gradients",
    "exact_match",
    "f1",
    "UPOS_TAGS",
    "IGNORE_INDEX",
    "align_word_labels",
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


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Average of the token vectors (B, T, H) over the real tokens only -> (B, H)."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


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


# ----------------------------------------------------------------------------------------------
# 2. Tasks: a dataset, how to batch it, the loss and the metric
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassificationTask:
    """A GLUE-style task with one label per text or text pair (``bertlab.data.read_glue``)."""

    name: str  # the GLUE name: "sst2", "mrpc", "rte"
    num_labels: int
    pair: bool  # True: examples are (text_a, text_b), packed as [CLS] A [SEP] B [SEP]

    def examples(self, split: str = "train") -> list[data.GlueExample]:
        return data.read_glue(self.name, split)

    def encode(self, tokenizer, examples: Sequence[data.GlueExample], max_length: int = 128):
        """A padded batch (``input_ids``, ``token_type_ids``, ``attention_mask`` (B, T), and
        ``labels`` (B,)); a pair longer than ``max_length`` loses tokens from its longer side."""
        texts = [(e.text_a, e.text_b) if self.pair else e.text_a for e in examples]
        batch = tokenizer.encode_batch(texts, max_length=max_length, return_tensors="pt")
        batch["labels"] = torch.tensor([e.label for e in examples])
        return batch

    @staticmethod
    def loss(model: nn.Module, batch: dict) -> torch.Tensor:
        """Cross-entropy of the model's logits against the labels."""
        logits = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        return F.cross_entropy(logits, batch["labels"])

    @torch.no_grad()
    def accuracy(self, model, tokenizer, examples, batch_size: int = 64, max_length: int = 128):
        """The share of ``examples`` the model labels right (batches of similar lengths)."""
        device = next(model.parameters()).device
        by_length = sorted(examples, key=lambda e: len(e.text_a) + len(e.text_b or ""))
        correct = 0
        for start in range(0, len(by_length), batch_size):
            b = self.encode(tokenizer, by_length[start : start + batch_size], max_length)
            b = {k: v.to(device) for k, v in b.items()}
            logits = model(b["input_ids"], b["token_type_ids"], b["attention_mask"])
            correct += (logits.argmax(-1) == b["labels"]).sum().item()
        return correct / len(examples)


TASKS = {
    "sst2": ClassificationTask("sst2", num_labels=2, pair=False),  # sentiment of one sentence
    "mrpc": ClassificationTask("mrpc", num_labels=2, pair=True),  # paraphrase pair
    "rte": ClassificationTask("rte", num_labels=2, pair=True),  # premise -> hypothesis
}


def task(name: str) -> ClassificationTask:
    """The task called ``name`` (one of ``TASKS``)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}.")
    return TASKS[name]


# ----------------------------------------------------------------------------------------------
# 3. Training
# ----------------------------------------------------------------------------------------------


def train_classifier(
    model: nn.Module,
    tokenizer,
    train_examples: Sequence,
    dev_examples: Sequence,
    config: TrainConfig,
    task_name: str = "sst2",
    max_length: int = 128,
) -> History:
    """Fine-tune ``model`` (a ``BertForSequenceClassification``) on ``train_examples`` with
    ``bertlab.train.Trainer``; ``history.evals`` holds the dev accuracy. Freeze the encoder first
    (``model.bert.requires_grad_(False)``) to train the head alone."""
    t = task(task_name)
    trainer = Trainer(
        model,
        t.loss,
        list(train_examples),
        config,
        eval_fn=lambda m: {"accuracy": t.accuracy(m, tokenizer, dev_examples)},
        collate=lambda examples: t.encode(tokenizer, examples, max_length),
    )
    return trainer.fit()


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
# 4. Token tasks: word labels on word pieces (UD English EWT part of speech)
# ----------------------------------------------------------------------------------------------

# The 17 universal part-of-speech tags of Universal Dependencies, in the order of its guidelines.
UPOS_TAGS = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)  # fmt: skip

IGNORE_INDEX = -100  # the label of positions without one: F.cross_entropy skips it by default


def align_word_labels(
    words: Sequence[str],
    labels: Sequence[int],
    tokenizer,
    max_length: int | None = 128,
    truncate: bool = False,
) -> tuple[list[int], list[int]]:
    """One word per label -> (``input_ids``, ``label_ids``) of ``[CLS] pieces [SEP]``.

    Each word is cut into pieces on its own; its first piece carries its label, the other pieces
    and [CLS]/[SEP] get ``IGNORE_INDEX``, so the loss and the accuracy count each word once (the
    paper's choice for NER). A word that gives no piece at all (only control characters) becomes
    ``[UNK]``, so that every word keeps its label. More than ``max_length`` positions is an error
    unless ``truncate=True``, which drops the pieces past it (and the labels of their words).
    """
    if len(words) != len(labels):
        raise ValueError(
            f"got {len(words)} words but {len(labels)} labels; pass one label per word"
        )
    bad = [label for label in labels if isinstance(label, bool) or not isinstance(label, int)]
    if bad:
        raise TypeError(
            f"labels must be label ids (ints), got {bad[0]!r}; map tags to ids first, e.g. "
            "[UPOS_TAGS.index(tag) for tag in sentence.upos]"
        )
    if max_length is not None and max_length < 2:
        raise ValueError(f"max_length={max_length} leaves no room for [CLS] and [SEP]; use >= 2")
    input_ids, label_ids = [tokenizer.cls_id], [IGNORE_INDEX]
    for word, label in zip(words, labels):
        pieces = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word)) or [tokenizer.unk_id]
        input_ids += pieces
        label_ids += [label] + [IGNORE_INDEX] * (len(pieces) - 1)
    input_ids.append(tokenizer.sep_id)
    label_ids.append(IGNORE_INDEX)
    if max_length is not None and len(input_ids) > max_length:
        if not truncate:
            raise ValueError(
                f"the sentence of {len(words)} words has {len(input_ids)} positions with "
                f"[CLS] and [SEP], more than max_length={max_length}; pass a larger max_length, "
                "or truncate=True to drop the pieces (and labels) past it"
            )
        input_ids = input_ids[: max_length - 1] + [tokenizer.sep_id]
        label_ids = label_ids[: max_length - 1] + [IGNORE_INDEX]
    return input_ids, label_ids
