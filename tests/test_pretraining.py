"""bertlab.pretraining: masking, NSP pairs, the masked-only loss, batches, the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bertlab import pretraining as P
from bertlab.bert import BertConfig, BertForPreTraining

ROOT = Path(__file__).resolve().parents[1]


# -- masking -------------------------------------------------------------------------------


def test_mask_tokens_rates_over_100k_tokens():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (800, 160), generator=g)  # 128,000 tokens
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, 80] = special[:, -1] = True  # [CLS] / [SEP]
    special[::3, 120:] = True  # padding on every third row
    ids[special] = 0
    masked, labels = P.mask_tokens(ids, special, mask_id=4, vocab_size=1000, generator=g)
    selected = labels != -100
    regular = ~special
    rate = selected.sum() / regular.sum()
    assert abs(rate - 0.15) < 0.005, rate
    assert not selected[special].any()  # specials and padding are never selected
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(masked[~selected], ids[~selected])
    n = selected.sum()
    as_mask = (masked[selected] == 4).sum() / n
    kept = (masked[selected] == ids[selected]).sum() / n
    randomised = 1 - as_mask - kept
    assert abs(as_mask - 0.8) < 0.01 and abs(kept - 0.1) < 0.01 and abs(randomised - 0.1) < 0.01
    replaced = masked[selected & (masked != 4) & (masked != ids)]
    assert replaced.min() >= 5 and replaced.max() < 1000  # from the non-special vocabulary


def test_mask_tokens_is_reproducible_and_checks_its_vocabulary():
    ids = torch.randint(5, 50, (4, 20))
    special = torch.zeros_like(ids, dtype=torch.bool)
    a = P.mask_tokens(ids, special, 4, 50, generator=torch.Generator().manual_seed(1))
    b = P.mask_tokens(ids, special, 4, 50, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match="no regular tokens after mask_id"):
        P.mask_tokens(ids, special, 4, 5)


# -- NSP pairs -------------------------------------------------------------------------------


def toy_documents(n_docs=40, seed=0):
    """Documents of numbered sentences: token = doc * 10_000 + sentence * 100 + position."""
    g = torch.Generator().manual_seed(seed)
    docs = []
    for d in range(n_docs):
        n_sent = int(torch.randint(3, 30, (1,), generator=g))
        docs.append([[d * 10_000 + s * 100 + k + 5 for k in range(int(torch.randint(3, 40, (1,),
                     generator=g)))] for s in range(n_sent)])  # fmt: skip
    return docs


def test_nsp_pairs_are_half_true_continuations_and_fit():
    docs = toy_documents(300)
    pairs = P.nsp_pairs(docs, max_len=64, seed=0)
    share = sum(p.is_next for p in pairs) / len(pairs)
    assert abs(share - 0.5) < 0.02, share
    for p in pairs:
        assert len(p.a) >= 1 and len(p.b) >= 1 and len(p.a) + len(p.b) + 3 <= 64
        doc_of = {t // 10_000 for t in p.a}
        assert doc_of == {p.doc}
        if p.is_next:  # B continues A in the same document: positions only go forward
            assert {t // 10_000 for t in p.b} == {p.doc} and p.doc_b == p.doc
            assert (p.a[-1] % 10_000) < (p.b[0] % 10_000)
        else:  # B comes from another document
            assert p.doc_b != p.doc and {t // 10_000 for t in p.b} == {p.doc_b}
    assert P.nsp_pairs(docs, max_len=64, seed=0) == pairs  # seeded
    with pytest.raises(ValueError, match="at least 2 documents"):
        P.nsp_pairs(docs[:1])


def test_consecutive_pairs_do_not_skip_text():
    """IsNext pairs built from two or more sentences keep the sentences whole and in order."""
    docs = toy_documents(100, seed=3)
    for p in P.nsp_pairs(docs, max_len=512, short_seq_prob=0.0, seed=1):
        if p.is_next:
            tokens = [t % 10_000 for t in p.a + p.b]
            assert tokens == sorted(tokens)


def test_full_sequences_pack_the_text():
    docs = toy_documents(10)
    seqs = P.full_sequences(docs, max_len=32, sep_id=3)
    assert all(len(s.a) == 30 and s.b == [] for s in seqs)
    stream = [t for d in docs for t in [*[x for s in d for x in s], 3]]
    assert [t for s in seqs for t in s.a] == stream[: 30 * len(seqs)]


def test_wikitext_is_cleaned_for_wordpiece():
    text = "the 1 @,@ 000 @-@ strong army of <unk> ( 1 @.@ 5 km )"
    assert P.clean_wikitext(text) == "the 1,000-strong army of [UNK] ( 1.5 km )"


# -- the loss --------------------------------------------------------------------------------


def tiny_batch(seed=0, B=4, T=24, V=60):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (B, T), generator=g)
    ids[:, 0], ids[:, T // 2], ids[:, -1] = 2, 3, 3
    mask = torch.ones_like(ids)
    mask[1, -5:] = 0
    ids[1, -5:] = 0
    types = torch.zeros_like(ids)
    types[:, T // 2 + 1 :] = 1
    special = (ids == 2) | (ids == 3) | (ids == 0)
    masked, labels = P.mask_tokens(ids, special, 4, V, prob=0.3, generator=g)
    return {"input_ids": masked, "token_type_ids": types, "attention_mask": mask,
            "labels": labels, "nsp_labels": torch.tensor([0, 1, 1, 0])[:B],
            "predicted": int((labels != -100).sum()), "rows": B}  # fmt: skip


def tiny_model(V=60, **kw):
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=V, hidden=32, layers=2, heads=4, intermediate=64,
                     max_position=32, dropout=0.0, attention_dropout=0.0, **kw)  # fmt: skip
    return BertForPreTraining(cfg).eval()


def test_masked_only_loss_equals_full_decoding():
    model, b = tiny_model(), tiny_batch()
    with torch.no_grad():
        out = P.pretraining_loss(model, b)
        full = model(b["input_ids"], b["token_type_ids"], b["attention_mask"])  # (B, T, V)
    mlm = F.cross_entropy(full.mlm_logits.view(-1, 60), b["labels"].view(-1), ignore_index=-100)
    nsp = F.cross_entropy(full.nsp_logits, b["nsp_labels"])
    assert abs(float(out["mlm_loss"]) - float(mlm)) < 1e-5
    assert abs(float(out["nsp_loss"]) - float(nsp)) < 1e-5
    assert abs(float(out["loss"]) - float(mlm + nsp)) < 1e-5
    sel = b["labels"] != -100
    acc = (full.mlm_logits[sel].argmax(-1) == b["labels"][sel]).float().mean()
    assert abs(float(out["mlm_accuracy"]) - float(acc)) < 1e-6


def test_loss_of_a_split_batch_averages_to_the_whole():
    """Micro-batches (or processes) each scale their sum by the global count of predictions."""
    from bertlab.train import slice_batch

    model, b = tiny_model(), tiny_batch(B=4)
    with torch.no_grad():
        whole = P.pretraining_loss(model, b)["mlm_loss"]
        halves = [P.pretraining_loss(model, slice_batch(b, i, i + 2))["mlm_loss"] for i in (0, 2)]
    assert abs(float(whole) - float(sum(halves) / 2)) < 1e-5


def test_left_to_right_objective_needs_no_nsp():
    with pytest.raises(ValueError, match="nsp=True needs sentence pairs"):
        P.PretrainConfig(objective="ltr")
    with pytest.raises(ValueError, match="nsp=True needs sentence pairs"):
        P.PretrainConfig(packing="full")
    config = P.PretrainConfig(objective="ltr", nsp=False)
    assert config.bert_config(100).causal


# -- configs and bad input --------------------------------------------------------------------


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown preset 'tpu'.*'cpu', 'gpu', 'tiny'"):
        P.PretrainConfig.preset("tpu")
    with pytest.raises(ValueError, match="max_len=600 is above max_position=512"):
        P.PretrainConfig(max_len=600)
    with pytest.raises(ValueError, match="unknown masking 'sometimes'"):
        P.PretrainConfig(masking="sometimes")


def test_a_corpus_too_small_for_one_batch_is_refused():
    pairs = P.nsp_pairs(toy_documents(3), max_len=64)
    from bertlab.wordpiece import WordPieceTokenizer

    tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"])
    with pytest.raises(ValueError, match="fewer than one batch of 512"):
        P.Batches(pairs, P.PretrainConfig(), tok, batch_size=512)


# -- batches ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batches():
    from bertlab.wordpiece import WordPieceTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(400_000)]
    tok = WordPieceTokenizer(vocab)
    pairs = P.nsp_pairs(toy_documents(40), max_len=64)
    return tok, pairs


@pytest.mark.parametrize("masking", ["static", "dynamic"])
def test_batches_are_a_pure_function_of_the_step(batches, masking):
    tok, pairs = batches
    config = P.PretrainConfig(max_len=64, masking=masking, duplication=2)
    a, b = (P.Batches(pairs, config, tok, 8, seed=5) for _ in range(2))
    for step in (0, 7, 3, 7):
        x, y = a(step), b(step)
        assert all(torch.equal(x[k], y[k]) for k in ("input_ids", "labels", "nsp_labels"))
    per_epoch = len(pairs) // 8
    first, again = a(0), a(2 * per_epoch)  # static: epoch 2 reuses mask copy 0 (duplication 2)
    same_rows = torch.equal(first["nsp_labels"], again["nsp_labels"])
    if masking == "static" and same_rows:
        assert torch.equal(first["labels"], again["labels"])


def test_batch_layout(batches):
    tok, pairs = batches
    b = P.Batches(pairs, P.PretrainConfig(max_len=64), tok, 8)(0)
    ids, types, mask = b["input_ids"], b["token_type_ids"], b["attention_mask"]
    assert ids.shape[1] <= 64 and (ids[:, 0] == 2).all()
    for r in range(len(ids)):
        n = int(mask[r].sum())
        seps = (ids[r, :n] == 3).nonzero().flatten().tolist()
        assert len(seps) == 2 and seps[-1] == n - 1
        assert (types[r, seps[0] + 1 : n] == 1).all() and (types[r, : seps[0] + 1] == 0).all()
    assert b["predicted"] == int((b["labels"] != -100).sum()) and b["rows"] == 8


# -- the command line: resume after kill -9, the Hugging Face folder, several processes ----------


def run_cli(out, *extra, env=None):
    return subprocess.run(
        [sys.executable, "-m", "bertlab.pretraining", "--preset", "tiny", "--out", str(out),
         *extra], capture_output=True, text=True, timeout=600, env=env or os.environ.copy(),
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "run"
    done = run_cli(out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_command_line_ends_with_json_metrics(tiny_run):
    out, summary = tiny_run
    assert summary["preset"] == "tiny" and summary["steps"] == 40
    for key in ("mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy", "unigram_accuracy"):
        assert key in summary
    loaded = P.load_pretrained_folder(out)
    assert loaded.metrics["snapshots"] == [0, 10]
    assert loaded.snapshot(10).config == loaded.model.config


@pytest.mark.slow
def test_kill_9_then_resume_gives_identical_weights(tmp_path, tiny_run):
    from safetensors import safe_open
    from safetensors.torch import load_file

    out, steps = tmp_path / "killed", 150
    proc = subprocess.Popen(
        [sys.executable, "-m", "bertlab.pretraining", "--preset", "tiny", "--out", str(out),
         "--steps", str(steps), "--checkpoint-every", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy(),
    )  # fmt: skip
    ckpt = out / "checkpoint.safetensors"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # right after the first checkpoint: mid-run
    proc.wait()
    assert ckpt.exists(), proc.stderr.read().decode()[-2000:]
    with safe_open(ckpt, "pt") as f:
        killed_at = int(f.metadata()["step"])
    assert 0 < killed_at < steps  # the kill landed before the end
    done = run_cli(out, "--steps", str(steps))
    assert done.returncode == 0, done.stderr[-3000:]
    reference = run_cli(tmp_path / "whole", "--steps", str(steps))
    assert reference.returncode == 0, reference.stderr[-3000:]
    a = load_file(out / "model.safetensors")
    b = load_file(tmp_path / "whole" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_every_must_not_be_negative(tmp_path):
    done = run_cli(tmp_path / "out", "--checkpoint-every", "-1")
    assert done.returncode == 2 and "--checkpoint-every must be 0 or more" in done.stderr


@pytest.mark.slow
def test_out_folder_of_another_config_is_refused(tiny_run, tmp_path):
    import shutil

    out = tmp_path / "other"
    shutil.copytree(tiny_run[0], out)
    done = run_cli(out, "--steps", "41")
    assert done.returncode != 0
    assert "comes from another run" in done.stderr and "'steps': 40" in done.stderr
    assert "'steps': 41" in done.stderr


@pytest.mark.slow
def test_saved_folder_loads_in_transformers_with_the_same_logits(tiny_run):
    import transformers

    out, _ = tiny_run
    ours = P.load_pretrained_folder(out)
    theirs = transformers.BertForPreTraining.from_pretrained(out, output_loading_info=True)
    model, info = theirs
    assert not info["missing_keys"] and not info["unexpected_keys"]
    model.eval()
    b = tiny_batch(V=ours.tokenizer.vocab_size)
    with torch.no_grad():
        mine = ours.model(b["input_ids"], b["token_type_ids"], b["attention_mask"])
        got = model(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"],
                    attention_mask=b["attention_mask"])  # fmt: skip
    real = b["attention_mask"].bool()
    assert (mine.mlm_logits[real] - got.prediction_logits[real]).abs().max() < 1e-4
    assert (mine.nsp_logits - got.seq_relationship_logits).abs().max() < 1e-5
    fill = transformers.pipeline("fill-mask", model=str(out), device="cpu")
    guesses = fill("the city is in the [MASK] of the country .")
    assert len(guesses) == 5 and all("token_str" in g for g in guesses)


@pytest.mark.slow
def test_two_processes_equal_one(tiny_run, tmp_path):
    """torchrun with 2 CPU processes trains the same weights as one process (within 1e-5)."""
    from safetensors.torch import load_file

    out = tmp_path / "ddp"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "bertlab.pretraining", "--preset", "tiny", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    a = load_file(out / "model.safetensors")
    b = load_file(tiny_run[0] / "model.safetensors")
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5, worst


def test_presets_fit_their_model():
    cpu = P.PretrainConfig.preset("cpu")
    assert cpu.bert_config(cpu.vocab_size).max_position >= cpu.max_len
    assert replace(cpu, nsp=False).nsp is False


# -- what the chapter shows --------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_tokenizer():
    from bertlab.wordpiece import WordPieceTokenizer

    words = "the cat sat on a mat dog ran in park".split()
    return WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])


def test_fill_mask_and_each_piece(toy_tokenizer):
    model = tiny_model(V=toy_tokenizer.vocab_size)
    guesses = P.fill_mask(model, toy_tokenizer, "the [MASK] sat on the [MASK]", k=3)
    assert len(guesses) == 2 and all(len(g) == 3 for g in guesses)
    assert all(abs(sum(p for _, p in g) - 1) < 1 for g in guesses)
    pieces, by_model = P.predict_each_piece({"m": model}, toy_tokenizer, "the cat sat", k=2)
    assert pieces == ["the", "cat", "sat"] and len(by_model["m"]) == 3
    # row i hides piece i: its guesses equal fill_mask on that text
    alone = P.fill_mask(model, toy_tokenizer, "the [MASK] sat", k=2)[0]
    assert [g for g, _ in alone] == [g for g, _ in by_model["m"][1]]


def test_seeing_itself_collapses_the_loss(private_cache, monkeypatch):
    docs = [[[5 + (d * 7 + s * 3 + k) % 400 for k in range(12)] for s in range(20)]
            for d in range(30)]  # fmt: skip
    from bertlab.wordpiece import WordPieceTokenizer

    tok = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                             + [f"w{i}" for i in range(400)])  # fmt: skip
    pairs = P.nsp_pairs(docs, max_len=64)
    out = P.see_itself_experiment(tok, pairs, pairs, steps=60)
    copy, mlm = out["predict every token, seeing it"], out["masked LM (15%)"]
    assert copy["loss"][-1] < 0.5 * copy["loss"][0] and copy["loss"][-1] < mlm["loss"][-1]
    assert copy["hidden_accuracy"] <= mlm["hidden_accuracy"]
    # a second call reads the cache: nothing trains (no Trainer) and the results are the same
    assert len(list((private_cache / "see-itself").iterdir())) == 2  # the entry and its lock
    monkeypatch.setattr(P, "Trainer", None)
    assert P.see_itself_experiment(tok, pairs, pairs, steps=60) == out
    with pytest.raises(TypeError):  # other steps: a new entry, which would have to train
        P.see_itself_experiment(tok, pairs, pairs, steps=61)
