"""The data of pre-training: WikiText-2 documents, NSP pairs, masking, and the batches.

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
4. **Batches** (:class:`Batches`) are a pure function of (seed, step), so a resumed run is exact.

``bertlab.pretraining`` trains on them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from bertlab import data
from bertlab.checkpoint import cached
from bertlab.wordpiece import WordPieceTokenizer, save_vocab

__all__ = [
    "Pair",
    "clean_wikitext",
    "wordpiece_tokenizer",
    "document_sentences",
    "documents",
    "nsp_pairs",
    "full_sequences",
    "mask_tokens",
    "Batches",
]

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


def document_sentences(split: str, limit: int | None = None) -> list[list[str]]:
    """Each article of a WikiText-2 split (its first ``limit``) as a list of sentences, each
    sentence WikiText's tokens joined by spaces."""
    docs = data.wikitext2_documents(split)[:limit]
    return [
        [" ".join(s) for p in doc.paragraphs for s in data.split_sentences(p.split())]
        for doc in docs
    ]


def wordpiece_tokenizer(
    vocab_size: int, documents: int | None = None, min_frequency: int = 100
) -> WordPieceTokenizer:
    """A WordPiece vocabulary of ``vocab_size`` pieces learned on WikiText-2 train (its first
    ``documents`` articles), trained once and then read from the cache.

    ``min_frequency``: a pair must occur this often to be merged. WordPiece's score,
    count(ab) / (count(a) count(b)), favours pairs of rare symbols; at the default of 2 the first
    8,000 merges go to rare words and "the" is still ``th ##e`` (3.3 pieces per word on valid);
    at 100 the merges go to words that matter (1.3 pieces per word)."""
    from bertlab.wordpiece_trainer import train_wordpiece

    recipe = {
        "corpus": "wikitext-2 train",
        "vocab_size": vocab_size,
        "documents": documents,
        "min_frequency": min_frequency,
    }

    def build(folder: Path) -> None:
        texts = [
            clean_wikitext(s, unk=" ") for d in document_sentences("train", documents) for s in d
        ]
        result = train_wordpiece(texts, vocab_size=vocab_size, min_frequency=min_frequency)
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
    for doc in document_sentences(split, limit):
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
    config: object  # a PretrainConfig: objective, masking, duplication, mask_prob, max_len
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

    def indices(self, step: int) -> list[int]:
        """Which sequences make up the batch of ``step``."""
        epoch, i = divmod(step, len(self.pairs) // self.batch_size)
        return self.order(epoch)[i * self.batch_size : (i + 1) * self.batch_size]

    def __call__(self, step: int) -> dict:
        epoch = step // (len(self.pairs) // self.batch_size)
        idx = self.indices(step)
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
