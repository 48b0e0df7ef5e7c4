"""The one training loop every chapter uses.

``Trainer(model, loss_fn, data, config).fit()`` trains ``model`` by AdamW on the loss that
``loss_fn(model, batch)`` returns, and hands back a :class:`History` of losses and evaluation
metrics for plotting. What it takes care of, so the chapters don't have to:

- **device**: ``pick_device()`` takes CUDA, then Apple's MPS, then the CPU (or what you ask for);
- **mixed precision** on CUDA: bf16 autocast where the GPU supports it, otherwise fp16 with a
  gradient scaler; full fp32 on the CPU;
- **gradient clipping** and a **learning-rate schedule** with linear warmup (then linear or cosine
  decay, or constant);
- **progress** with tqdm (a widget in notebooks, a text bar in terminals), **periodic evaluation**;
- **checkpoints** in safetensors (never pickle) holding the model, the optimizer, the scheduler, the
  gradient scaler, every random-number generator and the step, written atomically. A run killed at
  any point and started again with the same arguments resumes from its last checkpoint and ends
  with *exactly* the parameters of an uninterrupted run (``test_train.py::test_resume_is_exact``).

Exact resumption needs the data order to be a function of the step, not of hidden iterator state.
So ``data`` is either a map-style dataset (``len`` and ``[i]``) that the trainer batches itself,
shuffling each epoch with a generator seeded by ``(seed, epoch)``, or a callable
``get_batch(step) -> batch`` for data you generate yourself. Anything random inside ``loss_fn`` or
``collate`` (dropout, masking) draws from the global generators, which checkpoints save and restore.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from bertlab.data import atomic_path

# --------------------------------------------------------------------------------------------------
# Seeding and devices
# --------------------------------------------------------------------------------------------------


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and torch's (CPU and every GPU) random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


@contextmanager
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


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The mixed-precision dtype the trainer uses on ``device`` (None: full fp32)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


# --------------------------------------------------------------------------------------------------
# Configuration and history
# --------------------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Everything about *how* to train; the model, the loss and the data are passed separately.

    ``warmup`` is a number of steps, or a fraction of ``steps`` when below 1.
    ``ckpt_dir`` set: a checkpoint is written every ``ckpt_every`` steps and at the end, and
    ``fit()`` resumes from it when it exists (``resume=True``).
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
    eval_every: int = 0  # 0: evaluate only at the end (when eval_fn is given)
    log_every: int = 10  # steps between entries in history.loss (the mean over those steps)
    ckpt_every: int = 0  # 0: only at the end (when ckpt_dir is given)
    ckpt_dir: str | None = None
    resume: bool = True
    device: str | None = None  # None: pick_device()
    amp: bool = True  # mixed precision on CUDA
    seed: int = 0
    progress: bool = True
    drop_last: bool = True

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}.")
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
# Checkpoints: safetensors only
# --------------------------------------------------------------------------------------------------


class CheckpointError(ValueError):
    """A checkpoint or weights folder is missing, truncated, corrupt, or of a different model.

    Raised by training checkpoints here and by ``bertlab.hf`` for Hugging Face weight folders;
    the message always says what is wrong and what to do."""


def _rng_state() -> dict[str, torch.Tensor]:
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    tensors = {
        "rng.torch": torch.get_rng_state(),
        "rng.numpy.keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "rng.numpy.meta": torch.tensor([np_state[2], np_state[3]], dtype=torch.int64),
        "rng.numpy.gauss": torch.tensor([np_state[4]], dtype=torch.float64),
        "rng.python": torch.tensor(py_state, dtype=torch.int64),
        "rng.python.gauss": torch.tensor(
            [math.nan if py_gauss is None else py_gauss], dtype=torch.float64
        ),
        "rng.python.version": torch.tensor([py_version], dtype=torch.int64),
    }
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    return tensors


def _set_rng_state(t: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(t["rng.torch"])
    pos, has_gauss = t["rng.numpy.meta"].tolist()
    np.random.set_state(
        ("MT19937", t["rng.numpy.keys"].numpy().astype(np.uint32), pos, has_gauss,
         float(t["rng.numpy.gauss"][0]))
    )  # fmt: skip
    gauss = float(t["rng.python.gauss"][0])
    random.setstate(
        (
            int(t["rng.python.version"][0]),
            tuple(t["rng.python"].tolist()),
            None if math.isnan(gauss) else gauss,
        )
    )
    if torch.cuda.is_available():
        states = [t[k] for k in sorted(t) if k.startswith("rng.cuda.")]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's state_dict into tensors (for safetensors) and JSON-able metadata."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path: str | Path, trainer: Trainer) -> Path:
    """Write the trainer's full state to ``path`` (a .safetensors file), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model_state = {
        f"model.{k}": v.detach().cpu().contiguous() for k, v in trainer.model.state_dict().items()
    }
    tensors = dict(model_state)
    optim_tensors, optim_meta = _optimizer_tensors(trainer.optimizer)
    tensors.update(optim_tensors)
    tensors.update(_rng_state())
    meta = {
        "format": "bertlab-checkpoint-1",
        "step": str(trainer.step),
        "optimizer": json.dumps(optim_meta),
        "scheduler": json.dumps(trainer.scheduler.state_dict()),
        "scaler": json.dumps(trainer.scaler.state_dict() if trainer.scaler else {}),
        "history": trainer.history.to_json(),
        "config": json.dumps(asdict(trainer.config)),
    }
    with atomic_path(path) as tmp:
        # Tied weights share storage; safetensors refuses shared tensors, so give each its own copy.
        save_file({k: v.clone() for k, v in tensors.items()}, str(tmp), metadata=meta)
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a checkpoint's tensors and metadata, with a clear error when it is missing or broken."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}. Check the path, or train from scratch (resume=False)."
        )
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"the checkpoint {path} is truncated or corrupt ({e}). It cannot be resumed: delete "
            f"it to start the run over, or point ckpt_dir at a good checkpoint."
        ) from e
    if meta.get("format") != "bertlab-checkpoint-1":
        raise CheckpointError(
            f"{path} is a safetensors file but not a bertlab training checkpoint (no "
            f"'bertlab-checkpoint-1' format tag). For plain weights use load_model_weights()."
        )
    return tensors, meta


