"""bertlab.bart: BART's noise, the decoder's masks, parameter counts and outputs against
transformers, greedy and beam decoding, a tiny training run, and input errors."""

from __future__ import annotations

import math

import pytest
import torch
import transformers

from bertlab import bart as B
from bertlab.params import count_module
from bertlab.train import TrainConfig, Trainer, torch_threads

TINY = B.BartConfig.preset("tiny", vocab_size=97, max_position=24)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small models on a shared machine: one thread (two threads fight over tiny ops)."""
    with torch_threads(1):
        yield


def model(config: B.BartConfig = TINY, seed: int = 0) -> B.BartModel:
    """A model with weights larger than the init, so that differences would show."""
    torch.manual_seed(seed)
    m = B.BartModel(config).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


def source(B_: int = 3, S: int = 12, vocab: int = 97, seed: int = 1):
    """Random ids (no specials) with padding of different lengths (row 0 has none)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (B_, S), generator=g)
    mask = torch.ones_like(ids)
    for b in range(1, B_):
        mask[b, S - 3 * b :] = 0
    return ids.masked_fill(mask == 0, 0), mask


# -- noise -----------------------------------------------------------------------------------


def test_span_lengths_are_poisson_3_with_zero_length_spans():
    g = torch.Generator().manual_seed(0)
    lengths = B.span_lengths(30_000, 3.0, g)
    assert int(lengths.sum()) == 30_000  # exactly the budget
    assert abs(lengths.float().mean() - 3.0) < 0.05
    zeros = (lengths == 0).float().mean()
    assert abs(zeros - math.exp(-3)) < 0.01  # P(0) of Poisson(3): zero-length spans (inserts)
    for k in (1, 2, 7):  # a small budget is also met exactly, the last span cut to fit
        assert int(B.span_lengths(k, 3.0, g).sum()) == k
    assert B.span_lengths(0, 3.0, g).numel() == 0


def test_text_infilling_one_mask_per_span_and_the_mask_ratio():
    g = torch.Generator().manual_seed(0)
    n, mask_id, hidden, inserted = 40, 4, 0, 0
    ids = torch.arange(100, 100 + n)  # distinct ids: the kept ones can be told apart
    for _ in range(500):
        out = B.text_infilling(ids, 0.3, mask_id, 3.0, g)
        kept = out[out != mask_id]
        assert torch.all(kept[1:] > kept[:-1])  # kept tokens stay in order
        assert len(kept) == n - round(0.3 * n)  # exactly 12 of 40 hidden
        hidden += n - len(kept)
        # a mask with no hidden token under it: two masks in a row, or a mask between two
        # tokens that were neighbours (or at an end, next to the first or last token)
        padded = torch.cat([torch.tensor([99]), out, torch.tensor([100 + n])])
        for t in torch.nonzero(padded == mask_id)[:, 0].tolist():
            left, right = padded[t - 1], padded[t + 1]
            inserted += bool(left != mask_id and right != mask_id and right - left == 1)
    assert hidden / (500 * n) == pytest.approx(0.3)
    assert inserted > 0  # zero-length spans really insert masks


def test_token_deletion_rate():
    g = torch.Generator().manual_seed(0)
    ids = torch.arange(100_000)
    out = B.token_deletion(ids, 0.1, g)
    assert abs(1 - len(out) / len(ids) - 0.1) < 0.005
    assert torch.all(out[1:] > out[:-1])  # survivors keep their order
    assert torch.equal(B.token_deletion(ids, 0.0, g), ids)


def test_batches_are_a_function_of_the_step():
    sentences = [list(range(10, 10 + n)) for n in range(5, 25)]
    batches = B.DenoisingBatches(sentences, TINY, batch_size=4, seed=3)
    a, b = batches(7), batches(7)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(batches(8)["labels"], a["labels"])
    assert torch.all(a["src_ids"][:, 0] == TINY.bos_id) and torch.all(a["tgt_ids"][:, 0] == 2)
    lengths = (a["labels"] != -100).sum(1)
    last = a["labels"][torch.arange(4), lengths - 1]
    assert torch.all(last == TINY.eos_id)  # every target ends with [SEP]
    assert torch.equal(a["src_mask"], (a["src_ids"] != 0).long())


