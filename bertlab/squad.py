"""SQuAD v1.1 span extraction: the official metrics, windows over long contexts, best spans.

A SQuAD answer is a span of the context, so BERT answers with two scores per token: where the
span starts and where it ends. This module holds everything around that model:

1. **Metrics.** :func:`exact_match` and :func:`f1` with the normalization of the official
   ``evaluate-v1.1.py`` (lower-case, drop punctuation and the articles a/an/the, squeeze
   spaces), each the best over a question's ground truths; the tests compare with that script.
2. **Splits.** Only the dev file is shipped, so :func:`split_by_article` cuts it into train and
   test by article: no article's paragraphs on both sides.
3. **Features.** :func:`features` packs each question with its context as
   ``[CLS] question [SEP] window [SEP]``. A context longer than one window is cut into windows
   that share ``doc_stride`` tokens; each window knows where the gold answer is in it (at
   ``[CLS]``, position 0, when it is not inside, as in BERT's ``run_squad.py``) and the
   character span of each of its context tokens, from ``WordPieceTokenizer.tokenize_with_offsets``.
4. **Decoding.** :func:`best_spans` scores the candidate (start, end) pairs of all windows at
   once, keeps the legal ones (a band above the diagonal: start <= end, not too long, inside
   the context), and cuts the best one of each example out of the original context.
"""

from __future__ import annotations

import random
import re
import string
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from bertlab.data import SquadExample

__all__ = [
    "normalize_answer",
    "exact_match",
    "f1",
    "split_by_article",
    "SquadFeatures",
    "features",
    "answer_token_span",
    "best_spans",
]

# ----------------------------------------------------------------------------------------------
# 1. Metrics (the official evaluate-v1.1.py)
# ----------------------------------------------------------------------------------------------

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """Lower-case, remove ASCII punctuation, remove the articles a/an/the, squeeze whitespace."""
    return " ".join(_ARTICLES.sub(" ", s.lower().translate(_PUNCTUATION)).split())


def _check_ground_truths(ground_truths: Sequence[str]) -> None:
    if isinstance(ground_truths, str) or not ground_truths:
        raise ValueError(
            f"ground_truths must be a non-empty list of answer strings, got {ground_truths!r}; "
            "wrap a single answer in a list"
        )


def exact_match(prediction: str, ground_truths: Sequence[str]) -> float:
    """1.0 if the normalized prediction equals some normalized ground truth, else 0.0."""
    _check_ground_truths(ground_truths)
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in ground_truths))


