"""bertlab.correction: the synthetic errors, edit alignment and scores on hand-made cases, and
the correctors (copy, MLM, BART) on small random models."""

from __future__ import annotations

import random

import pytest
import torch

from bertlab import bart
from bertlab import correction as C
from bertlab.bert import BertConfig, BertForPreTraining
from bertlab.train import torch_threads
from bertlab.wordpiece import WordPieceTokenizer

SENTENCE = "the team has played many games in these cities since the war began .".split()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small models on a shared machine: one thread (two threads fight over tiny ops)."""
    with torch_threads(1):
        yield


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word, wrong",
    [("is", "are"), ("are", "is"), ("an", "a"), ("cities", "city"), ("playing", "played"),
     ("played", "playing"), ("games", "game"), ("class", None), ("thus", None), ("the", None),
     ("red", None)],
)  # fmt: skip
def test_inflection_rules(word, wrong):
    assert C.wrong_inflection(word) == wrong


def test_each_kind_of_error():
    rng = random.Random(0)
    for _ in range(50):
        out, [e] = C.corrupt(SENTENCE, rng, max_errors=1, clean_prob=0, kinds=["deletion"])
        assert (
            len(out) == len(SENTENCE) - 1 and out == SENTENCE[: e.index] + SENTENCE[e.index + 1 :]
        )
        out, [e] = C.corrupt(SENTENCE, rng, max_errors=1, clean_prob=0, kinds=["duplication"])
        assert (
            out[e.index] == out[e.index + 1] == SENTENCE[e.index] and len(out) == len(SENTENCE) + 1
        )
        out, [e] = C.corrupt(SENTENCE, rng, max_errors=1, clean_prob=0, kinds=["swap"])
        i = e.index
        assert out[i : i + 2] == SENTENCE[i : i + 2][::-1] and sorted(out) == sorted(SENTENCE)
        out, [e] = C.corrupt(SENTENCE, rng, max_errors=1, clean_prob=0, kinds=["inflection"])
        assert out[e.index] == C.wrong_inflection(SENTENCE[e.index]) and len(out) == len(SENTENCE)
        assert sum(a != b for a, b in zip(out, SENTENCE)) == 1
    assert "." in out  # punctuation is never touched
    # fmt: skip


def test_corrupt_counts_and_clean_sentences():
    rng = random.Random(1)
    counts = [len(C.corrupt(SENTENCE, rng, max_errors=3, clean_prob=0.2)[1]) for _ in range(2000)]
    assert set(counts) == {0, 1, 2, 3}
    assert abs(counts.count(0) / 2000 - 0.2) < 0.03
    assert C.corrupt(SENTENCE, random.Random(5)) == C.corrupt(SENTENCE, random.Random(5))
    assert C.corrupt(SENTENCE, rng, clean_prob=1.0) == (SENTENCE, [])
    with pytest.raises(ValueError, match="unknown error kind"):
        C.corrupt(SENTENCE, rng, kinds=["typo"])


def test_correction_examples_are_held_out_and_corrupted(data_mirror):
    examples = C.correction_examples("test", n=40, seed=0)
    assert len(examples) == 40
    assert all(5 <= len(e.reference) <= 30 for e in examples)
    assert sum(e.source != e.reference for e in examples) >= 30  # 10% are left clean
    assert all(w == w.lower() for e in examples for w in e.reference)


# -- alignment and scores --------------------------------------------------------------------


def test_word_edits_on_hand_made_cases():
    src = "the the cat sat on mat".split()
    ref = "the cat sat on the mat".split()
    assert C.word_edits(src, src) == set()
    assert C.word_edits(src, ref) == {(0, 1, ()), (5, 5, ("the",))}  # a deletion, an insertion
    swapped = "cat the sat".split()
    assert C.word_edits(swapped, "the cat sat".split()) == {(0, 2, ("the", "cat"))}  # merged
    assert C.word_edits(["is"], ["are"]) == {(0, 1, ("are",))}


def test_scores_of_hand_made_corrections():
    src = [
        "the cat are here .".split(),
        "she go to the the school .".split(),
        "all is well".split(),
    ]
    ref = ["the cat is here .".split(), "she goes to the school .".split(), "all is well".split()]
    perfect = C.score(src, ref, ref)
    assert (perfect.precision, perfect.recall, perfect.f05, perfect.exact_match) == (1, 1, 1, 1)
    copy = C.score(src, C.copy_baseline(src), ref)
    assert copy.recall == 0 and copy.tp == copy.fp == 0 and copy.fn == 3
    assert copy.precision == 1 and copy.f05 == 0  # ERRANT's convention: nothing proposed
    assert copy.exact_match == pytest.approx(1 / 3)
    # one right edit, one wrong one ("he" for "she"), one missed, one change to a clean sentence
    hyp = ["the cat is here .".split(), "he go to the school .".split(), "all was well".split()]
    s = C.score(src, hyp, ref)
    assert (s.tp, s.fp, s.fn) == (2, 2, 1)  # "the the" fixed; "he", "was" are wrong
    assert s.precision == 0.5 and s.recall == pytest.approx(2 / 3)
    assert s.f05 == pytest.approx(1.25 * 0.5 * (2 / 3) / (0.25 * 0.5 + 2 / 3))
    with pytest.raises(ValueError, match="3 sources but 2 hypotheses"):
        C.score(src, hyp[:2], ref)


def test_exact_match_rate():
    assert C.exact_match_rate([["a"], ["b"]], [["a"], ["c"]]) == 0.5


# -- correctors ------------------------------------------------------------------------------

WORDS = ["the", "cat", "cats", "is", "are", "sat", "on", "mat", "dog", "."]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s", "x"]


def mlm(seed: int = 0) -> tuple[BertForPreTraining, WordPieceTokenizer]:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden=16, layers=1, heads=2, intermediate=32,
                        max_position=32)  # fmt: skip
    model = BertForPreTraining(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return model, WordPieceTokenizer(VOCAB)


def test_mlm_corrector_thresholds_and_one_forward_per_sentence():
    model, tok = mlm()
    calls = []
    model.register_forward_hook(lambda m, args, out: calls.append(args[0].shape))
    sentence = "the cat is on the mat .".split()
    never = C.MLMCorrector(model, tok, threshold=1.01)
    assert never.correct(sentence) == sentence
    always = C.MLMCorrector(model, tok, threshold=0.0, margin=-1.0)
    fixed = always.correct(sentence)
    assert len(fixed) == len(sentence)  # substitutions only
    assert fixed[-1] == "."  # only alphabetic words are candidates
    assert fixed != sentence and all(w in WORDS for w in fixed)
    assert calls[-1] == (6, 9)  # ONE forward: 6 alphabetic words, [CLS] + 7 + [SEP]
    # the replacement is the MLM head's favourite whole word, as computed by hand
    ids = torch.tensor([tok.convert_tokens_to_ids(["[CLS]", *sentence, "[SEP]"])])
    ids[0, 2] = tok.mask_id
    probs = model(ids).mlm_logits[0, 2].softmax(-1)
    allowed = torch.tensor([t.isalpha() for t in VOCAB])
    expected = VOCAB[int(probs.masked_fill(~allowed, 0).argmax())]
    assert fixed[1] == expected  # (if that is "cat" itself, the word stays)


def test_bart_corrector_returns_words():
    config = bart.BartConfig.preset("tiny", vocab_size=len(VOCAB), max_position=20)
    torch.manual_seed(0)
    model = bart.BartModel(config)
    tok = WordPieceTokenizer(VOCAB)
    sources = ["the cat is on the mat .".split(), "cats sat".split()]
    for beams in (1, 3):
        out = C.BartCorrector(model, tok, beams=beams)(sources)
        assert len(out) == 2 and all(isinstance(w, str) for s in out for w in s)
    scores = C.evaluate({"copy": C.copy_baseline}, [C.CorrectionExample(s, s, []) for s in sources])
    assert scores["copy"].exact_match == 1.0
