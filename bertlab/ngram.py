"""n-gram language models: counting, smoothing, perplexity, sampling, and class-based n-grams.

An n-gram model predicts the next token from the previous ``n - 1`` tokens only (the Markov
assumption), with probabilities estimated by counting. It is the baseline every later chapter
improves on, and this module lets you see why it runs out of road: most n-grams are never seen
(:func:`ngram_stats`), so the raw counts (MLE) give them probability zero and the perplexity of
new text is infinite; smoothing (add-k, Kneser-Ney) moves probability mass to them, and class-based
models (:mod:`bertlab.brown`) share statistics between similar words. :mod:`bertlab.arpa` writes a
Kneser-Ney model in the ARPA format that KenLM and other toolkits read.

Conventions, the same everywhere in this module:

* A sentence is a list of tokens. Before counting, an order-``n`` model pads it with ``n - 1``
  ``<s>`` on the left and one ``</s>`` on the right: ``<s> <s> the cat sat </s>`` for a trigram
  model. Every real token and the final ``</s>`` are *predicted*; ``<s>`` never is.
* The vocabulary (``model.vocab``) is the list of tokens the model predicts: ``</s>``, ``<unk>`` and
  the training words (rare ones mapped to ``<unk>`` with ``min_count``). Any word outside it, in
  training, evaluation or a context, is read as ``<unk>``. ``<s>`` is not in it.
* A context is a sequence of tokens before the predicted word. Shorter than ``n - 1`` tokens, it
  is padded on the left with ``<s>`` (so ``context=[]`` means "at the start of a sentence");
  longer, only its last ``n - 1`` tokens are used.
* Logarithms are natural (nats); perplexity is ``exp`` of the mean negative log-probability per
  predicted token (each sentence's words and its ``</s>``), which equals ``2 ** bits-per-token``.

Counting is done with numpy, not with a Python dict per n-gram. Tokens become integer ids. The
m-gram ending at each position of the padded text gets an id, built one length at a time: its key is
``id(its first m - 1 tokens) * R + id(last token)`` (R = number of token ids), and ``np.unique``
over these int64 keys gives the sorted table of distinct m-grams and each position's id. Counts
are ``np.bincount`` over ids; a lookup in new text is ``np.searchsorted`` in the sorted keys.
Because the key uses the *rank* of the (m - 1)-gram rather than its tokens, keys stay small for
any order.
Fitting an interpolated Kneser-Ney trigram model on WikiText-2 train (2M tokens) takes seconds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SMOOTHINGS = ("kneser-ney", "add-k", "mle")
RESERVED_TOKENS_ERROR = (
    f"sentences contain the reserved token {BOS!r} or {EOS!r}; pass bare sentences, "
    "the model adds the padding itself."
)

# --------------------------------------------------------------------------------------------------
# Shared helpers: checking input, the vocabulary, turning sentences into one padded id array
# --------------------------------------------------------------------------------------------------


def _as_sentences(sentences: Iterable[Sequence[str]], what: str = "sentences") -> list:
    """Materialize an iterable of token lists, rejecting the common mistake of passing strings."""
    if isinstance(sentences, str):
        raise TypeError(f"{what} must be an iterable of token lists, not one string.")
    sentences = list(sentences)
    if any(isinstance(s, str) for s in sentences):
        raise TypeError(
            f"each of the {what} must be a list of tokens, got a string; split it first "
            "(e.g. [line.split() for line in lines])."
        )
    return sentences


def _check_context(context: Sequence[str] | None) -> list[str]:
    if context is None:
        return []
    if isinstance(context, str):
        raise TypeError(
            f"context must be a sequence of tokens, not the string {context!r}; "
            f"write context={context.split()!r}."
        )
    return list(context)


def _build_vocab(sentences: list, min_count: int, words: Iterable[str] | None) -> list[str]:
    """``[</s>, <unk>, words...]``: the given words, or the training words seen ``min_count`` times,
    most frequent first (ties alphabetical)."""
    if words is None:
        counts = Counter(chain.from_iterable(sentences))
        kept = [w for w, c in counts.items() if c >= min_count and w not in (BOS, EOS, UNK)]
        kept.sort(key=lambda w: (-counts[w], w))
    else:
        if isinstance(words, str):
            raise TypeError("vocab must be an iterable of words, not one string.")
        kept = list(dict.fromkeys(w for w in words if w not in (BOS, EOS, UNK)))
    return [EOS, UNK, *kept]


def _corpus(sentences: Iterable[Sequence[str]], min_count: int, words: Iterable[str] | None):
    """The training sentences as a list (refusing an empty corpus), the vocabulary and its index."""
    sentences = _as_sentences(sentences)
    if not sentences:
        raise ValueError("cannot fit on an empty corpus: pass at least one sentence.")
    vocab = _build_vocab(sentences, min_count, words)
    return sentences, vocab, {w: i for i, w in enumerate(vocab)}


def _layout(
    sentences: list, index: Mapping[str, int], unknown: int, pad: int, start: int, end: int
) -> np.ndarray:
    """All sentences as one int64 array, each laid out as ``[start] * pad + its ids + [end]``.

    Token ids come from ``index``; tokens not in it get ``unknown``.
    """
    lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))
    total = int(lengths.sum())
    get = index.get
    flat = np.fromiter((get(t, unknown) for s in sentences for t in s), np.int64, count=total)
    size = lengths + pad + 1  # (S,) laid-out length of each sentence
    ends = np.cumsum(size)
    out = np.full(int(ends[-1]) if len(ends) else 0, start, dtype=np.int64)
    shift = (ends - size + pad) - (np.cumsum(lengths) - lengths)  # out position - flat position
    out[np.repeat(shift, lengths) + np.arange(total)] = flat
    out[ends - 1] = end
    return out


def _pad_encode(sentences: list, index: Mapping[str, int], pad: int) -> np.ndarray:
    """The padded text of an order-(pad + 1) model: ``<s>`` * pad, the word ids, ``</s>``, for
    every sentence, end to end. ``index`` maps tokens (``<s>`` included) to ids; unknown tokens
    become ``<unk>``. Literal ``<s>`` / ``</s>`` inside a sentence are refused: padding is our job.
    """
    bos, eos = index[BOS], index[EOS]
    ids = _layout(sentences, index, index[UNK], pad, bos, eos)
    n_real = np.count_nonzero(ids == bos) + np.count_nonzero(ids == eos)
    if n_real != len(sentences) * (pad + 1):
        raise ValueError(RESERVED_TOKENS_ERROR)
    return ids


def _shift_right(a: np.ndarray) -> np.ndarray:
    """``out[i] = a[i - 1]``, with ``-1`` at position 0 (no left neighbour)."""
    out = np.empty_like(a)
    out[0] = -1
    out[1:] = a[:-1]
    return out


def _lookup(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of each query in the sorted array ``keys``, or -1 where it is absent."""
    if len(keys) == 0:
        return np.full(len(queries), -1, dtype=np.int64)
    j = np.searchsorted(keys, queries)
    jc = np.minimum(j, len(keys) - 1)
    return np.where(keys[jc] == queries, jc, -1)


