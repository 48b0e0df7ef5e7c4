"""A word vocabulary: counts, a cut-off, ids, and word2vec's subsampling of frequent words.

GloVe, word2vec and ELMo all start the same way: count the words of a corpus, keep the ones seen
at least ``min_count`` times (rare words have too few contexts to learn a vector from), give each
kept word an integer id, and map everything else to ``<unk>``. :class:`Vocab` does exactly that:

    vocab = Vocab.build(sentences, min_count=5)      # sentences: lists of tokens
    ids = vocab.encode(["the", "cat", "sat"])        # np.ndarray of int64 ids
    flat, starts = vocab.encode_corpus(sentences)    # every sentence at once, one flat array

Ids are in order of decreasing count (ties broken alphabetically, so the order is reproducible),
after the special tokens, which come first. ``vocab.counts[i]`` is how often word ``i`` occurred;
for ``<unk>`` it is how many tokens of the corpus map to it (the literal token, if the corpus has
one, plus every word cut by ``min_count``/``max_size``).

Subsampling (word2vec, Mikolov et al. 2013): a frequent word such as "the" says little about its
neighbours, so each occurrence of word ``w`` is kept only with probability

    keep(w) = (sqrt(f(w) / t) + 1) * t / f(w)        (clipped to 1; f(w) = count / total)

the formula of the word2vec C code and gensim. The paper writes the discard probability as
``1 - sqrt(t / f(w))``; the code's version keeps a little more of every word.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

UNK = "<unk>"


class Vocab:
    """Words <-> ids, with the count of each word. Build one with :meth:`Vocab.build`."""

    def __init__(self, words: Sequence[str], counts: Sequence[int], specials: Sequence[str] = ()):
        if len(words) != len(counts):
            raise ValueError(
                f"{len(words)} words but {len(counts)} counts; give one count per word."
            )
        self.itos: list[str] = list(words)
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            dup = next(w for w in self.itos if self.itos.count(w) > 1)
            raise ValueError(f"the word {dup!r} appears twice in the vocabulary.")
        self.counts = np.asarray(counts, dtype=np.int64)  # (V,)
        self.specials: tuple[str, ...] = tuple(specials)
        missing = [s for s in self.specials if s not in self.stoi]
        if missing:
            raise ValueError(f"special tokens {missing} are not among the words.")
        self.unk_id: int | None = self.stoi.get(UNK) if UNK in self.specials else None

    # ---------------------------------------------------------------------------------------------
    # Building
    # ---------------------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        sentences: Iterable[Sequence[str]],
        min_count: int = 5,
        max_size: int | None = None,
        specials: Sequence[str] = (UNK,),
    ) -> Vocab:
        """Count the tokens of ``sentences`` and keep the words seen at least ``min_count`` times.

        ``max_size`` caps the number of ordinary words (the most frequent are kept); the
        ``specials`` come first and are always kept. Words cut from the vocabulary are counted
        towards ``<unk>`` when it is one of the specials.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}.")
        if max_size is not None and max_size < 0:
            raise ValueError(f"max_size must be None or >= 0, got {max_size}.")
        counter = Counter()
        for sentence in sentences:
            counter.update(sentence)
        special_counts = {s: counter.pop(s, 0) for s in specials}
        # decreasing count, then alphabetical: the same corpus always gives the same ids
        ranked = sorted(counter.items(), key=lambda wc: (-wc[1], wc[0]))
        kept = [(w, c) for w, c in ranked if c >= min_count]
        if max_size is not None:
            kept = kept[:max_size]
        if UNK in special_counts:
            special_counts[UNK] += sum(counter.values()) - sum(c for _, c in kept)
        words = list(specials) + [w for w, _ in kept]
        counts = [special_counts[s] for s in specials] + [c for _, c in kept]
        return cls(words, counts, specials)

    # ---------------------------------------------------------------------------------------------
    # Lookup
    # ---------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def __getitem__(self, word: str) -> int:
        """The id of ``word`` (``<unk>``'s id for an unknown word when the vocabulary has one)."""
        i = self.stoi.get(word, self.unk_id)
        if i is None:
            raise KeyError(f"{word!r} is not in the vocabulary and it has no {UNK} token.")
        return i

    def __repr__(self) -> str:
        return f"Vocab({len(self):,} words, {int(self.counts.sum()):,} tokens counted)"

    @property
    def total(self) -> int:
        """The number of corpus tokens the counts cover."""
        return int(self.counts.sum())

    @property
    def freqs(self) -> np.ndarray:
        """Relative frequency of each id, ``counts / counts.sum()``: (V,) float64."""
        return self.counts / max(1, self.total)

    def encode(self, tokens: Sequence[str], drop_unknown: bool = False) -> np.ndarray:
        """The ids of one sentence: (T,) int64. Unknown words become ``<unk>``, or are left out
        with ``drop_unknown=True`` (as word2vec and GloVe do, so windows reach past them)."""
        stoi, unk = self.stoi, self.unk_id
        if drop_unknown:
            ids = [stoi[t] for t in tokens if t in stoi and stoi[t] != unk]
        else:
            if unk is None:
                bad = next((t for t in tokens if t not in stoi), None)
                if bad is not None:
                    raise KeyError(
                        f"{bad!r} is not in the vocabulary and it has no {UNK} token; "
                        "build it with specials=('<unk>',) or pass drop_unknown=True."
                    )
            ids = [stoi.get(t, unk) for t in tokens]
        return np.asarray(ids, dtype=np.int64)

    def encode_corpus(
        self, sentences: Iterable[Sequence[str]], drop_unknown: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every sentence at once: ``(ids, starts)``, one flat (N,) int64 array of ids and the
        (S + 1,) offsets where each sentence starts, so sentence ``s`` is
        ``ids[starts[s]:starts[s + 1]]``. Sentences left empty stay (as zero-length slices)."""
        sentences = sentences if isinstance(sentences, list) else list(sentences)
        lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))  # (S,)
        stoi = self.stoi
        ids = np.fromiter(
            (stoi.get(t, -1) for s in sentences for t in s), dtype=np.int64, count=lengths.sum()
        )  # (N,), -1 where unknown
        unknown = ids < 0
        if drop_unknown:
            if self.unk_id is not None:
                unknown |= ids == self.unk_id
            sentence_of = np.repeat(np.arange(len(sentences)), lengths)  # (N,)
            ids = ids[~unknown]
            lengths = np.bincount(sentence_of[~unknown], minlength=len(sentences))
        elif unknown.any():
            if self.unk_id is None:
                bad = next(t for s in sentences for t in s if t not in stoi)
                raise KeyError(
                    f"{bad!r} is not in the vocabulary and it has no {UNK} token; "
                    "build it with specials=('<unk>',) or pass drop_unknown=True."
                )
            ids[unknown] = self.unk_id
        starts = np.zeros(len(sentences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        return ids, starts

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The words of ``ids``."""
        itos = self.itos
        try:
            return [itos[int(i)] for i in ids]
        except IndexError:
            bad = next(int(i) for i in ids if not 0 <= int(i) < len(itos))
            raise IndexError(f"id {bad} is out of range for a vocabulary of {len(itos)}.") from None

    # ---------------------------------------------------------------------------------------------
    # Subsampling of frequent words (word2vec)
    # ---------------------------------------------------------------------------------------------

    def keep_probs(self, t: float = 1e-3) -> np.ndarray:
        """The probability of keeping each occurrence of each id under subsampling: (V,).

        ``(sqrt(f / t) + 1) * t / f`` clipped to 1, with ``f`` the word's relative frequency
        (word2vec's C code and gensim); words rarer than about ``t`` are always kept.
        ``t <= 0`` turns subsampling off (every probability is 1).
        """
        if t <= 0:
            return np.ones(len(self))
        f = np.maximum(self.freqs, 1e-300)
        return np.minimum(1.0, (np.sqrt(f / t) + 1.0) * t / f)

    def subsample(self, ids: np.ndarray, t: float = 1e-3, rng=None) -> np.ndarray:
        """``ids`` with each occurrence of a frequent word dropped with probability
        ``1 - keep_probs(t)[id]``; ``rng`` is a NumPy Generator or a seed."""
        rng = np.random.default_rng(rng)
        ids = np.asarray(ids)
        keep = rng.random(ids.shape) < self.keep_probs(t)[ids]
        return ids[keep]

    # ---------------------------------------------------------------------------------------------
    # Plain-text save/load: "word<TAB>count" per line in id order, specials named in line one
    # ---------------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as text: a ``#specials`` line, then ``word<TAB>count`` per id."""
        path = Path(path)
        bad = next((w for w in self.itos if not w or any(ch.isspace() for ch in w)), None)
        if bad is not None:
            raise ValueError(f"cannot save the word {bad!r}: words must be non-empty, no spaces.")
        lines = ["\t".join(("#specials",) + self.specials)]
        lines += [f"{w}\t{c}" for w, c in zip(self.itos, self.counts.tolist(), strict=True)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        path = Path(path)
        lines = path.read_text(encoding="utf-8").split("\n")
        if not lines or not lines[0].startswith("#specials"):
            raise ValueError(f"{path} is not a bertlab vocabulary (no '#specials' first line).")
        specials = lines[0].split("\t")[1:]
        words, counts = [], []
        for n, line in enumerate(lines[1:], start=2):
            if not line:
                continue
            try:
                word, count = line.split("\t")
                counts.append(int(count))
            except ValueError:
                raise ValueError(
                    f"{path}, line {n}: expected 'word<TAB>count', got {line!r}."
                ) from None
            words.append(word)
        return cls(words, counts, specials)
