"""bertlab.gpt: per-word perplexity, sampling, GPT-style fine-tuning, presets and errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bertlab import gpt
from bertlab import pretraining as P
from bertlab.bert import BertConfig, BertForPreTraining, BertInputError
from bertlab.data import GlueExample
from bertlab.wordpiece import WordPieceTokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "##s", "sat", "on",
         "mat", "a", "dog", ",", "1", "000", ".", "good", "bad"]  # fmt: skip


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer(VOCAB)


def tiny_lm(max_position: int = 32, causal: bool = True, seed: int = 0) -> BertForPreTraining:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden=16, layers=2, heads=2, intermediate=32,
                        max_position=max_position, dropout=0.0, attention_dropout=0.0,
                        causal=causal)  # fmt: skip
    return BertForPreTraining(config).eval()


# -- perplexity per word ---------------------------------------------------------------------------


def test_word_perplexity_is_exp_of_mean_word_nll(tok):
    model = tiny_lm()
    sentences = [["the", "cats", "sat", "."], ["1", "@,@", "000", "dog"]]
    result = gpt.word_perplexity(model, tok, sentences)
    # by hand: each word's NLL is the sum over its pieces; the sentence end is one more word
    word_nll = []
    for pieces_per_word in ([["the"], ["cat", "##s"], ["sat"], ["."]],
                            [["1", ",", "000"], ["dog"]]):  # fmt: skip
        flat = [p for w in pieces_per_word for p in w] + ["[SEP]"]
        ids = torch.tensor([[2, 3, *tok.convert_tokens_to_ids(flat)]])
        with torch.no_grad():
            logp = model(ids).mlm_logits[0, 1:-1].log_softmax(-1)  # predicts ids[2:]
        nll = -logp.gather(1, ids[0, 2:, None]).squeeze(1)
        k = 0
        for w in pieces_per_word:
            word_nll.append(float(nll[k : k + len(w)].sum()))
            k += len(w)
        word_nll.append(float(nll[k]))  # the sentence end
    # "1 @,@ 000" is three WikiText words (chapter 2 counts them so); their pieces are 1 , 000
    words = sum(len(s) + 1 for s in sentences)
    assert result["words"] == words == 10
    assert result["pieces"] == 5 + 4 + 2
    total = sum(word_nll)
    assert result["per_word"] == pytest.approx(math.exp(total / words), rel=1e-5)
    assert result["per_piece"] == pytest.approx(math.exp(total / 11), rel=1e-5)


def test_windows_predict_every_position_once():
    ids = list(range(23))
    for length in (4, 5, 8, 30):
        covered = []
        for window, first in gpt._windows(ids, length, first=2):
            assert 2 <= len(window) <= length
            start = window[0]
            covered += [start + t for t in range(first, len(window))]
        assert covered == list(range(2, 23))


def test_word_perplexity_windows_long_sentences(tok):
    sentence = ["the", "cat", "sat", "on", "the", "mat", "."] * 3  # 21 words, 24 positions
    short = gpt.word_perplexity(tiny_lm(max_position=8), tok, [sentence])
    assert short["pieces"] == 22 and short["words"] == 22
    assert math.isfinite(short["per_word"])


# -- sampling --------------------------------------------------------------------------------------


def test_sampling_is_seeded_and_batching_does_not_change_greedy(tok):
    model = tiny_lm()
    prompts = ["the cat", "a dog sat on the"]
    one = gpt.sample(model, tok, prompts, max_new_tokens=6, seed=3, stop_at_sep=False)
    assert one == gpt.sample(model, tok, prompts, max_new_tokens=6, seed=3, stop_at_sep=False)
    others = {tuple(gpt.sample(model, tok, prompts, 6, seed=s, stop_at_sep=False))
              for s in range(3)}  # fmt: skip
    assert len(others) > 1  # the seed matters
    assert all(o.startswith(p) for o, p in zip(one, prompts))
    greedy = gpt.sample(model, tok, prompts, 6, top_k=1, stop_at_sep=False)
    alone = [gpt.sample(model, tok, [p], 6, top_k=1, stop_at_sep=False)[0] for p in prompts]
    assert greedy == alone  # right padding of the shorter prompt changes nothing
    assert "[PAD]" not in " ".join(greedy) and "[CLS]" not in " ".join(greedy)


# -- fine-tuning model -----------------------------------------------------------------------------


def test_last_token_state_does_not_depend_on_padding(tok):
    model = gpt.GPTForSequenceClassification(tiny_lm(), 2).eval()
    examples = [GlueExample("the cat sat", None, 0), GlueExample("a dog sat on the mat .", None, 1)]
    batch = gpt.encode(tok, examples)
    assert batch["attention_mask"][0].sum() < batch["attention_mask"][1].sum()  # row 0 padded
    together = model(batch["input_ids"], batch["attention_mask"]).logits
    alone = gpt.encode(tok, examples[:1])
    by_itself = model(alone["input_ids"], alone["attention_mask"]).logits
    torch.testing.assert_close(together[0], by_itself[0], rtol=1e-5, atol=1e-6)
    garbage = batch["input_ids"].clone()
    garbage[0, batch["attention_mask"][0] == 0] = 7  # what sits in the padding is never read
    torch.testing.assert_close(model(garbage, batch["attention_mask"]).logits, together)
    # and the pair shape ends with [SEP], the token the classifier reads
    pair = gpt.encode(tok, [GlueExample("the cat", "a dog", 1)])["input_ids"][0].tolist()
    assert pair == [2, 5, 6, 3, 11, 12, 3]


def test_aux_loss_on_and_off(tok):
    lm = tiny_lm()
    examples = [GlueExample("the cat sat", None, 0), GlueExample("a dog sat on the mat", None, 1)]
    b = gpt.encode(tok, examples)
    off = gpt.GPTForSequenceClassification(lm, 2, lm_weight=0.0).eval()
    out0 = off(b["input_ids"], b["attention_mask"], b["labels"])
    torch.testing.assert_close(out0.loss, out0.task_loss)
    on = gpt.GPTForSequenceClassification(lm, 2, lm_weight=0.5).eval()
    on.classifier.load_state_dict(off.classifier.state_dict())
    out = on(b["input_ids"], b["attention_mask"], b["labels"])
    torch.testing.assert_close(out.task_loss, out0.task_loss)
    torch.testing.assert_close(out.loss, out.task_loss + 0.5 * out.lm_loss)
    # the auxiliary term is the pre-training module's left-to-right loss on the same text
    ids, mask = b["input_ids"], b["attention_mask"]
    labels = F.pad(torch.where(mask[:, 1:] == 1, ids[:, 1:], -100), (0, 1), value=-100)
    ltr = {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": mask,
           "labels": labels, "rows": len(ids),
           "predicted": int((labels != -100).sum())}  # fmt: skip
    with torch.no_grad():
        expected = P.pretraining_loss(lm, ltr, nsp=False)["mlm_loss"]
    torch.testing.assert_close(out.lm_loss, expected, rtol=1e-5, atol=1e-6)
    out.loss.backward()
    assert lm.mlm.transform.weight.grad is not None  # the LM head learns with the aux loss


def test_matches_transformers_bert_lm_head_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    from bertlab import hf

    lm = tiny_lm()
    hf.save_pretrained(lm, tmp_path)
    theirs = transformers.BertLMHeadModel.from_pretrained(tmp_path, is_decoder=True).eval()
    ids = torch.randint(5, len(VOCAB), (2, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        ours = lm(ids, None, mask).mlm_logits
        ref = theirs(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(ours[mask.bool()], ref[mask.bool()], rtol=1e-4, atol=1e-4)


# -- presets, packing and errors -------------------------------------------------------------------


def test_lm_config_is_gpt_and_packs_a_sep_after_every_sentence():
    config = gpt.lm_config("cpu")
    assert (config.objective, config.nsp, config.packing) == ("ltr", False, "sentences")
    assert config.bert_config(100).causal
    assert gpt.lm_config("tiny", steps=3).steps == 3
    docs = [[[10, 11], [12]], [[13, 14, 15]]]
    seqs = P._sequences(P.PretrainConfig(max_len=8, nsp=False, packing="sentences"), docs)
    assert [s.a for s in seqs] == [[10, 11, 3, 12, 3, 3]]  # [SEP] per sentence, two end a doc


def test_transfer_config_budgets():
    c = gpt.TransferConfig.preset("cpu")
    assert [c.steps_for(n) for n in c.sizes] == [30, 30, 32, 128]
    assert gpt.TransferConfig.preset("tiny").lm == "tiny"


def test_bad_input_names_the_fix(tok):
    with pytest.raises(ValueError, match="unknown GPT preset 'huge'.*'cpu'"):
        gpt.lm_config("huge")
    with pytest.raises(ValueError, match="unknown preset"):
        gpt.TransferConfig.preset("huge")
    model = tiny_lm(max_position=12)
    with pytest.raises(ValueError, match="no words to score"):
        gpt.word_perplexity(model, tok, [])
    with pytest.raises(ValueError, match="no words to score"):
        gpt.word_perplexity(model, tok, [[]])
    with pytest.raises(ValueError, match="non-empty list"):
        gpt.sample(model, tok, "the cat")
    with pytest.raises(BertInputError, match="shorten the prompt or ask for fewer"):
        gpt.sample(model, tok, ["the cat sat"], max_new_tokens=20)
    with pytest.raises(ValueError, match="causal=True"):
        gpt.GPTForSequenceClassification(tiny_lm(causal=False))
    with pytest.raises(ValueError, match="causal=True"):
        gpt.word_perplexity(tiny_lm(causal=False), tok, [["the"]])
    clf = gpt.GPTForSequenceClassification(model)
    long = gpt.encode(tok, [GlueExample("the cat sat on the mat " * 4, None, 0)])
    with pytest.raises(BertInputError, match="truncate the inputs to at most 12"):
        clf(long["input_ids"], long["attention_mask"])
    with pytest.raises(ValueError, match="init must be"):
        gpt._model(gpt.TransferConfig.preset("tiny"), "random", 0.5, None)


def test_future_influence_is_zero_before_the_change_only_under_the_causal_mask(tok):
    moved = gpt.future_influence(tiny_lm(), tok, "the cat sat on the mat", "dog")
    assert moved["pieces"] == ["[CLS]", "the", "cat", "sat", "on", "the", "mat", "[SEP]"]
    assert max(moved["causal"][:6]) == 0.0 and moved["causal"][6] > 0
    assert min(moved["bidirectional"][:6]) > 0
    with pytest.raises(ValueError, match="one piece each"):
        gpt.future_influence(tiny_lm(), tok, "the cat sat", "cats")