def _xlogx(x: np.ndarray) -> np.ndarray:
    """x * log(x) elementwise, with 0 log 0 = 0."""
    return x * np.log(np.where(x > 0, x, 1.0))


# --------------------------------------------------------------------------------------------------
# The word n-gram model
# --------------------------------------------------------------------------------------------------


def _kneser_ney(c, total, types, lower, discount: float):
    """One level of interpolated Kneser-Ney: ``(max(c - D, 0) + D * types * lower) / total``,
    and ``lower`` unchanged where the context was never seen (``total == 0``)."""
    interpolated = np.maximum(c - discount, 0.0) + discount * types * lower
    return np.where(total > 0, interpolated / np.where(total > 0, total, 1.0), lower)


def _perplexity(logp: np.ndarray) -> float:
    """exp(mean negative log-probability), from per-token natural-log probabilities."""
    if len(logp) == 0:
        raise ValueError("perplexity needs at least one sentence.")
    return float(np.exp(-logp.mean()))


def _draw(p: np.ndarray, rng: np.random.Generator) -> int:
    """Sample one index from the (normalized) distribution ``p``."""
    cdf = np.cumsum(p)
    return min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(cdf) - 1)


@dataclass
class ParameterCount:
    """How many numbers a model needs.

    ``stored``: the nonzero counts it keeps and turns into probabilities (see each model's
    ``num_parameters``). ``full``: the size of the complete table a model of this shape would need
    if every combination had its own entry (a Python int, it can be astronomically large).
    """

    stored: int
    full: int


