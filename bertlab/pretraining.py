"""Pre-training BERT: the masked language model and next-sentence prediction, on WikiText-2.

The paper's recipe (section 3.1 and appendix A), step by step:

1. **Text.** WikiText-2's articles become documents of sentences of WordPiece ids, with a
   vocabulary trained on WikiText-2 train (:func:`wordpiece_tokenizer`, cached).
2. **Sequences.** :func:`nsp_pairs` follows Google's ``create_pretraining_data``: fill a target
   length from consecutive sentences of one document and split them at a random sentence
   boundary into A and B; half the time B is the true continuation, otherwise it comes from
   another document (and the sentences not used go back). :func:`full_sequences` is RoBERTa's
   alternative: contiguous text filling the whole length, no pairs.
3. **Masking.** :func:`mask_tokens` selects 15% of the tokens; of those 80% become [MASK], 10% a
   random token, 10% stay. Static masking draws each sequence's masks once (with a duplication
   factor, as BERT); dynamic masking draws them anew each time the sequence is served (RoBERTa).
   Either way a batch is a pure function of (seed, step), so a resumed run is exact.
4. **The loss.** The MLM head decodes only the selected positions (their hidden states are
   gathered first), plus NSP from the pooled [CLS]; or a left-to-right LM (``objective="ltr"``).
5. **Training.** :func:`pretrain` runs ``bertlab.train.Trainer`` (checkpoints, resume, DDP under
   torchrun), evaluates on WikiText-2 valid and writes a Hugging Face folder;
   :func:`load_or_train` caches the result for the later chapters.

Command line: ``python -m bertlab.pretraining --preset cpu --out DIR [--steps N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from bertlab import data
from bertlab.bert import BertConfig, BertForPreTraining
from bertlab.checkpoint import cached
from bertlab.train import History, Presets, TrainConfig, Trainer, distributed_rank
from bertlab.wordpiece import WordPieceTokenizer, save_vocab

__all__ = [
    "PretrainConfig",
    "Pair",
    "clean_wikitext",
    "wordpiece_tokenizer",
    "documents",
    "nsp_pairs",
    "full_sequences",
    "mask_tokens",
    "Batches",
    "pretraining_loss",
    "evaluate",
    "pretrain",
    "PretrainedBert",
    "load_pretrained_folder",
    "load_or_train",
]

OBJECTIVES, MASKINGS, PACKINGS = ("mlm", "ltr"), ("static", "dynamic"), ("pairs", "full")

# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


@dataclass
class PretrainConfig(Presets):
    """The model, the data and the objective of one pre-training run, and how long it trains.

    The switches chapter 11 ablates: ``nsp`` (next-sentence prediction on or off), ``masking``
    (static or dynamic), ``mask_prob``, ``objective`` ("mlm", or "ltr": a left-to-right LM with
    the causal mask) and ``packing`` ("pairs": [CLS] A [SEP] B [SEP]; "full": full-length
    sequences of contiguous text). ``batch_size`` is the global batch, over ``accumulate``
    micro-batches.
    """

    # data
    vocab_size: int = 8192  # WordPiece vocabulary trained on WikiText-2 train
    max_len: int = 128  # tokens per sequence, [CLS] and [SEP]s included
    short_seq_prob: float = 0.1  # share of sequences with a random shorter target length
    documents: int | None = None  # train on the first n articles only (None: all 600)
    # objective
    objective: str = "mlm"
    nsp: bool = True
    packing: str = "pairs"
    masking: str = "static"
    duplication: int = 10  # static masking: distinct masks per sequence (BERT used 10)
    mask_prob: float = 0.15
    # model (bertlab.bert.BertConfig)
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    intermediate: int = 1024
    max_position: int = 512
    dropout: float = 0.1
    embedding_size: int | None = None
    share_layers: bool = False
    # training
    steps: int = 1000
    batch_size: int = 32
    accumulate: int = 1
    lr: float = 1e-3
    warmup: float = 0.06
    weight_decay: float = 0.01
    seed: int = 0
    eval_every: int = 0  # 0: at the end only
    eval_sequences: int = 512  # WikiText-2 valid sequences for the validation metrics
    snapshots: tuple[float, ...] = (0.25,)  # also keep the weights at these fractions of steps

    PRESETS: ClassVar[dict[str, dict]] = {
        "cpu": dict(steps=1000, eval_every=250),
        "gpu": dict(
            vocab_size=16384,
            max_len=256,
            layers=8,
            hidden=512,
            heads=8,
            intermediate=2048,
            steps=20000,
            batch_size=128,
            lr=5e-4,
            warmup=0.02,
            eval_every=2000,
            eval_sequences=2048,
        ),
        # for tests and a quick look: 20 articles, a 2-layer model, no dropout
        "tiny": dict(
            vocab_size=1000,
            max_len=64,
            documents=20,
            layers=2,
            hidden=64,
            heads=2,
            intermediate=128,
            max_position=64,
            dropout=0.0,
            steps=40,
            batch_size=16,
            eval_sequences=64,
        ),
    }

    def __post_init__(self):
        self.snapshots = tuple(self.snapshots)
        for name, value, choices in (
            ("objective", self.objective, OBJECTIVES),
            ("masking", self.masking, MASKINGS),
            ("packing", self.packing, PACKINGS),
        ):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}.")
        if self.nsp and (self.objective == "ltr" or self.packing == "full"):
            raise ValueError(
                f"nsp=True needs sentence pairs and a bidirectional [CLS]; objective="
                f"{self.objective!r} with packing={self.packing!r} has none: set nsp=False."
            )
        if self.max_len > self.max_position:
            raise ValueError(
                f"max_len={self.max_len} is above max_position={self.max_position}: the model "
                f"has no position embedding beyond {self.max_position}; raise max_position or "
                f"lower max_len."
            )
        if self.max_len < 8:
            raise ValueError(f"max_len={self.max_len} is too short for [CLS] A [SEP] B [SEP].")
        if not 0 < self.mask_prob < 1:
            raise ValueError(f"mask_prob must be in (0, 1), got {self.mask_prob}.")

    def bert_config(self, vocab_size: int) -> BertConfig:
        """The model these settings describe, for a vocabulary of ``vocab_size`` pieces."""
        return BertConfig(
            vocab_size=vocab_size,
            hidden=self.hidden,
            layers=self.layers,
            heads=self.heads,
            intermediate=self.intermediate,
            max_position=self.max_position,
            dropout=self.dropout,
            attention_dropout=self.dropout,
            causal=self.objective == "ltr",
            embedding_size=self.embedding_size,
            share_layers=self.share_layers,
        )

    def train_config(self, **overrides) -> TrainConfig:
        return TrainConfig(
            steps=self.steps,
            batch_size=self.batch_size,
            accumulate=self.accumulate,
            lr=self.lr,
            warmup=self.warmup,
            weight_decay=self.weight_decay,
            seed=self.seed,
            eval_every=self.eval_every,
            log_every=10,
            **overrides,
        )


# --------------------------------------------------------------------------------------------------
# 1. Text: WikiText-2 documents as WordPiece ids
# --------------------------------------------------------------------------------------------------

_WIKITEXT_JOINS = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."))


def clean_wikitext(text: str, unk: str = "[UNK]") -> str:
    """WikiText's tokenized text back to plain text for WordPiece: ``1 @,@ 000`` -> ``1,000``,
    ``well @-@ known`` -> ``well-known``, and its ``<unk>`` as the tokenizer's ``unk``."""
    for old, new in _WIKITEXT_JOINS:
        text = text.replace(old, new)
    return text.replace("<unk>", unk)


