"""Class-based n-gram models: Brown clustering and the class n-gram model.

Most n-grams are never seen (see :mod:`bertlab.ngram`). A class-based model shares statistics
between similar words: each word gets one class, chosen by :func:`brown_clusters` to keep the
class bigram model's average mutual information high, and :class:`ClassNGramLM` predicts the next
word's class from the previous classes, then the word from its class. The conventions (padding,
``<unk>``, contexts, natural logs) are those of :mod:`bertlab.ngram`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain

import numpy as np
import scipy.sparse

from .ngram import (
    BOS,
    EOS,
    RESERVED_TOKENS_ERROR,
    UNK,
    NGramLM,
    ParameterCount,
    _as_sentences,
    _check_context,
    _corpus,
    _draw,
    _LogProb,
    _perplexity,
    _with_separators,
    _xlogx,
    token_ids,
)


def _check_reserved(sentences: list) -> None:
    if any(BOS in s or EOS in s for s in sentences):
        raise ValueError(RESERVED_TOKENS_ERROR)


# --------------------------------------------------------------------------------------------------
# Brown clustering (Brown et al. 1992): word classes that keep the most mutual information
# --------------------------------------------------------------------------------------------------


def _pair_sums(N: np.ndarray) -> np.ndarray:
    """F[i, j] = sum_b f(N[i, b] + N[j, b]) with f(x) = x log x: the row part of merging i and j."""
    return _xlogx(N[:, None, :] + N[None, :, :]).sum(-1)  # (K, K, K) -> (K, K)


class _AMIWindow:
    """The bigram counts between K cluster slots and what merge losses need, kept up to date.

    The average mutual information of the cluster bigram table N (T = all bigrams, a constant) is
    ``AMI * T = sum_ab f(N_ab) - sum_a f(Nl_a) - sum_b f(Nr_b) + const``, with f(x) = x log x and
    Nl, Nr the row and column sums. Merging clusters i and j only changes rows and columns i, j;
    the only part that costs O(K) per pair is ``sum_b f(N_ib + N_jb)`` (and the same over columns),
    kept in F and G and updated in O(K^2) per merge or new cluster, so one step is O(K^2).
    """

    def __init__(self, N: np.ndarray):
        self.N = N  # (K, K) bigram counts between slots; free slots are all-zero rows/columns
        self.refresh()

    def refresh(self) -> None:
        """Recompute F and G from scratch (done now and then to stop rounding drift)."""
        self.F, self.G = _pair_sums(self.N), _pair_sums(self.N.T)

    def losses(self, active: np.ndarray) -> np.ndarray:
        """(K, K) AMI * T lost by merging slots i < j; inf for other pairs."""
        N = self.N
        fN, d = _xlogx(N), np.diag(N)
        fd = np.diag(fN)
        rows, cols = fN.sum(1), fN.sum(0)
        before = rows[:, None] + rows + cols[:, None] + cols - fd[:, None] - fd - fN - fN.T
        di, dj = d[:, None], d[None, :]
        after = (
            self.F - _xlogx(di + N.T) - _xlogx(N + dj)  # merged row, columns other than i, j
            + self.G - _xlogx(di + N) - _xlogx(N.T + dj)  # merged column, rows other than i, j
            + _xlogx(di + N + N.T + dj)  # the merged cluster's bigrams with itself
        )  # fmt: skip
        nl, nr = N.sum(1), N.sum(0)
        marg = _xlogx(nl)[:, None] + _xlogx(nl) - _xlogx(nl[:, None] + nl)
        marg += _xlogx(nr)[:, None] + _xlogx(nr) - _xlogx(nr[:, None] + nr)
        loss = before - after - marg
        ok = np.triu(active[:, None] & active[None, :], k=1)
        return np.where(ok, loss, np.inf)

    def add(self, n: int, row: np.ndarray, col: np.ndarray) -> None:
        """Put a new cluster in free slot n, with bigram counts ``row`` (n -> slots), ``col``."""
        N = self.N
        N[n, :], N[:, n] = row, col
        c, r = N[:, n], N[n, :]
        self.F += _xlogx(c[:, None] + c[None, :])  # a new column term for every pair
        self.G += _xlogx(r[:, None] + r[None, :])
        self.F[n, :] = self.F[:, n] = _xlogx(N[n][None, :] + N).sum(1)
        self.G[n, :] = self.G[:, n] = _xlogx(N[:, n][:, None] + N).sum(0)

    def merge(self, i: int, j: int) -> None:
        """Merge slot j into slot i; slot j becomes free."""
        N = self.N
        u, v = N[:, i], N[:, j]  # columns i and j become one: update every pair's row sums
        self.F += (
            _xlogx((u + v)[:, None] + (u + v)) - _xlogx(u[:, None] + u) - _xlogx(v[:, None] + v)
        )
        u, v = N[i, :], N[j, :]
        self.G += (
            _xlogx((u + v)[:, None] + (u + v)) - _xlogx(u[:, None] + u) - _xlogx(v[:, None] + v)
        )
        N[:, i] += N[:, j]
        N[:, j] = 0
        N[i, :] += N[j, :]
        N[j, :] = 0
        fN = _xlogx(N)
        self.F[i, :] = self.F[:, i] = _xlogx(N[i][None, :] + N).sum(1)
        self.G[i, :] = self.G[:, i] = _xlogx(N[:, i][:, None] + N).sum(0)
        self.F[j, :] = self.F[:, j] = fN.sum(1)
        self.G[j, :] = self.G[:, j] = fN.sum(0)


def _assign_rest(
    N: np.ndarray, right: tuple, left: tuple, self_counts: np.ndarray, fallback: int
) -> np.ndarray:
    """Class of each word left out of the window: the one whose AMI is highest once the word's
    bigrams with clustered words are added to it (each word on its own, classes held fixed).

    ``right = (w, b, count)``: bigrams word w -> class b; ``left = (w, a, count)``: class a -> w;
    ``self_counts[w]``: the bigram w w. For class c the c-dependent part of the new AMI * T is
        sum_a [f(N_ac + l_a) - f(N_ac)] + sum_b [f(N_cb + r_b) - f(N_cb)] + (cell c,c fix-up)
        - [f(Nl_c + l_c + |r| + s) - f(Nl_c + l_c)] - [f(Nr_c + r_c + |l| + s) - f(Nr_c + r_c)].
    Words with no bigram with a clustered word get class ``fallback``.
    """
    C, n_rest = len(N), len(self_counts)
    fN = _xlogx(N)
    gain = np.zeros((n_rest, C))
    dense = {}
    for name, (w, other, cnt), along in (("r", right, N.T), ("l", left, N)):
        dense[name] = np.zeros((n_rest, C))
        dense[name][w, other] = cnt
        f_along = _xlogx(along)
        for lo in range(0, len(w), 20000):  # entries sorted by word: sum each word's run
            sl = slice(lo, lo + 20000)
            contrib = _xlogx(along[other[sl]] + cnt[sl, None]) - f_along[other[sl]]  # (B, C)
            starts = np.flatnonzero(np.r_[True, w[sl][1:] != w[sl][:-1]])
            gain[w[sl][starts]] += np.add.reduceat(contrib, starts, axis=0)
    r, l, s = dense["r"], dense["l"], self_counts[:, None].astype(float)
    d = np.diag(N)
    gain += _xlogx(d + l + r + s) - _xlogx(d + l) - _xlogx(d + r) + np.diag(fN)
    nl, nr = N.sum(1), N.sum(0)
    gain -= _xlogx(nl + l + r.sum(1, keepdims=True) + s) - _xlogx(nl + l)
    gain -= _xlogx(nr + r + l.sum(1, keepdims=True) + s) - _xlogx(nr + r)
    best = gain.argmax(1)
    best[(r.sum(1) + l.sum(1)) == 0] = fallback
    return best


def brown_clusters(
    sentences: Iterable[Sequence[str]], n_classes: int = 100, n_words: int | None = 1000
) -> dict[str, int]:
    """Brown clustering: a class for every word, chosen to keep the class bigram model's average
    mutual information (AMI) high. Returns ``{word: class}``, class 0 the most frequent.

    The window algorithm (Brown et al. 1992, as in Liang 2005): sort the words by frequency;
    start with the ``n_classes`` most frequent as clusters of one word; add the next word as a
    cluster of its own, then merge the pair of clusters whose merge loses the least AMI; repeat
    until the ``n_words`` most frequent words are in (``n_words=None``: all of them). Bigrams
    are counted inside sentences, between words already clustered.

    Every rarer word then joins, on its own and in one vectorized pass with the classes held
    fixed, the class with the highest AMI once the word's bigrams with clustered words are added
    to it (``_assign_rest``); a word with no clustered neighbour joins the most frequent class.
    The tokens ``<s>``, ``</s>``, ``<unk>`` get no class.
    """
    sentences = _as_sentences(sentences)
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}.")
    if n_words is not None and n_words < n_classes:
        raise ValueError(f"n_words ({n_words}) must be >= n_classes ({n_classes}).")
    counts = Counter(chain.from_iterable(sentences))
    for special in (BOS, EOS, UNK):
        counts.pop(special, None)
    if not counts:
        raise ValueError("brown_clusters needs a corpus with at least one word.")
    words = sorted(counts, key=lambda w: (-counts[w], w))  # rank = id
    n = len(words)
    M = n if n_words is None else min(n_words, n)  # words that go through the window
    C = min(n_classes, M)

    # distinct bigrams (a, b) inside sentences, with counts
    ids = _with_separators(sentences, {w: i for i, w in enumerate(words)}, -1)
    a, b = ids[:-1], ids[1:]
    ok = (a >= 0) & (b >= 0)
    pairs, cnt = np.unique(a[ok] * n + b[ok], return_counts=True)
    A, B = pairs // n, pairs % n

    top = (A < M) & (B < M)
    W = scipy.sparse.csr_matrix((cnt[top].astype(float), (A[top], B[top])), shape=(M, M))
    WT = W.T.tocsr()
    slot = np.full(M, -1)
    slot[:C] = np.arange(C)
    K = C + 1 if M > C else C
    N = np.zeros((K, K))
    N[:C, :C] = W[:C, :C].toarray()
    window = _AMIWindow(N)
    active = np.zeros(K, dtype=bool)
    active[:C] = True
    free = C

    def to_slots(matrix: scipy.sparse.csr_matrix, w: int) -> np.ndarray:
        """Word w's bigram counts (a row of ``matrix``) per slot; unclustered words skipped."""
        span = slice(matrix.indptr[w], matrix.indptr[w + 1])
        s = slot[matrix.indices[span]]
        return np.bincount(s[s >= 0], weights=matrix.data[span][s >= 0], minlength=K)

    for step, w in enumerate(range(C, M)):
        slot[w] = free
        active[free] = True
        window.add(free, to_slots(W, w), to_slots(WT, w))  # (w -> slots), (slots -> w)
        i, j = np.unravel_index(np.argmin(window.losses(active)), (K, K))
        window.merge(i, j)
        slot[slot == j] = i
        active[j] = False
        free = j
        if step % 256 == 255:
            window.refresh()

    kept = np.flatnonzero(active)  # the C final slots -> classes 0..C-1
    cls_of_slot = np.full(K, -1)
    cls_of_slot[kept] = np.arange(len(kept))
    cls = np.empty(n, dtype=np.int64)
    cls[:M] = cls_of_slot[slot]
    if n > M:
        Nc = window.N[np.ix_(kept, kept)]
        rest_a, rest_b = (A >= M) & (B < M), (A < M) & (B >= M)
        right = (A[rest_a] - M, cls[B[rest_a]], cnt[rest_a].astype(float))
        left = (B[rest_b] - M, cls[A[rest_b]], cnt[rest_b].astype(float))
        right = _merge_duplicates(*right, C)
        left = _merge_duplicates(*left, C)
        self_counts = np.zeros(n - M)
        diag = (A == B) & (A >= M)
        self_counts[A[diag] - M] = cnt[diag]
        word_counts = np.array([counts[w] for w in words[:M]], dtype=float)
        biggest = int(np.bincount(cls[:M], weights=word_counts, minlength=C).argmax())
        cls[M:] = _assign_rest(Nc, right, left, self_counts, fallback=biggest)

    # renumber classes by total frequency, most frequent first
    freq = np.bincount(cls, weights=np.array([counts[w] for w in words], dtype=float), minlength=C)
    rank = np.empty(C, dtype=np.int64)
    rank[np.argsort(-freq, kind="stable")] = np.arange(C)
    return {w: int(rank[c]) for w, c in zip(words, cls)}