def load_model_weights(model: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load ``tensors`` (names as in ``model.state_dict()``) after checking names and shapes."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = [
        f"{k}: checkpoint {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in tensors and tensors[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} shape mismatch(es): " + "; ".join(wrong[:5]))
        if missing:
            parts.append(f"{len(missing)} missing: " + ", ".join(missing[:5]))
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: " + ", ".join(unexpected[:5]))
        raise CheckpointError(
            f"{source} does not fit this model ({type(model).__name__}): "
            + " | ".join(parts)
            + ". It was saved from a different model or configuration: build the model with the "
            "same configuration, or start from scratch (resume=False / another ckpt_dir)."
        )
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(tensors[k])


# --------------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------------

LossFn = Callable[[nn.Module, Any], "torch.Tensor | dict[str, torch.Tensor]"]


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


class Trainer:
    """Train ``model`` on ``loss_fn(model, batch)`` over ``data``; see the module docstring.

    Args:
        model: any ``nn.Module``; it is moved to the device.
        loss_fn: ``(model, batch) -> loss`` or ``-> {"loss": loss, **other scalars}``.
        data: a map-style dataset (``len`` + ``[i]``), batched with ``collate``, or a callable
            ``get_batch(step)`` returning the batch of that step.
        config: a :class:`TrainConfig`.
        eval_fn: ``(model) -> {"metric": value}``, run under ``torch.no_grad`` in eval mode.
        collate: turns a list of dataset items into a batch (default: stack).
        optimizer: an optimizer over ``model``'s parameters (default: AdamW from the config,
            without weight decay on biases and LayerNorm weights, as BERT does).
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
    ):
        self.config = config or TrainConfig()
        self.device = pick_device(self.config.device)
        self.model = model.to(self.device)
        self.loss_fn, self.data, self.eval_fn, self.collate = loss_fn, data, eval_fn, collate
        if not callable(data) and not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
            raise TypeError(
                "data must be a map-style dataset (with __len__ and __getitem__) or a callable "
                f"get_batch(step); got {type(data).__name__}."
            )
        if not callable(data):
            n = len(data)
            per_epoch = (
                n // self.config.batch_size
                if self.config.drop_last
                else -(-n // self.config.batch_size)
            )
            if per_epoch == 0:
                raise ValueError(
                    f"the dataset has {n} examples, fewer than one batch of "
                    f"{self.config.batch_size}; lower batch_size or set drop_last=False."
                )
            self.batches_per_epoch = per_epoch
        self.optimizer = optimizer or self._adamw()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(self.config))
        self.amp_dtype = autocast_dtype(self.device) if self.config.amp else None
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.step = 0
        self.history = History()

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
        """The batch for ``step``: a pure function of (seed, step), which makes resume exact."""
        if callable(self.data):
            return self.data(step)
        epoch, i = divmod(step, self.batches_per_epoch)
        if i == 0 or getattr(self, "_perm_epoch", None) != epoch:
            g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(len(self.data), generator=g).tolist()
            self._perm_epoch = epoch
        bs = self.config.batch_size
        return self.collate([self.data[j] for j in self._perm[i * bs : (i + 1) * bs]])

    # -- checkpoints -------------------------------------------------------------------------------

    @property
    def ckpt_path(self) -> Path | None:
        return (
            Path(self.config.ckpt_dir) / "checkpoint.safetensors" if self.config.ckpt_dir else None
        )

    def save(self, path: str | Path | None = None) -> Path:
        """Write a checkpoint (default: ``<ckpt_dir>/checkpoint.safetensors``)."""
        path = path or self.ckpt_path
        if path is None:
            raise ValueError("no checkpoint path: pass one or set TrainConfig.ckpt_dir.")
        return save_checkpoint(path, self)

    def load(self, path: str | Path | None = None) -> None:
        """Restore model, optimizer, scheduler, scaler, RNG states, step and history."""
        path = Path(path or self.ckpt_path)
        tensors, meta = load_checkpoint(path)
        model_tensors = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        load_model_weights(self.model, model_tensors, f"the checkpoint {path}")
        try:
            self.optimizer.load_state_dict(
                _optimizer_state(
                    {k: v.to(self.device) for k, v in tensors.items() if k.startswith("optim.")},
                    json.loads(meta["optimizer"]),
                )
            )
        except (ValueError, KeyError) as e:
            raise CheckpointError(
                f"the optimizer state in {path} does not fit this model's optimizer ({e}); the "
                f"checkpoint comes from a different setup. Start from scratch (resume=False)."
            ) from e
        self.scheduler.load_state_dict(json.loads(meta["scheduler"]))
        if self.scaler is not None and json.loads(meta["scaler"]):
            self.scaler.load_state_dict(json.loads(meta["scaler"]))
        _set_rng_state(tensors)
        self.step = int(meta["step"])
        self.history = History.from_json(meta["history"])

    # -- the loop ----------------------------------------------------------------------------------

    def _forward(self, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.autocast(
            self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        ):
            out = self.loss_fn(self.model, batch)
        if isinstance(out, dict):
            loss = out["loss"]
            extras = {k: float(v) for k, v in out.items() if k != "loss"}
        else:
            loss, extras = out, {}
        if not torch.is_tensor(loss) or loss.ndim != 0:
            raise TypeError("loss_fn must return a scalar tensor (or a dict with a 'loss' scalar).")
        return loss, extras

    def evaluate(self) -> dict[str, float]:
        """Run ``eval_fn`` in eval mode without gradients; record and return its metrics."""
        if self.eval_fn is None:
            return {}
        was_training = self.model.training
        self.model.eval()
        with (
            torch.no_grad(),
            torch.autocast(
                self.device.type,
                dtype=self.amp_dtype or torch.float32,
                enabled=self.amp_dtype is not None,
            ),
        ):
            metrics = {k: float(v) for k, v in self.eval_fn(self.model).items()}
        self.model.train(was_training)
        self.history.eval_steps.append(self.step)
        self.history.evals.append(metrics)
        return metrics

    def fit(self, stop_at: int | None = None) -> History:
        """Train until ``config.steps`` (or ``stop_at``, to pause early); return the history.

        With ``ckpt_dir`` set and a checkpoint there, training resumes from it first.
        """
        import time

        from tqdm.auto import tqdm

        c = self.config
        if self.ckpt_path is not None and c.resume and self.ckpt_path.exists() and self.step == 0:
            self.load()
        if self.step == 0:
            seed_everything(c.seed)
        end = min(c.steps, stop_at) if stop_at is not None else c.steps
        start_time = time.perf_counter()
        self.model.train()
        window: list[float] = []
        # at most one redraw a second: in a notebook every redraw is a widget message, and
        # thousands of them overflow the kernel's output queue (nbval then loses the cell's end)
        bar = tqdm(
            total=c.steps,
            initial=self.step,
            disable=not c.progress,
            desc="train",
            leave=True,
            mininterval=1.0,
        )
        try:
            while self.step < end:
                batch = to_device(self.batch_at(self.step), self.device)
                loss, _ = self._forward(batch)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"the loss is {loss.item()} at step {self.step}: training diverged. Lower "
                        f"the learning rate (now {c.lr}) or add warmup/gradient clipping."
                    )
                self.optimizer.zero_grad(set_to_none=True)
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                    self.scaler.unscale_(self.optimizer)
                else:
                    loss.backward()
                if c.grad_clip:
                    nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
                if self.scaler is not None:
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                window.append(loss.item())
                if len(window) == c.log_every or self.step == end:
                    self.history.steps.append(self.step)
                    self.history.loss.append(sum(window) / len(window))
                    self.history.lr.append(self.scheduler.get_last_lr()[0])
                    bar.set_postfix(loss=f"{self.history.loss[-1]:.4f}", refresh=False)
                    window = []
                bar.update(1)
                if c.eval_every and self.step % c.eval_every == 0 and self.step < c.steps:
                    self.evaluate()
                if self.ckpt_path is not None and c.ckpt_every and self.step % c.ckpt_every == 0:
                    self._timed_save(start_time)
                    start_time = time.perf_counter()
        finally:
            bar.close()
        if (
            self.step >= c.steps
            and self.eval_fn is not None
            and (not self.history.eval_steps or self.history.eval_steps[-1] != self.step)
        ):
            self.evaluate()
        self.history.seconds += time.perf_counter() - start_time
        if self.ckpt_path is not None:
            self.save()
        return self.history

    def _timed_save(self, start_time: float) -> None:
        import time

        self.history.seconds += time.perf_counter() - start_time
        self.save()
