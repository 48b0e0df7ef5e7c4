"""The fine-tuning tasks of chapter 10: one real task for each input shape of BERT's Figure 4.

A task knows four things: its data (through ``bertlab.data``), how to pack an example into
BERT's input, which output it reads, and how it is scored.

======  ====================  ==========================================  ==================
name    shape                 input                                       output read
======  ====================  ==========================================  ==================
sst2    one sentence          ``[CLS] sentence [SEP]``                    C (the [CLS])
mrpc    sentence pair         ``[CLS] sentence 1 [SEP] sentence 2 [SEP]``  C
rte     premise, hypothesis   ``[CLS] premise [SEP] hypothesis [SEP]``    C
pos     text, no pair (∅)     ``[CLS] words [SEP]``                       T_i of each word
squad   question, paragraph   ``[CLS] question [SEP] paragraph [SEP]``    T_i: start and end
======  ====================  ==========================================  ==================

Each task turns examples into padded batches (:meth:`encode`), gives the loss of a model on a
batch (:meth:`loss`) and scores a model on examples (:meth:`evaluate`); its frozen-encoder
version (:meth:`features`) gives the inputs of a linear probe instead. ``task(name)`` looks
one up. The pair tasks are packed jointly, as BERT does, and a pair too long for
``max_length`` is cut by the longest-first rule (a token off the longer side until it fits).

Token labels sit on the first WordPiece of each word (:func:`align_word_labels`); SQuAD's
windows, metric and span decoding are ``bertlab.squad``'s.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from bertlab import data, squad

__all__ = [
    "IGNORE_INDEX",
    "UPOS_TAGS",
    "align_word_labels",
    "length_batches",
    "SequenceTask",
    "TaggingTask",
    "SpanTask",
    "TASKS",
    "task",
]

UPOS_TAGS = tuple(data.UPOS_TAGS)  # the 17 universal part-of-speech tags
IGNORE_INDEX = -100  # the label of positions without one: F.cross_entropy skips it by default


def length_batches(lengths: Sequence[int], batch_size: int, seed: int, epochs: int = 1):
    """Batches of example indices for ``epochs`` passes: each pass shuffled with ``(seed,
    epoch)``, cut into chunks of 50 batches, each chunk sorted by length and split into
    batches, and the batches shuffled. Rows of one batch have similar lengths, so little
    compute goes to padding (3-4x less on SST-2), while every batch stays a random draw."""
    batches = []
    for epoch in range(epochs):
        rng = random.Random(seed * 1000 + epoch)
        order = list(range(len(lengths)))
        rng.shuffle(order)
        chunk = 50 * batch_size
        epoch_batches = []
        for lo in range(0, len(order), chunk):
            part = sorted(order[lo : lo + chunk], key=lengths.__getitem__)
            epoch_batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
        rng.shuffle(epoch_batches)
        batches += epoch_batches
    return batches


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def _device(model) -> torch.device:
    return next(model.parameters()).device


# ----------------------------------------------------------------------------------------------
# 1. One label per sequence: SST-2, MRPC, RTE
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SequenceTask:
    """A GLUE task with one label per text or text pair (``bertlab.data.read_glue``)."""

    name: str  # the GLUE name: "sst2", "mrpc", "rte"
    labels: tuple[str, ...]  # label names, by id
    pair: bool  # True: examples are (text_a, text_b), packed as [CLS] A [SEP] B [SEP]
    metrics: tuple[str, ...] = ("accuracy",)  # MRPC adds the F1 of the "paraphrase" class
    kind: ClassVar[str] = "sequence"

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def splits(self, seed: int = 0) -> tuple[list, list]:
        """(train, test): GLUE's train split shuffled with ``seed``, and its dev split."""
        train = data.read_glue(self.name, "train")
        random.Random(seed).shuffle(train)
        return train, data.read_glue(self.name, "dev")

    def text(self, example) -> str | tuple[str, str]:
        return (example.text_a, example.text_b) if self.pair else example.text_a

    def length(self, example) -> int:
        return len(example.text_a) + len(example.text_b or "")

    def encode(self, tokenizer, examples: Sequence, max_length: int = 128) -> dict:
        """A padded batch: ``input_ids``, ``token_type_ids``, ``attention_mask`` (B, T) and
        ``labels`` (B,). A pair longer than ``max_length`` loses tokens from its longer side."""
        texts = [self.text(e) for e in examples]
        batch = tokenizer.encode_batch(texts, max_length=max_length, return_tensors="pt")
        batch["labels"] = torch.tensor([e.label for e in examples])
        return batch

    @staticmethod
    def loss(model, batch: dict) -> torch.Tensor:
        """Cross-entropy of the model's logits (B, num_labels) against the labels."""
        logits = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        return F.cross_entropy(logits, batch["labels"])

    @torch.no_grad()
    def predict(self, model, tokenizer, examples, max_length: int = 128, batch_size: int = 64):
        """Class probabilities (N, num_labels), in the order of ``examples``."""
        model.eval()
        order = sorted(range(len(examples)), key=lambda i: self.length(examples[i]))
        probs = torch.empty(len(examples), self.num_labels)
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            b = _to(self.encode(tokenizer, [examples[i] for i in idx], max_length), _device(model))
            logits = model(b["input_ids"], b["token_type_ids"], b["attention_mask"])
            probs[idx] = logits.float().softmax(-1).cpu()
        return probs

    def score(self, predicted: torch.Tensor, examples) -> dict[str, float]:
        """Accuracy (and for MRPC the F1 of label 1) of predicted label ids (N,)."""
        gold = torch.tensor([e.label for e in examples])
        out = {"accuracy": (predicted == gold).float().mean().item()}
        if "f1" in self.metrics:
            tp = ((predicted == 1) & (gold == 1)).sum().item()
            out["f1"] = 2 * tp / max(1, (predicted == 1).sum().item() + (gold == 1).sum().item())
        return out

    def evaluate(self, model, tokenizer, examples, max_length: int = 128) -> dict[str, float]:
        """The task's metrics of ``model`` on ``examples``."""
        return self.score(self.predict(model, tokenizer, examples, max_length).argmax(-1), examples)

    def features(self, encoder, tokenizer, examples, pool: str, max_length: int = 128):
        """Frozen-encoder inputs of a probe: ((L + 1, N, H) every layer pooled by ``pool``
        ("cls" or "mean"; a tuple of both gives ``{pool: features}`` from one pass), labels
        (N,)). See ``bertlab.probe.features``."""
        from bertlab import probe

        x = probe.features(encoder, [self.text(e) for e in examples], tokenizer, pool=pool,
                           layers="all", max_length=max_length)  # fmt: skip
        return x, torch.tensor([e.label for e in examples])