def _merge_duplicates(w: np.ndarray, c: np.ndarray, v: np.ndarray, C: int) -> tuple:
    """Sum the counts of repeated (w, c) pairs; the result is sorted by w."""
    keys, inverse = np.unique(w * C + c, return_inverse=True)
    return keys // C, keys % C, np.bincount(inverse, weights=v)


# --------------------------------------------------------------------------------------------------
# The class-based model
# --------------------------------------------------------------------------------------------------


class ClassNGramLM(_LogProb):
    """A class n-gram model: ``P(w | history) = P(w | c(w)) * P(c(w) | c(w_-n+1) ... c(w_-1))``.

    Each word belongs to one class (Brown clusters by default). The class sequence is modelled by an
    :class:`NGramLM` over class tokens (``smoothing``, ``k``, ``discount`` as there), and
    ``P(w | c) = count(w) / count(c)`` from training (uniform over the class's words if none of them
    occurs). ``</s>`` and ``<unk>`` are classes of their own with one word each, so probabilities
    sum to 1 over ``vocab``. Words outside the vocabulary are ``<unk>``.

    Args:
        order: n of the class n-gram model.
        n_classes, n_words: passed to :func:`brown_clusters` when ``classes`` is None.
        classes: a ready ``{word: class id}``; training words it leaves out share one extra class.
        min_count: training words seen fewer times become ``<unk>``.
    """

    def __init__(
        self,
        order: int = 3,
        n_classes: int = 100,
        n_words: int | None = 1000,
        classes: Mapping[str, int] | None = None,
        smoothing: str = "kneser-ney",
        k: float = 1.0,
        discount: float = 0.75,
        min_count: int = 1,
    ):
        self.class_model = NGramLM(order, smoothing, k, discount)  # checks the arguments
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}.")
        self.order, self.n_classes, self.n_words, self.min_count = (
            order,
            n_classes,
            n_words,
            min_count,
        )
        self.smoothing, self.k, self.discount = smoothing, k, discount
        self._given_classes = None if classes is None else dict(classes)
        self.classes: dict[str, int] = {}  # word -> class id, set by fit
        self.vocab: list[str] = []

    def __repr__(self) -> str:
        fitted = f", |V|={len(self.vocab)}" if self.vocab else ", not fitted"
        return f"ClassNGramLM(order={self.order}, {self.smoothing!r}{fitted})"

    def fit(self, sentences: Iterable[Sequence[str]]) -> ClassNGramLM:
        """Cluster (unless ``classes`` was given), then count classes and words; return ``self``."""
        sentences, self.vocab, self.index = _corpus(sentences, self.min_count, None)
        _check_reserved(sentences)
        known = self.index
        if self.min_count > 1:
            mapped = [[t if t in known else UNK for t in s] for s in sentences]
        else:  # every training word is in the vocabulary
            mapped = sentences
        self.classes = self._given_classes or brown_clusters(mapped, self.n_classes, self.n_words)
        extra = max(self.classes.values(), default=-1) + 1  # for words the mapping leaves out
        self.word_class = [
            w if w in (EOS, UNK) else f"C{self.classes.get(w, extra)}" for w in self.vocab
        ]  # the class token of each vocabulary word
        tokens = sorted(set(self.word_class) - {EOS, UNK}, key=lambda t: int(t[1:]))
        self.class_model = NGramLM(self.order, self.smoothing, self.k, self.discount, vocab=tokens)
        by_word = dict(zip(self.vocab, self.word_class))
        self.class_model.fit([[by_word[t] for t in s] for s in mapped])
        self._cls = np.array([self.class_model.index[t] for t in self.word_class])  # word -> class

        # P(w | c) from the word counts (</s> once per sentence)
        wc = Counter(chain.from_iterable(mapped))
        count = np.array([wc[w] for w in self.vocab], dtype=float)
        count[self.index[EOS]] = len(sentences)
        class_total = np.bincount(self._cls, weights=count, minlength=self._cls.max() + 1)
        class_size = np.bincount(self._cls, minlength=self._cls.max() + 1)
        self.emission = np.where(
            class_total[self._cls] > 0,
            count / np.maximum(class_total[self._cls], 1),
            1 / class_size[self._cls],
        )
        return self

    def _require_fit(self) -> None:
        if not self.vocab:
            raise RuntimeError("this model is not fitted yet: call .fit(sentences) first.")

    def _class_tokens(self, tokens: Sequence[str]) -> list[str]:
        ids = token_ids(self.index, tokens)
        return [BOS if t == BOS else self.word_class[i] for t, i in zip(tokens, ids)]

    def probs(self, context: Sequence[str] | None = None) -> np.ndarray:
        """P(w | context) for every w in ``vocab`` (sums to 1)."""
        self._require_fit()
        p_class = self.class_model.probs(self._class_tokens(_check_context(context)))
        return p_class[self._cls] * self.emission

    def prob(self, word: str, context: Sequence[str] | None = None) -> float:
        """P(word | context) = P(class | class context) * P(word | class); ``<s>`` gets 0."""
        self._require_fit()
        if self._is_sentence_start(word):
            return 0.0
        w = self.index.get(word, self.index[UNK])
        ctx = self._class_tokens(_check_context(context))
        return self.class_model.prob(self.word_class[w], ctx) * float(self.emission[w])

    def token_logprobs(self, sentences: Iterable[Sequence[str]]) -> np.ndarray:
        """ln P of every predicted token (words, then ``</s>``), in order."""
        self._require_fit()
        sentences = _as_sentences(sentences)
        _check_reserved(sentences)
        unk, eos = self.index[UNK], self.index[EOS]
        ids = [[self.index.get(t, unk) for t in s] + [eos] for s in sentences]
        class_logp = self.class_model.token_logprobs(
            [[self.word_class[i] for i in s[:-1]] for s in ids]
        )
        word_ids = np.fromiter(chain.from_iterable(ids), dtype=np.int64)
        return class_logp + np.log(self.emission[word_ids])

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """exp(mean negative log-probability per predicted token)."""
        return _perplexity(self.token_logprobs(sentences))

    def generate(
        self, n: int, context: Sequence[str] | None = None, seed: int | None = 0
    ) -> list[str]:
        """Sample ``n`` tokens as :meth:`NGramLM.generate` does."""
        self._require_fit()
        rng = np.random.default_rng(seed)
        history, out = _check_context(context), []
        for _ in range(n):
            j = _draw(self.probs(history[-(self.order - 1) :] if self.order > 1 else []), rng)
            out.append(self.vocab[j])
            history = [] if self.vocab[j] == EOS else history + [self.vocab[j]]
        return out

    def num_parameters(self) -> ParameterCount:
        """The class model's parameters (:meth:`NGramLM.num_parameters` over K classes, ``</s>``
        and ``<unk>`` included) plus one emission probability per vocabulary word."""
        inner = self.class_model.num_parameters()
        V = len(self.vocab)
        return ParameterCount(stored=inner.stored + V, full=inner.full + V)
