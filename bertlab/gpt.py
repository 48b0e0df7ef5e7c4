"""GPT-style pre-training and fine-tuning with BERT's blocks, and what transfers.

GPT-1 (Radford et al. 2018, "Improving Language Understanding by Generative Pre-Training")
pre-trains a left-to-right Transformer language model on running text, then fine-tunes the
*whole* model on each task: the input text goes in as it is (a pair joined by a delimiter),
the state of the last token feeds one new linear layer, and the LM loss on the task's text is
kept as an auxiliary term (weight 0.5). Nothing of the architecture changes between tasks.

Everything here reuses ``bertlab``: the model is ``bertlab.bert.BertModel`` with
``causal=True`` and its tied LM head, trained by ``bertlab.pretraining`` with
``objective="ltr"`` (next-token prediction at every position) on WikiText-2, packed as
full-length sequences with a [SEP] after every sentence (``packing="sentences"``), so that the
delimiter and the extract token of fine-tuning are tokens the LM has read.

1. :func:`lm_config` / :func:`load_lm`: the LM's presets, trained once and cached.
2. :func:`word_perplexity`: the LM's perplexity per *word*, the unit of chapters 2 and 5, so
   it can stand beside the Kneser-Ney trigram and the LSTM LM.
3. :func:`sample`: batched, seeded sampling with temperature and top-k.
4. :class:`GPTForSequenceClassification`: last real token -> classifier, plus the auxiliary
   LM loss with weight ``lm_weight`` (GPT-1's lambda); :func:`finetune` trains it.
5. The three purposes of transfer learning as measured demos, each against the same
   architecture from random init: :func:`learning_curve` (general -> specific, and the
   validation curve per step for "faster training"), :func:`aux_loss_ablation` and
   :func:`transfer_a_to_b` (task A -> related task B). Every fine-tuning run is cached through
   ``checkpoint.cached`` (kind ``"gpt-finetune"``), so re-running a chapter is fast.

Shapes: B = batch, T = sequence length, H = hidden size, V = vocabulary, N = predicted
positions.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bertlab import data
from bertlab.bert import BertConfig, BertForPreTraining, initialize
from bertlab.bert_checks import BertInputError
from bertlab.checkpoint import cached
from bertlab.pretraining import (
    PretrainConfig,
    PretrainedBert,
    clean_wikitext,
    load_or_train,
    wordpiece_tokenizer,
)
from bertlab.train import History, Presets, TrainConfig, Trainer
from bertlab.wordpiece import WordPieceTokenizer

__all__ = [
    "LM_PRESETS",
    "lm_config",
    "load_lm",
    "word_perplexity",
    "perplexity_table",
    "future_influence",
    "sample",
    "last_token_state",
    "GPTOutput",
    "GPTForSequenceClassification",
    "encode",
    "accuracy",
    "finetune",
    "TransferConfig",
    "run",
    "learning_curve",
    "steps_to_reach",
    "aux_loss_ablation",
    "transfer_a_to_b",
    "majority_accuracy",
]

# --------------------------------------------------------------------------------------------------
# 1. The language model: a causal BERT trained left to right on WikiText-2
# --------------------------------------------------------------------------------------------------

# What makes the pre-training run GPT's: next-token prediction under the causal mask, no NSP,
# contiguous text with a [SEP] closing every sentence.
_GPT = dict(objective="ltr", nsp=False, packing="sentences", snapshots=())

#: The LM's sizes per preset (fields of ``PretrainConfig``).
LM_PRESETS: dict[str, dict] = {
    # the chapter's run: about 7-9 minutes on two CPU cores. Small (4 layers of H = 128) because
    # at a budget of ~2M training tokens a small model reaches a lower loss than a wide one
    "cpu": dict(layers=4, hidden=128, heads=2, intermediate=512, max_len=128, max_position=128,
                dropout=0.0, steps=500, batch_size=32, lr=1e-3, warmup=0.06, cpu_bf16=True,
                eval_every=125, eval_sequences=256),
    # GPT-1's shape at a tenth of its width: 8 layers of 512, 20,000 steps of 64 x 256 tokens
    "gpu": dict(vocab_size=16384, vocab_min_frequency=50, layers=8, hidden=512, heads=8,
                intermediate=2048, max_len=256, max_position=256, dropout=0.1, steps=20000,
                batch_size=64, lr=3e-4, warmup=0.05, eval_every=2000, eval_sequences=2048),
    # tests: 20 articles, 2 layers of 64, 30 steps
    "tiny": dict(vocab_size=1000, vocab_min_frequency=10, documents=20, layers=2, hidden=64,
                 heads=2, intermediate=128, max_len=64, max_position=64, dropout=0.0, steps=30,
                 batch_size=16, eval_sequences=64),
}  # fmt: skip


def lm_config(preset: str | PretrainConfig = "cpu", **overrides) -> PretrainConfig:
    """The ``PretrainConfig`` of the GPT-style LM of ``preset`` ("cpu", "gpu" or "tiny")."""
    if isinstance(preset, PretrainConfig):
        return preset
    if preset not in LM_PRESETS:
        raise ValueError(
            f"unknown GPT preset {preset!r}; choose one of: {', '.join(map(repr, LM_PRESETS))} "
            f"(or pass a PretrainConfig with objective='ltr')."
        )
    return PretrainConfig(**(_GPT | LM_PRESETS[preset] | overrides))


def load_lm(preset: str | PretrainConfig = "cpu", device=None, progress=True) -> PretrainedBert:
    """The LM of ``preset``: from the cache, or trained first (``pretraining.load_or_train``)."""
    config = lm_config(preset)
    if config.objective != "ltr":
        raise ValueError("a GPT-style LM needs objective='ltr' (left to right, causal mask).")
    return load_or_train(config, device=device, progress=progress)


def _check_causal(model: nn.Module, what: str) -> None:
    config = getattr(model, "config", None)
    if not isinstance(config, BertConfig) or not config.causal:
        raise ValueError(
            f"{what} needs a left-to-right model (BertConfig.causal=True, as lm_config gives); "
            f"a bidirectional model sees the very token it is asked to predict."
        )


# --------------------------------------------------------------------------------------------------
# 2. Perplexity per word, the unit of chapters 2 and 5
# --------------------------------------------------------------------------------------------------


def _windows(ids: list[int], length: int, first: int) -> list[tuple[list[int], int]]:
    """Cut ``ids`` into windows of at most ``length`` tokens that overlap by one, so every
    position from ``first`` on is predicted exactly once: ``(window, first target in it)``."""
    out = []
    for start in range(0, len(ids) - 1, length - 1):
        out.append((ids[start : start + length], max(first - start, 1)))
    return out


@torch.no_grad()
def word_perplexity(
    model: BertForPreTraining,
    tokenizer: WordPieceTokenizer,
    sentences: Sequence[Sequence[str]],
    batch_size: int = 64,
) -> dict[str, float]:
    """Perplexity per word of a left-to-right LM over WikiText sentences (lists of tokens).

    Chapter 2's n-grams and chapter 5's LSTM predict each sentence's words and its end, one
    sentence at a time, and divide the text's total negative log-likelihood by that count:
    ``len(sentence) + 1`` per sentence, with WikiText's own tokens as the words. Here each
    sentence becomes ``[CLS] [SEP] pieces [SEP]``: the first [SEP] is given (the end of a
    previous sentence, as the n-gram's ``<s>``), every piece and the closing [SEP] (the
    sentence end) are predicted. A word's log-probability is the sum over its pieces, so

        perplexity per word = exp( sum of piece NLLs / (words + sentences) ),

    over the same text and the same count as chapters 2 and 5 (WikiText's ``@,@`` joins are
    undone before tokenizing: the pieces of ``1 @,@ 000`` spell the same three words). A
    sentence longer than the model's positions is scored in windows that overlap by one token.
    Returns ``per_word``, ``per_piece``, ``nll`` (nats), ``words`` and ``pieces``.
    """
    _check_causal(model, "word_perplexity")
    if len(sentences) == 0 or not any(len(s) for s in sentences):
        raise ValueError("no words to score: pass a non-empty list of non-empty sentences.")
    tok, length = tokenizer, model.config.max_position
    rows = []
    for s in sentences:
        pieces = tok.convert_tokens_to_ids(tok.tokenize(clean_wikitext(" ".join(s))))
        rows += _windows([tok.cls_id, tok.sep_id, *pieces, tok.sep_id], length, first=2)
    rows.sort(key=lambda r: len(r[0]))  # similar lengths together: little padding
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    nll, predicted = 0.0, 0
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        T = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), T), tok.pad_id, dtype=torch.long)
        wanted = torch.zeros(len(chunk), T - 1, dtype=torch.bool)  # (B, T - 1): targets t + 1
        for r, (window, first) in enumerate(chunk):
            ids[r, : len(window)] = torch.tensor(window)
            wanted[r, first - 1 : len(window) - 1] = True
        ids = ids.to(device)
        wanted = wanted.to(device)
        hidden = model.bert(ids, None, (ids != tok.pad_id).long()).last_hidden_state  # (B, T, H)
        logits = model.mlm(hidden[:, :-1], wanted)  # (N, V)
        nll += float(F.cross_entropy(logits.float(), ids[:, 1:][wanted], reduction="sum"))
        predicted += int(wanted.sum())
    model.train(was_training)
    words = sum(len(s) + 1 for s in sentences)
    return {"per_word": math.exp(nll / words), "per_piece": math.exp(nll / predicted),
            "nll": nll, "words": words, "pieces": predicted}  # fmt: skip


def perplexity_table(
    preset: str = "cpu", elmo_preset: str | None = "cpu", lm: PretrainedBert | None = None
) -> dict[str, dict]:
    """The GPT-style LM beside chapter 2's Kneser-Ney trigram and chapter 5's forward LSTM LM,
    all per word on WikiText-2 valid (cached, kind ``"gpt-perplexity"``). The biLM comes from
    ``elmo.load_or_train(elmo_preset)`` (trained first if chapter 5 has not cached it; None
    leaves it out). ``{model: {"per_word": ..., ...}}``."""
    from bertlab import elmo
    from bertlab.ngram import NGramLM

    spec = {"lm": asdict(lm_config(preset)), "elmo": elmo_preset, "split": "valid"}

    def build(folder: Path) -> None:
        train, valid = data.wikitext2_sentences("train"), data.wikitext2_sentences("valid")
        words = sum(len(s) + 1 for s in valid)
        source = lm or load_lm(preset, progress=False)
        table = {"GPT-style Transformer LM": word_perplexity(source.model, source.tokenizer, valid)}
        if elmo_preset is not None:
            forward = elmo.perplexity(elmo.load_or_train(elmo_preset, progress=False), valid)
            table["forward LSTM LM (chapter 5)"] = {"per_word": forward["forward"], "words": words}
        kn = NGramLM(3, "kneser-ney").fit(train).perplexity(valid)
        table["Kneser-Ney trigram (chapter 2)"] = {"per_word": kn, "words": words}
        (folder / "table.json").write_text(json.dumps(table, indent=1) + "\n")

    def load(folder: Path) -> dict:
        return json.loads((folder / "table.json").read_text())

    return cached("gpt-perplexity", spec, build, load)


@torch.no_grad()
def future_influence(
    lm: BertForPreTraining, tokenizer: WordPieceTokenizer, text: str, last: str
) -> dict[str, list]:
    """The left-to-right limit in numbers: how far each position's top-layer state moves when
    only the last word of ``text`` is replaced by ``last``, in the causal LM and in the same
    weights run bidirectionally (``causal=False``). Relative change ``|h - h'| / |h|`` per
    piece: exactly 0 before the change under the causal mask, whatever the weights."""
    a = tokenizer.encode(text)["input_ids"]
    b = tokenizer.encode(" ".join(text.split()[:-1] + [last]))["input_ids"]
    if len(a) != len(b):
        raise ValueError(
            f"{text.split()[-1]!r} and {last!r} must be one piece each, so that the two "
            f"sentences line up position by position; pick words of the vocabulary."
        )
    both = torch.tensor([a, b])  # (2, T)
    bidirectional = copy.deepcopy(lm).eval()
    bidirectional.bert.config = bidirectional.config = BertConfig(
        **(lm.config.to_dict() | {"causal": False})
    )
    out = {"pieces": tokenizer.convert_ids_to_tokens(a)}
    for name, model in (("causal", lm.eval()), ("bidirectional", bidirectional)):
        h = model.bert(both).last_hidden_state  # (2, T, H)
        out[name] = ((h[0] - h[1]).norm(dim=-1) / h[0].norm(dim=-1)).tolist()  # (T,)
    return out


# --------------------------------------------------------------------------------------------------
# 3. Sampling
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def sample(
    model: BertForPreTraining,
    tokenizer: WordPieceTokenizer,
    prompts: Sequence[str],
    max_new_tokens: int = 30,
    temperature: float = 1.0,
    top_k: int | None = 40,
    seed: int = 0,
    stop_at_sep: bool = True,
) -> list[str]:
    """Continue each prompt by sampling one piece at a time, all prompts in one batch.

    Each prompt starts a sentence (``[CLS] [SEP] prompt``); at every step the logits of each
    row's last real token are divided by ``temperature``, cut to the ``top_k`` likeliest
    pieces, and one piece is drawn from a generator seeded with ``seed``, so the same call
    gives the same text. A row stops at its first [SEP] (the end of a sentence) when
    ``stop_at_sep``. Returns the prompts with their continuations, as text.
    """
    _check_causal(model, "sample")
    if isinstance(prompts, str) or len(prompts) == 0:
        raise ValueError("prompts must be a non-empty list of strings (one per sample).")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    tok = tokenizer
    ids_of = [tok.convert_tokens_to_ids(tok.tokenize(p)) for p in prompts]
    starts = [[tok.cls_id, tok.sep_id, *p] for p in ids_of]  # a sentence starts after [SEP]
    longest = max(map(len, starts)) + max_new_tokens
    if longest > model.config.max_position:
        raise BertInputError(
            f"a prompt of {longest - max_new_tokens} positions plus {max_new_tokens} new pieces "
            f"is longer than max_position={model.config.max_position}: shorten the prompt or "
            f"ask for fewer new tokens."
        )
    device = next(model.parameters()).device
    B = len(starts)
    ids = torch.full((B, longest), tok.pad_id, dtype=torch.long, device=device)
    for r, row in enumerate(starts):
        ids[r, : len(row)] = torch.tensor(row)
    lengths = torch.tensor([len(s) for s in starts], device=device)  # (B,)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    g = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    rows = torch.arange(B, device=device)
    # never [PAD], [UNK], [CLS] or [MASK]; [SEP] (a sentence ends) is allowed
    banned = [i for i in sorted(tok.special_ids) if i != tok.sep_id]
    for _ in range(max_new_tokens):
        T = int(lengths.max())
        mask = (torch.arange(T, device=device) < lengths[:, None]).long()  # (B, T)
        hidden = model.bert(ids[:, :T], None, mask).last_hidden_state  # (B, T, H)
        logits = model.mlm(hidden[rows, lengths - 1]).float() / temperature  # (B, V)
        logits[:, banned] = -math.inf
        if top_k is not None:
            kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]  # (B, 1)
            logits = logits.masked_fill(logits < kth, -math.inf)
        nxt = torch.multinomial(logits.softmax(-1), 1, generator=g).squeeze(1)  # (B,)
        nxt = torch.where(done, tok.pad_id, nxt)
        ids[rows, lengths] = nxt
        lengths = lengths + (~done).long()
        if stop_at_sep:
            done |= nxt == tok.sep_id
        if bool(done.all()):
            break
    model.train(was_training)
    out = []
    for r in range(B):
        new = ids[r, len(starts[r]) : int(lengths[r])].tolist()
        text = tok.decode([t for t in new if t not in (tok.sep_id, tok.pad_id)])
        out.append((prompts[r] + " " + text).strip())
    return out


# --------------------------------------------------------------------------------------------------
# 4. GPT-style fine-tuning: the last token's state -> classifier, plus the auxiliary LM loss
# --------------------------------------------------------------------------------------------------


def last_token_state(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, H) -> (B, H): each row's last real (unpadded) token. Under the causal mask it is
    the only position that has read the whole input, and padding after it changes nothing."""
    if attention_mask is None:
        return hidden[:, -1]
    last = attention_mask.long().sum(1) - 1  # (B,) inputs are padded on the right
    return hidden[torch.arange(hidden.size(0), device=hidden.device), last]


