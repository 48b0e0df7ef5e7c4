"""The ARPA format: an n-gram model as text that KenLM, SRILM and speech and MT toolkits read.

An ARPA file stores a *backoff* model. For every n-gram it lists, it gives ``log10 P(w | h)``
and, for every n-gram that is also a context, a backoff weight ``log10 bo(h)``. A word ``w``
whose n-gram ``h w`` is not listed gets ``bo(h) * P(w | h')``, with ``h'`` the context
shortened by its first word, recursively down to the unigrams::

    \\data\\
    ngram 1=5
    ngram 2=6

    \\1-grams:
    -99.000000  <s>  -0.301030       (log10 P, the n-gram, log10 backoff)
    -0.698970   </s>
    ...
    \\end\\

Interpolated Kneser-Ney is exactly such a model (:meth:`bertlab.ngram.NGramLM.to_arpa`): the
stored probability of a seen n-gram is the full interpolated one, and the backoff weight of a
context is its leftover mass ``gamma(h) = D * N1+(h .) / c(h)``, which the interpolation
multiplies into the lower order for every word. Add-k and MLE are not: add-k gives every unseen
word after ``h`` the same ``k / (c(h) + k |V|)``, and MLE gives it 0 (and has no distribution at
all after an unseen context). Neither is a backoff weight times a lower-order estimate, so an
exact file would have to list all ``|V| ** n`` n-grams.

Sentence boundaries follow KenLM: a sentence is scored as ``<s> w1 ... wk </s>`` with *one*
``<s>``, which is only ever a context (its own probability is written as ``-99``, log10 of 0).
:class:`bertlab.ngram.NGramLM` pads with ``n - 1`` ``<s>`` instead; the file reconciles the two:
its n-gram ``<s> x1 ... xk`` holds our probability of ``xk`` after ``<s>`` * (n - k) ``x1 ...
x(k-1)``, the sentence start as our model sees it, and the backoff weight of ``<s> x1 ... xk`` is
the product of our leftover masses down the chain of ``<s>``-padded contexts. So KenLM, reading
the file with its convention, gives every token the probability our model gives it.

:func:`read_arpa` reads any ARPA file (ours or one built elsewhere, e.g. by KenLM's ``lmplz``)
into an :class:`ArpaLM`, which scores from the file's tables with KenLM's arithmetic.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path

import numpy as np

from .checkpoint import atomic_path
from .ngram import (
    BOS,
    EOS,
    UNK,
    NGramLM,
    _as_sentences,
    _check_context,
    _kneser_ney,
    _layout,
    _LogProb,
    _lookup,
    _perplexity,
)

LOG10_ZERO = -99.0  # how ARPA files write log10(0): the probability of <s>


class ArpaError(ValueError):
    """A malformed or truncated ARPA file; the message names the line and what was expected."""


# --------------------------------------------------------------------------------------------------
# Writing: an interpolated Kneser-Ney model as backoff tables
# --------------------------------------------------------------------------------------------------


def _interpolated(model: NGramLM) -> tuple[list, list, list, list]:
    """Per level m = 1..n of a fitted Kneser-Ney model, for every m-gram of its tables:
    the token ids (G, m), the id of its suffix (its last m - 1 tokens) one level down, the full
    interpolated probability p_m, and gamma_m of each context (the leftover mass, 1 if unseen)."""
    R, V, D = model._R, len(model.vocab), model.discount
    tokens, suffix, probs, gammas = [], [], [], []
    lower = np.full(1, 1.0 / V)  # p_0: uniform; its one "gram" is the empty suffix
    for m, lv in enumerate(model._levels, start=1):
        ctx = np.zeros(len(lv.keys), dtype=np.int64) if m == 1 else lv.keys // R
        last = lv.keys % R if m > 1 else lv.keys
        if m == 1:
            tokens.append(last[:, None])
            suf = np.zeros(len(lv.keys), dtype=np.int64)
        else:
            tokens.append(np.concatenate([tokens[-1][ctx], last[:, None]], axis=1))
            if m == 2:
                suf = last.copy()
            else:  # (suffix of the context, last token), looked up one level down
                prev = suffix[-1][ctx]
                found = _lookup(model._levels[m - 2].keys, np.maximum(prev, 0) * R + last)
                suf = np.where(prev >= 0, found, -1)
        p_low = np.where(suf >= 0, lower[np.maximum(suf, 0)], np.nan)
        p = _kneser_ney(lv.c, lv.total[ctx], lv.types[ctx], p_low, D)
        gamma = np.where(lv.total > 0, D * lv.types / np.where(lv.total > 0, lv.total, 1.0), 1.0)
        suffix.append(suf)
        probs.append(p)
        gammas.append(gamma)
        lower = p
    return tokens, suffix, probs, gammas


def backoff_tables(model: NGramLM) -> list[dict]:
    """The model as ARPA entries: per order m, ``{"grams": (E, m) token ids, "logp": (E,),
    "backoff": (E,) or None}`` in log10, ``<s>``-initial n-grams first. See the module docstring."""
    if not isinstance(model, NGramLM):
        raise TypeError(f"to_arpa needs a fitted NGramLM, got {type(model).__name__}.")
    model._require_fit()
    if model.smoothing != "kneser-ney":
        raise ValueError(
            f"a {model.smoothing!r} model cannot be written exactly in ARPA: the format stores a "
            "backoff model (unseen word = backoff weight * lower-order probability), and "
            f"{model.smoothing} is not one (add-k spreads k evenly over unseen words, MLE gives "
            "them 0). Fit NGramLM(smoothing='kneser-ney') to export."
        )
    n, S = model.order, model._bos
    tokens, suffix, probs, gammas = _interpolated(model)
    log10 = lambda p: np.log10(np.maximum(p, 1e-300))  # noqa: E731
    tables = []
    for m in range(1, n + 1):
        tok, c = tokens[m - 1], model._levels[m - 1].c
        plain = ~(tok == S).any(1) & (c > 0 if m > 1 else tok[:, 0] < len(model.vocab))
        grams, logp = tok[plain], log10(probs[m - 1][plain])
        back = None if m == n else log10(gammas[m][np.flatnonzero(plain)])
        tables.append({"grams": grams, "logp": logp, "backoff": back})
    # sentence starts: the top-level gram <s>^j x1..xk (j = n - k) becomes the ARPA gram
    # <s> x1..xk, found j - 1 suffix steps down; its backoff multiplies the gammas on the way
    top_tok, top_c = tokens[n - 1], model._levels[n - 1].c
    starts = np.flatnonzero((top_tok[:, 0] == S) & (top_c > 0))
    j = (top_tok[starts] == S).sum(1)
    for m in range(2, n + 1):
        g = starts[j == n - m + 1]
        ids, log_bo = g, np.zeros(len(g))
        for level in range(n - 1, m - 1, -1):  # suffix steps n -> m; gamma of each context
            ids = suffix[level][ids]
            log_bo += np.log10(gammas[level][ids])
        entry = {
            "grams": tokens[m - 1][ids],
            "logp": log10(probs[n - 1][g]),
            "backoff": None if m == n else log_bo,
        }
        tables[m - 1] = {k: _stack(entry[k], tables[m - 1][k]) for k in entry}
    # the unigram <s>: probability 0, backoff = the gammas of <s>, <s> <s>, ... up to n - 1
    log_bo, ids = 0.0, S
    for level in range(1, n):
        if level > 1:
            ids = int(_lookup(model._levels[level - 1].keys, np.array([ids * model._R + S]))[0])
        log_bo += float(np.log10(gammas[level][ids]))
    first = {"grams": np.array([[S]]), "logp": np.array([LOG10_ZERO])}
    first["backoff"] = None if n == 1 else np.array([log_bo])
    tables[0] = {k: _stack(first[k], tables[0][k]) for k in first}
    return tables


def _stack(a, b):
    return None if a is None else np.concatenate([a, b])


def _format(x: np.ndarray) -> np.ndarray:
    """log10 values as ARPA text: six decimals, ``-0`` written as ``0``."""
    x = np.where(np.abs(x) < 5e-7, 0.0, x)
    return np.char.mod("%.6f", x)


def write_arpa(model: NGramLM, path: str | os.PathLike) -> dict[int, int]:
    """Write a fitted Kneser-Ney :class:`~bertlab.ngram.NGramLM` to ``path`` (atomically);
    return the number of n-grams per order. Backoff weights of 1 (log10 0) are left out."""
    tables = backoff_tables(model)
    names = np.array(model.vocab + [BOS], dtype=object)
    counts = {m: len(t["logp"]) for m, t in enumerate(tables, start=1)}
    if model.order == 1:  # KenLM reads bigram files and up: add an empty bigram section
        counts[2] = 0
    with atomic_path(Path(path)) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write("\\data\\\n")
        f.writelines(f"ngram {m}={c}\n" for m, c in counts.items())
        for m, t in enumerate(tables, start=1):
            f.write(f"\n\\{m}-grams:\n")
            text = names[t["grams"][:, 0]]
            for i in range(1, m):
                text = text + " " + names[t["grams"][:, i]]
            lines = _format(t["logp"]).astype(object) + "\t" + text
            if t["backoff"] is not None:
                shown = np.abs(t["backoff"]) >= 5e-7
                tails = np.where(shown, "\t" + _format(t["backoff"]).astype(object), "")
                lines = lines + tails
            f.write("\n".join(lines.tolist()))
            f.write("\n")
        if model.order == 1:
            f.write("\n\\2-grams:\n")
        f.write("\n\\end\\\n")
    return counts


# --------------------------------------------------------------------------------------------------
# Reading: a model that scores from the file's tables
# --------------------------------------------------------------------------------------------------


class ArpaLM(_LogProb):
    """A backoff n-gram model read from an ARPA file, scored as KenLM scores it.

    ``vocab`` is the file's unigrams other than ``<s>``; a word outside it is ``<unk>`` (and gets
    probability 0 if the file has no ``<unk>``). Sentences are ``<s> w1 ... wk </s>``; a context
    shorter than ``order - 1`` tokens is the start of a sentence (``<s>`` before it), as in
    :class:`~bertlab.ngram.NGramLM`. Probabilities and ``token_logprobs`` are natural logs, like
    the rest of :mod:`bertlab.ngram`; ``token_log10probs`` gives the file's own unit.
    """

    def __init__(self, names: list[str], levels: list[tuple]):
        self.order = len(levels)
        self.names = names  # every unigram, <s> included; ids index this list
        self.index = {w: i for i, w in enumerate(names)}
        self.vocab = [w for w in names if w != BOS]
        self._vocab_ids = np.array([self.index[w] for w in self.vocab], dtype=np.int64)
        self._R = len(names)
        self._levels = levels  # per order: (sorted keys, log10 p, log10 backoff)

    def __repr__(self) -> str:
        sizes = ", ".join(str(len(keys)) for keys, _, _ in self._levels)
        return f"ArpaLM(order={self.order}, |V|={len(self.vocab)}, n-grams per order: {sizes})"

    def _id(self, word: str) -> int:
        return self.index.get(word, self.index.get(UNK, -2))  # -2: unknown, no <unk> in file

    def _log10_scores(self, windows: np.ndarray) -> np.ndarray:
        """log10 P(last column | the columns before it) for (N, order) id windows, -1 = no token.

        The longest listed n-gram ending at the word gives the probability; the backoff weights
        of the contexts longer than it are added (0 where a context is not listed)."""
        N, n, R = len(windows), self.order, self._R
        # ids[k][:, j]: id of the (k + 1)-gram ending at column j, -1 if absent or not listed
        ids = [np.where(windows >= 0, windows, -1)]
        for k in range(1, n):
            prev = np.full_like(windows, -1)
            prev[:, 1:] = ids[-1][:, :-1]
            found = _lookup(self._levels[k][0], (np.maximum(prev, 0) * R + ids[0]).ravel())
            ids.append(np.where((prev >= 0) & (ids[0] >= 0), found.reshape(prev.shape), -1))
        score, longest = np.full(N, -np.inf), np.zeros(N, dtype=np.int64)
        for m in range(1, n + 1):  # the longest listed gram ending at the word
            gram = ids[m - 1][:, -1]
            score = np.where(gram >= 0, _take(self._levels[m - 1][1], gram), score)
            longest = np.where(gram >= 0, m, longest)
        for m in range(2, n + 1):  # the backoff weights of the contexts longer than it
            ctx = ids[m - 2][:, -2]
            bo = np.where(ctx >= 0, _take(self._levels[m - 2][2], ctx), 0.0)
            score = score + np.where(m > longest, bo, 0.0)
        return np.where(longest > 0, score, -np.inf)

    def _context_window(self, context: Sequence[str] | None) -> list[int]:
        ctx = _check_context(context)
        ids = [self._id(t) if t != BOS else self.index[BOS] for t in ctx]
        if len(ids) < self.order - 1:
            ids = [self.index[BOS]] + ids
        ids = ids[-(self.order - 1) :] if self.order > 1 else []
        return [-1] * (self.order - 1 - len(ids)) + ids

    def probs(self, context: Sequence[str] | None = None) -> np.ndarray:
        """P(w | context) for every w in ``vocab`` (sums to 1 for a consistent file)."""
        ctx = np.array(self._context_window(context), dtype=np.int64)
        windows = np.concatenate(
            [np.broadcast_to(ctx, (len(self.vocab), len(ctx))), self._vocab_ids[:, None]], axis=1
        )
        return 10.0 ** self._log10_scores(windows)

    def prob(self, word: str, context: Sequence[str] | None = None) -> float:
        """P(word | context); ``word`` outside ``vocab`` is ``<unk>``; ``<s>`` gets 0."""
        if self._is_sentence_start(word):
            return 0.0
        window = np.array([self._context_window(context) + [self._id(word)]], dtype=np.int64)
        return float(10.0 ** self._log10_scores(window)[0])

    def token_log10probs(self, sentences: Iterable[Sequence[str]]) -> np.ndarray:
        """log10 P of every predicted token (each sentence's words, then ``</s>``), in order: the
        numbers ``kenlm.Model.full_scores`` gives."""
        sentences = _as_sentences(sentences)
        if not sentences:
            return np.zeros(0)
        n, bos, eos = self.order, self.index[BOS], self.index.get(EOS, -2)
        ids = _layout(sentences, self.index, self._id(UNK), n - 1, bos, eos)  # <s>*(n-1) s </s>
        ids = np.concatenate([np.full(n - 1, -1), ids])  # room for the first window
        size = np.array([len(s) + n for s in sentences])  # laid-out length of each sentence
        start = np.repeat(np.cumsum(size) - size, size)  # where each position's sentence starts
        first = np.arange(len(start)) - start - (n - 1)  # position in the sentence, -: padding
        predicted = first >= 0
        windows = np.lib.stride_tricks.sliding_window_view(ids, n)[predicted].copy()  # (N, n)
        t = first[predicted]
        windows[np.arange(n)[None, :] < (n - 2 - t)[:, None]] = -1  # only one <s> is real
        return self._log10_scores(windows)

    def token_logprobs(self, sentences: Iterable[Sequence[str]]) -> np.ndarray:
        """ln P of every predicted token, in order (as :meth:`NGramLM.token_logprobs`)."""
        return self.token_log10probs(sentences) * math.log(10.0)

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """exp(mean negative log-probability per predicted token, ``</s>`` included)."""
        return _perplexity(self.token_logprobs(sentences))


def _take(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``values[ids]`` where ``ids >= 0``, NaN elsewhere (also for an empty table)."""
    if len(values) == 0:
        return np.full(len(ids), np.nan)
    return np.where(ids >= 0, values[np.maximum(ids, 0)], np.nan)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _expect(ok: bool, path, number: int, line: str, what: str) -> None:
    if not ok:
        shown = "the end of the file" if line is None else repr(line[:80])
        shown = "a blank line" if line is not None and not line.strip() else shown
        raise ArpaError(f"{path}, line {number}: expected {what}, got {shown}.")


def read_arpa(path: str | os.PathLike) -> ArpaLM:
    """Read an ARPA file (``\\data\\`` header, one section per order, ``\\end\\``) into an
    :class:`ArpaLM`; a malformed or truncated file raises :class:`ArpaError` naming the line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ARPA file at {path}.")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    at = 0

    def next_line(skip_blank: bool = True) -> tuple[int, str | None]:
        nonlocal at
        while at < len(lines) and skip_blank and not lines[at].strip():
            at += 1
        if at >= len(lines):
            return at + 1, None
        at += 1
        return at, lines[at - 1].strip()

    number, line = next_line()
    _expect(line == "\\data\\", path, number, line, "the header line \\data\\")
    declared = []
    while True:
        number, line = next_line()
        if line is None or not line.startswith("ngram "):
            break
        head, _, value = line[6:].partition("=")
        ok = head.strip() == str(len(declared) + 1) and value.strip().isdigit()
        _expect(ok, path, number, line, f"'ngram {len(declared) + 1}=<count>'")
        declared.append(int(value))
    _expect(bool(declared), path, number, line, "'ngram 1=<count>' after \\data\\")
    names, levels, index = None, [], {}
    for m, count in enumerate(declared, start=1):
        _expect(line == f"\\{m}-grams:", path, number, line, f"the section header \\{m}-grams:")
        first = at  # index of the section's first entry in ``lines``
        chunk = [line.split() for line in lines[first : first + count]]
        sizes = np.fromiter(map(len, chunk), dtype=np.int64, count=len(chunk))
        ends = [i for i, f in enumerate(chunk) if f and f[0].startswith("\\")][:1]
        seen = min([len(chunk), *ends, *np.flatnonzero(sizes == 0)[:1]])
        if seen < count:  # a blank line, the next section or the end of the file came too early
            rest = lines[first + seen :]
            shown = lines[first + seen] if any(x.strip() for x in rest) else None
            _expect(False, path, first + seen + 1, shown,
                    f"{count} {m}-gram lines in \\{m}-grams: (found {seen})")  # fmt: skip
        wrong = np.flatnonzero((sizes != m + 1) & (sizes != m + 2))
        if len(wrong):
            i = int(wrong[0])
            _expect(False, path, first + i + 1, lines[first + i],
                    f"'log10prob w1 ... w{m} [backoff]' ({m} words)")  # fmt: skip
        try:
            logp = np.array([f[0] for f in chunk], dtype=float)
            back = np.array([f[m + 1] if len(f) == m + 2 else 0 for f in chunk], dtype=float)
        except ValueError:
            i = next(i for i, f in enumerate(chunk) if not all(map(_is_number, f[:1] + f[m + 1 :])))
            _expect(False, path, first + i + 1, lines[first + i],
                    "numbers for the log10 probability and the backoff")  # fmt: skip
        grams = [f[1 : m + 1] for f in chunk]
        at = first + count
        number, line = at, lines[at - 1]
        if m == 1:
            names = [g[0] for g in grams]
            index = {w: i for i, w in enumerate(names)}
            _expect(len(index) == len(names), path, number, line, "distinct unigrams")
            keys = np.arange(len(names))
        else:
            R = len(names)
            try:
                words = chain.from_iterable(grams)
                ids = np.fromiter(map(index.__getitem__, words), np.int64, count=count * m)
                ids = ids.reshape(-1, m)
            except KeyError as err:
                raise ArpaError(
                    f"{path}: the {m}-gram section uses the word {err.args[0]!r}, which has no "
                    "unigram entry; every word of an ARPA file must be listed as a 1-gram."
                ) from None
            prefix = _prefix_ids(ids[:, :-1], levels, R)
            bad = np.flatnonzero(prefix < 0)
            if len(bad):
                raise ArpaError(
                    f"{path}: the {m}-gram {' '.join(grams[bad[0]])!r} has no {m - 1}-gram entry "
                    f"for its first {m - 1} words; an ARPA file lists every prefix it uses."
                )
            keys = prefix * R + ids[:, -1]
            order = np.argsort(keys, kind="stable")
            keys, logp, back = keys[order], logp[order], back[order]
            if len(keys) > 1 and (keys[1:] == keys[:-1]).any():
                raise ArpaError(f"{path}: the {m}-gram section lists an n-gram twice.")
        levels.append((keys, logp, back))
        number, line = next_line()
    _expect(line == "\\end\\", path, number, line, "\\end\\ after the last section")
    if BOS not in index:
        raise ArpaError(f"{path}: the 1-grams have no {BOS!r}, which every sentence starts with.")
    return ArpaLM(names, levels)


def _prefix_ids(prefix_tokens: np.ndarray, levels: list[tuple], R: int) -> np.ndarray:
    """The id (rank in the sorted keys) of each (m-1)-gram of token ids, -1 where not listed."""
    ids = prefix_tokens[:, 0]
    for k in range(1, prefix_tokens.shape[1]):
        found = _lookup(levels[k][0], np.maximum(ids, 0) * R + prefix_tokens[:, k])
        ids = np.where(ids >= 0, found, -1)
    return ids


# --------------------------------------------------------------------------------------------------
# KenLM, the reference reader
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_stderr():
    """Silence what C++ code writes to file descriptor 2 (Python's ``sys.stderr`` is not enough)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_in_kenlm(path: str | os.PathLike):
    """``kenlm.Model(path)`` without its progress bar and loading notes on stderr.

    KenLM is not a dependency of bertlab: ``pip install kenlm==0.3.0`` (it builds from source)."""
    try:
        import kenlm
    except ImportError:
        raise ImportError(
            "KenLM is not installed: pip install kenlm==0.3.0 (it builds from source, about 1.5 "
            "minutes), then try again."
        ) from None
    config = kenlm.Config()
    config.show_progress = False
    with _quiet_stderr():
        return kenlm.Model(str(path), config)
