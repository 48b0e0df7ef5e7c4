"""Sentence correction, the study notes' use case for BART: errors, scores and three correctors.

A model trained to write the original text back from a corrupted one is a corrector. To measure
how good one is we make errors ourselves, in held-out WikiText-2 sentences, so that the correct
sentence is known:

1. **Errors** (:func:`corrupt`): deleted, duplicated and swapped words, and wrong inflections
   from the explicit rule list :data:`INFLECTION_PAIRS` / :data:`INFLECTION_SUFFIXES`.
2. **Scores** (:func:`score`): exact sentence match, and precision / recall / F0.5 of the
   *edits*, in the spirit of the M2 scorer and ERRANT: each sentence's edits are read off a
   word-level Levenshtein alignment (source -> hypothesis, and source -> reference), and a
   hypothesis edit counts as right only when the reference makes exactly the same one.
3. **Correctors**, each ``corrector(sources) -> hypotheses`` on lists of words:
   :func:`copy_baseline` (change nothing), :class:`BartCorrector` (beam search with a trained
   ``bertlab.bart`` model) and :class:`MLMCorrector` (our mini-BERT's masked-LM head: mask each
   word in turn, keep a confident replacement; it can only *substitute* words).

Words are BERT's basic tokens (lower-cased, punctuation split off), the units every corrector
here reads and writes, so all three are scored on the same footing.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "INFLECTION_PAIRS",
    "INFLECTION_SUFFIXES",
    "ERROR_KINDS",
    "Corruption",
    "CorrectionExample",
    "wrong_inflection",
    "corrupt",
    "correction_examples",
    "align",
    "word_edits",
    "EditScores",
    "score",
    "exact_match_rate",
    "copy_baseline",
    "BartCorrector",
    "MLMCorrector",
]

# --------------------------------------------------------------------------------------------------
# 1. Errors
# --------------------------------------------------------------------------------------------------

#: Agreement and article errors: each word becomes its partner (both directions).
INFLECTION_PAIRS = {"is": "are", "was": "were", "has": "have", "does": "do", "a": "an",
                    "this": "these", "that": "those", "much": "many"}  # fmt: skip
INFLECTION_PAIRS |= {v: k for k, v in list(INFLECTION_PAIRS.items())}

#: Suffix rules, tried in order, for words not in the pairs: (suffix, replacement, min length).
#: "cities" -> "city", "playing" -> "played", "played" -> "playing", "games" -> "game".
#: They act on the spelling only, so some outputs are not words ("during" -> "dured"): still an
#: error to correct, as real inflection mistakes often are.
INFLECTION_SUFFIXES = (("ies", "y", 5), ("ing", "ed", 6), ("ed", "ing", 5), ("s", "", 4))

#: The four kinds of error :func:`corrupt` makes.
ERROR_KINDS = ("deletion", "duplication", "swap", "inflection")


def wrong_inflection(word: str) -> str | None:
    """The rule list's wrong form of ``word`` (None when no rule applies).

    A word in :data:`INFLECTION_PAIRS` becomes its partner; otherwise the first suffix rule of
    :data:`INFLECTION_SUFFIXES` that fits (the word ends with the suffix and is at least the
    minimum length; "-s" not after "s", "u" or "i", so "class", "thus", "this" are left) swaps
    the suffix."""
    if word in INFLECTION_PAIRS:
        return INFLECTION_PAIRS[word]
    for suffix, replacement, min_len in INFLECTION_SUFFIXES:
        if len(word) >= min_len and word.endswith(suffix):
            if suffix == "s" and word[-2] in "sui":
                return None
            return word[: -len(suffix)] + replacement
    return None


@dataclass(frozen=True)
class Corruption:
    """One error made by :func:`corrupt`: its kind, the index of the (first) word it touched in
    the original sentence, and the words before and after."""

    kind: str
    index: int
    before: tuple[str, ...]
    after: tuple[str, ...]


def corrupt(
    words: Sequence[str], rng: random.Random, max_errors: int = 2, clean_prob: float = 0.1,
    kinds: Sequence[str] = ERROR_KINDS,
) -> tuple[list[str], list[Corruption]]:  # fmt: skip
    """A corrupted copy of ``words`` and the list of errors made.

    Exactly how: with probability ``clean_prob`` the sentence is returned unchanged (so that
    a corrector that edits correct text is caught). Otherwise k errors are made, k uniform in
    1..``max_errors``, one after the other. For each, the kind is drawn uniformly from the
    ``kinds`` (default: all four) that still have a place to go, then the place uniformly from
    those places:

    - **deletion**: an alphabetic word is removed;
    - **duplication**: an alphabetic word is written twice ("the the");
    - **swap**: two adjacent, different alphabetic words change places;
    - **inflection**: an alphabetic word with a rule in :func:`wrong_inflection` takes its
      wrong form.

    Only alphabetic words that no earlier error touched are eligible (punctuation and numbers
    are never changed), so errors do not overlap.
    """
    if not 0 <= clean_prob <= 1 or max_errors < 1:
        raise ValueError(
            f"clean_prob must be in [0, 1] and max_errors >= 1, got {clean_prob}, {max_errors}."
        )
    if unknown := set(kinds) - set(ERROR_KINDS):
        raise ValueError(f"unknown error kind(s) {sorted(unknown)}; choose from {ERROR_KINDS}.")
    # each entry: [word, index in the original sentence (None for a copy), touched]
    sent = [[w, i, False] for i, w in enumerate(words)]
    errors: list[Corruption] = []
    if rng.random() < clean_prob:
        return list(words), errors
    for _ in range(rng.randint(1, max_errors)):
        free = [j for j, (w, _, touched) in enumerate(sent) if not touched and w.isalpha()]
        places = {
            "deletion": free,
            "duplication": free,
            "swap": [j for j in free if j + 1 in free and sent[j][0] != sent[j + 1][0]],
            "inflection": [j for j in free if wrong_inflection(sent[j][0])],
        }
        possible = [k for k in ERROR_KINDS if k in kinds and places[k]]
        if not possible:
            break
        kind = rng.choice(possible)
        j = rng.choice(places[kind])
        word, index = sent[j][0], sent[j][1]
        if kind == "deletion":
            del sent[j]
            errors.append(Corruption(kind, index, (word,), ()))
        elif kind == "duplication":
            sent[j][2] = True
            sent.insert(j + 1, [word, None, True])
            errors.append(Corruption(kind, index, (word,), (word, word)))
        elif kind == "swap":
            sent[j], sent[j + 1] = sent[j + 1], sent[j]
            sent[j][2] = sent[j + 1][2] = True
            errors.append(Corruption(kind, index, (word, sent[j][0]), (sent[j][0], word)))
        else:
            sent[j][0], sent[j][2] = wrong_inflection(word), True
            errors.append(Corruption(kind, index, (word,), (sent[j][0],)))
    return [w for w, _, _ in sent], errors


@dataclass
class CorrectionExample:
    """A corrupted sentence (``source``), the original (``reference``) and the errors made."""

    source: list[str]
    reference: list[str]
    errors: list[Corruption]


def correction_examples(
    split: str = "test", n: int = 500, seed: int = 0, min_words: int = 5, max_words: int = 30,
    max_errors: int = 2, clean_prob: float = 0.1,
) -> list[CorrectionExample]:  # fmt: skip
    """``n`` WikiText-2 sentences of ``split`` (held out: BART trains on train), corrupted.

    A sentence qualifies when it has no ``<unk>`` and ``min_words``..``max_words`` basic tokens
    (BERT's lower-cased, punctuation-split words, after WikiText's ``@-@`` joins are undone);
    ``n`` of them are drawn at random (``seed``) and each goes through :func:`corrupt`.
    """
    from bertlab import data
    from bertlab.basic_tokenizer import BasicTokenizer
    from bertlab.pretraining_data import clean_wikitext

    basic = BasicTokenizer()
    pool = []
    for sentence in data.wikitext2_sentences(split):
        if "<unk>" not in sentence:
            words = basic.tokenize(clean_wikitext(" ".join(sentence)))
            if min_words <= len(words) <= max_words:
                pool.append(words)
    rng = random.Random(seed)
    chosen = rng.sample(pool, min(n, len(pool)))
    out = []
    for words in chosen:
        source, errors = corrupt(words, rng, max_errors, clean_prob)
        out.append(CorrectionExample(source, words, errors))
    return out


# --------------------------------------------------------------------------------------------------
# 2. Scores: edits from a word-level Levenshtein alignment
# --------------------------------------------------------------------------------------------------

#: An edit: the source words [start, end) are replaced by ``words`` (start = end: an insertion).
Edit = tuple[int, int, tuple[str, ...]]


def align(source: Sequence[str], target: Sequence[str]) -> list[tuple[str, int, int]]:
    """A minimum-cost word alignment: ("match" | "sub" | "del" | "ins", i, j) steps, in order
    (i, j: positions in source and target). Every operation costs 1, a match 0. Among
    alignments of equal cost, tracing back from the end prefers a match, then a substitution,
    then a deletion, then an insertion (so a swap "b a" -> "a b" is two substitutions)."""
    n, m = len(source), len(target)
    d = [[0] * (m + 1) for _ in range(n + 1)]  # d[i][j]: distance of source[:i] to target[:j]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diag = d[i - 1][j - 1] + (source[i - 1] != target[j - 1])
            d[i][j] = min(diag, d[i - 1][j] + 1, d[i][j - 1] + 1)
    steps = []
    i, j = n, m
    while i or j:
        if i and j and source[i - 1] == target[j - 1] and d[i][j] == d[i - 1][j - 1]:
            steps.append(("match", i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i and j and d[i][j] == d[i - 1][j - 1] + 1:
            steps.append(("sub", i - 1, j - 1))
            i, j = i - 1, j - 1
        elif i and d[i][j] == d[i - 1][j] + 1:
            steps.append(("del", i - 1, j))
            i -= 1
        else:
            steps.append(("ins", i, j - 1))
            j -= 1
    return steps[::-1]


def word_edits(source: Sequence[str], target: Sequence[str]) -> set[Edit]:
    """The edits that turn ``source`` into ``target``: the steps of :func:`align` that are not
    matches, with adjacent ones merged into one edit ``(start, end, words)``."""
    edits, current = set(), None  # current: [start, end, words] of the edit being grown
    for op, i, j in align(source, target):
        if op == "match":
            if current:
                edits.add((current[0], current[1], tuple(current[2])))
            current = None
            continue
        if current is None:
            current = [i, i, []]
        if op in ("sub", "del"):
            current[1] = i + 1
        if op in ("sub", "ins"):
            current[2].append(target[j])
    if current:
        edits.add((current[0], current[1], tuple(current[2])))
    return edits


@dataclass
class EditScores:
    """Corpus-level scores: edit counts, precision, recall, F-beta (beta = 0.5) and exact match."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f05: float
    exact_match: float
    sentences: int