# -- the model -------------------------------------------------------------------------------


def test_decoder_is_causal():
    m = model()
    src, mask = source()
    tgt = torch.randint(5, 97, (3, 10), generator=torch.Generator().manual_seed(2))
    before = m(src, tgt, mask)
    changed = tgt.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 90 + 5
    after = m(src, changed, mask)
    assert torch.allclose(before[:, :6], after[:, :6], atol=1e-6)  # the past does not see it
    assert not torch.allclose(before[:, 6:], after[:, 6:], atol=1e-3)


def test_cross_attention_sees_the_source_but_not_its_padding():
    m = model()
    src, mask = source()
    tgt = torch.randint(5, 97, (3, 6), generator=torch.Generator().manual_seed(2))
    base = m(src, tgt, mask)
    other = src.clone()
    other[:, 1] = (other[:, 1] + 1) % 90 + 5
    assert not torch.allclose(base, m(other, tgt, mask), atol=1e-3)
    padded = src.clone()
    padded[2, mask[2] == 0] = 50  # change what sits under the padding of row 2
    assert torch.allclose(base, m(padded, tgt, mask), atol=1e-6)


@pytest.mark.parametrize(
    "config",
    [
        TINY,
        B.BartConfig.preset("cpu"),
        B.BartConfig(
            vocab_size=300,
            hidden=48,
            encoder_layers=3,
            decoder_layers=1,
            heads=6,
            intermediate=80,
            max_position=100,
        ),  # fmt: skip
    ],
    ids=["tiny", "cpu", "uneven"],
)
def test_parameter_count_equals_transformers(config):
    with torch.device("meta"):
        ours = count_module(B.BartModel(config))
        theirs = sum(
            p.numel() for p in transformers.BartModel(B.bart_config_to_hf(config)).parameters()
        )
    assert ours == theirs == B.count(config)["total"]  # fmt: skip