@dataclass
class GPTOutput:
    """Logits (B, labels); with labels, ``loss`` = ``task_loss`` + lambda * ``lm_loss``."""

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    task_loss: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None


class GPTForSequenceClassification(nn.Module):
    """GPT-1's fine-tuning model on a causal ``BertForPreTraining`` (its section 3.2).

    ``[CLS] text [SEP]`` (or ``[CLS] a [SEP] b [SEP]``) goes through the causal encoder; the
    state of the last real token, the closing [SEP], goes through dropout and one new
    Linear(H, labels). With labels, the loss is

        L = cross-entropy(labels) + lm_weight * next-token cross-entropy on the same input,

    GPT-1's L3 = L2 + lambda L1 with lambda = 0.5. The LM head is the pre-training one (tied to
    the token embeddings). No segment embeddings are used (GPT has none: the [SEP] delimits)."""

    def __init__(self, lm: BertForPreTraining, num_labels: int = 2, lm_weight: float = 0.5):
        super().__init__()
        _check_causal(lm, "GPTForSequenceClassification")
        if not lm_weight >= 0:
            raise ValueError(f"lm_weight must be >= 0 (GPT-1 used 0.5), got {lm_weight}.")
        self.bert, self.lm_head, self.config = lm.bert, lm.mlm, lm.config
        self.bert.pooler.requires_grad_(False)  # [CLS]'s pooler: nothing reads it here
        self.lm_weight = lm_weight
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(self.config.hidden, num_labels)  # the only new weights
        initialize(self.classifier, self.config)

    def forward(self, input_ids, attention_mask=None, labels=None) -> GPTOutput:
        hidden = self.bert(input_ids, None, attention_mask).last_hidden_state  # (B, T, H)
        logits = self.classifier(self.dropout(last_token_state(hidden, attention_mask)))
        if labels is None:
            return GPTOutput(logits)
        task_loss = F.cross_entropy(logits.float(), labels)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        wanted = attention_mask[:, 1:].bool()  # (B, T - 1): predict token t + 1 where it is real
        lm_logits = self.lm_head(hidden[:, :-1], wanted)  # (N, V)
        lm_loss = F.cross_entropy(lm_logits.float(), input_ids[:, 1:][wanted])
        return GPTOutput(logits, task_loss + self.lm_weight * lm_loss, task_loss, lm_loss)


