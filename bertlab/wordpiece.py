"""WordPiece: BERT's tokenizer.

BERT never sees words. It sees *word pieces* from a fixed vocabulary of about 30,000 strings:
whole frequent words ("the", "running") and fragments that glue onto a previous piece, written
with a ``##`` prefix ("##ing", "##ly"). Any word can be spelled with them, so there are no
out-of-vocabulary words, only rarer words cut into more pieces: "tokenization" becomes
``token ##ization``.

Text goes through three stages, one class each:

1. :class:`~bertlab.basic_tokenizer.BasicTokenizer` (its own module) turns raw text into
   "words": cleaning, CJK spacing, lower-casing, accent stripping, punctuation split, exactly as
   BERT's reference tokenizer does.
2. :class:`WordPiece` cuts each word into pieces, greedily: the longest prefix that is in the
   vocabulary, then the longest ``##`` continuation of the rest, and so on. A word that cannot be
   spelled at all, or that is longer than 100 characters, becomes ``[UNK]``.
3. :class:`WordPieceTokenizer` holds the vocabulary and builds model inputs:
   ``[CLS] a [SEP] b [SEP]`` with segment ids 0/1, truncation, padding, and decoding back to text.

:func:`save_vocab` writes a vocabulary as a ``vocab.txt``; ``bertlab.wordpiece_trainer`` learns
one from a corpus.

Speed. A corpus repeats its words, so the tokenizer memoizes word -> ids in a dict: after the
first few thousand sentences almost every word is one C-level dict lookup. Character cleaning is
one ``str.translate`` over the whole text with a table that classifies each character the first
time it is seen. The per-character Python code (the reference rules, kept readable) thus runs
only once per distinct word or character.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from .basic_tokenizer import BasicTokenizer, _check_text, _Memo, gc_paused

__all__ = [
    "SPECIAL_TOKENS",
    "BasicTokenizer",
    "WordPiece",
    "WordPieceConfig",
    "WordPieceTokenizer",
    "gc_paused",
    "load_vocab",
    "save_vocab",
]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")

# --------------------------------------------------------------------------------------------------
# Stage 2: word -> word pieces
# --------------------------------------------------------------------------------------------------


class WordPiece:
    """Greedy longest-match-first WordPiece: one basic token -> its pieces.

    Take the longest prefix of the word that is in the vocabulary; then the longest
    ``"##" + prefix`` of the rest; and so on. If at some point no prefix at all is in the
    vocabulary, the whole word becomes ``[UNK]`` (not just the part that failed), as it does for
    words longer than ``max_input_chars_per_word`` characters.

    >>> WordPiece({"un", "##aff", "##able", "[UNK]"}).tokenize("unaffable")
    ['un', '##aff', '##able']
    """

    def __init__(
        self,
        vocab: Iterable[str],
        unk_token: str = "[UNK]",
        max_input_chars_per_word: int = 100,
        prefix: str = "##",
    ):
        self.vocab = vocab if isinstance(vocab, (Mapping, set, frozenset)) else set(vocab)
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self.prefix = prefix
        # No piece is longer than the longest vocabulary entry, so no need to try longer ones.
        self.max_piece_chars = max((len(t) for t in self.vocab), default=0)

    def tokenize(self, word: str) -> list[str]:
        """The pieces of one word (no whitespace inside), or ``[unk_token]``."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces = []
        start = 0
        while start < len(word):
            prefix = self.prefix if start > 0 else ""
            end = min(len(word), start + self.max_piece_chars - len(prefix))
            while end > start:  # shrink the candidate from the right until it is in the vocab
                piece = prefix + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            else:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces


# --------------------------------------------------------------------------------------------------
# Stage 3: the tokenizer (vocabulary, special tokens, model inputs)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WordPieceConfig:
    """Settings of a :class:`WordPieceTokenizer` (the defaults are bert-base-uncased's)."""

    lowercase: bool = True
    strip_accents: bool | None = None  # None: strip when lower-casing (original BERT)
    tokenize_cjk: bool = True
    max_input_chars_per_word: int = 100
    pad_token: str = "[PAD]"
    unk_token: str = "[UNK]"
    cls_token: str = "[CLS]"
    sep_token: str = "[SEP]"
    mask_token: str = "[MASK]"

    @property
    def special_tokens(self) -> tuple[str, ...]:
        return (self.pad_token, self.unk_token, self.cls_token, self.sep_token, self.mask_token)


