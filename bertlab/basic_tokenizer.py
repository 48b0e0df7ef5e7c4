"""BERT's basic tokenizer: raw text -> "words", before WordPiece cuts them into pieces.

It drops control characters, turns every kind of space into " ", puts spaces around CJK
ideographs, lower-cases and strips accents (Unicode NFD, then drop the combining marks), and cuts
punctuation off as words of its own. The rules are exactly those of BERT's reference tokenizer:
Google's ``tokenization.py`` as transformers keeps it in pure Python (``BertTokenizerLegacy``,
which adds a Unicode NFC step); the tests check several datasets and every Unicode code point
against it. :mod:`bertlab.wordpiece` builds on it.

Speed: character cleaning is one ``str.translate`` over the whole text with a table that
classifies each character the first time it is seen, so the per-character Python code (the
reference rules, kept readable) runs once per distinct character.
"""

from __future__ import annotations

import contextlib
import gc
import re
import unicodedata
from collections.abc import Callable, Iterable
from itertools import chain

# --------------------------------------------------------------------------------------------------
# Character classes (the reference tokenizer's definitions)
# --------------------------------------------------------------------------------------------------


def is_whitespace(ch: str) -> bool:
    """Space, tab, newline, carriage return, or any Unicode space separator (category Zs)."""
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_control(ch: str) -> bool:
    """Any "other" character (categories Cc, Cf, Cs, Co, Cn) except tab, newline and return.

    Zero-width spaces (U+200B, category Cf) and byte-order marks count as control: they vanish.
    """
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def is_punctuation(ch: str) -> bool:
    """Unicode punctuation (categories P*), plus every ASCII non-letter, non-digit character.

    So ``$ + < = > ^ ` | ~`` count as punctuation although Unicode calls them symbols.
    """
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


_CJK_RANGES = (
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0x3400, 0x4DBF),  # Extension A
    (0x20000, 0x2A6DF),  # Extension B
    (0x2A700, 0x2B73F),  # Extension C
    (0x2B740, 0x2B81F),  # Extension D
    (0x2B820, 0x2CEAF),  # Extension E
    (0xF900, 0xFAFF),  # Compatibility Ideographs
    (0x2F800, 0x2FA1F),  # Compatibility Ideographs Supplement
)


def is_cjk(ch: str) -> bool:
    """A CJK ideograph (Chinese characters, also used in Japanese and Korean).

    Hiragana, Katakana and Hangul are *not* included: those scripts separate words with spaces.
    """
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def strip_accents(text: str) -> str:
    """Decompose (NFD: "é" -> "e" + U+0301) and drop the combining marks (category Mn)."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def split_on_punctuation(text: str) -> list[str]:
    """Cut every punctuation character out as a piece of its own: "don't!" -> don ' t !"""
    pieces: list[str] = []
    current: list[str] = []
    for ch in text:
        if is_punctuation(ch):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(ch)
        else:
            current.append(ch)
    if current:
        pieces.append("".join(current))
    return pieces


class _Memo(dict):
    """A dict that fills in a missing key with ``fn(key)``: a memo whose hits cost one C lookup.

    ``map(memo.__getitem__, keys)`` then runs without a Python frame per key, unlike
    ``functools.lru_cache``.
    """

    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def __missing__(self, key):
        value = self[key] = self.fn(key)
        return value


class _CleanTable(dict):
    """The ``str.translate`` table of step 1: each character is dropped, spaced, or kept.

    NUL, U+FFFD (the replacement character) and control characters map to None (deleted), spaces
    of every kind to " ", CJK ideographs to " X " (so they become words of their own), anything
    else to itself. Classifying a character is Python code, but it runs once per distinct
    character; after that ``str.translate`` finds the answer in C.
    """

    def __init__(self, tokenize_cjk: bool = True):
        super().__init__()
        self.tokenize_cjk = tokenize_cjk

    def __missing__(self, cp: int) -> str | None:
        ch = chr(cp)
        if cp == 0 or cp == 0xFFFD or is_control(ch):
            out = None
        elif is_whitespace(ch):
            out = " "
        elif self.tokenize_cjk and is_cjk(ch):
            out = f" {ch} "
        else:
            out = ch
        self[cp] = out
        return out


