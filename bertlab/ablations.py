"""Ablations: which parts of BERT's recipe matter, each tested at one small, equal budget.

An *arm* is one change to the pre-training recipe of chapter 9, made with the switches of
``bertlab.pretraining.PretrainConfig`` (``nsp``, ``objective``, ``mask_prob``, ``masking``,
``packing``, ``batch_size`` with ``accumulate``, ``embedding_size``, ``share_layers``). Read top
to bottom:

1. :data:`ARMS`, the changes, and :data:`STUDIES`, the questions they answer (the paper's
   Table 5, the masking rate, RoBERTa's changes, ALBERT's savings), with the paper's numbers
   in :data:`PAPER_TABLE_5`.
2. :class:`AblationBudget`, what every arm gets: the same model size, the same pre-training
   tokens (steps x batch x length; an arm with a bigger batch takes fewer steps), the same
   fine-tuning on SST-2 and a pair task, over the same seeds.
3. :func:`run_arm` pre-trains an arm (``pretraining.load_or_train``, cached) and fine-tunes it
   with ``bertlab.finetune`` once per task and seed; the scores are cached too.
4. :func:`table` gives each arm's mean and spread per task beside the baseline, and
   :func:`verdict` says whether a difference is larger than the noise.

The fine-tuning seeds change the head's initialization and the order of the examples; each arm
is pre-trained once (seed 0), so the spread is fine-tuning noise only.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

from bertlab.checkpoint import cached
from bertlab.pretraining import PretrainConfig
from bertlab.train import Presets

__all__ = [
    "BASELINE",
    "NO_PRETRAINING",
    "ARMS",
    "STUDIES",
    "PAPER_TABLE_5",
    "AblationBudget",
    "ArmResult",
    "arm_config",
    "run_arm",
    "run_study",
    "table",
    "verdict",
]

# --------------------------------------------------------------------------------------------------
# 1. The arms and the questions
# --------------------------------------------------------------------------------------------------

BASELINE = "MLM + NSP"  # BERT's recipe: 15% static masks, sentence pairs, next-sentence prediction
NO_PRETRAINING = "no pre-training"  # random weights of the same shape: the floor

#: Each arm: the changes it makes to the baseline's ``PretrainConfig`` ``c``.
ARMS: dict[str, Callable[[PretrainConfig], dict]] = {
    BASELINE: lambda c: {},
    NO_PRETRAINING: lambda c: dict(steps=0),
    # BERT's Table 5
    "No NSP": lambda c: dict(nsp=False),
    "LTR & No NSP": lambda c: dict(objective="ltr", nsp=False),  # GPT's objective and mask
    # the masking rate (Wettig et al. 2022, "Should you mask 15% in MLM?"; Cramming uses 40%)
    "mask 25%": lambda c: dict(mask_prob=0.25),
    "mask 40%": lambda c: dict(mask_prob=0.40),
    # RoBERTa's changes, one at a time
    "dynamic masking": lambda c: dict(masking="dynamic"),
    "full-length, no NSP": lambda c: dict(packing="full", nsp=False),
    # the same tokens in a quarter of the steps; lr doubled (RoBERTa raised it with the batch)
    "4x batch": lambda c: dict(
        batch_size=4 * c.batch_size, accumulate=4, steps=c.steps // 4, lr=2 * c.lr
    ),  # fmt: skip
    # ALBERT's two savings
    "ALBERT: E = H/4": lambda c: dict(embedding_size=c.hidden // 4),
    "ALBERT: E = H/4, shared": lambda c: dict(embedding_size=c.hidden // 4, share_layers=True),
}

#: The chapter's questions: each compares its arms with the baseline.
STUDIES: dict[str, tuple[str, ...]] = {
    "bert": (BASELINE, "No NSP", "LTR & No NSP", NO_PRETRAINING),
    "masking": (BASELINE, "mask 25%", "mask 40%"),
    "roberta": (BASELINE, "dynamic masking", "full-length, no NSP", "4x batch"),
    "albert": (BASELINE, "ALBERT: E = H/4", "ALBERT: E = H/4, shared"),
}

#: Devlin et al. (2019), Table 5: BERT-base ablations, dev scores (SQuAD v1.1: F1).
PAPER_TABLE_5 = {
    "MLM + NSP": {"MNLI-m": 84.4, "QNLI": 88.4, "MRPC": 86.7, "SST-2": 92.7, "SQuAD": 88.5},
    "No NSP": {"MNLI-m": 83.9, "QNLI": 84.9, "MRPC": 86.5, "SST-2": 92.6, "SQuAD": 87.9},
    "LTR & No NSP": {"MNLI-m": 82.1, "QNLI": 84.3, "MRPC": 77.5, "SST-2": 92.1, "SQuAD": 77.8},
}

# --------------------------------------------------------------------------------------------------
# 2. The budget every arm gets
# --------------------------------------------------------------------------------------------------


@dataclass
class AblationBudget(Presets):
    """The model, the pre-training tokens and the fine-tuning that every arm gets.

    "cpu": BERT-Tiny's shape (2 layers, H = 128; Turc et al. 2019), 128 steps of 32 x 64
    positions (262,144, about 12 s on two cores), then SST-2 on 4,000 sentences and MRPC on
    500 pairs in batches of 16 (250 and 32 steps), scored on their whole dev sets, with seeds
    0 and 1: about 40 s an arm (the left-to-right arm about 75 s: its loss covers every
    position), about 8 minutes for all eleven.
    """

    # the vocabulary of chapter 9 (pretraining.wordpiece_tokenizer, cached)
    vocab_size: int = 8192
    vocab_min_frequency: int = 100
    documents: int | None = None
    # the model
    layers: int = 2
    hidden: int = 128
    heads: int = 2
    intermediate: int = 512
    max_len: int = 64  # pre-training and fine-tuning length, [CLS] and [SEP]s included
    # pre-training
    steps: int = 128
    batch_size: int = 32
    lr: float = 1e-3
    eval_sequences: int = 256
    # fine-tuning
    tasks: tuple[str, ...] = ("sst2", "mrpc")
    train_examples: tuple[int | None, ...] = (4000, 500)  # per task
    test_examples: int | None = None  # None: the whole dev set
    finetune_batch_size: tuple[int, ...] = (16, 16)  # per task
    finetune_lr: float = 5e-4
    # what the classifier reads: the mean of the token vectors. At this budget the pooled
    # [CLS] is trained only by an NSP that stays at chance, and fine-tuning from it often
    # never leaves the majority class (SST-2 seed 0: 0.509 with "cls", 0.724 with "mean")
    pool: str = "mean"
    seeds: tuple[int, ...] = (0, 1)

    PRESETS: ClassVar[dict[str, dict]] = {
        "cpu": {},
        # the mini-BERT of chapter 9 at ten times its steps, every example, three seeds
        "gpu": dict(layers=4, hidden=256, heads=4, intermediate=1024, max_len=128, steps=6000,
                    batch_size=128, lr=5e-4, train_examples=(None, None), seeds=(0, 1, 2),
                    finetune_batch_size=(32, 32), finetune_lr=1e-4),
        # for tests: a 1,000-piece vocabulary of 20 articles, a few steps and examples
        "tiny": dict(vocab_size=1000, vocab_min_frequency=10, documents=20, layers=1, hidden=32,
                     heads=2, intermediate=64, max_len=48, steps=8, batch_size=8,
                     eval_sequences=16, train_examples=(32, 32), test_examples=16,
                     finetune_batch_size=(8, 8)),
    }  # fmt: skip

    def __post_init__(self):
        self.tasks, self.seeds = tuple(self.tasks), tuple(self.seeds)
        self.train_examples = tuple(self.train_examples)
        self.finetune_batch_size = tuple(self.finetune_batch_size)
        if not len(self.tasks) == len(self.train_examples) == len(self.finetune_batch_size):
            raise ValueError(
                f"give one train_examples and one finetune_batch_size per task: tasks "
                f"{self.tasks}, train_examples {self.train_examples}, finetune_batch_size "
                f"{self.finetune_batch_size}."
            )
        if len(self.seeds) < 2:
            raise ValueError(f"give at least two seeds to measure a spread, got {self.seeds}.")

    def pretrain_config(self) -> PretrainConfig:
        """The baseline arm: BERT's recipe at this budget (no dropout, bf16 where it helps)."""
        return PretrainConfig(
            vocab_size=self.vocab_size, vocab_min_frequency=self.vocab_min_frequency,
            documents=self.documents, max_len=self.max_len, layers=self.layers,
            hidden=self.hidden, heads=self.heads, intermediate=self.intermediate,
            max_position=self.max_len, dropout=0.0, steps=self.steps,
            batch_size=self.batch_size, lr=self.lr, cpu_bf16=True,
            eval_sequences=self.eval_sequences, snapshots=(),
        )  # fmt: skip


