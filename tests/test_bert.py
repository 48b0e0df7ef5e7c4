"""bertlab.bert: config, the two attention paths, masks, heads and input errors (random weights).

Equivalence with ``transformers`` (random and real weights) is in ``test_hf.py``.
"""

from __future__ import annotations

import pytest
import torch
from helpers import padded_pair_batch

from bertlab.bert import (
    BertConfig,
    BertConfigError,
    BertForPreTraining,
    BertInputError,
    BertModel,
    MLMHead,
)
from bertlab.finetune import (
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)

SMALL = dict(vocab_size=97, hidden=32, layers=2, heads=4, intermediate=64, max_position=24)


def small_model(seed: int = 0, **overrides) -> BertModel:
    torch.manual_seed(seed)
    model = BertModel(BertConfig(**(SMALL | overrides))).eval()
    with torch.no_grad():  # larger than BERT's init, so that differences would show
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def batch(vocab: int = 97, B: int = 3, T: int = 16, seed: int = 1):
    """Ids, two segments, and padding of different lengths (row 0 has none)."""
    return padded_pair_batch(vocab, B, T, seed, pad_step=3)


# -- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, layers, hidden",
    [
        ("tiny", 2, 128),
        ("mini", 4, 256),
        ("small", 4, 512),
        ("medium", 8, 512),
        ("base", 12, 768),
        ("large", 24, 1024),
    ],
)
def test_presets(name, layers, hidden):
    cfg = BertConfig.named(name)
    assert (cfg.layers, cfg.hidden) == (layers, hidden)
    assert cfg.heads == hidden // 64 and cfg.intermediate == 4 * hidden
    assert cfg.vocab_size == 30522 and cfg.max_position == 512 and cfg.type_vocab == 2
    assert cfg.head_size == 64


def test_preset_overrides_and_defaults_are_base():
    cfg = BertConfig.named("mini", vocab_size=1000, max_position=128, causal=True)
    assert (cfg.vocab_size, cfg.max_position, cfg.causal, cfg.hidden) == (1000, 128, True, 256)
    assert BertConfig() == BertConfig.named("base")
    assert BertConfig(**BertConfig.named("tiny").to_dict()) == BertConfig.named("tiny")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hidden=100, heads=12), r"hidden=100 is not divisible by heads=12.*divisors"),
        (dict(layers=0), r"layers must be a positive integer"),
        (dict(vocab_size=-5), r"vocab_size must be a positive integer"),
        (dict(dropout=1.0), r"dropout must be a probability in \[0, 1\)"),
        (dict(attention_dropout=-0.1), r"attention_dropout must be a probability"),
        (dict(max_position=0), r"max_position must be a positive integer"),
        (dict(layer_norm_eps=0.0), r"layer_norm_eps must be > 0"),
        (dict(pad_token_id=97), r"pad_token_id=97 is not an id"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(BertConfigError, match=message):
        BertConfig(**(SMALL | kwargs))
    assert issubclass(BertConfigError, ValueError)


# -- the model -------------------------------------------------------------------------------


def test_output_shapes_and_pooler():
    model = small_model()
    ids, types, mask = batch()
    with torch.no_grad():
        out = model(ids, types, mask, output_attentions=True, output_hidden_states=True)
    B, T = ids.shape
    assert out.last_hidden_state.shape == (B, T, 32)
    assert out.pooled.shape == (B, 32)
    assert len(out.hidden_states) == 3 and all(h.shape == (B, T, 32) for h in out.hidden_states)
    assert len(out.attentions) == 2 and all(a.shape == (B, 4, T, T) for a in out.attentions)
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
    pooled = torch.tanh(model.pooler(out.last_hidden_state[:, 0]))
    torch.testing.assert_close(out.pooled, pooled)
    plain = model(ids, types, mask)
    assert plain.hidden_states is None and plain.attentions is None


def test_sdpa_and_explicit_paths_agree():
    model = small_model()
    ids, types, mask = batch()
    with torch.no_grad():
        fast = model(ids, types, mask, output_hidden_states=True)
        slow = model(ids, types, mask, output_attentions=True, output_hidden_states=True)
    torch.testing.assert_close(fast.last_hidden_state, slow.last_hidden_state, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast.pooled, slow.pooled, atol=1e-5, rtol=1e-5)
    for a, b in zip(fast.hidden_states, slow.hidden_states):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_attention_probabilities_are_distributions_that_skip_padding():
    model = small_model()
    ids, types, mask = batch()
    with torch.no_grad():
        attentions = model(ids, types, mask, output_attentions=True).attentions
    for probs in attentions:  # (B, A, T, T)
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))
        keys_hidden = (mask == 0)[:, None, None, :].expand_as(probs)
        assert probs[keys_hidden].abs().max() == 0