def encode(
    tokenizer: WordPieceTokenizer, examples: Sequence[data.GlueExample], max_length: int = 128
) -> dict[str, torch.Tensor]:
    """GLUE examples -> ``input_ids``, ``attention_mask`` (B, T) and ``labels`` (B,): one text
    as ``[CLS] text [SEP]``, a pair as ``[CLS] a [SEP] b [SEP]`` (its longer side truncated
    to fit ``max_length``; the closing [SEP] is always kept)."""
    texts = [e.text_a if e.text_b is None else (e.text_a, e.text_b) for e in examples]
    batch = tokenizer.encode_batch(texts, max_length=max_length, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
            "labels": torch.tensor([e.label for e in examples])}  # fmt: skip


@torch.no_grad()
def accuracy(model, tokenizer, examples, batch_size: int = 64, max_length: int = 128) -> float:
    """The share of ``examples`` the model labels right (batches of similar lengths)."""
    device = next(model.parameters()).device
    by_length = sorted(examples, key=lambda e: len(e.text_a) + len(e.text_b or ""))
    right = 0
    for start in range(0, len(by_length), batch_size):
        b = encode(tokenizer, by_length[start : start + batch_size], max_length)
        logits = model(b["input_ids"].to(device), b["attention_mask"].to(device)).logits
        right += int((logits.argmax(-1).cpu() == b["labels"]).sum())
    return right / len(examples)


