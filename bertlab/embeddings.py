"""Word vectors and how to judge them: neighbours, analogies, word similarity, word analogy.

Every static embedding in the book (GloVe, skip-gram, CBOW, ELMo's token layer) ends up as an
:class:`Embeddings`: a matrix with one row per word, and the words. What you can ask of it:

- ``most_similar("king", k)``: the words whose vectors have the highest cosine similarity;
- ``analogy("man", "king", "woman")``: "man is to king as woman is to ?", answered with the word
  nearest to ``king - man + woman`` (3CosAdd, on unit vectors, leaving the three inputs out);
- :func:`evaluate_similarity`: Spearman's rank correlation between the cosine similarities and
  human similarity scores on a word-pair list (WS-353, SimLex-999, MEN, RW, ...);
- :func:`evaluate_analogy`: accuracy on Google's 19,544 analogy questions, per section;
- :func:`evaluate_all`: both at once, as one row of the chapters' tables (scores and coverage).

Both evaluations follow gensim's definitions (``KeyedVectors.evaluate_word_pairs`` and
``evaluate_word_analogies``), so numbers are comparable: lookups are case-insensitive, taking the
most frequent casing of a word ("Paris" for "paris"), and a question counts only when all its words
are among the ``restrict_vocab`` most frequent (the rest is reported as lost *coverage*).

The file format is word2vec's text format (a ``count dim`` line, then ``word v1 v2 ...``), which
gensim's ``KeyedVectors.load_word2vec_format(path, binary=False)`` reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class Embeddings:
    """One vector per word: ``vectors`` (N, D) float32 and ``words`` (N,), most frequent first."""

    def __init__(self, vectors, words: Sequence[str]):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise ValueError(
                f"vectors must be (number of words, dim); got shape {vectors.shape} for "
                f"{len(words)} words."
            )
        self.vectors = vectors  # (N, D)
        self.words: list[str] = list(words)
        self.index: dict[str, int] = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("the same word appears twice in words; each word needs one vector.")
        self._unit: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.id(word)]

    def __repr__(self) -> str:
        return f"Embeddings({len(self):,} words x {self.dim} dimensions)"

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def unit(self) -> np.ndarray:
        """The vectors scaled to length 1 (a zero vector stays zero): (N, D)."""
        if self._unit is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)  # (N, 1)
            self._unit = self.vectors / np.maximum(norms, 1e-12)
        return self._unit

    def id(self, word: str) -> int:
        """The row of ``word``; a ``KeyError`` that names the word when it has no vector."""
        try:
            return self.index[word]
        except KeyError:
            hint = ""
            lower = word.lower()
            if lower != word and lower in self.index:
                hint = f" (but {lower!r} is; the vocabulary is case-sensitive)"
            raise KeyError(
                f"{word!r} is not in the vocabulary of {len(self):,} words{hint}."
            ) from None

    # ---------------------------------------------------------------------------------------------
    # Neighbours and analogies
    # ---------------------------------------------------------------------------------------------

    def similarity(self, w1: str, w2: str) -> float:
        """The cosine similarity of two words' vectors."""
        return float(self.unit[self.id(w1)] @ self.unit[self.id(w2)])

    def _nearest(
        self, target: np.ndarray, k: int, exclude: Sequence[int]
    ) -> list[tuple[str, float]]:
        target = np.asarray(target, dtype=np.float32)
        if target.shape != (self.dim,):
            raise ValueError(f"a query vector must have shape ({self.dim},), got {target.shape}.")
        cos = self.unit @ (target / max(float(np.linalg.norm(target)), 1e-12))  # (N,)
        cos[list(exclude)] = -np.inf
        k = min(k, len(self) - len(set(exclude)))
        top = np.argpartition(-cos, k - 1)[:k] if k > 0 else np.zeros(0, dtype=np.int64)
        top = top[np.argsort(-cos[top], kind="stable")]
        return [(self.words[i], float(cos[i])) for i in top]

    def most_similar(self, query: str | np.ndarray, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` words nearest to ``query`` (a word, left out of the answer, or a vector)
        by cosine similarity, as ``(word, cosine)`` pairs, most similar first."""
        if isinstance(query, str):
            i = self.id(query)
            return self._nearest(self.unit[i], k, exclude=[i])
        return self._nearest(query, k, exclude=[])

    def analogy(self, a: str, b: str, c: str, k: int = 1) -> list[tuple[str, float]]:
        """ "``a`` is to ``b`` as ``c`` is to ?": the ``k`` words nearest to ``b - a + c`` on unit
        vectors (3CosAdd), leaving out ``a``, ``b`` and ``c``. ``analogy("man", "king", "woman")``
        should give "queen"."""
        ia, ib, ic = self.id(a), self.id(b), self.id(c)
        target = self.unit[ib] - self.unit[ia] + self.unit[ic]  # (D,)
        return self._nearest(target, k, exclude=[ia, ib, ic])

    # ---------------------------------------------------------------------------------------------
    # Case-insensitive lookup, as gensim's evaluations do it
    # ---------------------------------------------------------------------------------------------

    def folded_index(self, restrict_vocab: int | None = None) -> dict[str, int]:
        """Upper-cased word -> row of its most frequent casing, over the first ``restrict_vocab``
        words (all when None). Rows are assumed to be in order of decreasing frequency."""
        n = len(self) if restrict_vocab is None else min(restrict_vocab, len(self))
        return {self.words[i].upper(): i for i in reversed(range(n))}

    # ---------------------------------------------------------------------------------------------
    # Files: word2vec text format
    # ---------------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write word2vec's text format (``N D`` line, then ``word v1 ... vD``), which gensim's
        ``KeyedVectors.load_word2vec_format(path, binary=False)`` loads."""
        path = Path(path)
        bad = next((w for w in self.words if not w or any(ch.isspace() for ch in w)), None)
        if bad is not None:
            raise ValueError(f"cannot save the word {bad!r}: words must be non-empty, no spaces.")
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"{len(self)} {self.dim}\n")
            for word, row in zip(self.words, self.vectors, strict=True):
                f.write(word + " " + " ".join(f"{v:.6g}" for v in row.tolist()) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Embeddings:
        """Read word2vec's text format (what :meth:`save` and gensim's ``save_word2vec_format``
        write)."""
        path = Path(path)
        with open(path, encoding="utf-8") as f:
            header = f.readline().split()
            if len(header) != 2 or not all(h.isdigit() for h in header):
                raise ValueError(f"{path}: the first line must be '<number of words> <dim>'.")
            n, dim = map(int, header)
            words, rows = [], []
            for line in f:
                parts = line.rstrip("\n").rstrip(" ").split(" ")
                if len(parts) != dim + 1:
                    raise ValueError(
                        f"{path}, line {len(words) + 2}: expected a word and {dim} numbers."
                    )
                words.append(parts[0])
                rows.append(parts[1:])
        if len(words) != n:
            raise ValueError(f"{path}: the header says {n} words but the file has {len(words)}.")
        vectors = np.array(rows, dtype=np.float32).reshape(n, dim)
        return cls(vectors, words)

    @classmethod
    def from_gensim(cls, keyed_vectors) -> Embeddings:
        """Wrap gensim ``KeyedVectors`` (``model.wv``), keeping gensim's word order."""
        return cls(np.asarray(keyed_vectors.vectors), list(keyed_vectors.index_to_key))


# --------------------------------------------------------------------------------------------------
# Word similarity: Spearman's rho between cosine similarity and human judgements
# --------------------------------------------------------------------------------------------------


def rank(x) -> np.ndarray:
    """Ranks 1..n of ``x``, ties sharing the mean of their ranks ([10, 20, 20] -> [1, 2.5, 2.5])."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    _, group, size = np.unique(x, return_inverse=True, return_counts=True)
    return (np.bincount(group, weights=ranks) / size)[group]


def spearman(x, y) -> float:
    """Spearman's rank correlation: the Pearson correlation of the ranks. NaN when there are
    fewer than two pairs or one side is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f"spearman needs two sequences of one length, got {len(x)} and {len(y)}.")
    if len(x) < 2:
        return math.nan
    rx, ry = rank(x) - (len(x) + 1) / 2, rank(y) - (len(y) + 1) / 2  # centred ranks
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / denom if denom > 0 else math.nan


@dataclass
class SimilarityResult:
    """Spearman's rho on one word-pair list, over the pairs whose two words have vectors."""

    name: str
    rho: float  # NaN when fewer than two pairs are covered
    n_pairs: int
    n_covered: int

    @property
    def coverage(self) -> float:
        return self.n_covered / self.n_pairs if self.n_pairs else 0.0


def evaluate_similarity(
    emb: Embeddings,
    name: str | Sequence[tuple[str, str, float]],
    restrict_vocab: int | None = None,
    case_insensitive: bool = True,
) -> SimilarityResult:
    """Spearman's rho between ``emb``'s cosine similarities and the human scores of a word-pair
    list: ``name`` is one of :data:`bertlab.data.SIMILARITY_SETS` ("ws353", "simlex999", "men",
    "rw", ...) or a list of ``(word1, word2, score)``. Pairs with a word outside the first
    ``restrict_vocab`` words are skipped and counted as lost coverage (gensim's definition)."""
    if isinstance(name, str):
        from bertlab.data import read_similarity

        label, pairs = name, read_similarity(name)
    else:
        label, pairs = "pairs", list(name)
    if case_insensitive:
        lookup, fold = emb.folded_index(restrict_vocab), str.upper
    else:
        n = len(emb) if restrict_vocab is None else restrict_vocab
        lookup, fold = {w: i for w, i in emb.index.items() if i < n}, str
    left, right, human = [], [], []
    for w1, w2, score in pairs:
        i, j = lookup.get(fold(w1)), lookup.get(fold(w2))
        if i is not None and j is not None:
            left.append(i)
            right.append(j)
            human.append(score)
    cos = np.einsum("nd,nd->n", emb.unit[left], emb.unit[right])  # (n_covered,)
    return SimilarityResult(label, spearman(cos, human), len(pairs), len(human))


# --------------------------------------------------------------------------------------------------
# Word analogy: a is to b as c is to d, answered by 3CosAdd, batched
# --------------------------------------------------------------------------------------------------


@dataclass
class SectionScore:
    """Analogy questions of one section: how many there are, how many had all four words in the
    vocabulary (``covered``), and how many of those were answered right."""

    correct: int = 0
    covered: int = 0
    total: int = 0

    @property
    def accuracy(self) -> float:
        """``correct / covered`` (gensim's score); NaN when nothing was covered."""
        return self.correct / self.covered if self.covered else math.nan

    @property
    def coverage(self) -> float:
        return self.covered / self.total if self.total else 0.0

    def __add__(self, other: SectionScore) -> SectionScore:
        return SectionScore(
            self.correct + other.correct, self.covered + other.covered, self.total + other.total
        )


@dataclass
class AnalogyResult:
    """Scores per section of the analogy test, and summed over all, semantic and syntactic ones."""

    sections: dict[str, SectionScore] = field(default_factory=dict)
    semantic_sections: tuple[str, ...] = ()

    def _sum(self, names) -> SectionScore:
        return sum((self.sections[n] for n in names), SectionScore())

    @property
    def total(self) -> SectionScore:
        return self._sum(self.sections)

    @property
    def semantic(self) -> SectionScore:
        return self._sum(n for n in self.sections if n in self.semantic_sections)

    @property
    def syntactic(self) -> SectionScore:
        return self._sum(n for n in self.sections if n not in self.semantic_sections)

    @property
    def accuracy(self) -> float:
        return self.total.accuracy

    @property
    def coverage(self) -> float:
        return self.total.coverage


def evaluate_analogy(
    emb: Embeddings,
    restrict_vocab: int = 30_000,
    questions: dict[str, list[tuple[str, str, str, str]]] | None = None,
    case_insensitive: bool = True,
    batch_size: int = 1024,
) -> AnalogyResult:
    """Accuracy on the Google analogy questions (``questions`` defaults to all of them, from
    :func:`bertlab.data.read_analogy`), with gensim's definition: only the ``restrict_vocab`` most
    frequent words take part; a question counts when its four words are among them; the answer is
    the word nearest to the normalised mean of ``b``, ``c`` and ``-a`` (unit vectors), any casing
    of ``a``, ``b``, ``c`` excluded; it is right when it equals ``d`` up to case.

    Questions go through in batches: one (batch, restrict_vocab) matrix product each.
    """
    from bertlab.data import SEMANTIC_ANALOGY_SECTIONS, read_analogy

    questions = read_analogy() if questions is None else questions
    n = min(restrict_vocab, len(emb))
    fold = str.upper if case_insensitive else str
    lookup: dict[str, int] = {}  # folded word -> row of its most frequent casing
    variants: dict[str, list[int]] = {}  # folded word -> rows of all its casings
    for i in reversed(range(n)):
        key = fold(emb.words[i])
        lookup[key] = i
        variants.setdefault(key, []).append(i)
    canonical = np.array([lookup[fold(w)] for w in emb.words[:n]])  # (n,) row -> its casing's row

    result = AnalogyResult(semantic_sections=tuple(SEMANTIC_ANALOGY_SECTIONS))
    # per covered question: its (a, b, c, d) rows, its section, the rows to leave out
    rows, section_of, banned = [], [], []
    for s, (section, items) in enumerate(questions.items()):
        result.sections[section] = SectionScore(total=len(items))
        for quad in items:
            keys = [fold(w) for w in quad]
            if all(k in lookup for k in keys):
                rows.append([lookup[k] for k in keys])
                section_of.append(s)
                banned.append([i for k in keys[:3] for i in variants[k]])
    if rows:
        rows_ = np.array(rows)  # (Q, 4)
        unit = emb.unit[:n]  # (n, D)
        target = unit[rows_[:, 1]] + unit[rows_[:, 2]] - unit[rows_[:, 0]]  # (Q, D)
        target /= np.maximum(np.linalg.norm(target, axis=1, keepdims=True), 1e-12)
        predicted = np.empty(len(rows_), dtype=np.int64)
        for start in range(0, len(rows_), batch_size):
            scores = target[start : start + batch_size] @ unit.T  # (batch, n)
            q = [(r, i) for r, ban in enumerate(banned[start : start + batch_size]) for i in ban]
            r_idx, c_idx = np.array(q).T
            scores[r_idx, c_idx] = -np.inf  # leave out every casing of a, b and c
            predicted[start : start + batch_size] = scores.argmax(axis=1)
        correct = canonical[predicted] == rows_[:, 3]  # (Q,) right up to case
        names = list(questions)
        covered = np.bincount(section_of, minlength=len(names))
        right = np.bincount(section_of, weights=correct, minlength=len(names))
        for s, section in enumerate(names):
            result.sections[section].covered = int(covered[s])
            result.sections[section].correct = int(right[s])
    return result


# --------------------------------------------------------------------------------------------------
# Every yardstick at once: the chapters' evaluation tables
# --------------------------------------------------------------------------------------------------

# table label -> similarity list (an alias of bertlab.data.SIMILARITY_SETS)
SIMILARITY_LABELS = {
    "WS-353": "ws353",
    "WS-353 sim": "ws353-sim",
    "WS-353 rel": "ws353-rel",
    "SimLex-999": "simlex999",
    "MEN": "men",
    "RW": "rw",
}
# table label -> part of the analogy test (an AnalogyResult property)
ANALOGY_PARTS = {"analogy": "total", "semantic": "semantic", "syntactic": "syntactic"}


def evaluate_all(
    emb: Embeddings,
    similarity_sets: dict[str, str | Sequence[tuple[str, str, float]]] | None = None,
    analogy_parts: dict[str, str] | None = None,
    restrict_vocab: int = 30_000,
    questions: dict[str, list[tuple[str, str, str, str]]] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """One row of an evaluation table: ``(scores, coverage)``, two dicts keyed by the same labels.

    ``similarity_sets`` maps a label to a similarity list (default :data:`SIMILARITY_LABELS`:
    WS-353 and its two halves, SimLex-999, MEN, RW); its score is Spearman's rho over all of
    ``emb``'s words (:func:`evaluate_similarity`; a list of ``(word1, word2, score)`` works too).
    ``analogy_parts`` maps a label to ``"total"``, ``"semantic"`` or ``"syntactic"`` (default
    :data:`ANALOGY_PARTS`, all three); its score is the accuracy on the analogy ``questions``
    (default: Google's) among the ``restrict_vocab`` most frequent words (:func:`evaluate_analogy`,
    run once for all parts; ``{}`` skips it). ``coverage`` is the share of pairs or questions that
    could be asked, between 0 and 1.
    """
    similarity_sets = SIMILARITY_LABELS if similarity_sets is None else similarity_sets
    analogy_parts = ANALOGY_PARTS if analogy_parts is None else analogy_parts
    bad = sorted(set(analogy_parts.values()) - {"total", "semantic", "syntactic"})
    if bad:
        raise ValueError(
            f"unknown analogy part(s) {bad}; choose from 'total', 'semantic' and 'syntactic'."
        )
    scores, coverage = {}, {}
    for label, name in similarity_sets.items():
        result = evaluate_similarity(emb, name)
        scores[label], coverage[label] = result.rho, result.coverage
    if analogy_parts:
        analogy = evaluate_analogy(emb, restrict_vocab=restrict_vocab, questions=questions)
        for label, part in analogy_parts.items():
            section = getattr(analogy, part)  # a SectionScore
            scores[label], coverage[label] = section.accuracy, section.coverage
    return scores, coverage