def exact_match_rate(hypotheses: Sequence[Sequence[str]], references) -> float:
    """The share of hypotheses that equal their reference word for word."""
    _check_lengths(hypotheses, references, "hypotheses", "references")
    return sum(list(h) == list(r) for h, r in zip(hypotheses, references)) / max(1, len(references))


def score(sources, hypotheses, references, beta: float = 0.5) -> EditScores:
    """Edit precision, recall and F-beta over a corpus, and the exact-match rate.

    For each sentence, H = ``word_edits(source, hypothesis)`` and G =
    ``word_edits(source, reference)``; TP = |H ∩ G| (same span, same words), FP = |H - G|,
    FN = |G - H|, summed over sentences. P = TP / (TP + FP), R = TP / (TP + FN),
    F = (1 + β²) P R / (β² P + R); β = 0.5 weighs precision twice as much as recall (leaving an
    error is better than adding one). As in ERRANT, P = 1 when nothing is proposed, R = 1 when
    nothing needed fixing, F = 0 when P = R = 0. So the copy baseline has P = 1, R = 0, F = 0.
    """
    _check_lengths(sources, hypotheses, "sources", "hypotheses")
    _check_lengths(sources, references, "sources", "references")
    tp = fp = fn = 0
    for src, hyp, ref in zip(sources, hypotheses, references):
        h, g = word_edits(src, hyp), word_edits(src, ref)
        tp, fp, fn = tp + len(h & g), fp + len(h - g), fn + len(g - h)
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    b2 = beta * beta
    f = (1 + b2) * p * r / (b2 * p + r) if p + r else 0.0
    em = exact_match_rate(hypotheses, references)
    return EditScores(tp, fp, fn, p, r, f, em, len(sources))