def majority_accuracy(train, dev) -> float:
    """Dev accuracy of always answering the commonest training label (the floor to beat)."""
    labels = [e.label for e in train]
    top = max(set(labels), key=labels.count)
    return sum(e.label == top for e in dev) / len(dev)


def finetune(
    model: GPTForSequenceClassification,
    tokenizer: WordPieceTokenizer,
    train: Sequence[data.GlueExample],
    dev: Sequence[data.GlueExample],
    config: TrainConfig,
    max_length: int = 128,
) -> History:
    """Fine-tune every weight of ``model`` on ``train`` with ``bertlab.train.Trainer``.

    ``history.evals`` holds the dev ``accuracy`` at every evaluation and ``seconds``: the
    training time up to it (the time spent evaluating left out)."""
    clock = {"start": time.perf_counter(), "eval": 0.0}

    def evaluate(m) -> dict[str, float]:
        t = time.perf_counter()
        result = {"accuracy": accuracy(m, tokenizer, dev, max_length=max_length),
                  "seconds": t - clock["start"] - clock["eval"]}  # fmt: skip
        clock["eval"] += time.perf_counter() - t
        return result

    def loss(m, batch) -> dict[str, torch.Tensor]:
        out = m(batch["input_ids"], batch["attention_mask"], batch["labels"])
        return {"loss": out.loss, "task_loss": out.task_loss, "lm_loss": out.lm_loss}

    trainer = Trainer(model, loss, list(train), config, eval_fn=evaluate,
                      collate=lambda ex: encode(tokenizer, ex, max_length))  # fmt: skip
    clock["start"] = time.perf_counter()
    return trainer.fit()