def _document_sentences(split: str, limit: int | None) -> list[list[str]]:
    """Each article of a split as a list of sentences (plain text)."""
    docs = data.wikitext2_documents(split)[:limit]
    return [
        [" ".join(s) for p in doc.paragraphs for s in data.split_sentences(p.split())]
        for doc in docs
    ]


def wordpiece_tokenizer(vocab_size: int, documents: int | None = None) -> WordPieceTokenizer:
    """A WordPiece vocabulary of ``vocab_size`` pieces learned on WikiText-2 train (its first
    ``documents`` articles), trained once and then read from the cache."""
    from bertlab.wordpiece_trainer import train_wordpiece

    recipe = {"corpus": "wikitext-2 train", "vocab_size": vocab_size, "documents": documents}

    def build(folder: Path) -> None:
        texts = [
            clean_wikitext(s, unk=" ") for d in _document_sentences("train", documents) for s in d
        ]
        result = train_wordpiece(texts, vocab_size=vocab_size, min_frequency=2)
        save_vocab(result, folder / "vocab.txt")

    def load(folder: Path) -> WordPieceTokenizer:
        return WordPieceTokenizer.from_vocab_file(folder / "vocab.txt")

    tok = cached("wordpiece", recipe, build, load)
    if tok.special_ids != set(range(len(tok.special_ids))) or tok.mask_id != 4:
        raise ValueError("the vocabulary must list its 5 special tokens first, [MASK] last.")
    return tok


