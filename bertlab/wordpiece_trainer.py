"""Learning a WordPiece vocabulary from a corpus.

:func:`train_wordpiece` starts from the characters of the corpus and repeatedly merges the pair
of adjacent symbols with the best WordPiece score, count(ab) / (count(a) * count(b)), logging
each merge so you can watch the vocabulary grow; :func:`learn_merges` is the merge loop itself.
The result goes to :class:`bertlab.wordpiece.WordPieceTokenizer` or
:func:`bertlab.wordpiece.save_vocab`.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import NamedTuple

from bertlab.basic_tokenizer import BasicTokenizer, gc_paused
from bertlab.wordpiece import SPECIAL_TOKENS

__all__ = ["Merge", "TrainResult", "train_wordpiece", "learn_merges", "merge_symbols"]


class Merge(NamedTuple):
    """One step of training: symbols ``left`` and ``right`` became ``token``."""

    step: int  # 0 for the first merge
    left: str
    right: str
    token: str
    score: float  # count(left right) / (count(left) * count(right))
    count: int  # how often the pair occurred (word frequencies included)


@dataclass
class TrainResult:
    """What :func:`train_wordpiece` learned.

    ``vocab``: special tokens, then the alphabet (each character as a word start "c" and as a
    continuation "##c"), then merged tokens in the order they were learned; pass it to
    :class:`WordPieceTokenizer` or :func:`save_vocab`. ``merges``: every merge with its score.
    ``word_counts``: the corpus as word -> frequency after basic tokenization.
    """

    vocab: list[str]
    merges: list[Merge] = field(repr=False)
    alphabet: list[str] = field(repr=False)
    word_counts: dict[str, int] = field(repr=False)


def train_wordpiece(
    texts: Iterable[str],
    vocab_size: int = 8000,
    min_frequency: int = 2,
    *,
    lowercase: bool = True,
    strip_accents: bool | None = None,
    special_tokens: Sequence[str] = SPECIAL_TOKENS,
    limit_alphabet: int | None = 1000,
    max_input_chars_per_word: int = 100,
    prefix: str = "##",
    on_merge: Callable[[Merge], None] | None = None,
) -> TrainResult:
    """Learn a WordPiece vocabulary of (at most) ``vocab_size`` tokens from ``texts``.

    The merge rule is WordPiece's likelihood score (Schuster & Nakajima 2012, as the Hugging Face
    course presents it): every word starts spelled as characters, "w ##o ##r ##d"; each step
    merges the adjacent pair (a, b) with the highest

        score(a, b) = count(a b) / (count(a) * count(b))

    (counts weighted by word frequency). We chose it over BPE's "most frequent pair" because it
    is the idea that makes WordPiece WordPiece, and it shows in the merge log: the score is the
    ratio of how often a and b appear together to how often they would by chance, so it prefers
    pairs whose parts rarely occur apart ("q" + "##u") over pairs that are merely frequent
    ("e" + "##s"). (Hugging Face's ``tokenizers`` WordPieceTrainer actually runs BPE counts
    and only renames the result, so its vocabulary differs from ours.) Ties go to the pair with
    the larger count, then to the alphabetically smaller pair, so training is deterministic.

    The score's taste shows in the log: on WikiText-2 the first merges spell the few Cyrillic and
    Thai words letter by letter (each letter occurs only there, so count(a b) = count(a) =
    count(b) = 3 scores 1/3), then years ("19", "199"), while "the" stays ``th ##e`` for a long
    time (its letters are everywhere). ``min_frequency=50`` skips the rare-script merges.

    A pair must occur at least ``min_frequency`` times to be merged; training stops early when
    no such pair is left. Only the ``limit_alphabet`` most frequent characters are kept (None:
    all); words containing others are left out of training (the tokenizer spells them [UNK]),
    as are words longer than ``max_input_chars_per_word``. ``on_merge(merge)`` is called after
    every merge, e.g. to print the first few.

    Efficiency: the corpus is reduced to distinct words with counts, and pair counts are kept
    up to date incrementally. An index pair -> words finds the words a merge touches, and only
    those are recounted. Scores live in a max-heap with lazy deletion: when a pair's score
    changes (its own count changed, or the count of one of its symbols did) a fresh entry is
    pushed, and stale entries are skipped when popped.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of strings (e.g. a list of lines), not one str")
    if not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
    if not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency must be an int >= 1, got {min_frequency!r}")

    # 1. Count words once: the corpus becomes {word: frequency}.
    basic = BasicTokenizer(lowercase=lowercase, strip_accents=strip_accents)
    word_counts: Counter[str] = Counter()
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
        word_counts.update(basic.tokenize(text))

    # 2. The alphabet: the most frequent characters; words with any other character are dropped.
    char_counts: Counter[str] = Counter()
    for word, n in word_counts.items():
        for ch in word:
            char_counts[ch] += n
    chars = sorted(char_counts, key=lambda c: (-char_counts[c], c))
    if limit_alphabet is not None:
        chars = chars[:limit_alphabet]
    alphabet = sorted(chars)
    keep = set(alphabet)
    # Every character both as a word start and as a continuation, so any word over the alphabet
    # can be spelled even if the training text never showed it in that position.
    vocab = list(dict.fromkeys([*special_tokens, *alphabet, *(prefix + c for c in alphabet)]))
    if vocab_size < len(vocab):
        raise ValueError(
            f"vocab_size={vocab_size} is smaller than the special tokens plus the alphabet "
            f"({len(vocab)} tokens: {len(alphabet)} characters, each also as '{prefix}c'); raise "
            "vocab_size or lower limit_alphabet"
        )
    # 3. Each word as its symbol list: "word" -> w ##o ##r ##d.
    words: list[list[str]] = []
    freqs: list[int] = []
    for word, n in word_counts.items():
        if len(word) <= max_input_chars_per_word and keep.issuperset(word):
            words.append([word[0], *(prefix + c for c in word[1:])])
            freqs.append(n)

    # 4. Merge (the bulk of the time; the collector has nothing to find in these containers).
    with gc_paused():
        merges = learn_merges(words, freqs, vocab, vocab_size, min_frequency, prefix, on_merge)
    return TrainResult(vocab, merges, alphabet, dict(word_counts))