def test_padding_does_not_change_real_tokens():
    model = small_model()
    ids, types, _ = batch(B=1, T=10)
    padded_ids = torch.cat([ids, torch.zeros(1, 6, dtype=torch.long)], dim=1)
    padded_types = torch.cat([types, torch.zeros(1, 6, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 10), torch.zeros(1, 6)], dim=1).long()
    with torch.no_grad():
        short = model(ids, types)
        for attn in (False, True):
            long = model(padded_ids, padded_types, mask, output_attentions=attn)
            torch.testing.assert_close(long.last_hidden_state[:, :10], short.last_hidden_state)
            torch.testing.assert_close(long.pooled, short.pooled)


def test_mask_of_all_ones_and_bool_mask_equal_no_mask():
    model = small_model()
    ids, types, _ = batch(B=2)
    with torch.no_grad():
        ref = model(ids, types).last_hidden_state
        ones = model(ids, types, torch.ones_like(ids)).last_hidden_state
        as_bool = model(ids, types, torch.ones_like(ids, dtype=torch.bool)).last_hidden_state
    torch.testing.assert_close(ones, ref)
    torch.testing.assert_close(as_bool, ref)


def test_segments_and_positions_matter():
    model = small_model()
    ids, types, mask = batch(B=1)
    with torch.no_grad():
        a = model(ids, types).last_hidden_state
        b = model(ids).last_hidden_state  # all segment 0
        c = model(ids.flip(1), types).last_hidden_state.flip(1)  # same tokens, other positions
    assert not torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, c, atol=1e-4)


def test_default_segment_is_zero():
    model = small_model()
    ids, _, _ = batch(B=2)
    with torch.no_grad():
        torch.testing.assert_close(
            model(ids).last_hidden_state, model(ids, torch.zeros_like(ids)).last_hidden_state
        )


@pytest.mark.parametrize("attentions", [False, True])
def test_causal_output_ignores_later_tokens(attentions):
    model = small_model(causal=True)
    ids, types, _ = batch(B=2, T=12)
    changed = ids.clone()
    changed[:, 7:] = (changed[:, 7:] + 5) % 97
    with torch.no_grad():
        a = model(ids, types, output_attentions=attentions)
        b = model(changed, types, output_attentions=attentions)
    torch.testing.assert_close(a.last_hidden_state[:, :7], b.last_hidden_state[:, :7])
    assert not torch.allclose(a.last_hidden_state[:, 7:], b.last_hidden_state[:, 7:], atol=1e-4)
    if attentions:
        upper = torch.ones(12, 12, dtype=torch.bool).triu(1)
        assert all(p[..., upper].abs().max() == 0 for p in a.attentions)


def test_causal_with_padding_paths_agree():
    model = small_model(causal=True)
    ids, types, mask = batch()
    with torch.no_grad():
        fast = model(ids, types, mask).last_hidden_state
        slow = model(ids, types, mask, output_attentions=True).last_hidden_state
        bidirectional = small_model()(ids, types, mask).last_hidden_state
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(fast, bidirectional, atol=1e-3)


def test_init_like_bert():
    torch.manual_seed(0)
    model = BertModel(BertConfig.named("mini", vocab_size=2000))
    w = model.embeddings.token.weight
    assert abs(w.std().item() - 0.02) < 1e-3 and abs(w.mean().item()) < 1e-3
    layer = model.layers[0]
    assert abs(layer.ffn_in.weight.std().item() - 0.02) < 1e-3
    assert torch.count_nonzero(layer.attention.query.bias) == 0
    assert torch.all(layer.ffn_norm.weight == 1) and torch.all(layer.ffn_norm.bias == 0)