def test_outputs_equal_transformers():
    m = model()
    hf = B.to_transformers(m)
    src, mask = source()
    tgt = torch.randint(5, 97, (3, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        theirs = hf(input_ids=src, attention_mask=mask, decoder_input_ids=tgt)
        ours = m(src, tgt, mask)
        memory = m.encode(src, mask)
    assert torch.allclose(ours, theirs.logits, atol=1e-5)
    real = mask.bool()
    assert torch.allclose(memory[real], theirs.encoder_last_hidden_state[real], atol=1e-5)


# -- decoding --------------------------------------------------------------------------------


def test_greedy_equals_beam_search_with_one_beam():
    m = model()
    src, mask = source()
    g_ids, g_scores = B.greedy_decode(m, src, mask, max_len=15)
    b_ids, b_scores = B.beam_search(m, src, mask, beams=1, max_len=15)
    assert torch.equal(g_ids, b_ids)
    assert torch.allclose(g_scores, b_scores, atol=1e-5)
    assert torch.allclose(B.sequence_log_probs(m, src, g_ids, mask), g_scores, atol=1e-4)


@pytest.fixture(scope="module")
def overfit():
    """A tiny model trained for 80 steps on two noised sentences: (model, batches, history)."""
    config = B.BartConfig.preset("tiny", vocab_size=40, max_position=16, hidden=32)
    sentences = [[5, 9, 13, 17, 21, 25, 29], [6, 8, 10, 12, 14]]
    batches = B.DenoisingBatches(sentences, config, batch_size=2)
    torch.manual_seed(0)
    m = B.BartModel(config)
    train = TrainConfig(steps=80, lr=3e-3, warmup=5, device="cpu", progress=False, log_every=10)
    history = Trainer(m, B.denoising_loss, batches, train).fit()
    return m.eval(), batches, history


def test_a_tiny_model_overfits_two_sentences(overfit):
    m, batches, history = overfit
    assert history.loss[-1] < 0.25 * history.loss[0], history.loss
    b = batches(1000)  # noise it has not seen: it still writes the sentences back
    out, _ = B.greedy_decode(m, b["src_ids"], b["src_mask"])
    labels = b["labels"].masked_fill(b["labels"] == -100, 0)
    assert torch.equal(out[:, : labels.size(1)], labels)


def test_beam_search_finds_a_sequence_at_least_as_likely_as_greedy(overfit):
    """Not a theorem (greedy's prefix can fall out of the beam and do better than what stays),
    but what a trained model's peaked distributions give; checked on unseen random sources."""
    m, _, _ = overfit
    src = torch.randint(5, 40, (16, 9), generator=torch.Generator().manual_seed(3))
    g_ids, g_scores = B.greedy_decode(m, src)
    b_ids, b_scores = B.beam_search(m, src, beams=4, length_penalty=0.0)
    assert torch.all(b_scores >= g_scores - 1e-4)
    assert (b_scores > g_scores + 1e-3).any()  # and sometimes strictly better
    assert torch.allclose(B.sequence_log_probs(m, src, b_ids), b_scores, atol=1e-4)


def test_train_writes_a_folder_that_loads_back(tmp_path, data_mirror):
    config = B.BartConfig.preset("tiny", steps=4, eval_sentences=8)
    trained = B.train(config, tmp_path, progress=False)
    assert set(trained.metrics) >= {"loss", "accuracy", "seconds", "parameters"}
    again = B.load_folder(tmp_path)
    src = torch.tensor([[2, 10, 11, 12, 3]])
    assert torch.equal(trained.model(src, src), again.model(src, src))
    assert not (tmp_path / "checkpoint.safetensors").exists()  # the weights are kept instead


# -- errors ----------------------------------------------------------------------------------


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown preset 'huge'.*'cpu', 'gpu', 'tiny'"):
        B.BartConfig.preset("huge")


def test_input_checks_can_be_switched_off(monkeypatch):
    m = model().eval()
    src, tgt = torch.ones(2, 5, dtype=torch.long), torch.tensor([[2, 7], [2, 8]])
    checked = []
    monkeypatch.setattr(B, "check_ids", lambda config, ids, name, mask=None: checked.append(name))
    with torch.no_grad():
        on = m(src, tgt)
        assert checked == ["src_ids", "tgt_ids"]
        m.check_inputs = False
        off = m(src, tgt)
    assert checked == ["src_ids", "tgt_ids"]  # no call more with the checks off
    torch.testing.assert_close(on, off, rtol=0, atol=0)


def test_bad_inputs_say_what_to_change():
    m = model()
    with pytest.raises(B.BartInputError, match="max_position=24"):
        m(torch.ones(1, 30, dtype=torch.long), torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(B.BartInputError, match="tgt_ids has length 25.*max_position=24"):
        m(torch.ones(1, 5, dtype=torch.long), torch.ones(1, 25, dtype=torch.long))
    with pytest.raises(B.BartInputError, match="unsqueeze"):
        m.encode(torch.ones(5, dtype=torch.long))
    vocab = m.config.vocab_size
    with pytest.raises(B.BartInputError, match=rf"src_ids must be in \[0, vocab_size={vocab}\)"):
        m.encode(torch.full((1, 4), vocab, dtype=torch.long))
    with pytest.raises(B.BartInputError, match="tgt_ids must be in.*from -1"):
        m(torch.ones(1, 4, dtype=torch.long), torch.tensor([[2, -1]]))
    with pytest.raises(B.BartInputError, match="src_mask has shape"):
        m.encode(torch.ones(2, 5, dtype=torch.long), torch.ones(2, 4))
    with pytest.raises(ValueError, match="mask_ratio"):
        B.BartConfig(mask_ratio=1.5)
    with pytest.raises(ValueError, match="divisible"):
        B.BartConfig(hidden=30, heads=4)