def learn_merges(
    words: list[list[str]],
    freqs: list[int],
    vocab: list[str],
    vocab_size: int,
    min_frequency: int,
    prefix: str,
    on_merge: Callable[[Merge], None] | None,
) -> list[Merge]:
    """The merge loop of :func:`train_wordpiece`; merges ``words`` in place, extends ``vocab``."""
    in_vocab = set(vocab)
    # The counts a score needs, and indexes to update them incrementally.
    symbol_counts: Counter[str] = Counter()
    pair_counts: dict[tuple[str, str], int] = defaultdict(int)
    where: dict[tuple[str, str], set[int]] = defaultdict(set)  # pair -> indices of its words
    pairs_of: dict[str, set[tuple[str, str]]] = defaultdict(set)  # symbol -> pairs it is in

    def add_word(w: int, sign: int) -> None:
        """Add (sign=+1) or remove (sign=-1) word w's symbols and pairs from the counts."""
        symbols, n = words[w], freqs[w] * sign
        for s in symbols:
            symbol_counts[s] += n
        for pair in zip(symbols, symbols[1:]):
            count = pair_counts[pair] = pair_counts[pair] + n
            if sign > 0:
                where[pair].add(w)
                pairs_of[pair[0]].add(pair)
                pairs_of[pair[1]].add(pair)
            elif count == 0:
                del pair_counts[pair], where[pair]
                pairs_of[pair[0]].discard(pair)
                pairs_of[pair[1]].discard(pair)
            else:
                where[pair].discard(w)  # re-added by add_word(w, +1) if the pair survives

    for w in range(len(words)):
        add_word(w, +1)

    def score(pair: tuple[str, str]) -> float:
        return pair_counts[pair] / (symbol_counts[pair[0]] * symbol_counts[pair[1]])

    heap: list[tuple[float, int, str, str]] = []

    def push(pair: tuple[str, str]) -> None:
        count = pair_counts.get(pair, 0)
        if count >= min_frequency:
            heapq.heappush(heap, (-score(pair), -count, pair[0], pair[1]))

    for pair in pair_counts:
        push(pair)

    # Merge the best pair until the vocabulary is full or no pair is frequent enough.
    merges: list[Merge] = []
    while len(vocab) < vocab_size and heap:
        neg_score, neg_count, left, right = heapq.heappop(heap)
        pair = (left, right)
        count = pair_counts.get(pair, 0)
        if count != -neg_count or count < min_frequency or score(pair) != -neg_score:
            continue  # stale entry: the pair changed since it was pushed (a fresh one exists)
        token = left + right[len(prefix) :]
        affected = list(where[pair])
        for w in affected:
            add_word(w, -1)
            words[w] = merge_symbols(words[w], left, right, token)
        for w in affected:
            add_word(w, +1)
        # Rescore: every pair in the touched words, and every pair containing left or right
        # (their counts fell, which raises those pairs' scores).
        changed = set(chain.from_iterable(zip(words[w], words[w][1:]) for w in affected))
        changed |= pairs_of[left] | pairs_of[right]
        for p in changed:
            push(p)
        merge = Merge(len(merges), left, right, token, -neg_score, count)
        merges.append(merge)
        if token not in in_vocab:  # two different merges can spell the same token
            vocab.append(token)
            in_vocab.add(token)
        if on_merge is not None:
            on_merge(merge)
    return merges


def merge_symbols(symbols: list[str], left: str, right: str, token: str) -> list[str]:
    """Replace every adjacent (left, right) in ``symbols`` by ``token``, scanning left to right."""
    out = []
    i, n = 0, len(symbols)
    while i < n:
        if i + 1 < n and symbols[i] == left and symbols[i + 1] == right:
            out.append(token)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out
