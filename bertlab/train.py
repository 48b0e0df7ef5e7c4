"""The one training loop every chapter uses.

``Trainer(model, loss_fn, data, config).fit()`` trains ``model`` by AdamW on the loss that
``loss_fn(model, batch)`` returns, and hands back a :class:`History` of losses and metrics for
plotting. What it takes care of, so the chapters don't have to:

- **device**: ``pick_device()`` takes CUDA, then Apple's MPS, then the CPU (or what you ask for);
- **mixed precision** on CUDA: bf16 autocast where the GPU supports it, otherwise fp16 with a
  gradient scaler; full fp32 on the CPU;
- **gradient clipping**, a **learning-rate schedule** (linear warmup, then linear or cosine decay,
  or constant) and **gradient accumulation** (``accumulate`` micro-batches per step);
- **progress** with tqdm, **periodic evaluation**, and an ``on_step`` hook;
- **checkpoints** (``bertlab.checkpoint``): a run killed at any point and started again with the
  same arguments resumes from its last checkpoint and ends with *exactly* the parameters of an
  uninterrupted run (``test_train.py::test_resume_is_exact``);
- **several processes** under ``torchrun``: ``torch.distributed`` DDP (gloo on CPU, nccl on GPU);
  each rank computes its slice of the global batch, rank 0 logs and writes checkpoints.

Exact resumption needs the data order to be a function of the step, not of hidden iterator state.
So ``data`` is either a map-style dataset (``len`` and ``[i]``) that the trainer batches itself,
shuffling each epoch with a generator seeded by ``(seed, epoch)``, or a callable
``get_batch(step) -> batch`` for data you generate yourself. Anything random inside ``loss_fn`` or
``collate`` (dropout) draws from the global generators, which checkpoints save and restore.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from bertlab.checkpoint import CheckpointError, restore_checkpoint, save_checkpoint, to_plain

__all__ = [
    "CheckpointError",
    "History",
    "Presets",
    "TrainConfig",
    "Trainer",
    "autocast_dtype",
    "lr_lambda",
    "pick_device",
    "seed_everything",
    "torch_threads",
]

# --------------------------------------------------------------------------------------------------
# Seeding, threads, devices
# --------------------------------------------------------------------------------------------------


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and torch's (CPU and every GPU) random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(n)`` and restore the old count after, even on an
    error. ``None`` changes nothing. Training loops of many small ops use 1: thread start-up
    costs more than it saves there, and on a busy machine extra threads slow everything down."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else the best available: CUDA, then MPS (Apple silicon), then CPU."""
    if device is not None:
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA GPU; use 'cpu'.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("device 'mps' was asked for but is not available; use 'cpu'.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: torch.device, cpu_bf16: bool = False) -> torch.dtype | None:
    """The mixed-precision dtype the trainer uses on ``device`` (None: full fp32).

    CUDA: bf16 where the GPU supports it, else fp16. CPU: bf16 only when asked (``cpu_bf16``)
    and the CPU has bf16 matrix instructions (AVX-512 BF16, AMX); without them bf16 is emulated
    and slower than fp32."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_bf16 and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return None


# --------------------------------------------------------------------------------------------------
# Presets, configuration and history
# --------------------------------------------------------------------------------------------------


class Presets:
    """Named settings for a config dataclass: ``GloVeConfig.preset("cpu", dim=50)``.

    A subclass lists them in ``PRESETS`` as field overrides; ``"cpu"`` is what the book runs on
    two cores, ``"gpu"`` the bigger run for a reader with a GPU.
    """

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def preset(cls, name: str = "cpu", **overrides):
        """The config of preset ``name``, with ``overrides`` applied on top."""
        if name not in cls.PRESETS:
            raise ValueError(
                f"unknown preset {name!r} for {cls.__name__}; choose one of: "
                f"{', '.join(map(repr, cls.PRESETS))}."
            )
        return replace(cls(**cls.PRESETS[name]), **overrides)


@dataclass
class TrainConfig:
    """Everything about *how* to train; the model, the loss and the data are passed separately.

    ``batch_size`` is the global batch: split over ``accumulate`` micro-batches and, under
    torchrun, over the processes. ``warmup`` is a number of steps, or a fraction of ``steps``
    when below 1. With ``ckpt_dir`` set, a checkpoint is written every ``ckpt_every`` steps
    and/or ``ckpt_minutes`` minutes and at the end, and ``fit()`` resumes from it (``resume``).
    """

    steps: int = 1000
    batch_size: int = 32  # used when data is a dataset
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup: float = 0.0
    schedule: str = "linear"  # "linear" | "cosine" | "constant" (after warmup)
    grad_clip: float | None = 1.0
    accumulate: int = 1  # micro-batches per optimizer step
    eval_every: int = 0  # 0: evaluate only at the end (when eval_fn is given)
    log_every: int = 10  # steps between entries in history.loss (the mean over those steps)
    ckpt_every: int = 0  # 0: only at the end (when ckpt_dir is given)
    ckpt_minutes: float = 0.0  # also write a checkpoint when this much time has passed (0: off)
    ckpt_dir: str | None = None
    resume: bool = True
    device: str | None = None  # None: pick_device()
    amp: bool = True  # mixed precision on CUDA
    cpu_bf16: bool = False  # bf16 autocast on CPUs with bf16 matrix instructions too
    seed: int = 0
    progress: bool = True
    drop_last: bool = True

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}.")
        if self.accumulate < 1:
            raise ValueError(f"accumulate must be at least 1, got {self.accumulate}.")
        if self.schedule not in ("linear", "cosine", "constant"):
            raise ValueError(
                f"unknown schedule {self.schedule!r}; choose 'linear', 'cosine' or 'constant'."
            )
        if self.warmup < 0:
            raise ValueError("warmup must be >= 0 (steps, or a fraction of steps below 1).")
        self.betas = tuple(self.betas)

    @property
    def warmup_steps(self) -> int:
        return int(round(self.warmup * self.steps)) if self.warmup < 1 else int(self.warmup)


@dataclass
class History:
    """What happened during training, ready to plot: ``plt.plot(h.steps, h.loss)``."""

    steps: list[int] = field(default_factory=list)  # the step of each loss entry
    loss: list[float] = field(default_factory=list)  # mean training loss over log_every steps
    lr: list[float] = field(default_factory=list)
    train_metrics: dict[str, list[float]] = field(default_factory=dict)  # loss_fn's extras
    eval_steps: list[int] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)  # eval_fn's result at each
    seconds: float = 0.0  # wall time spent in fit(), summed over resumed runs

    def metric(self, name: str) -> list[float]:
        """The values of one evaluation metric, aligned with ``eval_steps``."""
        return [e[name] for e in self.evals]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> History:
        return cls(**json.loads(text))


def lr_lambda(config: TrainConfig) -> Callable[[int], float]:
    """The multiplier of the base learning rate at each step: warmup, then the chosen decay."""
    warm, total = config.warmup_steps, config.steps

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if config.schedule == "constant":
            return 1.0
        progress = (step - warm) / max(1, total - warm)
        if config.schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


# --------------------------------------------------------------------------------------------------
# Batches: collate, move, slice (for micro-batches and processes)
# --------------------------------------------------------------------------------------------------


def default_collate(items: Sequence[Any]) -> Any:
    """Stack a list of examples: tensors are stacked; dicts and tuples field by field."""
    first = items[0]
    if torch.is_tensor(first):
        return torch.stack(list(items))
    if isinstance(first, dict):
        return {k: default_collate([it[k] for it in items]) for k in first}
    if isinstance(first, tuple | list):
        return type(first)(default_collate(list(col)) for col in zip(*items))
    return torch.as_tensor(items)


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) batch to ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def slice_batch(batch: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of every tensor in a (nested) batch; other values are kept."""
    if torch.is_tensor(batch):
        return batch[start:stop]
    if isinstance(batch, dict):
        return {k: slice_batch(v, start, stop) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(slice_batch(v, start, stop) for v in batch)
    return batch


def batch_rows(batch: Any) -> int | None:
    """The number of examples in a (nested) batch: the first dimension of its first tensor."""
    if torch.is_tensor(batch):
        return batch.shape[0]
    values = batch.values() if isinstance(batch, dict) else batch
    for v in values if isinstance(batch, dict | tuple | list) else ():
        if (n := batch_rows(v)) is not None:
            return n
    return None


def distributed_rank() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: ``(0, 1)`` outside torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


# --------------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------------

LossFn = Callable[[nn.Module, Any], "torch.Tensor | dict[str, torch.Tensor]"]


class Trainer:
    """Train ``model`` on ``loss_fn(model, batch)`` over ``data``; see the module docstring.

    Args:
        model: any ``nn.Module``; it is moved to the device. Under torchrun ``loss_fn`` receives
            it wrapped in DDP: call it (``model(...)``), don't call its other methods.
        loss_fn: ``(model, batch) -> loss`` or ``-> {"loss": loss, **other scalars}``; the other
            scalars are averaged like the loss and kept in ``history.train_metrics``.
        data: a map-style dataset (``len`` + ``[i]``), batched with ``collate``, or a callable
            ``get_batch(step)`` returning the (global) batch of that step.
        config: a :class:`TrainConfig`.
        eval_fn: ``(model) -> {"metric": value}``, run under ``torch.no_grad`` in eval mode.
        collate: turns a list of dataset items into a batch (default: stack).
        optimizer: an optimizer over ``model``'s parameters (default: AdamW from the config,
            without weight decay on biases and LayerNorm weights, as BERT does).
        on_step: ``(trainer) -> None``, called after every optimizer step.
        run_config: what defines this run (JSON-able); a checkpoint saved by a run with another
            ``run_config`` is refused on resume, naming both.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        data: Any,
        config: TrainConfig | None = None,
        eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
        collate: Callable[[list], Any] = default_collate,
        optimizer: torch.optim.Optimizer | None = None,
        on_step: Callable[[Trainer], None] | None = None,
        run_config: Any = None,
    ):
        self.config = c = config or TrainConfig()
        self.rank, self.world = self._init_distributed()
        self.device = self._device()
        self.model = model.to(self.device)
        self.loss_fn, self.data, self.eval_fn, self.collate = loss_fn, data, eval_fn, collate
        self.on_step, self.run_config = on_step, to_plain(run_config)
        self.parts = c.accumulate * self.world  # slices of the global batch per step
        if not callable(data) and not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
            raise TypeError(
                "data must be a map-style dataset (with __len__ and __getitem__) or a callable "
                f"get_batch(step); got {type(data).__name__}."
            )
        if not callable(data):
            n, bs = len(data), c.batch_size
            self.batches_per_epoch = n // bs if c.drop_last else -(-n // bs)
            if self.batches_per_epoch == 0:
                raise ValueError(
                    f"the dataset has {n} examples, fewer than one batch of {bs}; lower "
                    f"batch_size or set drop_last=False."
                )
            if bs % self.parts:
                raise ValueError(
                    f"batch_size={bs} does not split into {c.accumulate} micro-batch(es) x "
                    f"{self.world} process(es): make it a multiple of {self.parts}."
                )
        self.optimizer = optimizer or self._adamw()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(c))
        self.amp_dtype = autocast_dtype(self.device, c.cpu_bf16) if c.amp else None
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )
        self.step = 0
        self.history = History()

    def _init_distributed(self) -> tuple[int, int]:
        """Join the process group when started by torchrun (``WORLD_SIZE`` > 1)."""
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
            cuda = self.config.device != "cpu" and torch.cuda.is_available()
            if cuda:
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl" if cuda else "gloo")
        return distributed_rank()

    def _device(self) -> torch.device:
        device = pick_device(self.config.device)
        if device.type == "cuda" and device.index is None and self.world > 1:
            device = torch.device("cuda", torch.cuda.current_device())
        return device

    def _adamw(self) -> torch.optim.Optimizer:
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
        groups = [
            {"params": decay, "weight_decay": self.config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        c = self.config
        return torch.optim.AdamW(
            [g for g in groups if g["params"]], lr=c.lr, betas=c.betas, eps=c.eps
        )

    # -- data --------------------------------------------------------------------------------------

    def batch_at(self, step: int) -> Any:
        """The global batch of ``step``: a pure function of (seed, step), so resume is exact."""
        return self.collate([self.data[j] for j in self._indices(step)])

    def _indices(self, step: int) -> list[int]:
        epoch, i = divmod(step, self.batches_per_epoch)
        if getattr(self, "_perm_epoch", None) != epoch:
            g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.data), generator=g).tolist()
            self._perm_epoch = epoch
        bs = self.config.batch_size
        return self._perm[i * bs : (i + 1) * bs]

    def micro_batches(self, step: int) -> list[Any]:
        """This process's ``accumulate`` micro-batches of ``step``'s global batch."""
        k, first = self.config.accumulate, self.rank * self.config.accumulate
        if not callable(self.data):
            idx = self._indices(step)
            size = len(idx) // self.parts
            chunks = [idx[j * size : (j + 1) * size] for j in range(first, first + k)]
            return [self.collate([self.data[j] for j in chunk]) for chunk in chunks]
        batch = self.data(step)
        if self.parts == 1:
            return [batch]
        n = batch_rows(batch)
        if n is None or n % self.parts:
            raise ValueError(
                f"get_batch({step}) returned {n} rows, which do not split into "
                f"{self.config.accumulate} micro-batch(es) x {self.world} process(es)."
            )
        size = n // self.parts
        return [slice_batch(batch, j * size, (j + 1) * size) for j in range(first, first + k)]

    # -- checkpoints -------------------------------------------------------------------------------

    @property
    def ckpt_path(self) -> Path | None:
        folder = self.config.ckpt_dir
        return Path(folder) / "checkpoint.safetensors" if folder else None

    def save(self, path: str | Path | None = None) -> Path | None:
        """Write a checkpoint (default ``<ckpt_dir>/checkpoint.safetensors``; rank 0 only)."""
        path = path or self.ckpt_path
        if path is None:
            raise ValueError("no checkpoint path: pass one or set TrainConfig.ckpt_dir.")
        return save_checkpoint(path, self) if self.rank == 0 else None

    def load(self, path: str | Path | None = None) -> None:
        """Restore model, optimizer, scheduler, scaler, RNG states, step and history."""
        restore_checkpoint(self, Path(path or self.ckpt_path))

    # -- the loop ----------------------------------------------------------------------------------

    def _autocast(self):
        return torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        )

    def _loss(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        with self._autocast():
            out = self.loss_fn(model, to_device(batch, self.device))
        out = out if isinstance(out, dict) else {"loss": out}
        if not torch.is_tensor(out.get("loss")) or out["loss"].ndim != 0:
            raise TypeError("loss_fn must return a scalar tensor (or a dict with a 'loss' scalar).")
        extras = {k: torch.as_tensor(v).detach().float() for k, v in out.items() if k != "loss"}
        return {"loss": out["loss"], **extras}

    def evaluate(self) -> dict[str, float]:
        """Run ``eval_fn`` in eval mode without gradients; record and return its metrics."""
        if self.eval_fn is None or self.rank != 0:
            return {}
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad(), self._autocast():
            metrics = {k: float(v) for k, v in self.eval_fn(self.model).items()}
        self.model.train(was_training)
        self.history.eval_steps.append(self.step)
        self.history.evals.append(metrics)
        return metrics

    def _log(self, sums: dict[str, torch.Tensor], n: int) -> None:
        """Append the window's means to the history: the one place the loop waits for the
        device (``tolist``), once every ``log_every`` steps."""
        names = list(sums)
        means = torch.stack([sums[k] for k in names]).float() / n
        if self.world > 1:
            dist.all_reduce(means)
            means /= self.world
        values = dict(zip(names, means.tolist()))
        loss = values.pop("loss")
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"the loss is {loss} around step {self.step}: training diverged. Lower the "
                f"learning rate (now {self.config.lr}) or add warmup/gradient clipping."
            )
        h = self.history
        h.steps.append(self.step)
        h.loss.append(loss)
        h.lr.append(self.scheduler.get_last_lr()[0])
        for k, v in values.items():
            h.train_metrics.setdefault(k, []).append(v)

    def fit(self, stop_at: int | None = None) -> History:
        """Train until ``config.steps`` (or ``stop_at``, to pause early); return the history.

        With ``ckpt_dir`` set and a checkpoint there, training resumes from it first.
        """
        from tqdm.auto import tqdm

        c = self.config
        if self.ckpt_path is not None and c.resume and self.ckpt_path.exists() and self.step == 0:
            self.load()
        if self.step == 0:
            seed_everything(c.seed)
        end = min(c.steps, stop_at) if stop_at is not None else c.steps
        model = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        start = last_save = time.perf_counter()
        self.model.train()
        sums: dict[str, torch.Tensor] = {}
        n = 0
        # at most one redraw a second: in a notebook every redraw is a widget message, and
        # thousands of them overflow the kernel's output queue (nbval then loses the cell's end)
        bar = tqdm(total=c.steps, initial=self.step, disable=not c.progress or self.rank != 0,
                   desc="train", leave=True, mininterval=1.0)  # fmt: skip
        try:
            while self.step < end:
                if self.world > 1:  # every process draws its own dropout, from (seed, step, rank)
                    seed_everything((c.seed * 1_000_003 + self.step) * self.world + self.rank)
                parts = self.micro_batches(self.step)
                for i, batch in enumerate(parts):
                    last = i == len(parts) - 1
                    no_sync = model.no_sync() if self.world > 1 and not last else None
                    with no_sync or contextlib.nullcontext():
                        out = self._loss(model, batch)
                        loss = out["loss"] if len(parts) == 1 else out["loss"] / len(parts)
                        self.scaler.scale(loss).backward()
                    for k, v in out.items():
                        sums[k] = sums.get(k, 0.0) + v.detach() / len(parts)
                self.scaler.unscale_(self.optimizer)
                if c.grad_clip:
                    nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
                self.step += 1
                n += 1
                if n == c.log_every or self.step == end:
                    self._log(sums, n)
                    bar.set_postfix(loss=f"{self.history.loss[-1]:.4f}", refresh=False)
                    sums, n = {}, 0
                bar.update(1)
                if self.on_step is not None:
                    self.on_step(self)
                if c.eval_every and self.step % c.eval_every == 0 and self.step < c.steps:
                    self.evaluate()
                due = c.ckpt_every and self.step % c.ckpt_every == 0
                late = c.ckpt_minutes and time.perf_counter() - last_save > 60 * c.ckpt_minutes
                if self.ckpt_path is not None and (due or late):
                    now = time.perf_counter()
                    self.history.seconds += now - start
                    self.save()
                    start = last_save = now
        finally:
            bar.close()
        if (
            self.step >= c.steps
            and self.eval_fn is not None
            and (not self.history.eval_steps or self.history.eval_steps[-1] != self.step)
        ):
            self.evaluate()
        self.history.seconds += time.perf_counter() - start
        if self.ckpt_path is not None:
            self.save()
        if self.world > 1:
            dist.barrier()
        return self.history