class _ClassTable(dict):
    """What step 1 does to each character, as one letter, for finding words in the raw text.

    "x": dropped, " ": a space (after cleaning, as ``str.split`` sees it), "c": a CJK ideograph
    (a word of its own), "w": kept. ``text.translate(table)`` has the length of ``text``, so a
    regex match on it gives positions in the raw text.
    """

    def __init__(self, clean_table: _CleanTable):
        super().__init__()
        self.clean_table = clean_table

    def __missing__(self, cp: int) -> str:
        out = self.clean_table[cp]
        if out is None:
            cls = "x"
        elif out.isspace():  # " ", and kept characters that split() splits on (U+2028, U+2029)
            cls = " "
        elif len(out) > 1:  # " X ": a CJK ideograph
            cls = "c"
        else:
            cls = "w"
        self[cp] = cls
        return cls


# A word in the raw text: a run of kept and dropped characters with at least one kept, or one CJK.
_RAW_WORD_RE = re.compile(r"x*w[wx]*|c")


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector for a bulk job that builds many small lists.

    Every few hundred new lists trigger a collection that walks all live objects (the word caches
    included); lists of ints can't form cycles, so pausing loses nothing and saves about half of
    encode_batch's time. Reference counting still frees memory as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _check_text(text, where: str) -> None:
    if not isinstance(text, str):
        hint = (
            " (for a list of texts use encode_batch())" if isinstance(text, (list, tuple)) else ""
        )
        raise TypeError(
            f"{where}() expects text as a str, got {type(text).__name__}: {text!r:.60}{hint}"
        )


# --------------------------------------------------------------------------------------------------
# Stage 1: text -> words
# --------------------------------------------------------------------------------------------------


class BasicTokenizer:
    """Raw text -> words and punctuation, with BERT's cleaning and normalization.

    The steps, in the reference's order:

    1. clean: drop NUL, U+FFFD and control characters; every whitespace character becomes " ";
    2. put spaces around CJK ideographs (``tokenize_cjk``);
    3. split on whitespace; then for each word:
    4. Unicode NFC (so "e" + combining acute and the single character "é" are the same word);
    5. lower-case (``lowercase``) and strip accents (``strip_accents``; None means "if lower
       casing", as in the original BERT);
    6. cut punctuation off into words of their own.

    Words listed in ``never_split`` (BERT's special tokens, say) skip steps 5 and 6. Steps 4-6 are
    memoized per word, so a corpus pays for them once per distinct word.

    >>> BasicTokenizer().tokenize("Héllo, WORLD!  我喜欢")
    ['hello', ',', 'world', '!', '我', '喜', '欢']
    """

    def __init__(
        self,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        tokenize_cjk: bool = True,
        never_split: Iterable[str] = (),
    ):
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.tokenize_cjk = tokenize_cjk
        self.never_split = frozenset(never_split)
        self._table = _CleanTable(tokenize_cjk)
        self._classes = _ClassTable(self._table)
        self._words = _Memo(self.split_word)  # word -> tuple of basic tokens

    def clean(self, text: str) -> str:
        """Steps 1 and 2: one ``str.translate`` over the whole text."""
        return text.translate(self._table)

    def split_word(self, word: str) -> tuple[str, ...]:
        """Steps 4-6 for one whitespace-separated word (uncached; :meth:`tokenize` caches it)."""
        if not word.isascii():
            word = unicodedata.normalize("NFC", word)
        if word in self.never_split:
            return (word,)
        if self.lowercase:
            word = word.lower()
        if self.strip_accents:
            word = strip_accents(word)
        # Stripping can leave an empty word (it was only combining marks); split() drops it.
        return tuple(" ".join(split_on_punctuation(word)).split())

    def words(self, text: str) -> list[str]:
        """Steps 1-3: the whitespace-separated words of the cleaned text."""
        return text.translate(self._table).split()

    def word_spans(self, text: str) -> list[tuple[int, int]]:
        """Where the words of :meth:`words` are in ``text``: one (start, end) each.

        A span covers the word's raw characters, control characters inside it included (they
        are dropped, so "a\\x00b" is the one word "ab", at (0, 3)).
        """
        return [m.span() for m in _RAW_WORD_RE.finditer(text.translate(self._classes))]

    def normalize_char(self, ch: str) -> str:
        """Steps 4-5 for one kept character on its own: what it becomes inside a word."""
        if not ch.isascii():
            ch = unicodedata.normalize("NFC", ch)
        if self.lowercase:
            ch = ch.lower()
        if self.strip_accents:
            ch = strip_accents(ch)
        return ch

    def tokenize(self, text: str) -> list[str]:
        """All six steps: the list of basic tokens (words and punctuation marks)."""
        _check_text(text, "tokenize")
        return list(chain.from_iterable(map(self._words.__getitem__, self.words(text))))