# --------------------------------------------------------------------------------------------------
# 5. What transfers: the demos, each against the same architecture from random init
# --------------------------------------------------------------------------------------------------


@dataclass
class TransferConfig(Presets):
    """The budgets of the transfer demos (the same for the pre-trained and the scratch arm).

    A run on ``n`` labelled examples trains ``epochs`` passes, but at least ``min_steps`` and
    at most ``max_steps`` steps of ``batch_size``; the dev set is evaluated every
    ``eval_every`` steps (0: at the end only)."""

    lm: str = "cpu"  # the LM preset (lm_config)
    sizes: tuple[int, ...] = (64, 256, 1024, 4096)  # SST-2 training examples per point
    epochs: float = 1.0
    min_steps: int = 30
    max_steps: int = 150
    batch_size: int = 32
    lr: float = 3e-4
    warmup: float = 0.1
    lm_weight: float = 0.5  # GPT-1's lambda
    max_length: int = 128
    eval_every: int = 16  # for the largest size: the validation curve per step
    aux_sizes: tuple[int, ...] = (256, 1024)  # sizes of the with/without aux-loss comparison
    pair_tasks: tuple[str, str] = ("mrpc", "rte")  # task A, then task B
    pair_steps: int = 40  # steps on each of A and B
    pair_batch_size: int = 16
    seed: int = 0

    PRESETS = {
        "cpu": {},
        "gpu": dict(lm="gpu", sizes=(64, 256, 1024, 4096, 16384, 67349), max_steps=3000,
                    lr=1e-4, eval_every=100, aux_sizes=(256, 1024, 16384), pair_steps=1000),
        "tiny": dict(lm="tiny", sizes=(32, 64), min_steps=4, max_steps=8, batch_size=8,
                     eval_every=4, aux_sizes=(32,), pair_steps=4, pair_batch_size=8),
    }  # fmt: skip

    def steps_for(self, n: int) -> int:
        """The number of steps a run on ``n`` examples trains."""
        epochs = round(self.epochs * n / self.batch_size)
        return int(min(self.max_steps, max(self.min_steps, epochs)))


