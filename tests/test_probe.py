"""bertlab.probe: features from frozen encoders, scalar mix, probes and their baselines."""

from __future__ import annotations

import pytest
import torch

from bertlab import probe
from bertlab.bert import BertConfig, BertModel
from bertlab.wordpiece import WordPieceTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a"]


@pytest.fixture(scope="module")
def bert():
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(VOCAB), hidden=16, layers=2, heads=2, intermediate=32,
                     max_position=32)  # fmt: skip
    return BertModel(cfg).eval(), WordPieceTokenizer(VOCAB)


def test_bert_features_pool_and_layers(bert):
    model, tok = bert
    texts = ["the cat sat on the mat", "a cat", ("the cat", "a mat")]
    mean = probe.features(model, texts, tok, pool="mean")
    assert mean.shape == (3, 16)
    every = probe.features(model, texts, tok, pool="cls", layers="all")
    assert every.shape == (3, 3, 16)  # embeddings + 2 layers
    # one text alone gives the same vector as in a padded batch
    b = tok.encode_batch(["a cat"], return_tensors="pt")
    with torch.no_grad():
        out = model(b["input_ids"], b["token_type_ids"], b["attention_mask"])
    torch.testing.assert_close(mean[1], out.last_hidden_state[0].mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(every[-1, 1], out.last_hidden_state[0, 0], atol=1e-5, rtol=1e-5)
    pooled = probe.features(model, texts, tok, pool="pooler")
    torch.testing.assert_close(pooled[1], out.pooled[0], atol=1e-5, rtol=1e-5)
    assert torch.equal(probe.features(model, texts, tok, pool="mean", layers=2), mean)


def test_several_poolings_from_one_pass_equal_one_at_a_time(bert):
    model, tok = bert
    texts = ["the cat sat on the mat", "a cat", ("the cat", "a mat"), "mat"]
    both = probe.features(model, texts, tok, pool=("cls", "mean"), layers="all", batch_size=3)
    assert set(both) == {"cls", "mean"}
    for pool in ("cls", "mean"):
        alone = probe.features(model, texts, tok, pool=pool, layers="all", batch_size=3)
        assert torch.equal(both[pool], alone)
    last = probe.features(model, texts, tok, pool=("mean",))
    assert torch.equal(last["mean"], probe.features(model, texts, tok, pool="mean"))
    with pytest.raises(ValueError, match="several poolings at once"):
        probe.features(model, texts, tok, pool=("cls", "pooler"))
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        probe.features(model, texts, tok, pool=("cls", "max"))


def test_features_bad_choices(bert):
    model, tok = bert
    with pytest.raises(ValueError, match="unknown pooling 'max'.*mean, cls, pooler"):
        probe.features(model, ["a"], tok, pool="max")
    with pytest.raises(ValueError, match="layers must be 'last', 'all'"):
        probe.features(model, ["a"], tok, layers="top")
    with pytest.raises(ValueError, match="needs its tokenizer"):
        probe.features(model, ["a"])
    with pytest.raises(ValueError, match="last layer only"):
        probe.features(model, ["a"], tok, pool="pooler", layers="all")


def test_mean_pool_ignores_padding():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    m = torch.tensor([[1, 1, 0]])
    assert probe.mean_pool(h, m).tolist() == [[2.0, 3.0]]


def test_probe_each_layer_finds_the_informative_layer():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (200,), generator=g)
    noise = torch.randn(3, 200, 4, generator=g)
    noise[2, :, 0] += 5 * labels  # only layer 2 knows the label
    acc, weights = probe.probe_each_layer(noise[:, :100], labels[:100], noise[:, 100:],
                                          labels[100:], 2, steps=200)  # fmt: skip
    assert list(acc) == ["layer 0", "layer 1", "layer 2", "scalar mix"]
    assert acc["layer 2"] > 0.9 and acc["layer 0"] < 0.7 and acc["scalar mix"] > 0.9
    assert weights.shape == (3,) and abs(float(weights.sum()) - 1) < 1e-6
    with pytest.raises(ValueError, match="2 names for 3 layers"):
        probe.probe_each_layer(noise, labels, noise, labels, 2, names=["a", "b"])


def test_pseudo_words_and_the_majority_baseline():
    sents = [["i", "like", "music"], ["the", "war", "ended"], ["music", "and", "war"], ["war"]]
    out, pos, labels = probe.pseudo_word_examples(sents, "music", "war")
    assert out == [["i", "like", "<unk>"], ["the", "<unk>", "ended"], ["<unk>"]]
    assert pos == [2, 1, 0] and labels.tolist() == [0, 1, 1]
    train = [("run", "VERB"), ("run", "VERB"), ("run", "NOUN"), ("dog", "NOUN")]
    test = [("run", "VERB"), ("dog", "NOUN"), ("cat", "NOUN"), ("run", "NOUN")]
    assert probe.majority_label_baseline(train, test, default="NOUN") == 0.75