def _budget(budget: str | AblationBudget) -> AblationBudget:
    return AblationBudget.preset(budget) if isinstance(budget, str) else budget


def arm_config(arm: str, budget: str | AblationBudget = "cpu") -> PretrainConfig:
    """The ``PretrainConfig`` of ``arm`` at ``budget``: the baseline with the arm's changes."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of: {', '.join(map(repr, ARMS))}.")
    base = _budget(budget).pretrain_config()
    return replace(base, **ARMS[arm](base))


# --------------------------------------------------------------------------------------------------
# 3. Running an arm: pre-train once, fine-tune per task and seed
# --------------------------------------------------------------------------------------------------


@dataclass
class ArmResult:
    """One arm's pre-training metrics and its fine-tuned scores, ``scores[task]`` one per seed
    (SST-2 and RTE: accuracy; MRPC: accuracy too, its F1 is in ``f1``)."""

    arm: str
    config: PretrainConfig
    parameters: int
    pretrain: dict  # validation MLM (or next-token) loss and accuracy, seconds, tokens seen
    scores: dict[str, list[float]]
    f1: dict[str, list[float]]
    test_examples: dict[str, int]
    finetune_seconds: float


def _pretrained(config: PretrainConfig, progress: bool):
    """(``BertModel``, tokenizer, pre-training metrics) of an arm."""
    import torch

    from bertlab import pretraining
    from bertlab.bert import BertModel

    if config.steps == 0:  # the floor: random weights, chapter 9's vocabulary
        tokenizer = pretraining.wordpiece_tokenizer(
            config.vocab_size, config.documents, config.vocab_min_frequency
        )
        torch.manual_seed(config.seed)
        encoder = BertModel(config.bert_config(tokenizer.vocab_size))
        return encoder, tokenizer, {"seconds": 0.0, "tokens_seen": 0}
    bert = pretraining.load_or_train(config, progress=progress)
    keep = ("mlm_loss", "mlm_accuracy", "nsp_accuracy", "unigram_accuracy", "seconds",
            "tokens_seen", "train_sequences")  # fmt: skip
    return bert.model.bert, bert.tokenizer, {k: bert.metrics[k] for k in keep if k in bert.metrics}


def run_arm(
    arm: str, budget: str | AblationBudget = "cpu", device=None, progress: bool = False
) -> ArmResult:
    """Pre-train ``arm`` at ``budget`` and fine-tune it on each task with each seed; cached
    (kind ``"ablation"``; the pre-trained model is cached by ``pretraining.load_or_train``).

    Fine-tuning reads ``budget.pool`` (the mean of the token vectors in the presets; a
    left-to-right arm always does, since under its causal mask [CLS] sees only itself), and a
    left-to-right arm keeps its causal mask, as the paper's LTR model does.
    """
    from bertlab import finetune

    b = _budget(budget)
    config = arm_config(arm, b)

    def build(folder: Path) -> None:
        encoder, tokenizer, metrics = _pretrained(config, progress)
        pool = "mean" if config.objective == "ltr" else b.pool
        scores, f1s, tested, start = {}, {}, {}, time.perf_counter()
        for name, n, batch_size in zip(b.tasks, b.train_examples, b.finetune_batch_size):
            for seed in b.seeds:
                fc = finetune.FinetuneConfig(
                    task=name, init="ours", pool=pool, train_examples=n,
                    test_examples=b.test_examples, batch_size=batch_size, lr=b.finetune_lr,
                    max_length=b.max_len, seed=seed,
                )  # fmt: skip
                result = finetune.run(fc, device, False, start=(copy.deepcopy(encoder), tokenizer))
                scores.setdefault(name, []).append(result.metrics["accuracy"])
                if "f1" in result.metrics:
                    f1s.setdefault(name, []).append(result.metrics["f1"])
                tested[name] = result.test_examples
        record = {
            "arm": arm, "parameters": sum(p.numel() for p in encoder.parameters()),
            "pretrain": metrics, "scores": scores, "f1": f1s, "test_examples": tested,
            "finetune_seconds": time.perf_counter() - start,
        }  # fmt: skip
        (folder / "result.json").write_text(json.dumps(record, indent=1) + "\n")

    def load(folder: Path) -> ArmResult:
        record = json.loads((folder / "result.json").read_text())
        return ArmResult(config=config, **record)

    return cached("ablation", {"arm": arm, "budget": b, "config": config}, build, load)


def run_study(
    arms: str | Sequence[str], budget: str | AblationBudget = "cpu", device=None,
    progress: bool = True,
) -> list[ArmResult]:  # fmt: skip
    """Every arm of a study (a name of :data:`STUDIES`, or a list of arms), through the cache;
    a tqdm bar counts the arms when ``progress``."""
    from tqdm.auto import tqdm

    if isinstance(arms, str):
        if arms not in STUDIES:
            raise ValueError(f"unknown study {arms!r}; choose one of: {', '.join(STUDIES)}.")
        arms = STUDIES[arms]
    return [run_arm(a, budget, device) for a in tqdm(arms, desc="arms", disable=not progress)]


# --------------------------------------------------------------------------------------------------
# 4. The table and the verdict
# --------------------------------------------------------------------------------------------------


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def verdict(baseline: Sequence[float], arm: Sequence[float], test_examples: int) -> str:
    """ "helps", "hurts" or "within noise": does the arm's mean score differ from the
    baseline's by more than the noise? The noise is the larger of the seeds' spread (the
    widest range of either arm) and twice the standard error of a difference of two accuracies
    on ``test_examples`` examples, 2·sqrt(2·p(1 - p)/n)."""
    p = (_mean(baseline) + _mean(arm)) / 2
    sampling = 2 * math.sqrt(2 * p * (1 - p) / test_examples)
    seeds = max(max(baseline) - min(baseline), max(arm) - min(arm))
    difference = _mean(arm) - _mean(baseline)
    if abs(difference) <= max(sampling, seeds):
        return "within noise"
    return "helps" if difference > 0 else "hurts"


def table(results: Sequence[ArmResult], baseline: str = BASELINE) -> list[dict]:
    """One row per arm: parameters, pre-training seconds and validation accuracy, and per task
    the mean score, its spread (half the range over seeds) and the verdict against
    ``baseline`` (which must be among ``results``)."""
    by_arm = {r.arm: r for r in results}
    if baseline not in by_arm:
        raise ValueError(f"the baseline {baseline!r} is not among the arms {list(by_arm)}.")
    base = by_arm[baseline]
    rows = []
    for r in results:
        row = {"arm": r.arm, "parameters": r.parameters,
               "pretrain_seconds": round(r.pretrain.get("seconds", 0.0), 1),
               "pretrain_accuracy": r.pretrain.get("mlm_accuracy")}  # fmt: skip
        for name, scores in r.scores.items():
            row[name] = round(_mean(scores), 4)
            row[f"{name}_spread"] = round((max(scores) - min(scores)) / 2, 4)
            if r.arm != baseline:
                row[f"{name}_verdict"] = verdict(base.scores[name], scores, r.test_examples[name])
        rows.append(row)
    return rows


def _example() -> None:  # pragma: no cover - a quick look from the command line
    for row in table(run_study("bert")):
        print(json.dumps(row))


if __name__ == "__main__":  # pragma: no cover
    _example()