def test_dropout_only_in_training_and_gradients_flow():
    model = small_model()
    ids, types, mask = batch()
    model.train()
    out = model(ids, types, mask)
    a, b = out.last_hidden_state, model(ids, types, mask).last_hidden_state
    assert not torch.allclose(a, b)
    (a.pow(2).mean() + out.pooled.sum()).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(ids).last_hidden_state, model(ids).last_hidden_state)


# -- heads -----------------------------------------------------------------------------------


def test_mlm_decoder_is_tied_to_token_embeddings():
    model = BertForPreTraining(BertConfig(**SMALL))
    assert model.mlm.decoder.weight is model.bert.embeddings.token.weight
    assert model.mlm.bias.shape == (97,) and torch.count_nonzero(model.mlm.bias) == 0
    names = [n for n, _ in model.named_parameters()]
    assert "mlm.decoder.weight" not in names  # the shared tensor is counted once
    untied = MLMHead(BertConfig(**SMALL))
    assert untied.decoder.weight is not model.bert.embeddings.token.weight


def test_mlm_decode_only_positions_equals_full_decode():
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(**SMALL)).eval()
    ids, types, mask = batch()
    with torch.no_grad():
        hidden = model.bert(ids, types, mask).last_hidden_state
        full = model.mlm(hidden)  # (B, T, V)
        chosen = torch.rand(ids.shape, generator=torch.Generator().manual_seed(3)) < 0.3
        picked = model.mlm(hidden, chosen)  # (N, V)
        index = torch.tensor([[0, 5, 2], [1, 1, 9], [15, 3, 4]])
        gathered = model.mlm(hidden, index)  # (B, 3, V)
    assert full.shape == (3, 16, 97) and picked.shape == (int(chosen.sum()), 97)
    torch.testing.assert_close(picked, full[chosen], atol=1e-5, rtol=1e-5)
    expected = torch.stack([full[b, index[b]] for b in range(3)])
    torch.testing.assert_close(gathered, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(BertInputError, match="boolean positions mask must have shape"):
        model.mlm(hidden, chosen[:, :4])


def test_pretraining_outputs():
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig(**SMALL)).eval()
    ids, types, mask = batch()
    with torch.no_grad():
        out = model(ids, types, mask, mlm_positions=mask.bool())
    assert out.mlm_logits.shape == (int(mask.sum()), 97)
    assert out.nsp_logits.shape == (3, 2)
    assert out.encoder.last_hidden_state.shape == (3, 16, 32)


def test_task_models_shapes_and_reuse_of_a_pretrained_encoder():
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(**SMALL))
    before = encoder.embeddings.token.weight.clone()
    ids, types, mask = batch()
    seq = BertForSequenceClassification(encoder, num_labels=3)
    assert seq.bert is encoder and torch.equal(encoder.embeddings.token.weight, before)
    assert seq(ids, types, mask).shape == (3, 3)
    tok = BertForTokenClassification(BertConfig(**SMALL), num_labels=17)
    assert tok(ids, types, mask).shape == (3, 16, 17)
    start, end = BertForQuestionAnswering(encoder)(ids, types, mask)
    assert start.shape == end.shape == (3, 16)
    with pytest.raises(BertConfigError, match="num_labels must be a positive integer"):
        BertForSequenceClassification(encoder, num_labels=0)


# -- input errors ----------------------------------------------------------------------------