def _check_lengths(a: Sequence, b: Sequence, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(
            f"{len(a)} {name_a} but {len(b)} {name_b}: give one of each per sentence, in order."
        )


# --------------------------------------------------------------------------------------------------
# 3. Correctors: lists of words in, lists of words out
# --------------------------------------------------------------------------------------------------


def copy_baseline(sources: Sequence[Sequence[str]]) -> list[list[str]]:
    """Change nothing: the hypothesis is the source."""
    return [list(s) for s in sources]


def _pieces_to_words(pieces: Sequence[str]) -> list[str]:
    """WordPiece pieces -> words (a ``##`` piece continues the word before it)."""
    words: list[str] = []
    for p in pieces:
        if p.startswith("##") and words:
            words[-1] += p[2:]
        else:
            words.append(p)
    return words


class BartCorrector:
    """Correct with a trained BART: encode ``[CLS] source [SEP]``, beam-search the output.

    ``model`` is a ``bertlab.bart.BartModel`` and ``tokenizer`` its WordPiece tokenizer;
    ``beams=1`` is greedy decoding. Sources longer than the model's positions are truncated.
    """

    def __init__(self, model, tokenizer, beams: int = 4, batch_size: int = 64,
                 length_penalty: float = 1.0):  # fmt: skip
        self.model, self.tokenizer = model.eval(), tokenizer
        self.beams, self.batch_size, self.length_penalty = beams, batch_size, length_penalty

    def __call__(self, sources: Sequence[Sequence[str]]) -> list[list[str]]:
        from bertlab.bart import beam_search, greedy_decode

        c, tok = self.model.config, self.tokenizer
        device = self.model.shared.weight.device
        out: list[list[str]] = []
        for start in range(0, len(sources), self.batch_size):
            rows = []
            for words in sources[start : start + self.batch_size]:
                ids = tok.convert_tokens_to_ids(tok.tokenize(" ".join(words)))
                rows.append([c.bos_id, *ids[: c.max_position - 2], c.eos_id])
            T = max(map(len, rows))
            src = torch.tensor([r + [c.pad_id] * (T - len(r)) for r in rows], device=device)
            mask = (src != c.pad_id).long()
            if self.beams == 1:
                ids, _ = greedy_decode(self.model, src, mask)
            else:
                ids, _ = beam_search(self.model, src, mask, self.beams,
                                     length_penalty=self.length_penalty)  # fmt: skip
            for row in ids.tolist():
                row = row[: row.index(c.eos_id)] if c.eos_id in row else row
                pieces = tok.convert_ids_to_tokens([t for t in row if t != c.pad_id])
                out.append(_pieces_to_words(pieces))
        return out


class MLMCorrector:
    """Correct with a masked LM: mask each word in turn, replace it when BERT is confident.

    For a sentence of n words, row i of ONE batched forward pass is the sentence with word i
    replaced by [MASK]. The word is replaced by the MLM head's most likely *whole-word*
    alphabetic piece w when P(w) >= ``threshold`` and P(w) - P(original) >= ``margin``. All
    replacements are decided from the original sentence and applied together.

    It handles **substitutions only** (among them wrong inflections, and one word of a swap):
    the output always has the input's words count, so deleted and duplicated words are out
    of its reach. Only alphabetic words that are a single piece of the vocabulary are
    candidates (a multi-piece word cannot be masked by one [MASK] and scored fairly).
    """

    def __init__(self, model, tokenizer, threshold: float = 0.5, margin: float = 0.3):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.threshold, self.margin = threshold, margin
        vocab = tokenizer.convert_ids_to_tokens(range(tokenizer.vocab_size))
        # (V,): pieces that may replace a word: whole words of letters, no specials
        self.allowed = torch.tensor([t.isalpha() and t.isascii() for t in vocab])

    @torch.no_grad()
    def correct(self, words: Sequence[str]) -> list[str]:
        """One sentence: the corrected words (same length as ``words``)."""
        tok = self.tokenizer
        pieces = [tok.convert_tokens_to_ids(tok.tokenize(w)) for w in words]
        ids = [tok.cls_id, *(i for p in pieces for i in p), tok.sep_id]
        starts, at = [], 1
        for p in pieces:
            starts.append(at)
            at += len(p)
        where = [k for k, w in enumerate(words) if w.isalpha() and len(pieces[k]) == 1]
        if not where:
            return list(words)
        device = next(self.model.parameters()).device
        rows = torch.tensor(ids, device=device).repeat(len(where), 1)  # (n, T)
        positions = torch.tensor([starts[k] for k in where], device=device)  # (n,)
        original = rows[torch.arange(len(where)), positions]  # (n,)
        rows[torch.arange(len(where)), positions] = tok.mask_id  # row i: word i masked
        out = self.model(rows, mlm_positions=positions[:, None])  # all n positions at once
        probs = out.mlm_logits[:, 0].float().softmax(-1)  # (n, V)
        p_orig = probs.gather(1, original[:, None])[:, 0]  # (n,)
        p_best, best = probs.masked_fill(~self.allowed.to(device), 0.0).max(-1)  # (n,)
        accept = (p_best >= self.threshold) & (p_best - p_orig >= self.margin)
        accept &= best != original
        fixed = list(words)
        for k, new, ok in zip(where, tok.convert_ids_to_tokens(best.tolist()), accept.tolist()):
            if ok:
                fixed[k] = new
        return fixed

    def __call__(self, sources: Sequence[Sequence[str]]) -> list[list[str]]:
        return [self.correct(s) for s in sources]


def evaluate(
    correctors: dict[str, Callable[[list[list[str]]], list[list[str]]]],
    examples: Sequence[CorrectionExample],
) -> dict[str, EditScores]:
    """Run each corrector on the examples' sources and score it against the references."""
    sources = [e.source for e in examples]
    references = [e.reference for e in examples]
    return {name: score(sources, fn(sources), references) for name, fn in correctors.items()}