@dataclass
class _Level:
    """The m-grams of one length m seen in the padded training text, sorted by key.

    m-gram ids are ranks in ``keys`` (for m = 1, the token id itself). Contexts of this level are
    (m - 1)-grams, named by *their* id (for m = 1 there is one, empty, context with id 0).
    """

    keys: np.ndarray  # (G,) int64: id(context) * R + id(last token); for m = 1, arange(R)
    count: np.ndarray  # (G,) raw count at predicted positions (0 for m-grams that end in <s>)
    c: np.ndarray  # (G,) the count the estimator uses: raw, or a continuation count (Kneser-Ney)
    total: np.ndarray  # (G_ctx,) sum of c over the m-grams of each context
    types: np.ndarray  # (G_ctx,) number of m-grams with c > 0 in each context


class _LogProb:
    """``logprob`` for any model with ``prob(word, context)``: one definition for all models."""

    def logprob(self, word: str, context: Sequence[str] | None = None) -> float:
        """Natural log of ``prob`` (``-inf`` for probability 0)."""
        p = self.prob(word, context)
        return math.log(p) if p > 0 else -math.inf

    @staticmethod
    def _is_sentence_start(word: str) -> bool:
        """Check that ``word`` is one token; ``<s>`` is never predicted (probability 0)."""
        if not isinstance(word, str):
            raise TypeError(f"word must be a string token, got {type(word).__name__}.")
        return word == BOS


def token_ids(index: dict[str, int], tokens: Sequence[str]) -> list[int]:
    """The id of each token in ``index``, unknown words as ``<unk>``."""
    unk = index[UNK]
    return [index.get(t, unk) for t in tokens]