def documents(
    tokenizer: WordPieceTokenizer, split: str = "train", limit: int | None = None
) -> list[list[list[int]]]:
    """WikiText-2 articles as documents of sentences of WordPiece ids (empty ones dropped)."""
    out = []
    for doc in _document_sentences(split, limit):
        ids = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(clean_wikitext(s))) for s in doc]
        ids = [s for s in ids if s]
        if ids:
            out.append(ids)
    return out


# --------------------------------------------------------------------------------------------------
# 2. Sequences: NSP pairs (BERT) or full-length sequences (RoBERTa)
# --------------------------------------------------------------------------------------------------


@dataclass
class Pair:
    """One training sequence ``[CLS] a [SEP] b [SEP]`` (``b`` empty for full-length sequences).

    ``is_next``: b really followed a. ``doc`` and ``doc_b`` are the documents a and b come from,
    ``start`` the index of a's first sentence (for checking the construction)."""

    a: list[int]
    b: list[int]
    is_next: bool
    doc: int
    doc_b: int
    start: int


def _truncate_pair(a: list[int], b: list[int], max_tokens: int, rng: random.Random) -> None:
    """Drop tokens from the longer side, from a random end, until ``a + b`` fits (in place)."""
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def nsp_pairs(
    documents: Sequence[Sequence[Sequence[int]]],
    tokenizer=None,
    max_len: int = 128,
    short_seq_prob: float = 0.1,
    seed: int = 0,
) -> list[Pair]:
    """Sentence pairs for MLM + NSP, as Google's ``create_instances_from_document`` makes them.

    ``documents`` are lists of sentences of token ids (:func:`documents`). A pair holds at most
    ``max_len - 3`` tokens (room for [CLS] and two [SEP]s). Two details differ from the
    reference, both so that exactly half the pairs are IsNext: a chunk of one long sentence is
    cut at a random token into A and B (the reference always gives it a random B), and the 10%
    short target length is drawn per sequence (the reference draws it per document, and
    WikiText-2's 600 documents are long). ``tokenizer`` is accepted for the
    signature's sake (the ids are already tokenized) and not used.
    """
    if len(documents) < 2:
        raise ValueError(
            f"NSP needs at least 2 documents (random Bs come from another), got {len(documents)}."
        )
    rng = random.Random(seed)
    max_tokens = max_len - 3
    pairs: list[Pair] = []
    for d, document in enumerate(documents):
        target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
        chunk, length, i = [], 0, 0
        while i < len(document):
            chunk.append(document[i])
            length += len(document[i])
            if i == len(document) - 1 or length >= target:
                a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                a = [t for s in chunk[:a_end] for t in s]
                start = i - len(chunk) + 1
                is_next = rng.random() >= 0.5
                if is_next and len(chunk) == 1 and len(a) >= 2:
                    # one long sentence: A and B are its two halves, cut at a random token
                    cut = rng.randint(1, len(a) - 1)
                    a, b, doc_b = a[:cut], a[cut:], d
                elif is_next and len(chunk) >= 2:
                    b, doc_b = [t for s in chunk[a_end:] for t in s], d
                else:  # B from a random other document
                    is_next = False
                    for _ in range(10):
                        doc_b = rng.randint(0, len(documents) - 1)
                        if doc_b != d:
                            break
                    else:
                        doc_b = (d + 1) % len(documents)
                    b = []
                    for sentence in documents[doc_b][rng.randint(0, len(documents[doc_b]) - 1) :]:
                        b.extend(sentence)
                        if len(b) >= target - len(a):
                            break
                    i -= len(chunk) - a_end  # the sentences not used go back
                _truncate_pair(a, b, max_tokens, rng)
                if a and b:
                    pairs.append(Pair(a, b, is_next, d, doc_b, start))
                target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
                chunk, length = [], 0
            i += 1
    return pairs


