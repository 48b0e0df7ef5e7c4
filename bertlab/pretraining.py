"""Pre-training BERT: the masked language model and next-sentence prediction, on WikiText-2.

The paper's recipe (section 3.1 and appendix A): the data (documents, NSP pairs, 80/10/10
masking, batches) is built by ``bertlab.pretraining_data``, whose functions are re-exported
here; this module has the rest:

1. :class:`PretrainConfig`: the model, the data, the objective and the training, with the
   switches chapter 11 ablates (``nsp``, ``masking``, ``mask_prob``, ``objective``, ``packing``).
2. :func:`pretraining_loss`: the MLM head decodes only the selected positions (their hidden
   states are gathered first), plus NSP from the pooled [CLS]; or a left-to-right LM.
3. :func:`pretrain` runs ``bertlab.train.Trainer`` (checkpoints, resume, DDP under torchrun),
   evaluates on WikiText-2 valid and writes a Hugging Face folder; :func:`load_or_train`
   caches the result for the later chapters.

Command line: ``python -m bertlab.pretraining --preset cpu --out DIR [--steps N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

from bertlab import pretraining_data
from bertlab.bert import BertConfig, BertForPreTraining
from bertlab.checkpoint import cached, data_key
from bertlab.pretraining_data import (  # the data's names, re-exported
    Batches as Batches,
)
from bertlab.pretraining_data import (
    Pair as Pair,
)
from bertlab.pretraining_data import (
    clean_wikitext as clean_wikitext,
)
from bertlab.pretraining_data import (
    document_sentences as document_sentences,
)
from bertlab.pretraining_data import (
    documents as documents,
)
from bertlab.pretraining_data import (
    full_sequences as full_sequences,
)
from bertlab.pretraining_data import (
    mask_tokens as mask_tokens,
)
from bertlab.pretraining_data import (
    nsp_pairs as nsp_pairs,
)
from bertlab.pretraining_data import (
    wordpiece_tokenizer as wordpiece_tokenizer,
)
from bertlab.train import History, Presets, TrainConfig, Trainer, distributed_rank
from bertlab.wordpiece import WordPieceTokenizer

__all__ = [
    *pretraining_data.__all__,
    "PretrainConfig",
    "pretraining_loss",
    "evaluate",
    "pretrain",
    "PretrainedBert",
    "load_pretrained_folder",
    "load_or_train",
    "fill_mask",
    "predict_each_piece",
    "see_itself_experiment",
    "masking_rates",
]

OBJECTIVES, MASKINGS = ("mlm", "ltr"), ("static", "dynamic")
PACKINGS = ("pairs", "full", "sentences")

# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


@dataclass
class PretrainConfig(Presets):
    """The model, the data and the objective of one pre-training run, and how long it trains.

    The switches chapter 11 ablates: ``nsp`` (next-sentence prediction on or off), ``masking``
    (static or dynamic), ``mask_prob``, ``objective`` ("mlm", or "ltr": a left-to-right LM with
    the causal mask) and ``packing`` ("pairs": [CLS] A [SEP] B [SEP]; "full": full-length
    sequences of contiguous text; "sentences": the same with a [SEP] closing every sentence, the
    delimiter GPT-style fine-tuning reuses, see ``bertlab.gpt``). ``batch_size`` is the global
    batch, over ``accumulate`` micro-batches.
    """

    # data
    vocab_size: int = 8192  # WordPiece vocabulary trained on WikiText-2 train
    vocab_min_frequency: int = 100  # a pair must occur this often to be merged
    max_len: int = 128  # tokens per sequence, [CLS] and [SEP]s included
    short_seq_prob: float = 0.1  # share of sequences with a random shorter target length
    documents: int | None = None  # train on the first n articles only (None: all 600)
    # objective
    objective: str = "mlm"
    nsp: bool = True
    packing: str = "pairs"
    masking: str = "static"
    duplication: int = 10  # static masking: distinct masks per sequence (BERT used 10)
    mask_prob: float = 0.15
    # model (bertlab.bert.BertConfig)
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    intermediate: int = 1024
    max_position: int = 512
    dropout: float = 0.1
    embedding_size: int | None = None
    share_layers: bool = False
    # training
    steps: int = 1000
    batch_size: int = 32
    accumulate: int = 1
    lr: float = 1e-3
    warmup: float = 0.06
    weight_decay: float = 0.01
    seed: int = 0
    cpu_bf16: bool = False  # bf16 autocast on CPUs with bf16 matrix instructions
    eval_every: int = 0  # 0: at the end only
    eval_sequences: int = 512  # WikiText-2 valid sequences for the validation metrics
    snapshots: tuple[float, ...] = (0.25,)  # also keep the weights at these fractions of steps

    PRESETS: ClassVar[dict[str, dict]] = {
        # the chapter's run: about ten minutes on two CPU cores, 600 steps of 32 x 128 tokens.
        # No dropout (nothing to regularise in under one pass over the data, and 12% faster);
        # lr 5e-4 (1e-3 left this post-LN BERT stuck at the unigram solution); bf16 autocast
        # where the CPU has bf16 matrix instructions (about 25% faster)
        "cpu": dict(steps=600, lr=5e-4, dropout=0.0, cpu_bf16=True, eval_every=150),
        # 16,384 asked, 13,613 learned at min_frequency 50 (1.17 pieces per word on valid)
        "gpu": dict(vocab_size=16384, vocab_min_frequency=50, max_len=256, layers=8,
                    hidden=512, heads=8, intermediate=2048, steps=20000, batch_size=128,
                    lr=3e-4, warmup=0.05, eval_every=2000, eval_sequences=2048),
        # for tests and a quick look: 20 articles, a 2-layer model, no dropout
        "tiny": dict(vocab_size=1000, vocab_min_frequency=10, max_len=64, documents=20,
                     layers=2, hidden=64, heads=2, intermediate=128, max_position=64,
                     dropout=0.0, steps=40, batch_size=16, eval_sequences=64),
    }  # fmt: skip

    def __post_init__(self):
        self.snapshots = tuple(self.snapshots)
        for name, value, choices in (
            ("objective", self.objective, OBJECTIVES),
            ("masking", self.masking, MASKINGS),
            ("packing", self.packing, PACKINGS),
        ):
            if value not in choices:
                raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}.")
        if self.nsp and (self.objective == "ltr" or self.packing != "pairs"):
            raise ValueError(
                f"nsp=True needs sentence pairs and a bidirectional [CLS]; objective="
                f"{self.objective!r} with packing={self.packing!r} has none: set nsp=False."
            )
        if self.max_len > self.max_position:
            raise ValueError(
                f"max_len={self.max_len} is above max_position={self.max_position}: the model "
                f"has no position embedding beyond {self.max_position}; raise max_position or "
                f"lower max_len."
            )
        if self.max_len < 8:
            raise ValueError(f"max_len={self.max_len} is too short for [CLS] A [SEP] B [SEP].")
        if not 0 < self.mask_prob < 1:
            raise ValueError(f"mask_prob must be in (0, 1), got {self.mask_prob}.")

    def bert_config(self, vocab_size: int) -> BertConfig:
        """The model these settings describe, for a vocabulary of ``vocab_size`` pieces."""
        sizes = {name: getattr(self, name) for name in _MODEL_FIELDS}
        causal = self.objective == "ltr"
        return BertConfig(vocab_size=vocab_size, attention_dropout=self.dropout, causal=causal,
                          **sizes)  # fmt: skip

    def train_config(self, **overrides) -> TrainConfig:
        """How the :class:`bertlab.train.Trainer` runs (``overrides``: e.g. ``ckpt_dir``)."""
        settings = {name: getattr(self, name) for name in _TRAIN_FIELDS}
        return TrainConfig(log_every=10, **settings, **overrides)


_MODEL_FIELDS = ("hidden", "layers", "heads", "intermediate", "max_position", "dropout",
                 "embedding_size", "share_layers")  # fmt: skip
_TRAIN_FIELDS = ("steps", "batch_size", "accumulate", "lr", "warmup", "weight_decay", "seed",
                 "eval_every", "cpu_bf16")  # fmt: skip


# --------------------------------------------------------------------------------------------------
# 2. The loss: masked-only MLM (+ NSP), or left to right
# --------------------------------------------------------------------------------------------------


def pretraining_loss(model, batch: dict, nsp: bool = True) -> dict[str, torch.Tensor]:
    """MLM (or left-to-right LM) loss on the predicted positions only, plus NSP from [CLS].

    The encoder's hidden states at the predicted positions are gathered first and only those go
    through the MLM head and the (V, H) decoder: ``mlm_positions`` is the boolean mask of the
    labels. The MLM loss is the mean over every predicted position of the *global* batch, so it
    is the same whether the batch runs in one piece, in micro-batches or over several processes.
    Returns ``loss`` and ``mlm_loss``, ``mlm_accuracy`` (on the predicted positions),
    ``nsp_loss``, ``nsp_accuracy``.
    """
    labels = batch["labels"]
    selected = labels != -100  # (B, T)
    out = model(
        batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], mlm_positions=selected
    )  # mlm_logits: (N, V), N = selected positions
    target = labels[selected]  # (N,), the same row-major order
    share = batch["rows"] / len(labels) / max(batch["predicted"], 1)  # 1 / global predictions
    mlm_loss = F.cross_entropy(out.mlm_logits.float(), target, reduction="sum") * share
    correct = (out.mlm_logits.argmax(-1) == target).sum() * share
    result = {"mlm_loss": mlm_loss, "mlm_accuracy": correct}
    if nsp:
        nsp_loss = F.cross_entropy(out.nsp_logits.float(), batch["nsp_labels"])
        result["nsp_loss"] = nsp_loss
        result["nsp_accuracy"] = (out.nsp_logits.argmax(-1) == batch["nsp_labels"]).float().mean()
    result["loss"] = mlm_loss + result.get("nsp_loss", 0.0)
    return result


@torch.no_grad()
def evaluate(model, batches: Sequence[dict], nsp: bool = True) -> dict[str, float]:
    """Validation metrics over fixed, pre-masked batches (:meth:`Batches.fixed`)."""
    model = getattr(model, "module", model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    totals = Counter()
    for b in batches:
        b = {k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}
        out = pretraining_loss(model, b, nsp)
        n, rows = b["predicted"], b["rows"]
        totals["predicted"] += n
        totals["mlm_loss"] += float(out["mlm_loss"]) * n
        totals["mlm_accuracy"] += float(out["mlm_accuracy"]) * n
        if nsp:
            totals["rows"] += rows
            totals["nsp_loss"] += float(out["nsp_loss"]) * rows
            totals["nsp_accuracy"] += float(out["nsp_accuracy"]) * rows
    model.train(was_training)
    metrics = {k: totals[k] / totals["predicted"] for k in ("mlm_loss", "mlm_accuracy")}
    if nsp:
        metrics |= {k: totals[k] / totals["rows"] for k in ("nsp_loss", "nsp_accuracy")}
    return metrics


def unigram_accuracy(train: Sequence[Pair], batches: Sequence[dict], first_regular: int) -> float:
    """The baseline that always predicts the most frequent regular piece of the training text."""
    counts = Counter(t for p in train for t in (*p.a, *p.b) if t >= first_regular)
    top = counts.most_common(1)[0][0]
    labels = torch.cat([b["labels"][b["labels"] != -100] for b in batches])
    return float((labels == top).float().mean())


@torch.no_grad()
def fill_mask(
    model: BertForPreTraining, tokenizer: WordPieceTokenizer, text: str, k: int = 5
) -> list[list[tuple[str, float]]]:
    """The ``k`` likeliest pieces (with probabilities) for each ``[MASK]`` in ``text``."""
    enc = tokenizer.encode(text)
    ids = torch.tensor([enc["input_ids"]])
    out = model.eval()(
        ids, torch.tensor([enc["token_type_ids"]]), mlm_positions=ids == tokenizer.mask_id
    )  # (masks, V)
    top = out.mlm_logits.softmax(-1).topk(k)
    return [
        list(zip(tokenizer.convert_ids_to_tokens(i.tolist()), p.tolist()))
        for p, i in zip(top.values, top.indices)
    ]


@torch.no_grad()
def predict_each_piece(
    models: dict[str, BertForPreTraining], tokenizer: WordPieceTokenizer, text: str, k: int = 5
) -> tuple[list[str], dict[str, list[list[tuple[str, float]]]]]:
    """Hide each piece of ``text`` in turn: ``(pieces, {name: top-k guesses per piece})``.

    One batch per model: row i is the text with piece i replaced by [MASK]."""
    enc = tokenizer.encode(text)
    ids = torch.tensor(enc["input_ids"][1:-1])  # the pieces, without [CLS] and [SEP]
    n = len(ids)
    rows = ids.repeat(n, 1)
    rows[torch.arange(n), torch.arange(n)] = tokenizer.mask_id
    cls, sep = torch.full((n, 1), tokenizer.cls_id), torch.full((n, 1), tokenizer.sep_id)
    batch = torch.cat([cls, rows, sep], 1)  # (n, n + 2)
    guesses = {}
    for name, model in models.items():
        out = model.eval()(batch, mlm_positions=batch == tokenizer.mask_id)  # (n, V)
        top = out.mlm_logits.softmax(-1).topk(k)
        guesses[name] = [
            list(zip(tokenizer.convert_ids_to_tokens(i.tolist()), p.tolist()))
            for p, i in zip(top.values, top.indices)
        ]
    return tokenizer.convert_ids_to_tokens(ids.tolist()), guesses


def masking_rates(batches: Batches, steps: int = 100) -> dict[str, float]:
    """What :func:`mask_tokens` did over the first ``steps`` training batches: the share of the
    regular tokens selected, and of the selected, the shares turned into [MASK], into a random
    piece, and left as they were (BERT's 15% and 80/10/10)."""
    mask_id = batches.tokenizer.mask_id
    n = Counter()
    for step in range(steps):
        b = batches(step)
        original = batches.encode([batches.pairs[j] for j in batches.indices(step)])["input_ids"]
        chosen = b["labels"] != -100
        n["regular"] += int((original > mask_id).sum())
        n["selected"] += int(chosen.sum())
        n["mask"] += int((b["input_ids"][chosen] == mask_id).sum())
        n["kept"] += int((b["input_ids"][chosen] == original[chosen]).sum())
    random_share = (n["selected"] - n["mask"] - n["kept"]) / n["selected"]
    return {"regular tokens": n["regular"], "selected / regular": n["selected"] / n["regular"],
            "[MASK] / selected": n["mask"] / n["selected"], "random / selected": random_share,
            "kept / selected": n["kept"] / n["selected"]}  # fmt: skip


def see_itself_experiment(
    tokenizer: WordPieceTokenizer,
    train: Sequence[Pair],
    valid: Sequence[Pair],
    steps: int = 300,
    seed: int = 0,
    cache: bool = True,
) -> dict[str, dict]:
    """Why BERT masks: a small encoder trained to predict *every* token from the whole sequence,
    itself included, against the same encoder trained with masking, for the same steps.

    The first one's training loss falls to about 0 (each position reads its own token through
    attention, and copies it); asked to fill in masked tokens, which is what language modelling
    needs, it does no better than always guessing one piece. Returns, per arm, the training
    loss curve and ``hidden_accuracy``, the accuracy where the validation input shows [MASK]
    (the 10% of targets left unchanged are excluded: a copying model gets those for free).
    With ``cache`` the results are kept (``checkpoint.cached``, kind ``"see-itself"``), keyed by
    a hash of the vocabulary, of both sets of pairs, and by ``steps`` and ``seed``."""
    if cache:
        key = {  # the data by its hash, too big to be a key itself
            "vocabulary": data_key(tokenizer.id_to_token),
            "train": data_key([vars(p) for p in train]),
            "valid": data_key([vars(p) for p in valid]),
            "steps": steps,
            "seed": seed,
        }

        def build(folder: Path) -> None:
            result = see_itself_experiment(tokenizer, train, valid, steps, seed, cache=False)
            (folder / "results.json").write_text(json.dumps(result))

        return cached(
            "see-itself", key, build, lambda f: json.loads((f / "results.json").read_text())
        )
    config = PretrainConfig(
        max_len=64,
        nsp=False,
        layers=2,
        hidden=128,
        heads=2,
        intermediate=256,
        dropout=0.0,
        seed=seed,
    )
    valid_batches = Batches(list(valid), config, tokenizer, 32, seed=1).fixed(256)
    results = {}
    for arm, copy in (("predict every token, seeing it", True), ("masked LM (15%)", False)):
        batches = Batches(list(train), config, tokenizer, 32, seed)

        def get_batch(step, batches=batches, copy=copy):
            b = batches(step)
            if copy:  # the text unmasked, every regular token a target
                ids = batches.encode([batches.pairs[j] for j in batches.indices(step)])
                ids = ids["input_ids"]
                regular = ids > tokenizer.mask_id
                b["input_ids"], b["labels"] = ids, torch.where(regular, ids, -100)
                b["predicted"] = int(regular.sum())
            return b

        torch.manual_seed(seed)
        model = BertForPreTraining(config.bert_config(tokenizer.vocab_size))
        train_config = TrainConfig(
            steps=steps, lr=1e-3, warmup=0.1, progress=False, log_every=5, device="cpu", seed=seed
        )
        history = Trainer(
            model, lambda m, b: pretraining_loss(m, b, nsp=False), get_batch, train_config
        ).fit()
        results[arm] = {
            "steps": history.steps,
            "loss": history.loss,
            "hidden_accuracy": _hidden_accuracy(model, valid_batches, tokenizer),
        }
    return results


@torch.no_grad()
def _hidden_accuracy(model, batches: Sequence[dict], tokenizer: WordPieceTokenizer) -> float:
    """Accuracy at the positions whose input is [MASK]: the model cannot see the answer there."""
    model.eval()
    right = total = 0
    for b in batches:
        hidden = b["input_ids"] == tokenizer.mask_id
        out = model(b["input_ids"], b["token_type_ids"], b["attention_mask"], mlm_positions=hidden)
        right += int((out.mlm_logits.argmax(-1) == b["labels"][hidden]).sum())
        total += int(hidden.sum())
    return right / total


# --------------------------------------------------------------------------------------------------
# 3. Training, the Hugging Face folder, the cache
# --------------------------------------------------------------------------------------------------


@dataclass
class PretrainedBert:
    """A pre-trained mini-BERT: the model (with its MLM and NSP heads), its tokenizer, the
    config it was trained with, its training history, validation metrics and folder."""

    model: BertForPreTraining
    tokenizer: WordPieceTokenizer
    config: PretrainConfig
    history: History
    metrics: dict
    folder: Path

    def snapshot(self, step: int) -> BertForPreTraining:
        """The model as it was after ``step`` steps (one of ``metrics["snapshots"]``)."""
        from bertlab.checkpoint import load_model_weights, load_weights

        model = BertForPreTraining(self.model.config)
        path = self.folder / "snapshots" / f"step-{step}.safetensors"
        load_model_weights(model, load_weights(path), f"the snapshot {path}")
        return model.eval()


def _sequences(config: PretrainConfig, docs) -> list[Pair]:
    if config.packing == "full":
        return full_sequences(docs, config.max_len)
    if config.packing == "sentences":  # a [SEP] after every sentence (a second one ends a doc)
        return full_sequences([[[*s, 3] for s in doc] for doc in docs], config.max_len)
    return nsp_pairs(
        docs, max_len=config.max_len, short_seq_prob=config.short_seq_prob, seed=config.seed
    )


def pretrain(
    config: PretrainConfig, out: str | Path, device=None, progress: bool = True,
    checkpoint_every: int = 0,
) -> PretrainedBert | None:  # fmt: skip
    """Pre-train the model ``config`` describes on WikiText-2 and write it to ``out``.

    ``out`` receives the training checkpoint (every two minutes, every ``checkpoint_every``
    steps when that is set, and at the end; running again
    with the same config resumes from it, after a crash or ``kill -9`` too, and a checkpoint of
    another config is refused), weight snapshots, and at the end a Hugging Face folder
    (config.json, model.safetensors with both heads, vocab.txt) with ``history.json`` and
    ``metrics.json``. Under torchrun every process trains its slice of each batch and rank 0
    writes; the other ranks return None.
    """
    from bertlab import hf
    from bertlab.checkpoint import save_weights

    out = Path(out)
    tokenizer = wordpiece_tokenizer(config.vocab_size, config.documents, config.vocab_min_frequency)
    train_pairs = _sequences(config, documents(tokenizer, "train", config.documents))
    valid_docs = documents(tokenizer, "valid", None if config.documents is None else 4)
    valid = Batches(
        _sequences(config, valid_docs), config, tokenizer, min(32, len(valid_docs)), seed=1
    ).fixed(config.eval_sequences)
    batches = Batches(train_pairs, config, tokenizer, config.batch_size, config.seed)
    torch.manual_seed(config.seed)
    model = BertForPreTraining(config.bert_config(tokenizer.vocab_size))
    if not config.nsp:  # no loss reaches them: keep them out of the optimizer and DDP
        model.nsp.requires_grad_(False)
        model.bert.pooler.requires_grad_(False)
    snapshot_steps = sorted({round(f * config.steps) for f in (0.0, *config.snapshots)})
    rank, _ = distributed_rank()

    def keep_snapshot(trainer) -> None:
        path = out / "snapshots" / f"step-{trainer.step}.safetensors"
        if trainer.step in snapshot_steps and trainer.rank == 0 and not path.exists():
            save_weights(trainer.model.state_dict(), path)

    if rank == 0 and not (out / "snapshots" / "step-0.safetensors").exists():
        save_weights(model.state_dict(), out / "snapshots" / "step-0.safetensors")
    trainer = Trainer(
        model,
        lambda m, b: pretraining_loss(m, b, config.nsp),
        batches,
        config.train_config(
            ckpt_dir=str(out),
            ckpt_minutes=2.0,
            ckpt_every=checkpoint_every,
            device=device,
            progress=progress,
        ),
        eval_fn=lambda m: evaluate(m, valid, config.nsp),
        on_step=keep_snapshot,
        run_config={"pretrain": asdict(config)},
    )
    history = trainer.fit()
    if trainer.rank != 0:
        return None
    model.eval()
    is_next = sum(p.is_next for p in train_pairs) / len(train_pairs)
    metrics = {
        **history.evals[-1],
        "unigram_accuracy": unigram_accuracy(train_pairs, valid, tokenizer.mask_id + 1),
        "nsp_chance": max(is_next, 1 - is_next),  # always guessing the commoner label
        "train_sequences": len(train_pairs),
        "tokens_seen": config.steps * config.batch_size * config.max_len,
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": history.seconds,
        "snapshots": snapshot_steps[:-1] if snapshot_steps[-1] == config.steps else snapshot_steps,
    }
    if config.embedding_size is None and not config.share_layers:
        hf.save_pretrained(model, out)
    else:  # ALBERT's options, which no Hugging Face BERT folder can hold: our own record
        save_weights(model.state_dict(), out / "model.safetensors")
        (out / "bert_config.json").write_text(json.dumps(asdict(model.config), indent=1) + "\n")
    hf.save_tokenizer(tokenizer, out, model_max_length=config.max_len)
    (out / "pretrain.json").write_text(json.dumps(asdict(config), indent=1) + "\n")
    (out / "history.json").write_text(history.to_json())
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return load_pretrained_folder(out)


def load_pretrained_folder(folder: str | Path) -> PretrainedBert:
    """Read what :func:`pretrain` wrote (a Hugging Face folder, or for ALBERT's options our own
    ``bert_config.json`` and weights, plus bertlab's records)."""
    from bertlab import hf
    from bertlab.checkpoint import load_model_weights, load_weights

    folder = Path(folder)
    config = PretrainConfig(**json.loads((folder / "pretrain.json").read_text()))
    tokenizer = WordPieceTokenizer.from_vocab_file(folder / "vocab.txt")
    if (folder / "bert_config.json").is_file():  # ALBERT's options (see pretrain)
        model = BertForPreTraining(
            BertConfig(**json.loads((folder / "bert_config.json").read_text()))
        )
        path = folder / "model.safetensors"
        load_model_weights(model, load_weights(path), f"the pre-trained weights {path}")
        model.eval()
    else:
        model = hf.load_pretraining(folder, vocab_size=tokenizer.vocab_size)
    history = History.from_json((folder / "history.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    return PretrainedBert(model, tokenizer, config, history, metrics, folder)


def load_or_train(
    preset: str | PretrainConfig = "cpu", device=None, progress: bool = True
) -> PretrainedBert:
    """The pre-trained mini-BERT of ``preset``: from the cache (``checkpoint.cached``, kind
    ``"pretrained-bert"``), or trained first (and then cached) when it is not there. An
    interrupted training resumes from its checkpoint the next time."""
    config = PretrainConfig.preset(preset) if isinstance(preset, str) else preset
    return cached(
        "pretrained-bert",
        config,
        lambda f: pretrain(config, f, device, progress),
        load_pretrained_folder,
    )


# --------------------------------------------------------------------------------------------------
# 4. Command line: python -m bertlab.pretraining --preset cpu --out DIR
# --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(
        prog="python -m bertlab.pretraining",
        description="Pre-train a mini-BERT (MLM + NSP) on WikiText-2. Runs under torchrun too.",
    )
    parser.add_argument("--preset", default="cpu", help="cpu (default), gpu or tiny")
    parser.add_argument("--out", required=True, help="folder for checkpoints and the model")
    parser.add_argument("--steps", type=int, help="override the preset's number of steps")
    parser.add_argument("--seed", type=int, help="override the preset's seed")
    parser.add_argument("--device", help="cpu, cuda, ... (default: the best available)")
    parser.add_argument(
        "--checkpoint-every", type=int, default=0, metavar="N",
        help="also write the checkpoint every N steps (default: every two minutes and at the end)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    try:
        config = PretrainConfig.preset(args.preset, **overrides)
    except ValueError as e:
        parser.error(str(e))
    if args.checkpoint_every < 0:
        parser.error(f"--checkpoint-every must be 0 or more, not {args.checkpoint_every}.")
    result = pretrain(config, args.out, device=args.device, checkpoint_every=args.checkpoint_every)
    if result is None:
        return None
    summary = {
        "preset": args.preset,
        "steps": config.steps,
        **{k: v for k, v in result.metrics.items() if k != "snapshots"},
    }
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