# ----------------------------------------------------------------------------------------------
# 2. One label per word: part of speech (UD English EWT)
# ----------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class TaggingTask:
    """Universal part-of-speech tags of UD English EWT: a label for each word, read from the
    first WordPiece of the word. Scored by word accuracy. Sentences longer than ``max_length``
    pieces are cut (their last words lose their labels)."""

    name: str = "pos"
    labels: tuple[str, ...] = UPOS_TAGS
    metrics: tuple[str, ...] = ("accuracy",)
    pair: bool = False
    kind: ClassVar[str] = "token"

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def splits(self, seed: int = 0) -> tuple[list, list]:
        """(train, test): UD EWT's train sentences shuffled with ``seed``, and its dev set."""
        train = data.read_conllu("train")
        random.Random(seed).shuffle(train)
        return train, data.read_conllu("dev")

    def text(self, example) -> str:
        return example.text or " ".join(example.words)

    def length(self, example) -> int:
        return sum(len(w) + 1 for w in example.words)

    def encode(self, tokenizer, examples: Sequence, max_length: int = 128) -> dict:
        """A padded batch: inputs (B, T) and ``labels`` (B, T), ``IGNORE_INDEX`` except on the
        first piece of each word."""
        rows = [
            align_word_labels(
                e.words,
                [self.labels.index(t) for t in e.upos],
                tokenizer,
                max_length,
                truncate=True,
            )  # fmt: skip
            for e in examples
        ]
        T = max(len(ids) for ids, _ in rows)
        input_ids = torch.full((len(rows), T), tokenizer.pad_id)
        labels = torch.full((len(rows), T), IGNORE_INDEX)
        for i, (ids, lab) in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            labels[i, : len(lab)] = torch.tensor(lab)
        mask = (input_ids != tokenizer.pad_id).long()
        return {"input_ids": input_ids, "token_type_ids": torch.zeros_like(input_ids),
                "attention_mask": mask, "labels": labels}  # fmt: skip

    @staticmethod
    def loss(model, batch: dict) -> torch.Tensor:
        """Cross-entropy over the labelled positions (first pieces of words) only."""
        logits = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        return F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten())

    @torch.no_grad()
    def predict(self, model, tokenizer, examples, max_length: int = 128, batch_size: int = 64):
        """(predicted label id per labelled word, gold label id per labelled word), flat."""
        predicted, gold = self.predict_sentences(model, tokenizer, examples, max_length, batch_size)
        return torch.cat(predicted), torch.cat(gold)

    @torch.no_grad()
    def predict_sentences(self, model, tokenizer, examples, max_length: int = 128,
                          batch_size: int = 64):  # fmt: skip
        """(predicted, gold) label ids of the labelled words, one (words,) tensor per example
        (a sentence cut at ``max_length`` keeps the labels of its first words only)."""
        model.eval()
        predicted, gold = [], []
        for lo in range(0, len(examples), batch_size):
            b = _to(self.encode(tokenizer, examples[lo : lo + batch_size], max_length),
                    _device(model))  # fmt: skip
            logits = model(b["input_ids"], b["token_type_ids"], b["attention_mask"])
            for row, labels in zip(logits.argmax(-1).cpu(), b["labels"].cpu()):
                keep = labels != IGNORE_INDEX  # (T,)
                predicted.append(row[keep])
                gold.append(labels[keep])
        return predicted, gold

    @staticmethod
    def score(predicted: torch.Tensor, gold: torch.Tensor) -> dict[str, float]:
        """Word accuracy of predicted label ids against gold ones (both flat)."""
        return {"accuracy": (predicted == gold).float().mean().item()}

    def evaluate(self, model, tokenizer, examples, max_length: int = 128) -> dict[str, float]:
        return self.score(*self.predict(model, tokenizer, examples, max_length))

    @staticmethod
    def most_frequent_tag_accuracy(train, test) -> float:
        """The baseline every tagger must beat: each word's most frequent tag in ``train``
        (lower-cased), the most frequent tag overall for an unseen word; word accuracy on
        ``test``."""
        from collections import Counter, defaultdict

        counts = defaultdict(Counter)
        for e in train:
            for word, tag in zip(e.words, e.upos):
                counts[word.lower()][tag] += 1
        overall = Counter(tag for e in train for tag in e.upos).most_common(1)[0][0]
        best = {w: c.most_common(1)[0][0] for w, c in counts.items()}
        pairs = [(best.get(w.lower(), overall), t) for e in test for w, t in zip(e.words, e.upos)]
        return sum(p == t for p, t in pairs) / len(pairs)

    @torch.no_grad()
    def features(self, encoder, tokenizer, examples, pool: str = "first", max_length: int = 128,
                 batch_size: int = 64):  # fmt: skip
        """Frozen-encoder inputs of a probe: ((L + 1, words, H) the first piece of each word in
        every layer, labels (words,))."""
        encoder.eval()
        vectors, labels = [], []
        for lo in range(0, len(examples), batch_size):
            b = _to(self.encode(tokenizer, examples[lo : lo + batch_size], max_length),
                    _device(encoder))  # fmt: skip
            out = encoder(b["input_ids"], b["token_type_ids"], b["attention_mask"],
                          output_hidden_states=True)  # fmt: skip
            keep = b["labels"] != IGNORE_INDEX  # (B, T)
            vectors.append(torch.stack(out.hidden_states)[:, keep].float().cpu())  # (L+1, n, H)
            labels.append(b["labels"][keep].cpu())
        return torch.cat(vectors, 1), torch.cat(labels)