def full_sequences(
    documents: Sequence[Sequence[Sequence[int]]], max_len: int = 128, sep_id: int = 3
) -> list[Pair]:
    """RoBERTa's FULL-SENTENCES packing: sentences in order, across document boundaries (marked
    by an extra [SEP]), cut into sequences of ``max_len - 2`` tokens ([CLS] and a final [SEP])."""
    stream: list[int] = []
    for document in documents:
        for sentence in document:
            stream.extend(sentence)
        stream.append(sep_id)
    size = max_len - 2
    return [
        Pair(stream[i : i + size], [], False, -1, -1, i)
        for i in range(0, len(stream) - size + 1, size)
    ]


# --------------------------------------------------------------------------------------------------
# 3. Masking
# --------------------------------------------------------------------------------------------------


def mask_tokens(
    input_ids: torch.Tensor,
    special_mask: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    prob: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: select each non-special token with probability ``prob``; of the selected,
    80% become ``mask_id``, 10% a random token, 10% stay as they are.

    ``special_mask`` (same shape as ``input_ids``) is True at [CLS], [SEP] and padding, which are
    never selected. Random tokens are drawn from the non-special vocabulary, the ids after
    ``mask_id`` (bertlab's vocabularies list the special tokens first, [MASK] last).
    Returns ``(masked_ids, labels)``: labels hold the original id where selected, -100 elsewhere
    (what ``F.cross_entropy(..., ignore_index=-100)`` skips).
    """
    if not mask_id + 1 < vocab_size:
        raise ValueError(f"no regular tokens after mask_id={mask_id} in {vocab_size} ids.")
    draw = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    selected = (draw < prob) & ~special_mask
    how = torch.rand(input_ids.shape, generator=generator, device=input_ids.device)
    random_ids = torch.randint(
        mask_id + 1, vocab_size, input_ids.shape, generator=generator, device=input_ids.device
    )
    masked = torch.where(selected & (how < 0.8), mask_id, input_ids)
    masked = torch.where(selected & (how >= 0.8) & (how < 0.9), random_ids, masked)
    labels = torch.where(selected, input_ids, -100)
    return masked, labels


# --------------------------------------------------------------------------------------------------
# 4. Batches, a pure function of (seed, step)
# --------------------------------------------------------------------------------------------------


@dataclass
class Batches:
    """``batches(step)``: the global batch of a training step, as model inputs.

    Sequences are shuffled per epoch from ``(seed, epoch)``; masks come from ``(seed, sequence,
    epoch % duplication)`` with static masking, from ``(seed, step)`` with dynamic masking. The
    batch holds ``input_ids``, ``token_type_ids``, ``attention_mask``, ``labels`` (B, T) and
    ``nsp_labels`` (B,) (0 = IsNext, 1 = NotNext), and ``predicted``: how many positions the
    whole batch predicts, so the loss is a mean over the global batch however it is split.
    """

    pairs: list[Pair]
    config: PretrainConfig
    tokenizer: WordPieceTokenizer
    batch_size: int
    seed: int = 0
    _perm: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if len(self.pairs) < self.batch_size:
            raise ValueError(
                f"the corpus gives {len(self.pairs)} sequences of {self.config.max_len} tokens, "
                f"fewer than one batch of {self.batch_size}: use more documents, shorter "
                f"sequences or a smaller batch."
            )

    def encode(self, pairs: Sequence[Pair]) -> dict[str, torch.Tensor]:
        """Unmasked inputs: ``[CLS] a [SEP] b [SEP]`` (or ``[CLS] a [SEP]``), padded."""
        tok = self.tokenizer
        rows = [[tok.cls_id, *p.a, tok.sep_id, *(p.b + [tok.sep_id] if p.b else [])] for p in pairs]
        T = max(map(len, rows))
        ids = torch.full((len(rows), T), tok.pad_id, dtype=torch.long)
        types = torch.zeros_like(ids)
        for r, (row, p) in enumerate(zip(rows, pairs)):
            ids[r, : len(row)] = torch.tensor(row)
            types[r, len(p.a) + 2 : len(row)] = 1
        return {
            "input_ids": ids,
            "token_type_ids": types,
            "attention_mask": (ids != tok.pad_id).long(),
            "nsp_labels": torch.tensor([0 if p.is_next else 1 for p in pairs]),
        }

    def _mask(self, b: dict, generators: Sequence[torch.Generator], per_row: bool) -> dict:
        """Add ``labels`` (and the masked ``input_ids``): one generator per row, or one for all."""
        tok, c = self.tokenizer, self.config
        ids = b["input_ids"]
        if c.objective == "ltr":  # predict the next token at every real position
            labels = torch.where(b["attention_mask"][:, 1:] == 1, ids[:, 1:], -100)
            b["labels"] = F.pad(labels, (0, 1), value=-100)
        else:
            special = (ids == tok.cls_id) | (ids == tok.sep_id) | (ids == tok.pad_id)
            if per_row:
                done = [
                    mask_tokens(ids[r], special[r], tok.mask_id, tok.vocab_size, c.mask_prob, g)
                    for r, g in enumerate(generators)
                ]
                b["input_ids"] = torch.stack([m for m, _ in done])
                b["labels"] = torch.stack([lab for _, lab in done])
            else:
                b["input_ids"], b["labels"] = mask_tokens(
                    ids, special, tok.mask_id, tok.vocab_size, c.mask_prob, generators[0]
                )
        b["predicted"] = int((b["labels"] != -100).sum())  # in the whole (global) batch
        b["rows"] = len(ids)
        return b

    def order(self, epoch: int) -> list[int]:
        if epoch not in self._perm:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = {epoch: torch.randperm(len(self.pairs), generator=g).tolist()}
        return self._perm[epoch]

    def __call__(self, step: int) -> dict:
        per_epoch = len(self.pairs) // self.batch_size
        epoch, i = divmod(step, per_epoch)
        idx = self.order(epoch)[i * self.batch_size : (i + 1) * self.batch_size]
        b = self.encode([self.pairs[j] for j in idx])
        if self.config.masking == "dynamic":
            return self._mask(
                b, [torch.Generator().manual_seed(self.seed * 1_000_003 + step)], per_row=False
            )
        copy = epoch % self.config.duplication
        generators = [
            torch.Generator().manual_seed((self.seed * 1_000_003 + j) * 31 + copy) for j in idx
        ]
        return self._mask(b, generators, per_row=True)

    def fixed(self, count: int) -> list[dict]:
        """The first ``count`` sequences, masked once with fixed seeds, in batches: the
        validation set (the same masks at every evaluation and in every run)."""
        out = []
        for s in range(0, min(count, len(self.pairs)), self.batch_size):
            chunk = self.pairs[s : s + self.batch_size]
            g = torch.Generator().manual_seed(self.seed * 7_919 + s)
            out.append(self._mask(self.encode(chunk), [g], per_row=False))
        return out


# --------------------------------------------------------------------------------------------------
# 5. The loss: masked-only MLM (+ NSP), or left to right
# --------------------------------------------------------------------------------------------------


def pretraining_loss(model, batch: dict, nsp: bool = True) -> dict[str, torch.Tensor]:
    """MLM (or left-to-right LM) loss on the predicted positions only, plus NSP from [CLS].

    The encoder's hidden states at the predicted positions are gathered first and only those go
    through the MLM head and the (V, H) decoder: ``mlm_positions`` is the boolean mask of the
    labels. The MLM loss is the mean over every predicted position of the *global* batch, so it
    is the same whether the batch runs in one piece, in micro-batches or over several processes.
    Returns ``loss`` and ``mlm_loss``, ``mlm_accuracy`` (on the predicted positions),
    ``nsp_loss``, ``nsp_accuracy``.
    """
    labels = batch["labels"]
    selected = labels != -100  # (B, T)
    out = model(
        batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], mlm_positions=selected
    )  # mlm_logits: (N, V), N = selected positions
    target = labels[selected]  # (N,), the same row-major order
    share = batch["rows"] / len(labels) / max(batch["predicted"], 1)  # 1 / global predictions
    mlm_loss = F.cross_entropy(out.mlm_logits.float(), target, reduction="sum") * share
    correct = (out.mlm_logits.argmax(-1) == target).sum() * share
    result = {"mlm_loss": mlm_loss, "mlm_accuracy": correct}
    if nsp:
        nsp_loss = F.cross_entropy(out.nsp_logits.float(), batch["nsp_labels"])
        result["nsp_loss"] = nsp_loss
        result["nsp_accuracy"] = (out.nsp_logits.argmax(-1) == batch["nsp_labels"]).float().mean()
    result["loss"] = mlm_loss + result.get("nsp_loss", 0.0)
    return result


@torch.no_grad()
def evaluate(model, batches: Sequence[dict], nsp: bool = True) -> dict[str, float]:
    """Validation metrics over fixed, pre-masked batches (:meth:`Batches.fixed`)."""
    model = getattr(model, "module", model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    totals = Counter()
    for b in batches:
        b = {k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}
        out = pretraining_loss(model, b, nsp)
        n, rows = b["predicted"], b["rows"]
        totals["predicted"] += n
        totals["mlm_loss"] += float(out["mlm_loss"]) * n
        totals["mlm_accuracy"] += float(out["mlm_accuracy"]) * n
        if nsp:
            totals["rows"] += rows
            totals["nsp_loss"] += float(out["nsp_loss"]) * rows
            totals["nsp_accuracy"] += float(out["nsp_accuracy"]) * rows
    model.train(was_training)
    metrics = {k: totals[k] / totals["predicted"] for k in ("mlm_loss", "mlm_accuracy")}
    if nsp:
        metrics |= {k: totals[k] / totals["rows"] for k in ("nsp_loss", "nsp_accuracy")}
    return metrics


def unigram_accuracy(train: Sequence[Pair], batches: Sequence[dict], first_regular: int) -> float:
    """The baseline that always predicts the most frequent regular piece of the training text."""
    counts = Counter(t for p in train for t in (*p.a, *p.b) if t >= first_regular)
    top = counts.most_common(1)[0][0]
    labels = torch.cat([b["labels"][b["labels"] != -100] for b in batches])
    return float((labels == top).float().mean())


# --------------------------------------------------------------------------------------------------
# 6. Training, the Hugging Face folder, the cache
# --------------------------------------------------------------------------------------------------


@dataclass
class PretrainedBert:
    """A pre-trained mini-BERT: the model (with its MLM and NSP heads), its tokenizer, the
    config it was trained with, its training history, validation metrics and folder."""

    model: BertForPreTraining
    tokenizer: WordPieceTokenizer
    config: PretrainConfig
    history: History
    metrics: dict
    folder: Path

    def snapshot(self, step: int) -> BertForPreTraining:
        """The model as it was after ``step`` steps (one of ``metrics["snapshots"]``)."""
        from bertlab.checkpoint import load_model_weights, load_weights

        model = BertForPreTraining(self.model.config)
        path = self.folder / "snapshots" / f"step-{step}.safetensors"
        load_model_weights(model, load_weights(path), f"the snapshot {path}")
        return model.eval()


def _sequences(config: PretrainConfig, docs) -> list[Pair]:
    if config.packing == "full":
        return full_sequences(docs, config.max_len)
    return nsp_pairs(
        docs, max_len=config.max_len, short_seq_prob=config.short_seq_prob, seed=config.seed
    )


def pretrain(
    config: PretrainConfig, out: str | Path, device=None, progress: bool = True
) -> PretrainedBert | None:
    """Pre-train the model ``config`` describes on WikiText-2 and write it to ``out``.

    ``out`` receives the training checkpoint (every two minutes and at the end; running again
    with the same config resumes from it, after a crash or ``kill -9`` too, and a checkpoint of
    another config is refused), weight snapshots, and at the end a Hugging Face folder
    (config.json, model.safetensors with both heads, vocab.txt) with ``history.json`` and
    ``metrics.json``. Under torchrun every process trains its slice of each batch and rank 0
    writes; the other ranks return None.
    """
    from bertlab import hf
    from bertlab.checkpoint import save_weights

    out = Path(out)
    tokenizer = wordpiece_tokenizer(config.vocab_size, config.documents)
    train_pairs = _sequences(config, documents(tokenizer, "train", config.documents))
    valid_docs = documents(tokenizer, "valid", None if config.documents is None else 4)
    valid = Batches(
        _sequences(config, valid_docs), config, tokenizer, min(32, len(valid_docs)), seed=1
    ).fixed(config.eval_sequences)
    batches = Batches(train_pairs, config, tokenizer, config.batch_size, config.seed)
    torch.manual_seed(config.seed)
    model = BertForPreTraining(config.bert_config(tokenizer.vocab_size))
    if not config.nsp:  # no loss reaches them: keep them out of the optimizer and DDP
        model.nsp.requires_grad_(False)
        model.bert.pooler.requires_grad_(False)
    snapshot_steps = sorted({round(f * config.steps) for f in (0.0, *config.snapshots)})
    rank, _ = distributed_rank()

    def keep_snapshot(trainer) -> None:
        path = out / "snapshots" / f"step-{trainer.step}.safetensors"
        if trainer.step in snapshot_steps and trainer.rank == 0 and not path.exists():
            save_weights(trainer.model.state_dict(), path)

    if rank == 0 and not (out / "snapshots" / "step-0.safetensors").exists():
        save_weights(model.state_dict(), out / "snapshots" / "step-0.safetensors")
    trainer = Trainer(
        model,
        lambda m, b: pretraining_loss(m, b, config.nsp),
        batches,
        config.train_config(ckpt_dir=str(out), ckpt_minutes=2.0, device=device, progress=progress),
        eval_fn=lambda m: evaluate(m, valid, config.nsp),
        on_step=keep_snapshot,
        run_config={"pretrain": asdict(config)},
    )
    history = trainer.fit()
    if trainer.rank != 0:
        return None
    model.eval()
    is_next = sum(p.is_next for p in train_pairs) / len(train_pairs)
    metrics = {
        **history.evals[-1],
        "unigram_accuracy": unigram_accuracy(train_pairs, valid, tokenizer.mask_id + 1),
        "nsp_chance": max(is_next, 1 - is_next),  # always guessing the commoner label
        "train_sequences": len(train_pairs),
        "tokens_seen": config.steps * config.batch_size * config.max_len,
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": history.seconds,
        "snapshots": snapshot_steps[:-1] if snapshot_steps[-1] == config.steps else snapshot_steps,
    }
    hf.save_pretrained(model, out)
    hf.save_tokenizer(tokenizer, out, model_max_length=config.max_len)
    (out / "pretrain.json").write_text(json.dumps(asdict(config), indent=1) + "\n")
    (out / "history.json").write_text(history.to_json())
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return load_pretrained_folder(out)


def load_pretrained_folder(folder: str | Path) -> PretrainedBert:
    """Read what :func:`pretrain` wrote (a Hugging Face folder plus bertlab's records)."""
    from bertlab import hf

    folder = Path(folder)
    config = PretrainConfig(**json.loads((folder / "pretrain.json").read_text()))
    tokenizer = WordPieceTokenizer.from_vocab_file(folder / "vocab.txt")
    model = hf.load_pretraining(folder, vocab_size=tokenizer.vocab_size)
    history = History.from_json((folder / "history.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    return PretrainedBert(model, tokenizer, config, history, metrics, folder)


def load_or_train(
    preset: str | PretrainConfig = "cpu", device=None, progress: bool = True
) -> PretrainedBert:
    """The pre-trained mini-BERT of ``preset``: from the cache (``checkpoint.cached``, kind
    ``"pretrained-bert"``), or trained first (and then cached) when it is not there. An
    interrupted training resumes from its checkpoint the next time."""
    config = PretrainConfig.preset(preset) if isinstance(preset, str) else preset
    return cached(
        "pretrained-bert",
        config,
        lambda f: pretrain(config, f, device, progress),
        load_pretrained_folder,
    )


# --------------------------------------------------------------------------------------------------
# 7. Command line: python -m bertlab.pretraining --preset cpu --out DIR
# --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(
        prog="python -m bertlab.pretraining",
        description="Pre-train a mini-BERT (MLM + NSP) on WikiText-2. Runs under torchrun too.",
    )
    parser.add_argument("--preset", default="cpu", help="cpu (default), gpu or tiny")
    parser.add_argument("--out", required=True, help="folder for checkpoints and the model")
    parser.add_argument("--steps", type=int, help="override the preset's number of steps")
    parser.add_argument("--seed", type=int, help="override the preset's seed")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the best available)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    try:
        config = PretrainConfig.preset(args.preset, **overrides)
    except ValueError as e:
        parser.error(str(e))
    result = pretrain(config, args.out, device=args.device)
    if result is None:
        return None
    summary = {
        "preset": args.preset,
        "steps": config.steps,
        **{k: v for k, v in result.metrics.items() if k != "snapshots"},
    }
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