def test_sequence_longer_than_max_position():
    model = small_model()
    with pytest.raises(BertInputError, match=r"length 30 is longer than max_position=24.*truncate"):
        model(torch.ones(2, 30, dtype=torch.long))
    assert issubclass(BertInputError, ValueError)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda ids: dict(token_type_ids=torch.full_like(ids, 2)), r"token_type_ids must be in \["),
        (lambda ids: dict(token_type_ids=-torch.ones_like(ids)), r"token_type_ids must be in \["),
        (lambda ids: dict(input_ids=ids + 200), r"input_ids must be in \[0, vocab_size=97\)"),
        (lambda ids: dict(input_ids=ids[0]), r"must be 2-D.*unsqueeze\(0\)"),
        (lambda ids: dict(input_ids=ids[None]), r"must be 2-D \(batch, sequence\)"),
        (lambda ids: dict(input_ids=ids.float()), r"integer token ids"),
        (lambda ids: dict(input_ids=ids.tolist()), r"must be a torch.Tensor"),
        (lambda ids: dict(input_ids=ids[:, :0]), r"length 0"),
        (lambda ids: dict(token_type_ids=ids[:, :5] * 0), r"token_type_ids has shape \(2, 5\)"),
        (lambda ids: dict(attention_mask=torch.ones(2, 9)), r"attention_mask has shape \(2, 9\)"),
    ],
)
def test_bad_inputs_raise_clear_errors(make, message):
    model = small_model()
    ids = torch.randint(0, 97, (2, 8))
    kwargs = dict(input_ids=ids) | make(ids)
    with pytest.raises(BertInputError, match=message):
        model(**kwargs)


def test_input_checks_can_be_switched_off():
    model = small_model()
    model.check_inputs = False
    ids = torch.randint(0, 97, (2, 8))
    assert model(ids).last_hidden_state.shape == (2, 8, 32)


def test_sequence_classification_mean_pooling_ignores_padding():
    torch.manual_seed(0)
    model = BertForSequenceClassification(
        BertConfig.named("tiny", vocab_size=100), 3, pooling="mean"
    )
    model.eval()
    ids = torch.tensor([[2, 5, 7, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
    padded = model(ids, attention_mask=mask)
    unpadded = model(ids[:, :4], attention_mask=mask[:, :4])
    torch.testing.assert_close(padded, unpadded, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="pooling must be 'cls' or 'mean'"):
        BertForSequenceClassification(BertConfig.named("tiny"), 2, pooling="max")


# -- ALBERT's options and the input checks on their own --------------------------------------


def test_factorized_embedding_and_shared_layers():
    cfg = BertConfig(**(SMALL | dict(embedding_size=8, share_layers=True)))
    torch.manual_seed(0)
    model = BertForPreTraining(cfg).eval()
    bert = model.bert
    assert len(bert.layers) == 1 and len(bert.stack()) == 2
    assert all(layer is bert.layers[0] for layer in bert.stack())
    assert bert.embeddings.token.weight.shape == (97, 8)
    assert bert.embeddings.project.weight.shape == (32, 8)  # E -> H
    assert model.mlm.decoder.weight is bert.embeddings.token.weight  # tied at width E
    ids, types, mask = batch()
    out = model(ids, types, mask, output_hidden_states=True)
    assert out.mlm_logits.shape == (3, 16, 97)
    assert len(out.encoder.hidden_states) == 3  # the embeddings + the shared layer, twice
    out.mlm_logits.sum().backward()
    assert bert.layers[0].ffn_in.weight.grad is not None
    with pytest.raises(BertConfigError, match="embedding_size must be a positive integer"):
        BertConfig(**(SMALL | dict(embedding_size=0)))


def test_plain_bert_has_no_projection_and_distinct_layers():
    model = small_model()
    assert model.embeddings.project is None
    assert len(model.layers) == 2 and model.stack()[0] is not model.stack()[1]


def test_check_inputs_is_a_function_of_the_config():
    from bertlab.bert_checks import check_inputs

    cfg = BertConfig(**SMALL)
    check_inputs(cfg, torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(BertInputError, match="longer than max_position=24"):
        check_inputs(cfg, torch.zeros(1, 25, dtype=torch.long))


def test_bert_reexports_the_checks_module():
    # one definition of each error: `except BertInputError` catches it from either import
    from bertlab import bert, bert_checks

    for name in bert_checks.__all__:
        assert getattr(bert, name) is getattr(bert_checks, name)
        assert name in bert.__all__


def test_unchecked_model_with_padding_gives_the_same_output():
    model = small_model()
    ids, types, mask = batch()
    with torch.no_grad():
        checked = model(ids, types, mask).last_hidden_state
        model.check_inputs = False
        unchecked = model(ids, types, mask).last_hidden_state
        full = model(ids, types, torch.ones_like(mask)).last_hidden_state
        model.check_inputs = True
        none = model(ids, types).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(checked[real], unchecked[real], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(full, none, atol=1e-6, rtol=1e-6)