class NGramLM(_LogProb):
    """An order-``n`` word language model with MLE, add-k or interpolated Kneser-Ney estimates.

    Args:
        order: n (1 = unigram, 2 = bigram, 3 = trigram, ...).
        smoothing: ``"kneser-ney"`` (default), ``"add-k"`` or ``"mle"``; see :meth:`probs`.
        k: the pseudo-count of add-k (Lidstone) smoothing; ``k=1`` is Laplace. Must be > 0.
        discount: the absolute discount D of Kneser-Ney, in (0, 1].
        min_count: training words seen fewer times become ``<unk>`` (unused when ``vocab`` is set).
        vocab: a fixed list of words to model; every other word is ``<unk>``.

    The estimates, for a word w after a context h (padded/truncated to n - 1 tokens):

    * **mle**: ``c(h w) / c(h)``. An unseen n-gram gets 0, so the perplexity of text containing one
      is infinite. After a context never seen in training, ``c(h) = 0`` and there is no
      distribution: :meth:`prob`, :meth:`probs` and :meth:`generate` raise ``ValueError``, and
      :meth:`token_logprobs` / :meth:`perplexity` count the token as probability 0 (-inf, inf).
    * **add-k**: ``(c(h w) + k) / (c(h) + k |V|)``, |V| = ``len(vocab)``; uniform after an unseen h.
    * **kneser-ney** (interpolated, Chen & Goodman 1998 with one discount), recursively over the
      context's suffixes, from the empty context up to the full one::

          p_0(w)     = 1 / |V|
          p_m(w | h) = max(c_m(h w) - D, 0) / c_m(h)  +  D * N1+(h .) / c_m(h) * p_{m-1}(w | h')

      where h is the last m - 1 tokens, h' the last m - 2, and ``c_m(h) = sum_w c_m(h w)``,
      ``N1+(h .) = |{w : c_m(h w) > 0}|``. The highest level (m = n) uses raw counts
      ``c_n = c``; lower levels use continuation counts ``c_m(h w) = N1+(. h w)``, the number of
      distinct tokens seen right before ``h w``. A level whose context was never seen
      (``c_m(h) = 0``) passes ``p_{m-1}`` through unchanged. So the unigram level is the
      continuation distribution ``N1+(. w) / N1+(. .)``, discounted and interpolated with the
      uniform distribution over the vocabulary (for a unigram model, the discounted raw counts
      are): every vocabulary word, ``<unk>`` included, gets some probability.

    Every distribution sums to 1 over ``vocab`` (which includes ``</s>`` and ``<unk>``).
    """

    def __init__(
        self,
        order: int = 3,
        smoothing: str = "kneser-ney",
        k: float = 1.0,
        discount: float = 0.75,
        min_count: int = 1,
        vocab: Iterable[str] | None = None,
    ):
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise ValueError(
                f"order must be an integer >= 1 (1 = unigram, 2 = bigram, ...), got {order!r}."
            )
        if smoothing not in SMOOTHINGS:
            raise ValueError(
                f"smoothing must be one of {', '.join(SMOOTHINGS)}; got {smoothing!r}."
            )
        if not k >= 0:
            raise ValueError(f"k must be >= 0 (k=1 is Laplace smoothing), got {k!r}.")
        if smoothing == "add-k" and k == 0:
            raise ValueError(
                "add-k smoothing needs k > 0; for unsmoothed counts use smoothing='mle'."
            )
        if not 0 < discount <= 1:
            raise ValueError(
                f"discount must be in (0, 1] (Kneser-Ney subtracts it from counts >= 1), "
                f"got {discount!r}; 0.75 is the usual choice."
            )
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}.")
        self.order, self.smoothing = order, smoothing
        self.k, self.discount, self.min_count = float(k), float(discount), min_count
        self._fixed_vocab = None if vocab is None else list(vocab)
        self.vocab: list[str] = []
        self._levels: list[_Level] = []

    def __repr__(self) -> str:
        extra = {"add-k": f", k={self.k:g}", "kneser-ney": f", discount={self.discount:g}"}
        extra = extra.get(self.smoothing, "")
        fitted = f", |V|={len(self.vocab)}" if self.vocab else ", not fitted"
        return f"NGramLM(order={self.order}, {self.smoothing!r}{extra}{fitted})"

    # ---- fitting ---------------------------------------------------------------------------------

    def fit(self, sentences: Iterable[Sequence[str]]) -> NGramLM:
        """Count the n-grams of ``sentences`` (an iterable of token lists) and return ``self``."""
        sentences, self.vocab, self.index = _corpus(sentences, self.min_count, self._fixed_vocab)
        self._bos = len(self.vocab)  # <s> gets the id after the vocabulary: never predicted
        self.index[BOS] = self._bos
        self._R = self._bos + 1  # radix of the keys: number of token ids

        ids = _pad_encode(sentences, self.index, self.order - 1)  # (T,)
        pos = np.flatnonzero(ids != self._bos)  # the predicted positions
        self.num_tokens = len(pos)
        self.num_sentences = len(sentences)

        # hs[m-1][i]: id of the m-gram ending at position i (-1 where it would start before 0)
        hs, keys_per_level = [ids], [np.arange(self._R)]
        for _ in range(2, self.order + 1):
            prev = _shift_right(hs[-1])
            ok = prev >= 0
            keys, inverse = np.unique(prev[ok] * self._R + ids[ok], return_inverse=True)
            h = np.full(len(ids), -1, dtype=np.int64)
            h[ok] = inverse
            hs.append(h)
            keys_per_level.append(keys)

        counts = [np.bincount(h[pos], minlength=len(keys)) for h, keys in zip(hs, keys_per_level)]
        # continuation counts N1+(. g) for every m-gram g below the top: how many distinct
        # (m+1)-grams (x g) were seen; the suffix g of each (m+1)-gram comes from any position
        conts = []
        for m in range(1, self.order):
            suffix = np.zeros(len(keys_per_level[m]), dtype=np.int64)
            suffix[hs[m][pos]] = hs[m - 1][pos]
            seen = counts[m] > 0
            conts.append(np.bincount(suffix[seen], minlength=len(keys_per_level[m - 1])))

        self._levels = []
        for m in range(1, self.order + 1):
            keys = keys_per_level[m - 1]
            use_raw = m == self.order or self.smoothing != "kneser-ney"
            c = counts[m - 1] if use_raw else conts[m - 1]
            ctx = np.zeros(len(keys), dtype=np.int64) if m == 1 else keys // self._R
            n_ctx = 1 if m == 1 else len(keys_per_level[m - 2])
            total = np.bincount(ctx, weights=c, minlength=n_ctx)
            types = np.bincount(ctx, weights=c > 0, minlength=n_ctx)
            self._levels.append(_Level(keys, counts[m - 1], c, total, types))
        return self

    def _require_fit(self) -> None:
        if not self._levels:
            raise RuntimeError("this model is not fitted yet: call .fit(sentences) first.")

    # ---- looking things up -----------------------------------------------------------------------

    def _ids(self, tokens: Sequence[str]) -> list[int]:
        """Token ids (``<s>`` included), unknown words as ``<unk>``."""
        return token_ids(self.index, tokens)

    def _mgram_ids(self, ids: np.ndarray) -> list[np.ndarray]:
        """For an id array, the id (in the training tables) of the m-gram ending at each position,
        for m = 1..n; -1 where that m-gram was never seen in training."""
        hs = [ids]
        for m in range(2, self.order + 1):
            prev = _shift_right(hs[-1])
            found = _lookup(self._levels[m - 1].keys, np.maximum(prev, 0) * self._R + ids)
            hs.append(np.where(prev >= 0, found, -1))
        return hs

    def _padded_context(self, context: Sequence[str] | None) -> list[int]:
        """The last n - 1 context token ids, left-padded with <s>."""
        ids = self._ids(_check_context(context))
        ids = ids[max(0, len(ids) - (self.order - 1)) :]
        return [self._bos] * (self.order - 1 - len(ids)) + ids

    def count(self, ngram: Sequence[str]) -> int:
        """How often ``ngram`` (1 to n tokens, ``<s>`` allowed) occurs in the padded training
        text, counting only occurrences that end at a predicted token."""
        self._require_fit()
        ngram = _check_context(ngram)
        if not 1 <= len(ngram) <= self.order:
            raise ValueError(f"ngram must have 1 to {self.order} tokens, got {len(ngram)}.")
        h = self._mgram_ids(np.array(self._ids(ngram), dtype=np.int64))[len(ngram) - 1][-1]
        return int(self._levels[len(ngram) - 1].count[h]) if h >= 0 else 0

    # ---- probabilities ---------------------------------------------------------------------------

    def position_probs(self, ids: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """P(token at ``pos`` | the n - 1 tokens before it), for every position at once.

        ``ids`` is padded text as token ids (``<s>`` * (n - 1), a sentence, ``</s>``, ...), ``pos``
        the positions to score. NaN where MLE has no distribution (unseen context).
        """
        hs = self._mgram_ids(ids)  # hs[m - 1][i]: id of the m-gram ending at i, -1 if unseen
        V, D = len(self.vocab), self.discount
        word = hs[0][pos]
        kn = self.smoothing == "kneser-ney"
        p = np.full(len(pos), 1.0 / V)  # p_0, the uniform distribution
        for m in range(1, self.order + 1) if kn else [self.order]:
            lv = self._levels[m - 1]
            ctx = np.zeros(len(pos), dtype=np.int64) if m == 1 else hs[m - 2][pos - 1]
            gram = word if m == 1 else hs[m - 1][pos]
            total = np.where(ctx >= 0, lv.total[np.maximum(ctx, 0)], 0.0)
            c = np.where(gram >= 0, lv.c[np.maximum(gram, 0)], 0.0)
            if kn:
                types = np.where(ctx >= 0, lv.types[np.maximum(ctx, 0)], 0.0)
                p = _kneser_ney(c, total, types, p, D)
            elif self.smoothing == "add-k":
                p = (c + self.k) / (total + self.k * V)
            else:
                p = np.where(total > 0, c / np.where(total > 0, total, 1.0), np.nan)
        return p

    def _probs_ids(self, context_ids: list[int]) -> np.ndarray:
        """The distribution over the vocabulary after a padded context of n - 1 ids."""
        V, D = len(self.vocab), self.discount
        hs = self._mgram_ids(np.array(context_ids + [0], dtype=np.int64))  # 0: a dummy next word
        last = len(context_ids)  # the dummy's position; the context m-gram ends just before it
        kn = self.smoothing == "kneser-ney"
        p = np.full(V, 1.0 / V)
        for m in range(1, self.order + 1) if kn else [self.order]:
            lv = self._levels[m - 1]
            ctx = 0 if m == 1 else int(hs[m - 2][last - 1])
            total = lv.total[ctx] if ctx >= 0 else 0.0
            if total == 0:
                if self.smoothing == "mle":
                    shown = [self.vocab[i] if i < V else BOS for i in context_ids]
                    raise ValueError(
                        f"MLE has no distribution after the context {shown}: it never occurred "
                        "in training (0/0). Use smoothing='add-k' or 'kneser-ney', or a context "
                        "seen in training."
                    )
                if not kn:
                    return np.full(V, 1.0 / V)
                continue
            if m == 1:
                words, c = np.arange(V), lv.c[:V]
            else:  # the m-grams with this context are one contiguous run of the sorted keys
                lo, hi = np.searchsorted(lv.keys, [ctx * self._R, (ctx + 1) * self._R])
                words, c = lv.keys[lo:hi] - ctx * self._R, lv.c[lo:hi]
                keep = words < V  # drop m-grams that end in <s> (count 0)
                words, c = words[keep], c[keep]
            dense = np.zeros(V)
            if kn:
                dense[words] = c
                p = _kneser_ney(dense, total, lv.types[ctx], p, D)
            elif self.smoothing == "add-k":
                dense[words] = c
                p = (dense + self.k) / (total + self.k * V)
            else:
                dense[words] = c
                p = dense / total
        return p

    def probs(self, context: Sequence[str] | None = None) -> np.ndarray:
        """P(w | context) for every w in ``vocab``, as an array that sums to 1."""
        self._require_fit()
        return self._probs_ids(self._padded_context(context))

    def prob(self, word: str, context: Sequence[str] | None = None) -> float:
        """P(word | context); ``word`` outside the vocabulary is ``<unk>``; ``<s>`` gets 0."""
        self._require_fit()
        if self._is_sentence_start(word):
            return 0.0
        ctx = self._padded_context(context)
        ids = np.array(ctx + self._ids([word]), dtype=np.int64)
        p = float(self.position_probs(ids, np.array([len(ctx)]))[0])
        if math.isnan(p):
            self._probs_ids(ctx)  # raises the explanatory error
        return p

    # ---- evaluation ------------------------------------------------------------------------------

    def token_logprobs(self, sentences: Iterable[Sequence[str]]) -> np.ndarray:
        """ln P of every predicted token (each sentence's words, then its ``</s>``), in order."""
        self._require_fit()
        sentences = _as_sentences(sentences)
        if not sentences:
            return np.zeros(0)
        ids = _pad_encode(sentences, self.index, self.order - 1)
        pos = np.flatnonzero(ids != self._bos)
        p = np.nan_to_num(self.position_probs(ids, pos), nan=0.0)
        with np.errstate(divide="ignore"):
            return np.log(p)

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """exp(mean negative log-probability per predicted token); ``inf`` if any token gets 0."""
        return _perplexity(self.token_logprobs(sentences))

    # ---- the ARPA format -------------------------------------------------------------------------

    def to_arpa(self, path) -> dict[int, int]:
        """Write this (Kneser-Ney) model as an ARPA file that KenLM reads and scores as we do;
        return the number of n-grams per order. Add-k and MLE raise ``ValueError``: they are not
        backoff models, see :mod:`bertlab.arpa`."""
        from .arpa import write_arpa

        return write_arpa(self, path)

    @staticmethod
    def from_arpa(path):
        """Read an ARPA file (ours or any other) into a :class:`bertlab.arpa.ArpaLM`: a model with
        the same ``prob``, ``probs``, ``token_logprobs`` and ``perplexity``, scored from the
        file's tables."""
        from .arpa import read_arpa

        return read_arpa(path)

    # ---- sampling and size -----------------------------------------------------------------------

    def generate(
        self, n: int, context: Sequence[str] | None = None, seed: int | None = 0
    ) -> list[str]:
        """Sample ``n`` tokens, continuing ``context`` (default: the start of a sentence).

        After a ``</s>`` (which is emitted) the next sentence starts with a fresh ``<s>`` context.
        The same ``seed`` gives the same tokens; ``seed=None`` draws fresh randomness.
        """
        self._require_fit()
        rng = np.random.default_rng(seed)
        history = self._padded_context(context)
        eos, out = self.index[EOS], []
        for _ in range(n):
            j = _draw(self._probs_ids(history), rng)
            out.append(self.vocab[j])
            history = [self._bos] * (self.order - 1) if j == eos else (history + [j])[1:]
        return out

    def num_parameters(self) -> ParameterCount:
        """``stored``: the nonzero counts the estimates are made of (Kneser-Ney: the n-grams with a
        nonzero raw or continuation count at every level 1..n; add-k and MLE: the seen n-grams).
        ``full``: |V|^n, one probability for every context of n - 1 vocabulary words and every word.
        """
        self._require_fit()
        levels = self._levels if self.smoothing == "kneser-ney" else self._levels[-1:]
        stored = sum(int(np.count_nonzero(lv.c)) for lv in levels)
        return ParameterCount(stored=stored, full=len(self.vocab) ** self.order)


# --------------------------------------------------------------------------------------------------
# The parameter explosion: how many n-grams there are, and how many a corpus shows
# --------------------------------------------------------------------------------------------------


@dataclass
class NGramStats:
    """Counts for one n (no padding: the n-grams inside the sentences).

    ``possible = V**n`` for the V distinct training tokens; ``unseen`` is the fraction of the
    held-out text's n-gram occurrences whose n-gram never occurs in training (None if no held-out
    text was given).
    """

    n: int
    occurrences: int  # n-gram tokens in training
    distinct: int  # distinct n-grams in training
    singletons: int  # distinct n-grams seen exactly once
    possible: int  # V ** n
    unseen: float | None


def _with_separators(sentences: list, index: Mapping[str, int], unknown: int) -> np.ndarray:
    """Token ids, -1 after each sentence (no n-gram spans two); words not in ``index``: unknown."""
    return _layout(sentences, index, unknown, 0, -1, -1)


def ngram_stats(
    sentences: Iterable[Sequence[str]],
    max_order: int = 5,
    held_out: Iterable[Sequence[str]] | None = None,
) -> list[NGramStats]:
    """For n = 1..max_order: distinct n-grams in ``sentences`` vs the V**n possible ones, and the
    share of ``held_out`` n-gram occurrences never seen in ``sentences``."""
    sentences = _as_sentences(sentences)
    if max_order < 1:
        raise ValueError(f"max_order must be >= 1, got {max_order}.")
    vocab = sorted(set(chain.from_iterable(sentences)))
    if not vocab:
        raise ValueError("ngram_stats needs a non-empty corpus.")
    V, index = len(vocab), {w: i for i, w in enumerate(vocab)}
    R = V + 1  # ids 0..V-1 are words, V an unknown (held-out only) word
    train = _with_separators(sentences, index, V)
    test = None if held_out is None else _with_separators(_as_sentences(held_out), index, V)
    h_train = train  # id of the m-gram ending at each position, -1 if none
    h_test, exists = test, None if test is None else test >= 0
    rows = []
    for n in range(1, max_order + 1):
        if n == 1:
            keys = np.arange(V)
        else:
            prev = _shift_right(h_train)
            ok = (prev >= 0) & (train >= 0)
            keys, inverse = np.unique(prev[ok] * R + train[ok], return_inverse=True)
            h_train = np.full(len(train), -1, dtype=np.int64)
            h_train[ok] = inverse
        counts = np.bincount(h_train[h_train >= 0], minlength=len(keys))
        unseen = None
        if test is not None:
            if n == 1:
                h_test = np.where(test < V, test, -1)
            else:
                prev = _shift_right(h_test)
                exists = exists & np.r_[False, exists[:-1]]  # the window fits in one sentence
                found = _lookup(keys, np.maximum(prev, 0) * R + np.maximum(test, 0))
                h_test = np.where(exists & (prev >= 0), found, -1)
            n_exist = int(exists.sum())
            unseen = float((exists & (h_test < 0)).sum() / n_exist) if n_exist else math.nan
        rows.append(
            NGramStats(
                n=n,
                occurrences=int(counts.sum()),
                distinct=int(np.count_nonzero(counts)),
                singletons=int(np.count_nonzero(counts == 1)),
                possible=V**n,
                unseen=unseen,
            )
        )
    return rows