@dataclass
class RunResult:
    """One fine-tuning run: the dev accuracy at the end and along the way, and its budget."""

    task: str
    init: str  # "pre-trained" or "scratch"
    examples: int
    steps: int
    lm_weight: float
    accuracy: float
    eval_steps: list[int] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0  # training time (evaluations excluded)
    first: dict | None = None  # the task-A run this one started from (transfer_a_to_b)


def _model(config: TransferConfig, init: str, lm_weight: float, lm: PretrainedBert | None):
    """The model of one arm and its tokenizer: a copy of the pre-trained LM, or the same
    architecture with random weights (which needs only the tokenizer, not the trained LM)."""
    if init not in ("pre-trained", "scratch"):
        raise ValueError(f"init must be 'pre-trained' or 'scratch', got {init!r}.")
    pc = lm_config(config.lm)
    torch.manual_seed(config.seed)
    if init == "pre-trained":
        lm = lm or load_lm(pc, progress=False)
        base, tokenizer = copy.deepcopy(lm.model), lm.tokenizer
    else:
        tokenizer = wordpiece_tokenizer(pc.vocab_size, pc.documents, pc.vocab_min_frequency)
        base = BertForPreTraining(pc.bert_config(tokenizer.vocab_size))
    torch.manual_seed(config.seed + 1)  # the same new classifier in both arms
    return GPTForSequenceClassification(base, 2, lm_weight), tokenizer


def _subset(task: str, n: int | None, seed: int) -> list[data.GlueExample]:
    """The first ``n`` examples of a seeded shuffle of the task's train split (nested in n)."""
    train = data.read_glue(task, "train")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
    return [train[i] for i in order[:n]]


