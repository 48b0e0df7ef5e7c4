"""Benchmark: interpolated Kneser-Ney trigram, bertlab.ngram vs nltk.lm.KneserNeyInterpolated.

Both models fit the first ``--train-tokens`` tokens of WikiText-2 train (whole sentences) and score
the first ``--valid-tokens`` tokens of valid, with the same padding (two ``<s>``, one ``</s>``),
the same discount (0.75) and the same vocabulary (words seen once become ``<unk>``, the token
WikiText-2 already uses for rare words, so both models have seen it). NLTK recomputes
continuation counts by scanning every context for each score, so the slice is small: under a
minute of NLTK time. Run:

    BERTLAB_DATA=../shared/data python benchmarks/ngram.py

It prints one comparison line, ``ngram: bertlab X s, nltk Y s, ratio R`` (R = nltk / bertlab,
fit + perplexity each), then the two perplexities, then bertlab on all of WikiText-2, and then
``ngram_score: bertlab X tok/s, reference Y tok/s, ratio R``: the full-train trigram written as
ARPA and loaded in KenLM, scoring all of WikiText-2 valid token by token (ours:
``NGramLM.token_logprobs``; KenLM: ``Model.full_scores`` per sentence, its Python interface;
best of three each; R = ours / KenLM). KenLM is the fastest n-gram scorer there is; there is no
target, the line says where we stand.
The two perplexities differ slightly by definition: NLTK's lowest order is the undiscounted
continuation unigram (ours discounts it and interpolates with the uniform distribution), NLTK
gives ``<s>`` some probability, and its sentence-start distribution sums to more than 1; see
tests/test_ngram.py for the exact differences.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import chain
from pathlib import Path

from nltk.lm import KneserNeyInterpolated, Vocabulary
from nltk.util import everygrams

from bertlab.arpa import load_in_kenlm
from bertlab.data import wikitext2_sentences
from bertlab.ngram import BOS, EOS, NGramLM

ORDER, DISCOUNT, MIN_COUNT = 3, 0.75, 2


def first_tokens(sentences: list[list[str]], n_tokens: int) -> list[list[str]]:
    """The shortest prefix of whole sentences with at least ``n_tokens`` tokens."""
    out, n = [], 0
    for s in sentences:
        if n >= n_tokens:
            break
        out.append(s)
        n += len(s)
    return out


def padded(s: list[str]) -> list[str]:
    return [BOS] * (ORDER - 1) + s + [EOS]


def run_bertlab(train: list[list[str]], valid: list[list[str]]) -> float:
    model = NGramLM(ORDER, "kneser-ney", discount=DISCOUNT, min_count=MIN_COUNT).fit(train)
    return model.perplexity(valid)


def run_nltk(train: list[list[str]], valid: list[list[str]]) -> float:
    # WikiText already contains "<unk>": make it NLTK's unknown label too, as it is ours
    tokens = chain.from_iterable(padded(s) for s in train)
    vocab = Vocabulary(tokens, unk_cutoff=MIN_COUNT, unk_label="<unk>")
    model = KneserNeyInterpolated(ORDER, discount=DISCOUNT, vocabulary=vocab)
    model.fit(list(everygrams(padded(s), max_len=ORDER)) for s in train)
    grams = [tuple(p[i - ORDER + 1 : i + 1]) for s in valid for p in [padded(s)]
             for i in range(ORDER - 1, len(p))]  # fmt: skip
    return model.perplexity(grams)


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def best_of(n: int, fn, *args) -> float:
    """The fastest of ``n`` timed calls, in seconds."""
    return min(timed(fn, *args)[1] for _ in range(n))


def score_against_kenlm(model: NGramLM, valid: list[list[str]]) -> None:
    """Time scoring ``valid`` with ours and with KenLM reading our ARPA file; print one line."""
    lines = [" ".join(s) for s in valid]
    n_tokens = sum(map(len, valid)) + len(valid)  # words and </s>
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.arpa"
        model.to_arpa(path)
        lm = load_in_kenlm(path)
    t_ours = best_of(3, model.token_logprobs, valid)
    t_kenlm = best_of(3, lambda: [list(lm.full_scores(line)) for line in lines])
    print(
        f"ngram_score: bertlab {n_tokens / t_ours:,.0f} tok/s, reference "
        f"{n_tokens / t_kenlm:,.0f} tok/s, ratio {t_kenlm / t_ours:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-tokens", type=int, default=50_000)
    parser.add_argument("--valid-tokens", type=int, default=2_500)
    args = parser.parse_args()

    train_all, valid_all = wikitext2_sentences("train"), wikitext2_sentences("valid")
    train = first_tokens(train_all, args.train_tokens)
    valid = first_tokens(valid_all, args.valid_tokens)
    n_train, n_valid = sum(map(len, train)), sum(map(len, valid))

    ppl_ours, t_ours = timed(run_bertlab, train, valid)
    ppl_nltk, t_nltk = timed(run_nltk, train, valid)
    print(f"ngram: bertlab {t_ours:.3f} s, nltk {t_nltk:.1f} s, ratio {t_nltk / t_ours:.0f}")
    print(
        f"ngram slice: trigram KN D={DISCOUNT}, min_count={MIN_COUNT}, train {n_train:,} tokens "
        f"({len(train):,} sentences), valid {n_valid:,} tokens ({len(valid):,} sentences): "
        f"perplexity bertlab {ppl_ours:.2f}, nltk {ppl_nltk:.2f}"
    )

    model, t_fit = timed(NGramLM(ORDER, "kneser-ney", discount=DISCOUNT).fit, train_all)
    ppl, t_ppl = timed(model.perplexity, valid_all)
    print(
        f"ngram full: WikiText-2 train {model.num_tokens:,} predicted tokens "
        f"({model.num_sentences:,} sentences, |V| = {len(model.vocab):,}): trigram KN fit "
        f"{t_fit:.2f} s; valid perplexity {ppl:.2f} ({sum(map(len, valid_all)) + len(valid_all):,}"
        f" tokens, {t_ppl:.2f} s)"
    )
    score_against_kenlm(model, valid_all)


if __name__ == "__main__":
    main()
