"""Tests for bertlab.elmo: direction masks, the scalar mix, probes, bad input, and the cache."""

import pytest
import torch

from bertlab import elmo
from bertlab.elmo import BiLM, BiLMConfig, build_vocab
from bertlab.probe import ScalarMix, probe_accuracy, train_probe

WORDS = "the cat sat on a mat dog ran to park . big small red".split()
CORPUS = [WORDS[i : i + 6] for i in range(0, len(WORDS) - 5)] * 3


def tiny_config(**kw) -> BiLMConfig:
    base = dict(dim=8, layers=2, dropout=0.0, cutoffs=(4,), max_len=10, train_len=6, steps=3,
                batch_size=4, eval_sentences=2, eval_every=0, train_sentences=None)  # fmt: skip
    base.update(kw)
    return BiLMConfig(**base)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return BiLM(tiny_config(), build_vocab(CORPUS)).eval()


def test_forward_never_sees_the_future_backward_never_sees_the_past(model):
    ids, lengths = model.batch([WORDS[:8]])
    t = 4
    later, earlier = ids.clone(), ids.clone()
    later[0, t + 1 :] = model.vocab["dog"]  # change everything after t (the </s> too)
    earlier[0, :t] = model.vocab["dog"]  # change everything before t (the <s> too)
    base = model.states(ids, lengths)
    after = model.states(later, lengths)
    before = model.states(earlier, lengths)
    for j in range(1, len(base)):
        f, b = base[j]
        assert torch.allclose(f[0, : t + 1], after[j][0][0, : t + 1])  # forward: past only
        assert not torch.allclose(f[0, t + 1 :], after[j][0][0, t + 1 :])
        assert torch.allclose(b[0, t:], before[j][1][0, t:])  # backward: future only
        assert not torch.allclose(b[0, :t], before[j][1][0, :t])


def test_padding_does_not_change_a_sentence(model):
    alone = model.embed([WORDS[:3]])
    padded = model.embed([WORDS[:3], WORDS[:9]])
    assert torch.allclose(alone[:, 0], padded[:, 0, :3], atol=1e-6)
    assert padded[:, 0, 3:].abs().max() == 0


def test_embed_shape_and_token_layer(model):
    out = model.embed([WORDS[:5], WORDS[:2]])
    assert out.shape == (3, 2, 5, 16)  # (L + 1, B, T, 2H)
    x = model.embedding.weight[model.vocab["cat"]]
    assert torch.allclose(out[0, 0, 1], torch.cat([x, x]))


def test_loss_and_perplexity(model):
    ids, lengths = model.batch(CORPUS[:2])
    out = model.loss(ids, lengths)
    assert int(out["tokens"]) == sum(len(s) + 1 for s in CORPUS[:2])
    ppl = elmo.perplexity(model, CORPUS[:5])
    assert set(ppl) == {"forward", "backward"}
    assert 1 < ppl["forward"] < 10 * len(model.vocab)
    one = elmo.perplexity(model, CORPUS[:2], batch_size=2)["forward"]
    assert one == pytest.approx(
        float(torch.exp(out["forward_nll"].detach() / out["tokens"])), rel=1e-5
    )


def test_scalar_mix_weights_sum_to_one():
    mix = ScalarMix(3)
    with torch.no_grad():
        mix.scalars.copy_(torch.tensor([0.3, -1.0, 2.0]))
        mix.gamma.fill_(2.0)
    assert torch.isclose(mix.weights.sum(), torch.tensor(1.0))
    layers = torch.randn(3, 2, 4)
    expected = 2.0 * (mix.weights[:, None, None] * layers).sum(0)
    assert torch.allclose(mix(layers), expected)
    with pytest.raises(ValueError, match="expected 3 layers"):
        mix(torch.randn(2, 2, 4))


def test_probe_learns_a_toy_task_and_the_mix_finds_the_useful_layer():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (300,), generator=g)
    useful = torch.nn.functional.one_hot(labels, 3).float() * 3 + 0.3 * torch.randn(300, 3)
    noise = torch.randn(2, 300, 3, generator=g)
    layers = torch.cat([noise, useful[None]])  # only layer 2 carries the label
    probe = train_probe(layers[2], labels, 3, steps=200)
    assert probe_accuracy(probe, layers[2], labels) > 0.95
    assert probe_accuracy(train_probe(layers[0], labels, 3, steps=200), layers[0], labels) < 0.6
    mixed = train_probe(layers, labels, 3, mix=True, steps=300)
    assert probe_accuracy(mixed, layers, labels) > 0.95
    assert int(mixed.mix.weights.argmax()) == 2
    with pytest.raises(ValueError, match="mix=True needs"):
        train_probe(layers[0], labels, 3, mix=True)


def test_bad_input(model):
    with pytest.raises(ValueError, match="sentence 1 is empty"):
        model.embed([["the"], []])
    with pytest.raises(ValueError, match="more than max_len=10"):
        model.embed([WORDS[:12]])
    with pytest.raises(TypeError, match="list of sentences"):
        model.embed(["the", "cat"])
    with pytest.raises(ValueError, match="unknown preset"):
        elmo.BiLMConfig.preset("tpu")
    ids, _ = model.batch([["the", "zebra"]])
    assert ids[0, 2] == model.vocab["<unk>"]


def test_long_sentences_are_chunked_on_request(model):
    long = (WORDS * 2)[:23]
    out = model.embed([long, WORDS[:2]], too_long="chunk")
    assert out.shape[:3] == (3, 2, 23)
    pieces = [model.embed([long[i : i + 10]]) for i in (0, 10, 20)]
    assert torch.allclose(out[:, 0], torch.cat([p[:, 0] for p in pieces], 1), atol=1e-6)


def test_save_load_round_trip(model, tmp_path):
    elmo.save_bilm(model, tmp_path / "m")
    again = elmo.load_bilm(tmp_path / "m")
    sents = [WORDS[:4], ["a", "zebra", "ran"]]
    assert torch.equal(model.embed(sents), again.embed(sents))
    assert again.vocab.itos == model.vocab.itos


def test_config_key_changes_with_config():
    assert tiny_config().key() == tiny_config().key()
    assert tiny_config().key() != tiny_config(dim=9).key()


def test_load_or_train_uses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTLAB_CACHE", str(tmp_path))
    calls = []

    def fake_sentences(split):
        calls.append(split)
        return CORPUS

    monkeypatch.setattr(elmo.data, "wikitext2_sentences", fake_sentences)
    config = tiny_config()
    first = elmo.load_or_train(config, progress=False)
    assert calls == ["train", "valid"]
    assert first.history is not None and len(first.history.evals) == 1
    second = elmo.load_or_train(config, progress=False)
    assert calls == ["train", "valid"]  # no second training
    sents = [WORDS[:5]]
    assert torch.equal(first.embed(sents), second.embed(sents))
    assert len(list((tmp_path / "elmo").glob("*/model.safetensors"))) == 1


def test_training_is_deterministic():
    config = tiny_config(steps=4)
    a, _ = elmo.train_bilm(config, CORPUS, CORPUS[:2], progress=False)
    b, _ = elmo.train_bilm(config, CORPUS, CORPUS[:2], progress=False)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