def _fit(model, tokenizer, task, n, steps, config: TransferConfig, bs, eval_every) -> RunResult:
    train, dev = _subset(task, n, config.seed), data.read_glue(task, "dev")
    tc = TrainConfig(steps=steps, batch_size=min(bs, len(train)), lr=config.lr,
                     warmup=config.warmup, eval_every=eval_every, log_every=5,
                     progress=False, seed=config.seed)  # fmt: skip
    h = finetune(model, tokenizer, train, dev, tc, config.max_length)
    return RunResult(task, "", len(train), steps, model.lm_weight, h.evals[-1]["accuracy"],
                     h.eval_steps, h.metric("accuracy"), h.metric("seconds"),
                     h.evals[-1]["seconds"])  # fmt: skip


def run(
    config: TransferConfig,
    task: str,
    n: int | None,
    init: str,
    lm_weight: float | None = None,
    first_task: str | None = None,
    lm: PretrainedBert | None = None,
) -> RunResult:
    """One fine-tuning run, cached (kind ``"gpt-finetune"``): ``init`` ("pre-trained" from the
    LM of ``config.lm``, or "scratch": the same architecture, random weights) fine-tuned on
    the first ``n`` examples of ``task`` (None: all), after ``first_task`` when given (its
    whole train split; the classifier is then replaced by a fresh one)."""
    lm_weight = config.lm_weight if lm_weight is None else lm_weight
    spec = {"config": asdict(config), "lm": asdict(lm_config(config.lm)), "task": task,
            "examples": n, "init": init, "lm_weight": lm_weight,
            "first_task": first_task}  # fmt: skip

    def build(folder: Path) -> None:
        model, tokenizer = _model(config, init, lm_weight, lm)
        if n is None:  # a whole train split (the pair tasks): the pair budget
            steps, bs = config.pair_steps, config.pair_batch_size
        else:
            steps, bs = config.steps_for(n), config.batch_size
        every = config.eval_every if n == max(config.sizes) else 0
        first = None
        if first_task is not None:
            a = _fit(model, tokenizer, first_task, None, steps, config, bs, 0)
            first = asdict(a) | {"init": init}
            torch.manual_seed(config.seed + 2)
            model.classifier.reset_parameters()
            initialize(model.classifier, model.config)
        result = _fit(model, tokenizer, task, n, steps, config, bs, every)
        result.init, result.first = init, first
        (folder / "result.json").write_text(json.dumps(asdict(result), indent=1) + "\n")

    def load(folder: Path) -> RunResult:
        return RunResult(**json.loads((folder / "result.json").read_text()))

    return cached("gpt-finetune", spec, build, load)


def learning_curve(config: TransferConfig, lm: PretrainedBert | None = None) -> dict:
    """Purpose 1 (general -> specific) and 2 (faster training): SST-2 dev accuracy of the
    pre-trained LM and of the scratch model after fine-tuning on each of ``config.sizes``
    examples; ``{init: [RunResult per size]}``. The largest size's runs hold the dev accuracy
    every ``eval_every`` steps (``eval_steps``, ``eval_accuracy``, ``eval_seconds``)."""
    return {init: [run(config, "sst2", n, init, lm=lm) for n in config.sizes]
            for init in ("pre-trained", "scratch")}  # fmt: skip


def steps_to_reach(result: RunResult, target: float) -> int | None:
    """The first evaluated step at which ``result`` reaches ``target`` accuracy (None: never)."""
    return next((s for s, a in zip(result.eval_steps, result.eval_accuracy) if a >= target), None)


def aux_loss_ablation(config: TransferConfig, lm: PretrainedBert | None = None) -> dict:
    """The pre-trained LM fine-tuned on SST-2 with the auxiliary LM loss (lambda =
    ``config.lm_weight``) and without it (lambda = 0): ``{lambda: [RunResult per aux_size]}``."""
    return {w: [run(config, "sst2", n, "pre-trained", w, lm=lm) for n in config.aux_sizes]
            for w in (config.lm_weight, 0.0)}  # fmt: skip


def transfer_a_to_b(config: TransferConfig, lm: PretrainedBert | None = None) -> dict:
    """Purpose 3 (task A -> related task B): task B alone vs task A then task B, for both inits:
    ``{init: {"B alone": RunResult, "A then B": RunResult}}`` (``pair_steps`` steps each)."""
    a, b = config.pair_tasks
    return {init: {"B alone": run(config, b, None, init, lm=lm),
                   "A then B": run(config, b, None, init, first_task=a, lm=lm)}
            for init in ("pre-trained", "scratch")}  # fmt: skip