def load_vocab(path: str | Path) -> list[str]:
    """The tokens of a ``vocab.txt``, one per line; a token's id is its line number (from 0)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no vocabulary file at '{path}': pass the path of a vocab.txt (one token per line), "
            "e.g. one written by save_vocab() or shipped with a BERT checkpoint"
        )
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def save_vocab(vocab, path: str | Path) -> Path:
    """Write a vocabulary (a list of tokens, or a ``wordpiece_trainer.TrainResult``) as
    ``vocab.txt``: one token per line, line i holding the token of id i."""
    tokens = getattr(vocab, "vocab", vocab)
    bad = [t for t in tokens if not isinstance(t, str) or "\n" in t or "\r" in t]
    if bad:
        raise ValueError(f"vocabulary tokens must be strings without line breaks, got {bad[:3]!r}")
    path = Path(path)
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
    return path


class WordPieceTokenizer:
    """BERT's tokenizer: text -> word pieces -> ids, and the inputs a BERT model takes.

    ``vocab`` is the list of tokens in id order (or a token -> id mapping). If a token appears
    twice, encoding uses its last id, as transformers does. Special tokens inside the text (say
    "the [MASK] sat") are kept whole, also as in transformers.

    >>> tok = WordPieceTokenizer.from_vocab_file("vocab.txt")  # doctest: +SKIP
    >>> tok.tokenize("Tokenization is fun!")  # doctest: +SKIP
    ['token', '##ization', 'is', 'fun', '!']
    >>> tok.encode("Is it?", "Yes.")  # doctest: +SKIP
    {'input_ids': [101, 2003, 2009, 1029, 102, 2748, 1012, 102],
     'token_type_ids': [0, 0, 0, 0, 0, 1, 1, 1], 'attention_mask': [1, 1, 1, 1, 1, 1, 1, 1]}
    """

    def __init__(
        self, vocab: Sequence[str] | Mapping[str, int], config: WordPieceConfig | None = None
    ):
        if isinstance(vocab, (str, Path)):
            raise TypeError(
                "WordPieceTokenizer(vocab) takes the list of tokens; to read a vocab.txt use "
                f"WordPieceTokenizer.from_vocab_file({str(vocab)!r})"
            )
        self.config = config = config or WordPieceConfig()
        if isinstance(vocab, Mapping):
            id_to_token = [""] * (max(vocab.values(), default=-1) + 1)
            for token, i in vocab.items():
                id_to_token[i] = token
            self.token_to_id = dict(vocab)
        else:
            id_to_token = list(vocab)
            self.token_to_id = {token: i for i, token in enumerate(id_to_token)}
        self.id_to_token = id_to_token
        missing = [t for t in config.special_tokens if t not in self.token_to_id]
        if missing:
            raise ValueError(
                f"the vocabulary lacks the special token(s) {', '.join(missing)}; BERT needs all "
                f"of {', '.join(config.special_tokens)}. Add them (train_wordpiece() puts them "
                "first) or name yours in WordPieceConfig(pad_token=..., unk_token=..., ...)"
            )
        self.pad_id = self.token_to_id[config.pad_token]
        self.unk_id = self.token_to_id[config.unk_token]
        self.cls_id = self.token_to_id[config.cls_token]
        self.sep_id = self.token_to_id[config.sep_token]
        self.mask_id = self.token_to_id[config.mask_token]
        self.special_tokens = config.special_tokens
        self.special_ids = frozenset(self.token_to_id[t] for t in config.special_tokens)

        self.basic = BasicTokenizer(
            config.lowercase, config.strip_accents, config.tokenize_cjk, config.special_tokens
        )
        self.wordpiece = WordPiece(
            self.token_to_id, config.unk_token, config.max_input_chars_per_word
        )
        # Special tokens written in the text are cut out before anything else (longest first).
        alternatives = sorted(config.special_tokens, key=len, reverse=True)
        self._special_re = re.compile("(" + "|".join(map(re.escape, alternatives)) + ")")
        self._word_tokens = _Memo(self._tokens_of_word)  # word -> tuple of pieces
        self._word_ids = _Memo(self._ids_of_word)  # word -> tuple of ids
        self._raw_word_offsets = _Memo(self._offsets_of_raw_word)  # raw word -> pieces, spans

    @classmethod
    def from_vocab_file(
        cls, path: str | Path, lowercase: bool = True, **config
    ) -> WordPieceTokenizer:
        """Load a ``vocab.txt``; ``config`` takes any other :class:`WordPieceConfig` field."""
        return cls(load_vocab(path), WordPieceConfig(lowercase=lowercase, **config))

    def save_vocab(self, path: str | Path) -> Path:
        """Write this tokenizer's vocabulary as a ``vocab.txt``."""
        return save_vocab(self.id_to_token, path)

    # ---- sizes and id <-> token -----------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of ids (rows of the embedding matrix): one per line of the vocabulary file."""
        return len(self.id_to_token)

    def __len__(self) -> int:
        return len(self.id_to_token)

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """Token(s) -> id(s); a token not in the vocabulary gets ``unk_id``."""
        get, unk = self.token_to_id.get, self.unk_id
        if isinstance(tokens, str):
            return get(tokens, unk)
        return [get(t, unk) for t in tokens]

    def convert_ids_to_tokens(self, ids: int | Iterable[int]) -> str | list[str]:
        """Id(s) -> token(s): an int, a list, or a tensor or array (anything with ``tolist``)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        n = len(self.id_to_token)
        if isinstance(ids, int):
            ids = [ids]
            single = True
        else:
            ids = list(ids)
            single = False
        bad = [i for i in ids if not isinstance(i, int) or not 0 <= i < n]
        if bad:
            raise ValueError(f"ids must be ints in [0, {n}), got {bad[:5]}")
        tokens = [self.id_to_token[i] for i in ids]
        return tokens[0] if single else tokens

    # ---- text -> pieces -------------------------------------------------------------------------

    def _tokens_of_word(self, word: str) -> tuple[str, ...]:
        """One whitespace-separated word of cleaned text -> its pieces (memoized by the caller)."""
        return tuple(chain.from_iterable(map(self.wordpiece.tokenize, self.basic.split_word(word))))

    def _ids_of_word(self, word: str) -> tuple[int, ...]:
        return tuple(self.token_to_id[p] for p in self._word_tokens[word])

    def _segments(self, text: str) -> list[str]:
        """Text split around special tokens: [text, special, text, special, ..., text]."""
        return self._special_re.split(text)

    def tokenize(self, text: str) -> list[str]:
        """Text -> list of word pieces (no [CLS]/[SEP] added)."""
        _check_text(text, "tokenize")
        pieces: list[str] = []
        for k, segment in enumerate(self._segments(text)):
            if k % 2:  # a special token written in the text
                pieces.append(segment)
            else:
                words = self.basic.words(segment)
                pieces.extend(chain.from_iterable(map(self._word_tokens.__getitem__, words)))
        return pieces

    def _content_ids(self, text: str, where: str) -> list[int]:
        """Text -> ids of its pieces, without special tokens. The hot path of encode_batch."""
        _check_text(text, where)
        segments = self._segments(text)
        if len(segments) == 1:  # no special token in the text: the usual case
            words = self.basic.words(text)
            return list(chain.from_iterable(map(self._word_ids.__getitem__, words)))
        ids: list[int] = []
        for k, segment in enumerate(segments):
            if k % 2:
                ids.append(self.token_to_id[segment])
            else:
                words = self.basic.words(segment)
                ids.extend(chain.from_iterable(map(self._word_ids.__getitem__, words)))
        return ids

    def _offsets_of_raw_word(self, raw: str) -> tuple[tuple[str, int, int], ...]:
        """One raw word -> its pieces, each with its (start, end) in ``raw`` (memoized).

        The pieces are those of :meth:`tokenize`. Each character of the normalized word comes
        from one raw character (the one :meth:`BasicTokenizer.normalize_char` turns into it), so
        a piece spans from its first character's source to its last one's. When normalizing
        the word as a whole gives another length than character by character (rare: NFC without
        accent stripping), every piece gets the span of the whole word.
        """
        cleaned = raw.translate(self.basic._table).strip()
        basic_tokens = self.basic._words[cleaned] if cleaned else ()
        source: list[int] = []  # source[k]: the raw index of normalized character k
        for i, ch in enumerate(raw):
            if self.basic._classes[ord(ch)] != "x":
                source.extend([i] * len(self.basic.normalize_char(ch)))
        if len(source) != sum(map(len, basic_tokens)):
            kept = [i for i, ch in enumerate(raw) if self.basic._classes[ord(ch)] != "x"]
            whole = (kept[0], kept[-1] + 1)
            return tuple((p, *whole) for t in basic_tokens for p in self.wordpiece.tokenize(t))
        out = []
        at = 0  # index into the normalized word of the current basic token's first character
        for token in basic_tokens:
            pieces = self.wordpiece.tokenize(token)
            if pieces == [self.wordpiece.unk_token]:
                out.append((pieces[0], source[at], source[at + len(token) - 1] + 1))
            else:
                start = at
                for piece in pieces:
                    n = len(piece) - (len(self.wordpiece.prefix) if start > at else 0)
                    out.append((piece, source[start], source[start + n - 1] + 1))
                    start += n
            at += len(token)
        return tuple(out)

    def tokenize_with_offsets(self, text: str) -> tuple[list[str], list[tuple[int, int]]]:
        """:meth:`tokenize`, and each piece's (start, end) character span in the raw ``text``.

        The spans are in the text as given (before cleaning, lower-casing, accent stripping), so
        ``text[start:end]`` is what a piece came from: "Café" gives ``cafe`` at (0, 4), a CJK
        ideograph its own character, ``[UNK]`` the whole word (or punctuation mark) it replaces,
        and a special token written in the text its span. Dropped characters (controls,
        zero-width spaces, combining marks) belong to no piece, so a span never starts or ends
        on one: "e" + U+0301 gives ``e`` at (0, 1). That is what transformers' fast
        ``BertTokenizerFast(..., return_offsets_mapping=True)`` gives (the tests compare), one
        of several readings once lower-casing and accent stripping change the characters.
        """
        _check_text(text, "tokenize_with_offsets")
        pieces: list[str] = []
        spans: list[tuple[int, int]] = []
        position = 0  # where the current segment starts in text
        for k, segment in enumerate(self._segments(text)):
            if k % 2:  # a special token written in the text
                pieces.append(segment)
                spans.append((position, position + len(segment)))
            else:
                for start, end in self.basic.word_spans(segment):
                    for piece, a, b in self._raw_word_offsets[segment[start:end]]:
                        pieces.append(piece)
                        spans.append((position + start + a, position + start + b))
            position += len(segment)
        return pieces, spans

    def clear_cache(self) -> None:
        """Forget the memoized words (the cache grows with the number of distinct words seen)."""
        self._word_tokens.clear()
        self._word_ids.clear()
        self._raw_word_offsets.clear()
        self.basic._words.clear()

    # ---- model inputs ---------------------------------------------------------------------------

    @staticmethod
    def _check_truncation(truncation: str | bool | None) -> str | None:
        """Normalize the truncation argument: a strategy name, or None for "never truncate"."""
        if truncation is True:
            return "longest_first"
        if truncation is False or truncation is None or truncation == "do_not_truncate":
            return None
        if truncation not in TRUNCATION_STRATEGIES:
            raise ValueError(
                f"unknown truncation strategy {truncation!r}; use one of "
                f"{', '.join(map(repr, TRUNCATION_STRATEGIES))}, or False to never truncate"
            )
        return truncation

    def _truncate(
        self, a: list[int], b: list[int] | None, max_length: int | None, strategy: str | None
    ) -> tuple[list[int], list[int] | None]:
        """Cut ``a`` and ``b`` so that with [CLS] and [SEP](s) they fit ``max_length``.

        The special tokens are never dropped. ``longest_first`` removes tokens from the end of
        the longer sequence one at a time, from ``b`` when both are equally long; this is the
        rule of transformers' Python tokenizers (its Rust tokenizers split an odd leftover
        budget the other way, see the tests). ``only_first`` / ``only_second`` cut just one.
        """
        if max_length is None:
            return a, b
        n_special = 2 if b is None else 3
        if not isinstance(max_length, int) or max_length < n_special:
            kind = "single text" if b is None else "pair"
            raise ValueError(
                f"max_length={max_length!r} leaves no room: a {kind} "
                f"needs {n_special} special tokens ([CLS] and [SEP]s); use max_length >= "
                f"{n_special}, or None for no limit"
            )
        excess = len(a) + (len(b) if b is not None else 0) + n_special - max_length
        if excess <= 0:
            return a, b
        if strategy is None:
            raise ValueError(
                f"the input has {excess + max_length} tokens with special tokens, more than "
                f"max_length={max_length}, and truncation is off; pass "
                "truncation='longest_first' (or 'only_first' / 'only_second'), or a larger "
                "max_length"
            )
        if b is None or strategy == "only_first":
            if strategy == "only_second":
                raise ValueError("truncation='only_second' needs a second text (text_b)")
            if len(a) < excess:
                raise ValueError(
                    f"truncation='only_first' must remove {excess} tokens but the first text has "
                    f"only {len(a)}; use truncation='longest_first' or a larger max_length"
                )
            return a[: len(a) - excess], b
        if strategy == "only_second":
            if len(b) < excess:
                raise ValueError(
                    f"truncation='only_second' must remove {excess} tokens but the second text "
                    f"has only {len(b)}; use truncation='longest_first' or a larger max_length"
                )
            return a, b[: len(b) - excess]
        # longest_first, in closed form: first shorten the longer one down to the other's length,
        # then take turns (b first), which is what removing one token at a time would do.
        first = min(abs(len(a) - len(b)), excess)
        rest = excess - first
        if len(a) > len(b):
            cut_a, cut_b = first + rest // 2, rest - rest // 2
        else:
            cut_a, cut_b = rest // 2, first + rest - rest // 2
        return a[: len(a) - cut_a], b[: len(b) - cut_b]

    def _build(self, a: list[int], b: list[int] | None) -> tuple[list[int], list[int]]:
        """[CLS] a [SEP] (b [SEP]) and the segment ids: 0 up to the first [SEP], then 1."""
        if b is None:
            ids = [self.cls_id, *a, self.sep_id]
            return ids, [0] * len(ids)
        ids = [self.cls_id, *a, self.sep_id, *b, self.sep_id]
        return ids, [0] * (len(a) + 2) + [1] * (len(b) + 1)

    def encode(
        self,
        text_a: str,
        text_b: str | None = None,
        max_length: int | None = None,
        truncation: str | bool = "longest_first",
    ) -> dict[str, list[int]]:
        """One text or text pair -> ``input_ids``, ``token_type_ids``, ``attention_mask``.

        ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]``; ``token_type_ids`` (the segment) is 0
        through the first [SEP] and 1 after it. With ``max_length`` the content is truncated by
        ``truncation``: "longest_first" (default), "only_first", "only_second", or False (then a
        too-long input is an error).
        """
        strategy = self._check_truncation(truncation)
        a = self._content_ids(text_a, "encode")
        b = None if text_b is None else self._content_ids(text_b, "encode")
        a, b = self._truncate(a, b, max_length, strategy)
        ids, types = self._build(a, b)
        return {"input_ids": ids, "token_type_ids": types, "attention_mask": [1] * len(ids)}

    def encode_batch(
        self,
        texts: Sequence[str] | Sequence[tuple[str, str]],
        max_length: int | None = None,
        padding: bool | str = True,
        truncation: str | bool = "longest_first",
        return_tensors: str | None = None,
    ) -> dict:
        """Many texts (or ``(text_a, text_b)`` pairs) -> a batch of model inputs.

        ``padding``: True or "longest" pads every row with ``[PAD]`` (attention mask 0, segment
        0) to the longest row; "max_length" pads to ``max_length``; False leaves rows ragged.
        ``return_tensors="pt"`` returns ``(B, T)`` torch.long tensors instead of lists.
        """
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError(
                "encode_batch() expects a list of texts or of (text_a, text_b) pairs, got "
                f"{type(texts).__name__}; for one text use encode()"
            )
        if padding not in (True, False, "longest", "max_length", "do_not_pad"):
            raise ValueError(
                f"padding must be True, False, 'longest' or 'max_length', not {padding!r}"
            )
        if padding == "max_length" and max_length is None:
            raise ValueError("padding='max_length' needs max_length")
        if return_tensors not in (None, "pt"):
            raise ValueError(f"return_tensors must be None (lists) or 'pt', not {return_tensors!r}")
        strategy = self._check_truncation(truncation)

        with gc_paused():
            return self._encode_batch(texts, max_length, padding, strategy, return_tensors)

    def _encode_batch(self, texts, max_length, padding, strategy, return_tensors) -> dict:
        all_ids, all_types = [], []
        for i, item in enumerate(texts):
            if isinstance(item, str):
                a, b = self._content_ids(item, "encode_batch"), None
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                a = self._content_ids(item[0], "encode_batch")
                b = self._content_ids(item[1], "encode_batch")
            else:
                raise TypeError(
                    f"encode_batch() item {i} is {type(item).__name__} {item!r:.60}; each item "
                    "must be a str or a (text_a, text_b) pair of str"
                )
            if max_length is not None:
                a, b = self._truncate(a, b, max_length, strategy)
            ids, types = self._build(a, b)
            all_ids.append(ids)
            all_types.append(types)

        lengths = [len(ids) for ids in all_ids]
        if padding in (True, "longest", "max_length") and all_ids:
            width = max_length if padding == "max_length" else max(lengths)
            pad = self.pad_id
            all_ids = [ids + [pad] * (width - n) for ids, n in zip(all_ids, lengths)]
            all_types = [types + [0] * (width - n) for types, n in zip(all_types, lengths)]
            masks = [[1] * n + [0] * (width - n) for n in lengths]
        else:
            masks = [[1] * n for n in lengths]
        batch = {"input_ids": all_ids, "token_type_ids": all_types, "attention_mask": masks}
        if return_tensors == "pt":
            if len(set(map(len, all_ids))) > 1:
                raise ValueError("rows of different lengths can't form a tensor; use padding=True")
            import torch

            shape = (len(all_ids), len(all_ids[0]) if all_ids else 0)  # (B, T)
            # One flat list -> tensor -> view is much faster than torch.tensor(list of lists).
            batch = {
                k: torch.tensor(list(chain.from_iterable(v)), dtype=torch.long).view(shape)
                for k, v in batch.items()
            }
        return batch

    def decode(
        self,
        ids: Iterable[int],
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool = False,
    ) -> str:
        """Ids -> text: pieces joined by spaces, with each ``##`` piece glued to the one before.

        The text is the *normalized* one (lower-cased, accents stripped, punctuation spaced out):
        tokenization is not invertible. ``skip_special_tokens`` drops [CLS], [SEP], [PAD], [MASK]
        and [UNK]; ``clean_up_tokenization_spaces`` removes the space before . , ! ? and in
        English contractions (" n't", " 's", ...), as transformers' option of that name does.
        """
        tokens = self.convert_ids_to_tokens(ids)
        if isinstance(tokens, str):
            tokens = [tokens]
        if skip_special_tokens:
            specials = set(self.special_tokens)
            tokens = [t for t in tokens if t not in specials]
        text = " ".join(tokens).replace(" ##", "").strip()
        if clean_up_tokenization_spaces:
            for before, after in _CLEAN_UP:
                text = text.replace(before, after)
        return text


_CLEAN_UP = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't")]
_CLEAN_UP += [(" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]