# ----------------------------------------------------------------------------------------------
# 3. A span of the paragraph: SQuAD v1.1
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpanTask:
    """SQuAD v1.1 question answering: a start and an end score per paragraph token.

    Only the dev file is shipped, so :meth:`splits` cuts it by article (``squad.split_by_article``)
    into train and test halves. A paragraph longer than one window gets several, sharing
    ``doc_stride`` tokens; the answer is the best legal span over all of an example's windows,
    cut from the original text by character offsets. Scored by SQuAD's exact match and F1."""

    name: str = "squad"
    labels: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ("exact_match", "f1")
    pair: bool = True
    doc_stride: int = 32
    max_query_length: int = 32
    kind: ClassVar[str] = "span"

    def splits(self, seed: int = 0) -> tuple[list, list]:
        """(train, test): SQuAD dev split by article, each side's questions shuffled."""
        train, test = squad.split_by_article(data.read_squad("dev"), test_fraction=0.5, seed=0)
        random.Random(seed).shuffle(train)
        random.Random(1).shuffle(test)
        return train, test

    def text(self, example) -> tuple[str, str]:
        return example.question, example.context

    def length(self, example) -> int:
        return len(example.question) + len(example.context)

    def windows(self, tokenizer, examples, max_length: int = 128) -> squad.SquadFeatures:
        return squad.features(examples, tokenizer, max_length, self.doc_stride,
                              self.max_query_length)  # fmt: skip

    @staticmethod
    def loss(model, batch: dict) -> torch.Tensor:
        """The mean of the start and end positions' cross-entropies over the T positions."""
        start, end = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
        return (F.cross_entropy(start, batch["start_positions"])
                + F.cross_entropy(end, batch["end_positions"])) / 2  # fmt: skip

    @torch.no_grad()
    def predict(self, model, tokenizer, examples, max_length: int = 128, batch_size: int = 64):
        """``{question id: answer text}``."""
        model.eval()
        windows = self.windows(tokenizer, examples, max_length)
        starts, ends = [], []
        for lo in range(0, len(windows), batch_size):
            b = _to(windows.batch(slice(lo, lo + batch_size)), _device(model))
            s, e = model(b["input_ids"], b["token_type_ids"], b["attention_mask"])
            starts.append(s.float().cpu())
            ends.append(e.float().cpu())
        return squad.best_spans(torch.cat(starts), torch.cat(ends), windows)

    def score(self, answers: dict[str, str], examples) -> dict[str, float]:
        n = len(examples)
        em = sum(squad.exact_match(answers[e.id], e.answers) for e in examples) / n
        return {
            "exact_match": em,
            "f1": sum(squad.f1(answers[e.id], e.answers) for e in examples) / n,
        }

    def evaluate(self, model, tokenizer, examples, max_length: int = 128) -> dict[str, float]:
        return self.score(self.predict(model, tokenizer, examples, max_length), examples)


# ----------------------------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------------------------

TASKS = {
    "sst2": SequenceTask("sst2", ("negative", "positive"), pair=False),
    "mrpc": SequenceTask(
        "mrpc", ("not_paraphrase", "paraphrase"), pair=True, metrics=("accuracy", "f1")
    ),  # fmt: skip
    "rte": SequenceTask("rte", ("entailment", "not_entailment"), pair=True),
    "pos": TaggingTask(),
    "squad": SpanTask(),
}


def task(name: str) -> SequenceTask | TaggingTask | SpanTask:
    """The task called ``name`` (one of ``TASKS``)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}.")
    return TASKS[name]
