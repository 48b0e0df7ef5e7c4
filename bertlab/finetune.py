"""Fine-tuning BERT: the runs of chapter 10.

BERT fine-tunes one pre-trained encoder for many tasks by adding one small layer on top (the
models with their heads, and their Hugging Face folders, are ``bertlab.heads``'; every name is
re-exported here):

1. **Runs.** A :class:`FinetuneConfig` names a task (``bertlab.tasks``), a starting point
   (``scratch``: random weights; ``ours``: chapter 9's mini-BERT; ``minilm``: the real
   all-MiniLM-L6-v2) and a mode (``finetune``: every weight trains; ``features``: the encoder
   stays frozen, as ELMo is used, and a linear probe reads its [CLS], its mean or a scalar mix
   of its layers). :func:`run` trains and scores one; :func:`load_or_run` caches it, and
   :func:`grid` / :func:`grid_table` run and tabulate every combination.
2. **Analysis.** :func:`confident_errors` picks the test examples a model gets wrong;
   :func:`predict_text` classifies any text or pair (the chapter's widget).
3. **Command line.** ``python -m bertlab.finetune --task sst2 --init minilm --mode finetune``
   prints one JSON line; ``--save DIR`` writes the model for transformers.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from bertlab import hf, squad, tasks
from bertlab.bert import BertModel
from bertlab.checkpoint import cached, save_weights
from bertlab.heads import (
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    ClassificationHead,
    SpanHead,
    load_finetuned,
    parameters_with_gradients,
    save_for_transformers,
)
from bertlab.squad import exact_match, f1
from bertlab.tasks import IGNORE_INDEX, TASKS, UPOS_TAGS, align_word_labels, task
from bertlab.train import History, TrainConfig, Trainer

__all__ = [
    "ClassificationHead",
    "SpanHead",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertForQuestionAnswering",
    "parameters_with_gradients",
    "save_for_transformers",
    "load_finetuned",
    "INITS",
    "MODES",
    "FEATURE_POOLS",
    "FinetuneConfig",
    "FinetuneResult",
    "starting_point",
    "build_model",
    "run",
    "load_or_run",
    "cached_model",
    "MAIN_METRIC",
    "grid",
    "grid_table",
    "train_classifier",
    "confident_errors",
    "predict_text",
    "task",
    "TASKS",
    "exact_match",
    "f1",
    "UPOS_TAGS",
    "IGNORE_INDEX",
    "align_word_labels",
]

# ----------------------------------------------------------------------------------------------
# 1. Runs: a task, a starting point and a mode
# ----------------------------------------------------------------------------------------------

INITS = ("scratch", "ours", "minilm")
MODES = ("finetune", "features")
FEATURE_POOLS = ("cls", "mean", "mix")

# How much each task trains on at each preset. An entry named after a mode ("features") or a
# starting point ("ours") changes those runs only. "cpu" is sized for chapter 10 on two cores:
# 12,000 SST-2 sentences bring MiniLM over 0.84 dev accuracy in under three minutes; the two
# small models and the frozen runs get a third and a sixth of that; the other tasks small
# samples at batch 16 (12-50 steps). "gpu": every example, three epochs. "tiny": for tests.
_SMALL_MODELS_SST2 = dict(train_examples=4000)
BUDGETS = {
    "cpu": {
        "sst2": dict(train_examples=12000, eval_every=125, features=dict(train_examples=2000),
                     ours=_SMALL_MODELS_SST2, scratch=_SMALL_MODELS_SST2),
        "mrpc": dict(train_examples=200, batch_size=16),
        "rte": dict(train_examples=150, batch_size=16),
        "pos": dict(train_examples=800, test_examples=500, batch_size=16, lr=3e-4,
                    features=dict(train_examples=400, probe_steps=100)),
        "squad": dict(train_examples=100, test_examples=100, batch_size=16, lr=3e-4,
                      features=dict(probe_steps=100)),
    },
    "gpu": {name: dict(train_examples=None, epochs=3) for name in TASKS},
    "tiny": {name: dict(train_examples=32, test_examples=16, batch_size=8, probe_steps=20)
             for name in TASKS},
}  # fmt: skip
LEARNING_RATES = {"minilm": 1e-4, "ours": 3e-4, "scratch": 3e-4}


@dataclass
class FinetuneConfig:
    """One run of chapter 10's grid: which task, from which weights, how, on how much data.

    ``pool``: in ``finetune`` mode "cls" (BERT's pooled [CLS]; the only one transformers can
    load) or "mean"; in ``features`` mode "cls", "mean" or "mix" (ELMo's scalar mix of every
    layer's mean). The token and span tasks read every token instead (their features mode: the
    scalar mix of layers for part of speech, the last layer for SQuAD).
    """

    task: str = "sst2"
    init: str = "minilm"
    mode: str = "finetune"
    pool: str = "cls"
    train_examples: int | None = 4000  # None: the whole training split
    test_examples: int | None = None  # None: the whole test split
    epochs: int = 1
    batch_size: int = 32
    lr: float = 1e-4
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 128  # pieces per input; chapter 9's mini-BERT saw 128 positions
    eval_every: int = 0  # fine-tuning: steps between test evaluations (0: at the end only)
    probe_steps: int = 150  # features mode: full-batch Adam steps of the linear probe
    seed: int = 0
    cpu_bf16: bool = True  # bf16 autocast on CPUs with bf16 matrix instructions
    pretrained: str = "cpu"  # the preset of chapter 9's mini-BERT (and of its vocabulary)

    def __post_init__(self):
        choices_of = {"task": tuple(TASKS), "init": INITS, "mode": MODES}
        for name, choices in choices_of.items():
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}.")
        pools = ("cls", "mean") if self.mode == "finetune" else FEATURE_POOLS
        if self.pool not in pools:
            raise ValueError(
                f"unknown pool {self.pool!r} for mode {self.mode!r}; choose one of: "
                f"{', '.join(pools)}."
            )
        for name in ("train_examples", "test_examples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None for all), got {value}.")

    @classmethod
    def preset(cls, name: str = "cpu", task: str = "sst2", init: str = "minilm",
               mode: str = "finetune", **overrides) -> FinetuneConfig:  # fmt: skip
        """The settings of preset ``name`` ("cpu", "gpu", "tiny") for one task, init and mode:
        the task's budget, the init's learning rate, then ``overrides``."""
        if name not in BUDGETS:
            raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(BUDGETS)}.")
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}.")
        settings = dict(task=task, init=init, mode=mode, lr=LEARNING_RATES.get(init, 1e-4))
        if name == "gpu":
            settings["cpu_bf16"] = False
        entry = BUDGETS[name][task]
        budget = {k: v for k, v in entry.items() if k not in MODES + INITS}
        # a features run keeps its own size, whatever the starting point
        budget |= entry.get(init, {}) if mode == "finetune" else {}
        budget |= entry.get(mode, {})
        return cls(**(settings | budget | overrides))


@dataclass
class FinetuneResult:
    """What one run gives: its metrics on the test examples, and what it cost."""

    config: FinetuneConfig
    metrics: dict[str, float]
    train_examples: int  # labelled examples trained on (SQuAD: questions)
    train_rows: int  # model inputs they became (SQuAD: windows; others: the same number)
    steps: int  # optimizer steps (features mode: the probe's full-batch steps)
    seconds: float  # training time; features mode: encoding the train set + fitting the probe
    eval_seconds: float  # scoring the test examples (and the evaluations during training)
    test_examples: int
    trained_parameters: int
    history: History | None = None  # fine-tuning only
    model: nn.Module | None = None
    tokenizer: object = None

    def summary(self) -> dict:
        """One flat dict (the command line's JSON line)."""
        c = self.config
        return {"task": c.task, "init": c.init, "mode": c.mode, "pool": c.pool,
                **{k: round(v, 4) for k, v in self.metrics.items()},
                "train_examples": self.train_examples, "train_rows": self.train_rows,
                "test_examples": self.test_examples, "steps": self.steps,
                "seconds": round(self.seconds, 1), "eval_seconds": round(self.eval_seconds, 1),
                "trained_parameters": self.trained_parameters}  # fmt: skip


def starting_point(init: str, seed: int = 0, pretrained: str = "cpu", progress: bool = False):
    """(``BertModel``, its tokenizer) to fine-tune from: ``"minilm"`` (all-MiniLM-L6-v2 and its
    30,522-piece vocabulary), ``"ours"`` (chapter 9's mini-BERT of preset ``pretrained``, trained
    first if it is not cached) or ``"scratch"`` (the same architecture and vocabulary as ours,
    random weights drawn with ``seed``)."""
    from bertlab import pretraining
    from bertlab.pretraining_data import wordpiece_tokenizer
    from bertlab.wordpiece import WordPieceTokenizer

    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of: {', '.join(INITS)}.")
    if init == "minilm":
        encoder, _ = hf.load_minilm()
        return encoder, WordPieceTokenizer.from_vocab_file(hf.minilm_path() / "vocab.txt")
    config = pretraining.PretrainConfig.preset(pretrained)
    if init == "ours":
        bert = pretraining.load_or_train(config, progress=progress)
        return bert.model.bert, bert.tokenizer
    tokenizer = wordpiece_tokenizer(config.vocab_size, config.documents, config.vocab_min_frequency)
    torch.manual_seed(seed)
    return BertModel(config.bert_config(tokenizer.vocab_size)), tokenizer


def build_model(task_name: str, encoder: BertModel, pool: str = "cls") -> nn.Module:
    """The encoder with the head of the task's shape (Figure 4 of the paper)."""
    t = task(task_name)
    if t.kind == "span":
        return BertForQuestionAnswering(encoder)
    if t.kind == "token":
        return BertForTokenClassification(encoder, t.num_labels)
    return BertForSequenceClassification(encoder, t.num_labels, pooling=pool)


@functools.lru_cache(maxsize=4)
def _splits(task_name: str, seed: int) -> tuple[list, list]:
    """A task's (train, test), read once per process (the grid runs each task many times)."""
    return task(task_name).splits(seed)


def _subsets(config: FinetuneConfig):
    train, test = _splits(config.task, config.seed)
    return task(config.task), train[: config.train_examples], test[: config.test_examples]


def run(
    config: FinetuneConfig, device=None, progress: bool = True, start: tuple | None = None
) -> FinetuneResult:
    """Train and score one :class:`FinetuneConfig` (see :func:`load_or_run` for the cached
    version). The result holds the trained model and its tokenizer. ``start``, a
    (``BertModel``, tokenizer) pair, replaces ``config.init``'s starting point (chapter 11's
    ablations fine-tune their own pre-trained models this way); its encoder trains in place."""
    from bertlab.train import pick_device

    t, train, test = _subsets(config)
    if start is None:
        start = starting_point(config.init, config.seed, config.pretrained, progress)
    encoder, tokenizer = start
    device = pick_device(device)
    if config.mode == "finetune":
        return _finetune(config, t, train, test, encoder, tokenizer, device, progress)
    return _features(config, t, train, test, encoder.to(device), tokenizer)


def _finetune(config, t, train, test, encoder, tokenizer, device, progress) -> FinetuneResult:
    torch.manual_seed(config.seed)
    model = build_model(config.task, encoder, config.pool)
    L = config.max_length
    if t.kind == "span":
        windows = t.windows(tokenizer, train, L)
        rows, lengths = windows, windows.attention_mask.sum(1).tolist()
    else:
        rows, lengths = train, [t.length(e) for e in train]
    batches = tasks.length_batches(lengths, config.batch_size, config.seed, config.epochs)

    def get_batch(step: int) -> dict:
        idx = batches[step]
        if t.kind != "span":
            return t.encode(tokenizer, [rows[i] for i in idx], L)
        b = rows.batch(idx)
        T = int(b["attention_mask"].sum(1).max())  # drop the columns that are padding in all rows
        return {k: v[:, :T] if v.dim() == 2 else v for k, v in b.items()}

    eval_time = [0.0]

    def evaluate(m) -> dict[str, float]:
        start = time.perf_counter()
        metrics = t.evaluate(m, tokenizer, test, L)
        eval_time[0] += time.perf_counter() - start
        return metrics

    steps = len(batches)
    train_config = TrainConfig(
        steps=steps, batch_size=config.batch_size, lr=config.lr, warmup=config.warmup,
        weight_decay=config.weight_decay, device=str(device), cpu_bf16=config.cpu_bf16,
        seed=config.seed, progress=progress, log_every=max(1, steps // 40),
        eval_every=config.eval_every,
    )  # fmt: skip
    history = Trainer(model, t.loss, get_batch, train_config, eval_fn=evaluate).fit()
    model.eval()
    return FinetuneResult(
        config, history.evals[-1], len(train), len(rows), steps,
        history.seconds - eval_time[0], eval_time[0], len(test),
        sum(p.numel() for p in model.parameters() if p.requires_grad), history, model, tokenizer,
    )  # fmt: skip


@torch.no_grad()
def _span_features(encoder, tokenizer, t, examples, max_length, batch_size: int = 64):
    """The last layer of every window (N, T, H) and the windows."""
    windows = t.windows(tokenizer, examples, max_length)
    device = next(encoder.parameters()).device
    out = []
    for lo in range(0, len(windows), batch_size):
        b = {k: v.to(device) for k, v in windows.batch(slice(lo, lo + batch_size)).items()}
        out.append(encoder(b["input_ids"], b["token_type_ids"], b["attention_mask"])
                   .last_hidden_state.float().cpu())  # fmt: skip
    return torch.cat(out), windows


def _span_probe(hidden, windows, steps: int, seed: int):
    """A linear start/end scorer on frozen token vectors (N, T, H), fitted by full-batch Adam
    on the cross-entropy of the gold start and end over each window's real tokens."""
    from bertlab.probe import Probe

    torch.manual_seed(seed)
    real = windows.attention_mask.bool()  # (N, T)
    probe = Probe(hidden.shape[-1], 2)
    probe.mean.copy_(hidden[real].mean(0))
    probe.std.copy_(hidden[real].std(0) + 1e-6)
    x = (hidden - probe.mean) / probe.std  # (N, T, H), standardized once
    opt = torch.optim.Adam(probe.linear.parameters(), lr=0.01)
    gold = (windows.start_positions, windows.end_positions)
    for _ in range(steps):
        opt.zero_grad()
        logits = probe.linear(x).masked_fill(~real.unsqueeze(-1), -1e4)  # (N, T, 2)
        loss = sum(nn.functional.cross_entropy(logits[..., j], gold[j]) for j in (0, 1)) / 2
        loss.backward()
        opt.step()
    return probe.eval()


# The frozen features of the last sequence-task runs: the three pools of one encoder read the
# same forward pass ({key: ({pool: (L + 1, N, H)}, labels, seconds)}, the last two kept). A
# run that reuses them still counts the encoding's seconds, as if it had run alone.
_SHARED_FEATURES: dict = {}


def _sequence_features(config, t, encoder, tokenizer, examples, split: str, pool: str):
    """``t.features`` for "cls" and "mean" at once, kept for the next run of the same encoder
    and examples (the grid probes [CLS], mean and mix one after the other): (features of
    ``pool``, labels, the seconds of an earlier encoding that was reused, else 0)."""
    key = (config.task, config.init, config.pretrained, config.seed, config.max_length, split,
           len(examples))  # fmt: skip
    if key in _SHARED_FEATURES:
        x, y, seconds = _SHARED_FEATURES[key]
        return x[pool], y, seconds
    while len(_SHARED_FEATURES) >= 2:
        _SHARED_FEATURES.pop(next(iter(_SHARED_FEATURES)))
    start = time.perf_counter()
    x, y = t.features(encoder, tokenizer, examples, ("cls", "mean"), config.max_length)
    _SHARED_FEATURES[key] = x, y, time.perf_counter() - start
    return x[pool], y, 0.0  # the encoding's time is in the caller's clock already


def _features(config, t, train, test, encoder, tokenizer) -> FinetuneResult:
    from bertlab.probe import train_probe

    encoder.eval().requires_grad_(False)
    L, steps, mix = config.max_length, config.probe_steps, config.pool == "mix"
    start = time.perf_counter()
    if t.kind == "span":
        hidden, windows = _span_features(encoder, tokenizer, t, train, L)
        probe = _span_probe(hidden, windows, steps, config.seed)
        rows = len(windows)
    elif t.kind == "sequence":
        pool = "mean" if mix else config.pool
        x, y, encoding = _sequence_features(config, t, encoder, tokenizer, train, "train", pool)
        start -= encoding  # a reused encoding counts as if it ran here
        probe = train_probe(x if mix else x[-1], y, t.num_labels, mix=mix, steps=steps,
                            seed=config.seed)  # fmt: skip
        rows = len(train)
    else:  # part of speech: each word's first piece in every layer, through a scalar mix
        pool, mix = "first", True
        x, y = t.features(encoder, tokenizer, train, pool, L)  # (L + 1, words, H), (words,)
        probe = train_probe(x, y, t.num_labels, mix=True, steps=steps, seed=config.seed)
        rows = len(train)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        if t.kind == "span":
            hidden, windows = _span_features(encoder, tokenizer, t, test, L)
            logits = probe(hidden)  # (N, T, 2)
            answers = squad.best_spans(logits[..., 0], logits[..., 1], windows)
            metrics = t.score(answers, test)
        else:
            if t.kind == "sequence":
                x, y, encoding = _sequence_features(config, t, encoder, tokenizer, test, "test",
                                                    pool)  # fmt: skip
                start -= encoding
            else:
                x, y = t.features(encoder, tokenizer, test, pool, L)
            predicted = probe(x if mix else x[-1]).argmax(-1)
            metrics = t.score(predicted, test if t.kind == "sequence" else y)
    trained = sum(p.numel() for p in probe.parameters())
    eval_seconds = time.perf_counter() - start
    return FinetuneResult(config, metrics, len(train), rows, steps, seconds, eval_seconds,
                          len(test), trained, None, probe, tokenizer)  # fmt: skip


def _write_result(result: FinetuneResult, folder: Path) -> None:
    record = {"config": asdict(result.config), "summary": result.summary(),
              "metrics": result.metrics}  # fmt: skip
    if result.history is not None:
        (folder / "history.json").write_text(result.history.to_json())
        save_weights(result.model.state_dict(), folder / "model.safetensors")
    (folder / "result.json").write_text(json.dumps(record, indent=1) + "\n")


def _read_result(folder: Path) -> FinetuneResult:
    record = json.loads((folder / "result.json").read_text())
    s = record["summary"]
    history = None
    if (folder / "history.json").is_file():
        history = History.from_json((folder / "history.json").read_text())
    result = FinetuneResult(
        FinetuneConfig(**record["config"]), record["metrics"], s["train_examples"],
        s["train_rows"], s["steps"], s["seconds"], s["eval_seconds"], s["test_examples"],
        s["trained_parameters"], history,
    )  # fmt: skip
    result.folder = folder
    return result


def load_or_run(config: FinetuneConfig, device=None, progress: bool = False) -> FinetuneResult:
    """:func:`run` through the cache (``checkpoint.cached``, kind ``"finetune"``): the metrics,
    costs and history of a run, and in ``finetune`` mode its weights (:func:`cached_model`)."""

    def build(folder: Path) -> None:
        _write_result(run(config, device, progress), folder)

    return cached("finetune", config, build, _read_result)


#: The score each task is ranked by in the grid (MRPC's F1 and SQuAD's exact match come too).
MAIN_METRIC = {"sst2": "accuracy", "mrpc": "accuracy", "rte": "accuracy", "pos": "accuracy",
               "squad": "f1"}  # fmt: skip


def grid(preset: str = "cpu", task_names: Sequence[str] = tuple(TASKS),
         inits: Sequence[str] = INITS, modes: Sequence[str] = MODES,
         feature_pools: Sequence[str] = ("mix",), device=None, progress: bool = True,
         **overrides) -> list[FinetuneResult]:  # fmt: skip
    """Every cell of chapter 10's grid, tasks x starting points x modes, each through the cache
    (:func:`load_or_run`). Fine-tuning reads the pooled [CLS]; features mode fits one probe per
    pool of ``feature_pools`` on the sentence tasks (one forward pass serves them all), the
    scalar mix of the layers on part of speech and the last layer on SQuAD. A tqdm bar counts
    the cells when ``progress``."""
    from tqdm.auto import tqdm

    cells = []
    for name in task_names:
        for init in inits:
            for mode in modes:
                pools = ["cls"]
                if mode == "features":
                    pools = feature_pools if task(name).kind == "sequence" else ["mix"]
                cells += [(name, init, mode, pool) for pool in pools]
    results = []
    for name, init, mode, pool in tqdm(cells, desc="grid", disable=not progress):
        config = FinetuneConfig.preset(preset, name, init, mode, pool=pool, **overrides)
        results.append(load_or_run(config, device))
    return results


def grid_table(results: Sequence[FinetuneResult]):
    """The grid as a pandas frame, one row per run: the task's main score and its other metrics,
    and what the run used (labelled examples, model inputs, steps, seconds)."""
    import pandas as pd

    rows = []
    for r in results:
        c = r.config
        metric = MAIN_METRIC[c.task]
        rows.append({
            "task": c.task, "init": c.init, "mode": c.mode, "pool": c.pool, "metric": metric,
            "score": r.metrics[metric],
            "other": ", ".join(f"{k} {v:.3f}" for k, v in r.metrics.items() if k != metric),
            "train examples": r.train_examples, "inputs": r.train_rows,
            "test examples": r.test_examples, "steps": r.steps,
            "seconds": round(r.seconds, 1),
        })  # fmt: skip
    return pd.DataFrame(rows)


def cached_model(result: FinetuneResult) -> tuple[nn.Module, object]:
    """The fine-tuned model (and tokenizer) of a cached ``finetune``-mode result."""
    from bertlab.checkpoint import load_model_weights, load_weights

    c = result.config
    if c.mode != "finetune":
        raise ValueError("only finetune-mode results keep a model; this one trained a probe.")
    encoder, tokenizer = starting_point(c.init, c.seed, c.pretrained)
    model = build_model(c.task, encoder, c.pool)
    path = result.folder / "model.safetensors"
    load_model_weights(model, load_weights(path), f"the fine-tuned model {path}")
    return model.eval(), tokenizer


# ----------------------------------------------------------------------------------------------
# 2. What the fine-tuned models get wrong, and what they predict for any input
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def confident_errors(model, tokenizer, task_name: str, examples: Sequence, k: int = 3,
                     max_length: int = 128, max_words: int = 25) -> list[dict]:  # fmt: skip
    """A few test examples ``model`` gets wrong, for the error analysis.

    Sequence tasks: the ``k`` it is most confident about while wrong (``example``, ``gold``,
    ``predicted``, ``confidence``). Part of speech: the ``k`` sentences of at most ``max_words``
    words with the most wrongly tagged words (``example``, ``predicted`` tags, ``wrong`` word
    indices). SQuAD: ``k`` questions with F1 0 (``example``, ``predicted`` answer), shortest
    context first."""
    t = task(task_name)
    if t.kind == "sequence":
        probs = t.predict(model, tokenizer, examples, max_length)
        confidence, predicted = probs.max(-1)
        gold = torch.tensor([e.label for e in examples])
        wrong = (predicted != gold).nonzero().flatten().tolist()
        wrong.sort(key=lambda i: -float(confidence[i]))
        return [{"example": examples[i], "gold": t.labels[gold[i]],
                 "predicted": t.labels[predicted[i]], "confidence": float(confidence[i])}
                for i in wrong[:k]]  # fmt: skip
    if t.kind == "token":
        short = [e for e in examples if len(e.words) <= max_words]
        out = []
        predicted, _ = t.predict_sentences(model, tokenizer, short, max_length)
        for e, row in zip(short, predicted):
            tags = [t.labels[i] for i in row.tolist()]
            wrong = [j for j, (p, g) in enumerate(zip(tags, e.upos)) if p != g]
            if wrong:
                out.append({"example": e, "predicted": tags, "wrong": wrong})
        out.sort(key=lambda d: (-len(d["wrong"]), len(d["example"].words)))
        return out[:k]
    answers = t.predict(model, tokenizer, examples, max_length)
    missed = [e for e in examples if squad.f1(answers[e.id], e.answers) == 0]
    missed.sort(key=lambda e: len(e.context))
    return [{"example": e, "predicted": answers[e.id]} for e in missed[:k]]


@torch.no_grad()
def predict_text(model, tokenizer, task_name: str, text_a: str, text_b: str | None = None,
                 max_length: int = 128) -> tuple[list[float], tuple[str, ...]]:  # fmt: skip
    """A sequence task's class probabilities for one text (or pair), and the label names."""
    from bertlab.data import GlueExample

    t = task(task_name)
    if t.kind != "sequence":
        raise ValueError(f"predict_text reads one label per input; {task_name!r} is a {t.kind} "
                         "task (use the task's predict on its own examples).")  # fmt: skip
    if t.pair and not text_b:
        raise ValueError(f"{task_name} classifies sentence pairs: give text_b too.")
    example = GlueExample(text_a, text_b if t.pair else None, 0)
    return t.predict(model, tokenizer, [example], max_length)[0].tolist(), t.labels


def train_classifier(
    model: nn.Module,
    tokenizer,
    train_examples: Sequence,
    dev_examples: Sequence,
    config: TrainConfig,
    task_name: str = "sst2",
    max_length: int = 128,
) -> History:
    """Fine-tune ``model`` (a ``BertForSequenceClassification``) on ``train_examples`` with
    ``bertlab.train.Trainer``; ``history.evals`` holds the dev metrics. Freeze the encoder first
    (``model.bert.requires_grad_(False)``) to train the head alone."""
    t = task(task_name)
    trainer = Trainer(
        model,
        t.loss,
        list(train_examples),
        config,
        eval_fn=lambda m: t.evaluate(m, tokenizer, dev_examples, max_length),
        collate=lambda examples: t.encode(tokenizer, examples, max_length),
    )
    return trainer.fit()


# ----------------------------------------------------------------------------------------------
# 3. Command line
# ----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bertlab.finetune",
        description="Fine-tune (or probe) a BERT on one of chapter 10's tasks; prints one JSON "
        "line with the task's metrics and what the run cost.",
    )
    parser.add_argument("--task", default="sst2", help=", ".join(TASKS))
    parser.add_argument("--init", default="minilm", help=", ".join(INITS))
    parser.add_argument("--mode", default="finetune", help=", ".join(MODES))
    parser.add_argument("--pool", help="cls, mean (finetune) or cls, mean, mix (features)")
    parser.add_argument("--preset", default="cpu", help=", ".join(BUDGETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-examples", type=int, help="override the preset's budget")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the best available)")
    parser.add_argument("--save", metavar="DIR", help="write a transformers folder (finetune)")
    args = parser.parse_args(argv)
    overrides = {"seed": args.seed}
    if args.pool:
        overrides["pool"] = args.pool
    elif args.mode == "features":
        overrides["pool"] = "mix"
    if args.train_examples:
        overrides["train_examples"] = args.train_examples
    try:
        config = FinetuneConfig.preset(args.preset, args.task, args.init, args.mode, **overrides)
        if args.save and config.mode != "finetune":
            raise ValueError(
                "--save needs --mode finetune: features mode trains a probe on a frozen "
                "encoder, which transformers has no architecture for."
            )
        if args.save and config.pool != "cls":
            raise ValueError("--save needs --pool cls: transformers reads the pooled [CLS].")
    except ValueError as e:
        parser.error(str(e))
    result = run(config, args.device, progress=True)
    summary = result.summary()
    if args.save:
        labels = task(config.task).labels or None
        save_for_transformers(result.model, result.tokenizer, args.save, labels)
        summary["saved"] = str(args.save)
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
