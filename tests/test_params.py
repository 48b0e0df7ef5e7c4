"""bertlab.params: exact counts by formula = our model = transformers; the notes' formula."""

from __future__ import annotations

import math

import pytest
import torch
import transformers

from bertlab import hf
from bertlab.bert import BertConfig, BertForPreTraining, BertModel, SelfAttention
from bertlab.params import PRESETS, count, count_module, count_pretraining_heads, notes_estimate

KNOWN_TOTALS = {
    "tiny": 4_385_920,
    "mini": 11_170_560,
    "small": 28_763_648,
    "medium": 41_373_184,
    "base": 109_482_240,
    "large": 335_141_888,
}


def hf_config(cfg: BertConfig) -> transformers.BertConfig:
    return transformers.BertConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.intermediate,
        max_position_embeddings=cfg.max_position,
        type_vocab_size=cfg.type_vocab,
    )


def numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", PRESETS)
def test_count_equals_known_totals_our_model_and_transformers(name):
    cfg = BertConfig.named(name)
    total = count(cfg)["total"]
    assert total == KNOWN_TOTALS[name]
    with torch.device("meta"):  # no memory, no init time, even for BERT-large
        ours = BertModel(cfg)
        theirs = transformers.BertModel(hf_config(cfg))
    assert numel(ours) == count_module(ours) == total
    assert numel(theirs) == total


def test_components_match_the_modules():
    cfg = BertConfig.named("mini", vocab_size=1234, max_position=77, type_vocab=3)
    c = count(cfg)
    with torch.device("meta"):
        model = BertModel(cfg)
    emb = model.embeddings
    assert c["token_embeddings"] == emb.token.weight.numel() == 1234 * 256
    assert c["position_embeddings"] == emb.position.weight.numel() == 77 * 256
    assert c["segment_embeddings"] == emb.segment.weight.numel() == 3 * 256
    assert c["embedding_layernorm"] == numel(emb.norm)
    assert c["embeddings"] == numel(emb)
    layer = model.layers[0]
    att = layer.attention
    for name, module in (
        ("query", att.query),
        ("key", att.key),
        ("value", att.value),
        ("attention_output", att.out),
    ):
        assert c[f"layer.{name}.weight"] == module.weight.numel()
        assert c[f"layer.{name}.bias"] == module.bias.numel()
    assert c["layer.attention"] == numel(att)
    assert c["layer.attention_layernorm"] == numel(layer.attention_norm)
    assert c["layer.ffn_in.weight"] + c["layer.ffn_in.bias"] == numel(layer.ffn_in)
    assert c["layer.ffn_out.weight"] + c["layer.ffn_out.bias"] == numel(layer.ffn_out)
    assert c["layer.ffn"] == numel(layer.ffn_in) + numel(layer.ffn_out)
    assert c["layer.output_layernorm"] == numel(layer.ffn_norm)
    assert c["layer"] == numel(layer)
    assert c["layers"] == cfg.layers * c["layer"] == numel(model.layers)
    assert c["pooler"] == numel(model.pooler)
    assert c["total"] == c["embeddings"] + c["layers"] + c["pooler"] == numel(model)


def test_seed_formula_reproduces_the_notes():
    base, large = BertConfig.named("base"), BertConfig.named("large")
    assert notes_estimate(base, vocab_size=30000) == 30000 * 768 + 12 * 12 * 768**2 == 107_974_656
    assert notes_estimate(large, vocab_size=30000) == 332_709_888
    # the notes write 107.9M and 332.7M (truncated to one decimal)
    assert math.floor(notes_estimate(base, 30000) / 1e5) / 10 == 107.9
    assert math.floor(notes_estimate(large, 30000) / 1e5) / 10 == 332.7
    # with BERT's real vocabulary, and what it leaves out
    assert notes_estimate(base) == 30522 * 768 + 12 * 12 * 768**2
    for cfg in (base, large, BertConfig.named("tiny")):
        c = count(cfg)
        H, L = cfg.hidden, cfg.layers
        left_out = (
            c["position_embeddings"]
            + c["segment_embeddings"]
            + c["embedding_layernorm"]
            + L * (4 * H + (4 * H + H) + 2 * 2 * H)  # biases and two LayerNorms per layer
            + c["pooler"]
        )
        assert c["total"] - notes_estimate(cfg) == left_out


def test_attention_parameters_do_not_depend_on_heads():
    counts = set()
    for heads in (1, 2, 4, 8, 16, 32):
        cfg = BertConfig(hidden=256, layers=1, heads=heads, intermediate=1024, vocab_size=10)
        with torch.device("meta"):
            counts.add(numel(SelfAttention(cfg)))
        counts.add(count(cfg)["layer.attention"])
    assert counts == {4 * 256 * 256 + 4 * 256}


@pytest.mark.parametrize("name", ["tiny", "base"])
def test_pretraining_heads(name):
    cfg = BertConfig.named(name)
    heads = count_pretraining_heads(cfg)
    assert heads["mlm.decoder.weight"] == 0  # tied to the token embeddings
    with torch.device("meta"):
        ours = BertForPreTraining(cfg)
        theirs = transformers.BertForPreTraining(hf_config(cfg))
    assert count_module(ours) == numel(ours) == count(cfg)["total"] + heads["total"]
    assert numel(theirs) == count(cfg)["total"] + heads["total"]
    if name == "base":
        assert numel(theirs) == 110_106_428


# -- ALBERT: factorized embeddings and shared layers ------------------------------------------


@pytest.mark.parametrize(
    "cfg",
    [
        BertConfig.named("albert_base"),
        BertConfig(
            vocab_size=500,
            hidden=64,
            layers=3,
            heads=4,
            intermediate=96,
            max_position=40,
            embedding_size=16,
            share_layers=True,
        ),  # fmt: skip
    ],
    ids=["albert-base", "small"],
)
def test_albert_counts_equal_transformers(cfg):
    total = count(cfg)["total"]
    with torch.device("meta"):
        ours = BertModel(cfg)
        theirs = transformers.AlbertModel(hf.albert_config(cfg))
    assert numel(ours) == total == numel(theirs)
    if cfg == BertConfig.named("albert_base"):
        assert total == 11_683_584
    heads = count_pretraining_heads(cfg)["total"]
    with torch.device("meta"):
        assert count_module(BertForPreTraining(cfg)) == total + heads
        mlm = transformers.AlbertForMaskedLM(hf.albert_config(cfg)).predictions
    # theirs: the MLM head with its decoder (V, E), which ours ties to the embeddings; no NSP
    assert numel(mlm) - cfg.vocab_size * cfg.embedding_width == heads - (2 * cfg.hidden + 2)


def test_each_albert_saving_alone():
    base = BertConfig.named("base")
    factorized = BertConfig.named("base", embedding_size=128)
    shared = BertConfig.named("base", share_layers=True)
    c, f, s = count(base), count(factorized), count(shared)
    V, H, E = base.vocab_size, base.hidden, 128
    assert c["embeddings"] - f["embeddings"] == (V + 512 + 2) * (H - E) + 2 * (H - E) - (E * H + H)
    assert c["total"] - s["total"] == 11 * c["layer"]
    for cfg in (factorized, shared):
        with torch.device("meta"):
            assert count_module(BertModel(cfg)) == count(cfg)["total"]