def _f1_one(prediction_tokens: list[str], truth: str) -> float:
    truth_tokens = normalize_answer(truth).split()
    same = sum((Counter(prediction_tokens) & Counter(truth_tokens)).values())
    if same == 0:
        return 0.0
    precision = 1.0 * same / len(prediction_tokens)
    recall = 1.0 * same / len(truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def f1(prediction: str, ground_truths: Sequence[str]) -> float:
    """The best word-overlap F1 (bag of normalized words) of the prediction with a ground truth."""
    _check_ground_truths(ground_truths)
    tokens = normalize_answer(prediction).split()
    return max(_f1_one(tokens, g) for g in ground_truths)


# ----------------------------------------------------------------------------------------------
# 2. Train / test by article
# ----------------------------------------------------------------------------------------------


def split_by_article(
    examples: Sequence[SquadExample], test_fraction: float = 0.5, seed: int = 0
) -> tuple[list[SquadExample], list[SquadExample]]:
    """(train, test): the article titles shuffled with ``seed``, ``test_fraction`` of them (at
    least one, and not all) to test. Questions about one article share its paragraphs, so
    splitting by question would leak contexts into the test set."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    titles = sorted({e.title for e in examples})
    if len(titles) < 2:
        raise ValueError(
            f"splitting by article needs examples from at least 2 articles, got {len(titles)}; "
            "pass more examples"
        )
    random.Random(seed).shuffle(titles)
    n_test = min(max(round(test_fraction * len(titles)), 1), len(titles) - 1)
    test_titles = set(titles[:n_test])
    train = [e for e in examples if e.title not in test_titles]
    test = [e for e in examples if e.title in test_titles]
    return train, test


# ----------------------------------------------------------------------------------------------
# 3. Features: [CLS] question [SEP] window [SEP]
# ----------------------------------------------------------------------------------------------


@dataclass
class SquadFeatures:
    """Model inputs for N windows (each row one window of one example), padded to max_length.

    ``offsets[i]`` holds the character span, in its example's context, of each context token of
    window i; those tokens sit at positions ``context_start[i]`` onwards of the row. The
    positions of the gold answer (of the example's first answer) are 0, the ``[CLS]``, for a
    window that does not contain all of it.
    """

    input_ids: torch.Tensor  # (N, T)
    token_type_ids: torch.Tensor  # (N, T): 0 for [CLS] question [SEP], 1 for window [SEP]
    attention_mask: torch.Tensor  # (N, T): 0 on padding
    start_positions: torch.Tensor  # (N,)
    end_positions: torch.Tensor  # (N,)
    example_index: list[int]  # (N,): the example each window comes from
    context_start: list[int]  # (N,): the row position of the window's first context token
    window_start: list[int]  # (N,): the index of that token among the context's tokens
    offsets: list[list[tuple[int, int]]]  # (N, window length)
    examples: list[SquadExample]

    def __len__(self) -> int:
        return len(self.example_index)

    def batch(self, rows: Sequence[int] | slice) -> dict[str, torch.Tensor]:
        """The model inputs and gold positions of some rows, as a dict of tensors."""
        index = rows if isinstance(rows, slice) else torch.as_tensor(rows, dtype=torch.long)
        keys = ("input_ids", "token_type_ids", "attention_mask", "start_positions")
        keys += ("end_positions",)
        return {k: getattr(self, k)[index] for k in keys}


def answer_token_span(
    offsets: Sequence[tuple[int, int]], char_start: int, char_end: int
) -> tuple[int, int] | None:
    """The first and last token (indices into ``offsets``, sorted spans) that overlap the
    characters [char_start, char_end), or None if no token does."""
    ends = [b for _, b in offsets]
    starts = [a for a, _ in offsets]
    first = bisect_right(ends, char_start)  # the first token ending after char_start
    last = bisect_left(starts, char_end) - 1  # the last token starting before char_end
    if first > last:
        return None
    return first, last


def _check_feature_sizes(max_length: int, doc_stride: int, max_query_length: int) -> int:
    """The smallest window (the one after a question of max_query_length tokens), checked."""
    for name, value in (("max_length", max_length), ("max_query_length", max_query_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(doc_stride, bool) or not isinstance(doc_stride, int) or doc_stride < 0:
        raise ValueError(f"doc_stride must be a non-negative integer, got {doc_stride!r}")
    window = max_length - max_query_length - 3
    if window < 1:
        raise ValueError(
            f"max_length={max_length} leaves no room for the context: [CLS] question [SEP] "
            f"window [SEP] with a question of up to max_query_length={max_query_length} tokens "
            f"takes {max_query_length + 3} positions before any context token; use max_length "
            f"> {max_query_length + 3} or a smaller max_query_length"
        )
    if doc_stride >= window:
        raise ValueError(
            f"doc_stride={doc_stride} must be smaller than the context window, which is "
            f"max_length - max_query_length - 3 = {window} tokens (windows share doc_stride "
            f"tokens, so they would never move on); use doc_stride < {window} or a larger "
            "max_length"
        )
    return window


def features(
    examples: Sequence[SquadExample],
    tokenizer,
    max_length: int = 384,
    doc_stride: int = 128,
    max_query_length: int = 64,
) -> SquadFeatures:
    """Examples -> windows ``[CLS] question [SEP] window [SEP]``, padded to ``max_length``.

    The question keeps its first ``max_query_length`` tokens; the window holds the rest of
    ``max_length``. A longer context gets several windows, consecutive ones sharing
    ``doc_stride`` tokens (the ``stride`` of transformers' tokenizers; BERT's ``run_squad.py``
    calls the step between window starts ``doc_stride`` instead). ``tokenizer`` is a
    ``WordPieceTokenizer`` (``tokenize_with_offsets`` and ids).
    """
    _check_feature_sizes(max_length, doc_stride, max_query_length)
    cls, sep, pad = tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id
    rows: dict[str, list] = {k: [] for k in ("ids", "types", "mask", "start", "end")}
    example_index, context_start, window_start, all_offsets = [], [], [], []
    for index, example in enumerate(examples):
        question = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(example.question))
        question = question[:max_query_length]
        tokens, offsets = tokenizer.tokenize_with_offsets(example.context)
        context = tokenizer.convert_tokens_to_ids(tokens)
        gold = None
        if example.answers:
            char_start = example.answer_starts[0]
            gold = answer_token_span(offsets, char_start, char_start + len(example.answers[0]))
        window = max_length - len(question) - 3
        first = len(question) + 2  # the row position of the first context token
        for start in range(0, max(len(context), 1), window - doc_stride):
            end = min(start + window, len(context))  # the window is context[start:end]
            ids = [cls, *question, sep, *context[start:end], sep]
            padding = max_length - len(ids)
            inside = gold is not None and start <= gold[0] and gold[1] < end
            rows["ids"].append(ids + [pad] * padding)
            rows["types"].append([0] * first + [1] * (end - start + 1) + [0] * padding)
            rows["mask"].append([1] * len(ids) + [0] * padding)
            rows["start"].append(gold[0] - start + first if inside else 0)
            rows["end"].append(gold[1] - start + first if inside else 0)
            example_index.append(index)
            context_start.append(first)
            window_start.append(start)
            all_offsets.append(offsets[start:end])
            if end == len(context):
                break

    def table(name: str) -> torch.Tensor:
        return torch.tensor(rows[name], dtype=torch.long).view(-1, max_length)  # (N, T)

    return SquadFeatures(
        input_ids=table("ids"),
        token_type_ids=table("types"),
        attention_mask=table("mask"),
        start_positions=torch.tensor(rows["start"], dtype=torch.long),
        end_positions=torch.tensor(rows["end"], dtype=torch.long),
        example_index=example_index,
        context_start=context_start,
        window_start=window_start,
        offsets=all_offsets,
        examples=list(examples),
    )


# ----------------------------------------------------------------------------------------------
# 4. Decoding: the best legal span of each example
# ----------------------------------------------------------------------------------------------


def best_spans(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    features: SquadFeatures,
    max_answer_length: int = 30,
    n_best: int = 20,
) -> dict[str, str]:
    """``{example id: answer text}``: for each example, the highest-scoring legal span over all
    its windows, cut out of the original context by its tokens' character offsets.

    A span (s, e) of a window scores ``start_logits[s] + end_logits[e]``; it is legal when both
    ends are context tokens of the window, s <= e, and it has at most ``max_answer_length``
    tokens (a band above the diagonal of the (start, end) matrix). As in BERT's
    ``run_squad.py`` the candidates are the ``n_best`` highest starts times the ``n_best``
    highest ends of each window, so all windows are scored at once as (N, n_best, n_best)
    blocks. An example with no legal candidate gets "".
    """
    if start_logits.shape != end_logits.shape or start_logits.shape[0] != len(features):
        raise ValueError(
            f"start_logits {tuple(start_logits.shape)} and end_logits "
            f"{tuple(end_logits.shape)} must both be (N, T), one row per feature (N = "
            f"{len(features)}); pass the model's outputs for features.input_ids"
        )
    if max_answer_length < 1 or n_best < 1:
        raise ValueError(
            f"max_answer_length and n_best must be >= 1, got {max_answer_length} and {n_best}"
        )
    start_logits = start_logits.detach().float().cpu()  # (N, T)
    end_logits = end_logits.detach().float().cpu()  # (N, T)
    N, T = start_logits.shape
    k = min(n_best, T)
    start_scores, starts = start_logits.topk(k, dim=1)  # (N, k) each: the candidate starts
    end_scores, ends = end_logits.topk(k, dim=1)  # (N, k) each: the candidate ends
    first = torch.tensor(features.context_start).view(N, 1, 1)  # the first context position
    last = first + torch.tensor([len(o) for o in features.offsets]).view(N, 1, 1)  # one past it

    rows_best: list[tuple[float, int, int]] = []  # per row: (score, start, end)
    chunk = max(1, 2**22 // (k * k))  # rows at a time, so that a (rows, k, k) block stays small
    for lo in range(0, N, chunk):
        rows = slice(lo, lo + chunk)
        s, e = starts[rows].unsqueeze(2), ends[rows].unsqueeze(1)  # (C, k, 1), (C, 1, k)
        length = e - s + 1  # (C, k, k): the span's tokens; the band 1 <= length <= max
        legal = (s >= first[rows]) & (e < last[rows]) & (length >= 1)
        legal &= length <= max_answer_length  # (C, k, k)
        scores = start_scores[rows].unsqueeze(2) + end_scores[rows].unsqueeze(1)  # (C, k, k)
        values, at = scores.masked_fill(~legal, float("-inf")).flatten(1).max(dim=1)  # (C,)
        best_s = starts[rows].gather(1, (at // k).unsqueeze(1)).squeeze(1)  # (C,)
        best_e = ends[rows].gather(1, (at % k).unsqueeze(1)).squeeze(1)  # (C,)
        rows_best += zip(values.tolist(), best_s.tolist(), best_e.tolist())

    best: dict[int, tuple[float, int, int, int]] = {}  # example -> (score, row, start, end)
    for row, (value, s, e) in enumerate(rows_best):  # the best window of each example
        example = features.example_index[row]
        if value > float("-inf") and (example not in best or value > best[example][0]):
            best[example] = (value, row, s, e)

    answers = {}
    for index, example in enumerate(features.examples):
        if index not in best:
            answers[example.id] = ""
            continue
        _, row, s, e = best[index]
        offsets, first = features.offsets[row], features.context_start[row]
        answers[example.id] = example.context[offsets[s - first][0] : offsets[e - first][1]]
    return answers
