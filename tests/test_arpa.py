"""Tests for bertlab.arpa: our Kneser-Ney models written as ARPA files score the same in KenLM
(the reference reader speech and MT toolkits use) and after reading them back, a hand-computed
file line by line, and clear errors for files that are not ARPA."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bertlab.arpa import ArpaError, load_in_kenlm, read_arpa
from bertlab.data import wikitext2_sentences
from bertlab.ngram import NGramLM


@pytest.fixture(scope="module")
def wikitext():
    """A tenth of WikiText-2 train (about 200k tokens) to fit, all of valid to score."""
    train = wikitext2_sentences("train")
    return train[: len(train) // 10], wikitext2_sentences("valid")


def sentence_sums(logp: np.ndarray, sentences: list) -> np.ndarray:
    """Per-sentence sums of per-token values (each sentence's words and its </s>)."""
    ends = np.cumsum([len(s) + 1 for s in sentences])
    return np.add.reduceat(logp, np.r_[0, ends[:-1]])


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_kenlm_scores_our_arpa_file_as_we_do(wikitext, order, tmp_path):
    train, valid = wikitext
    model = NGramLM(order).fit(train)
    path = tmp_path / f"wiki{order}.arpa"
    counts = model.to_arpa(path)
    assert counts[1] == len(model.vocab) + 1  # every word, </s>, <unk> and <s>
    ours = model.token_logprobs(valid) / math.log(10)

    lm = load_in_kenlm(path)
    assert lm.order == max(order, 2)  # KenLM reads bigram files and up: see write_arpa
    theirs = np.array([s[0] for sent in valid for s in lm.full_scores(" ".join(sent))])
    assert len(theirs) == len(ours)
    assert np.abs(ours - theirs).max() < 1e-4
    # sentence perplexities as KenLM computes them: 10 ** (-log10 P / (words + 1))
    lengths = np.array([len(s) + 1 for s in valid])
    ppl_ours = 10.0 ** (-sentence_sums(ours, valid) / lengths)
    ppl_kenlm = np.array([lm.perplexity(" ".join(s)) for s in valid])
    np.testing.assert_allclose(ppl_ours, ppl_kenlm, rtol=1e-4)

    back = NGramLM.from_arpa(path)
    assert back.vocab == model.vocab
    assert np.abs(back.token_log10probs(valid) - ours).max() < 1e-4
    assert back.perplexity(valid) == pytest.approx(model.perplexity(valid), rel=1e-4)


@pytest.mark.parametrize("context", [[], ["the"], ["of", "the"], ["zebra", "striped", "the"]])
def test_read_model_distributions_match_ours(wikitext, context, tmp_path):
    train, _ = wikitext
    model = NGramLM(3).fit(train[:2000])
    model.to_arpa(tmp_path / "m.arpa")
    back = read_arpa(tmp_path / "m.arpa")
    p = back.probs(context)
    assert abs(p.sum() - 1) < 1e-4
    np.testing.assert_allclose(p, model.probs(context), rtol=2e-5, atol=1e-9)
    assert back.prob("United", context) == pytest.approx(model.prob("United", context), rel=2e-5)
    assert back.prob("<s>") == 0.0


def tiny_expected() -> str:
    """The bigram Kneser-Ney file (D = 0.75) for the corpus "a b" / "b", computed by hand.

    Padded text: <s> a b </s>, <s> b </s>; vocabulary </s>, <unk>, b, a (|V| = 4).
    Unigram level, continuation counts N1+(. w): a 1, b 2, </s> 1, <unk> 0 (total 4, 3 types):
    p1(w) = (max(N1+ - 0.75, 0) + 0.75 * 3 / 4) / 4. Bigram level, raw counts: after <s> a 1,
    b 1 (gamma = 0.75 * 2 / 2); after a: b 1 (gamma 0.75); after b: </s> 2 (gamma 0.75 / 2).
    """
    p1 = {
        w: (max(c - 0.75, 0) + 0.5625) / 4
        for w, c in {"</s>": 1, "<unk>": 0, "b": 2, "a": 1}.items()
    }
    gamma = {"<s>": 0.75, "a": 0.75, "b": 0.375}
    p2 = {
        "<s> b": 0.5 - 0.375 + 0.75 * p1["b"],
        "<s> a": 0.5 - 0.375 + 0.75 * p1["a"],
        "b </s>": (2 - 0.75) / 2 + 0.375 * p1["</s>"],
        "a b": (1 - 0.75) / 1 + 0.75 * p1["b"],
    }
    f = lambda x: f"{math.log10(x):.6f}"  # noqa: E731
    lines = ["\\data\\", "ngram 1=5", "ngram 2=4", "", "\\1-grams:"]
    lines.append(f"-99.000000\t<s>\t{f(gamma['<s>'])}")
    for w in ["</s>", "<unk>", "b", "a"]:
        lines.append(f"{f(p1[w])}\t{w}" + (f"\t{f(gamma[w])}" if w in gamma else ""))
    lines += ["", "\\2-grams:"] + [f"{f(p)}\t{g}" for g, p in p2.items()] + ["", "\\end\\", ""]
    return "\n".join(lines)


def test_tiny_corpus_file_line_by_line(tmp_path):
    model = NGramLM(2).fit([["a", "b"], ["b"]])
    path = tmp_path / "tiny.arpa"
    assert model.to_arpa(path) == {1: 5, 2: 4}
    assert path.read_text().split("\n") == tiny_expected().split("\n")
    # a file written by someone else (here: by hand) reads into the same model
    (tmp_path / "hand.arpa").write_text(tiny_expected())
    hand = read_arpa(tmp_path / "hand.arpa")
    assert hand.prob("b", ["a"]) == pytest.approx(model.prob("b", ["a"]), rel=1e-5)
    assert hand.prob("a") == pytest.approx(model.prob("a"), rel=1e-5)
    assert hand.prob("zebra", ["b"]) == pytest.approx(model.prob("<unk>", ["b"]), rel=1e-5)


def test_add_k_and_mle_cannot_be_written(tmp_path):
    for smoothing in ["add-k", "mle"]:
        model = NGramLM(2, smoothing=smoothing).fit([["a", "b"]])
        with pytest.raises(ValueError, match="cannot be written exactly in ARPA.*kneser-ney"):
            model.to_arpa(tmp_path / "x.arpa")
    assert not (tmp_path / "x.arpa").exists()
    with pytest.raises(RuntimeError, match="not fitted"):
        NGramLM(2).to_arpa(tmp_path / "x.arpa")


# (what is done to the hand-made file, the error it must give)
BAD_FILES = [
    (lambda t: t.replace("\\data\\", "data"), r"line 1: expected the header line \\data\\"),
    (lambda t: t.replace("ngram 2=4", "ngram 2=four"), r"line 3: expected 'ngram 2=<count>'"),
    (
        lambda t: t[: t.index("\ta b") - 9],
        r"line 16: expected 4 2-gram lines .*found 3.*the end of the file",
    ),
    (
        lambda t: t.replace("ngram 2=4", "ngram 2=5"),
        r"line 17: expected 5 2-gram lines .*\(found 4\), got a blank line",
    ),
    (
        lambda t: t.replace("\ta b", "\ta b c d"),
        r"line 16: expected 'log10prob w1 ... w2 \[backoff\]'",
    ),
    (lambda t: t.replace("-99.000000\t<s>", "minus\t<s>"), r"line 6: expected numbers"),
    (lambda t: t.replace("\\end\\", ""), r"expected \\end\\ after the last section"),
    (
        lambda t: t.replace("\\2-grams:", "\\3-grams:"),
        r"line 12: expected the section header \\2-grams:",
    ),
    (lambda t: t.replace("\ta b", "\ta q"), r"uses the word 'q', which has no unigram entry"),
]


@pytest.mark.parametrize("edit, match", BAD_FILES)
def test_malformed_files_name_the_line(tmp_path, edit, match):
    path = tmp_path / "bad.arpa"
    path.write_text(edit(tiny_expected()))
    with pytest.raises(ArpaError, match=match):
        read_arpa(path)


def test_missing_prefix_no_sentence_start_and_missing_file(tmp_path):
    NGramLM(3).fit([["a", "b"], ["b"]]).to_arpa(tmp_path / "tri.arpa")
    lines = (tmp_path / "tri.arpa").read_text().split("\n")
    bigrams = [i for i, line in enumerate(lines) if line.endswith("\ta b") or "\ta b\t" in line]
    assert len(bigrams) == 1 and any(line.split("\t")[1:2] == ["<s> a b"] for line in lines)
    del lines[bigrams[0]]
    n2 = next(i for i, line in enumerate(lines) if line.startswith("ngram 2="))
    lines[n2] = f"ngram 2={int(lines[n2][8:]) - 1}"
    (tmp_path / "hole.arpa").write_text("\n".join(lines))
    with pytest.raises(ArpaError, match="3-gram '.*' has no 2-gram entry for its first 2 words"):
        read_arpa(tmp_path / "hole.arpa")
    text = "\\data\\\nngram 1=2\n\n\\1-grams:\n-0.3\ta\n-0.3\t</s>\n\n\\end\\\n"
    (tmp_path / "nostart.arpa").write_text(text)
    with pytest.raises(ArpaError, match="the 1-grams have no '<s>'"):
        read_arpa(tmp_path / "nostart.arpa")
    with pytest.raises(FileNotFoundError, match="no ARPA file"):
        read_arpa(tmp_path / "absent.arpa")
