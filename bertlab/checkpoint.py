"""Files that must not be lost: atomic writes, training checkpoints, weights, and the cache.

Four things every chapter relies on, in one place:

1. :func:`atomic_path`: write a file next to its destination and rename it into place only when
   it is complete, so a crash (even ``kill -9``) never leaves a half-written file under the real
   name. Downloads, checkpoints and cache entries all go through it.
2. **Training checkpoints** (:func:`save_checkpoint`, :func:`restore_checkpoint`): one safetensors
   file holding the model, the optimizer's moments, the scheduler, the gradient scaler, every
   random-number generator, the step and the history. safetensors stores raw tensors, so loading
   one can never run code (unlike pickle).
3. :func:`load_model_weights`: copy tensors into a model after checking every name and shape.
4. :func:`cached`: the one load-or-build artifact cache behind every "train once, reuse in later
   chapters" model (the ELMo biLM, the pre-trained mini-BERT, fine-tuned models). Its key is a hash
   of the config, a file lock keeps two notebooks from building the same thing twice, the entry
   appears under its real name only when complete, and a corrupt entry is reported and rebuilt.

Everything bertlab keeps lives under :func:`cache_dir` (``$BERTLAB_CACHE``, default
``~/.cache/bertlab``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from filelock import FileLock
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = [
    "CheckpointError",
    "atomic_path",
    "cache_dir",
    "config_key",
    "data_key",
    "to_plain",
    "cached",
    "save_checkpoint",
    "read_checkpoint",
    "restore_checkpoint",
    "load_model_weights",
    "save_weights",
    "load_weights",
]

CHECKPOINT_FORMAT = "bertlab-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint, weights file or cache entry is missing, truncated, corrupt, or belongs to a
    different model or configuration. The message says what is wrong and what to do."""


def cache_dir() -> Path:
    """Where bertlab keeps downloads, trained models and checkpoints (``$BERTLAB_CACHE``)."""
    return Path(os.environ.get("BERTLAB_CACHE") or Path.home() / ".cache" / "bertlab")


# --------------------------------------------------------------------------------------------------
# 1. Atomic writes
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; when the block succeeds, fsync it and rename it to
    ``dest``. On any error the temporary file is removed and ``dest`` is left as it was."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(OSError):  # already renamed on success
            os.unlink(tmp)


def save_weights(tensors: dict[str, torch.Tensor], path: str | Path, metadata=None) -> Path:
    """Write ``tensors`` to a safetensors file atomically (tied tensors each get their own copy,
    since safetensors refuses tensors that share memory)."""
    path = Path(path)
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(plain, str(tmp), metadata=metadata)
    return path


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file, with :class:`CheckpointError` when it is missing or broken."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no weights file at {path}.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is truncated or corrupt ({e}).") from e


# --------------------------------------------------------------------------------------------------
# 2. Training checkpoints: model + optimizer + scheduler + scaler + RNG + step + history
# --------------------------------------------------------------------------------------------------


def rng_state() -> dict[str, torch.Tensor]:
    """The state of Python's, NumPy's and torch's (CPU and CUDA) generators, as tensors."""
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


def set_rng_state(t: dict[str, torch.Tensor]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(t["rng.torch"])
    pos, has_gauss = t["rng.numpy.meta"].tolist()
    keys = t["rng.numpy.keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, pos, has_gauss, float(t["rng.numpy.gauss"][0])))
    gauss = float(t["rng.python.gauss"][0])
    version, state = int(t["rng.python.version"][0]), tuple(t["rng.python"].tolist())
    random.setstate((version, state, None if math.isnan(gauss) else gauss))
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
                tensors[f"optim.{idx}.{key}"] = value
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


def save_checkpoint(path: str | Path, trainer) -> Path:
    """Write a :class:`bertlab.train.Trainer`'s whole state to ``path``, atomically."""
    tensors = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
    optim_tensors, optim_meta = _optimizer_tensors(trainer.optimizer)
    tensors |= optim_tensors | rng_state()
    meta = {
        "format": CHECKPOINT_FORMAT,
        "step": str(trainer.step),
        "optimizer": json.dumps(optim_meta),
        "scheduler": json.dumps(trainer.scheduler.state_dict()),
        "scaler": json.dumps(trainer.scaler.state_dict()),
        "history": trainer.history.to_json(),
        "config": json.dumps(dataclasses.asdict(trainer.config)),
        "run_config": json.dumps(trainer.run_config, sort_keys=True),
    }
    return save_weights(tensors, path, metadata=meta)


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A checkpoint's tensors and metadata, with a clear error when it is missing or broken."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}. Check the path, or train from scratch (resume=False)."
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"the checkpoint {path} is truncated or corrupt ({e}). It cannot be resumed: delete "
            f"it to start the run over, or point ckpt_dir at a good checkpoint."
        ) from e
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is a safetensors file but not a bertlab training checkpoint (no "
            f"{CHECKPOINT_FORMAT!r} format tag). For plain weights use load_model_weights()."
        )
    return tensors, meta


def restore_checkpoint(trainer, path: str | Path) -> None:
    """Load what :func:`save_checkpoint` wrote back into ``trainer`` (model, optimizer, scheduler,
    scaler, RNG, step, history), after checking that it comes from the same run."""
    from bertlab.train import History

    path = Path(path)
    tensors, meta = read_checkpoint(path)
    saved_run = json.loads(meta.get("run_config", "null"))
    if saved_run != trainer.run_config:
        raise CheckpointError(
            f"the checkpoint {path} comes from another run: it was saved with\n  {saved_run}\n"
            f"but this run is\n  {trainer.run_config}\nUse another output folder, or delete the "
            f"checkpoint to start over."
        )
    model_tensors = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    load_model_weights(trainer.model, model_tensors, f"the checkpoint {path}")
    device = next(trainer.model.parameters()).device
    optim = {k: v.to(device) for k, v in tensors.items() if k.startswith("optim.")}
    try:
        trainer.optimizer.load_state_dict(_optimizer_state(optim, json.loads(meta["optimizer"])))
    except (ValueError, KeyError) as e:
        raise CheckpointError(
            f"the optimizer state in {path} does not fit this model's optimizer ({e}); the "
            f"checkpoint comes from a different setup. Start from scratch (resume=False)."
        ) from e
    trainer.scheduler.load_state_dict(json.loads(meta["scheduler"]))
    trainer.scaler.load_state_dict(json.loads(meta["scaler"]))
    set_rng_state(tensors)
    trainer.step = int(meta["step"])
    trainer.history = History.from_json(meta["history"])


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
# 3. The artifact cache: load it if it is there, build it (once, under a lock) if it is not
# --------------------------------------------------------------------------------------------------

T = TypeVar("T")


def to_plain(value: Any) -> Any:
    """A config as JSON-able data: dataclasses become dicts, tuples lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(
        f"a cache config may hold dataclasses, dicts, lists, strings and numbers, not "
        f"{type(value).__name__} ({value!r})."
    )


def config_key(config: Any) -> str:
    """A 16-hex-digit hash of a config (a dataclass, or a dict of them): the cache key."""
    text = json.dumps(to_plain(config), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def data_key(rows: Any) -> str:
    """A 16-hex-digit hash of data too big to be part of a cache key: JSON values (lists, dicts,
    numbers, strings) as they are, without :func:`config_key`'s conversion of dataclasses, which
    is slow over tens of thousands of rows."""
    return hashlib.sha256(json.dumps(rows).encode("utf-8")).hexdigest()[:16]


def cached(
    kind: str,
    config: Any,
    build: Callable[[Path], None],
    load: Callable[[Path], T],
) -> T:
    """The artifact ``config`` describes, loaded from the cache, or built and cached first.

    ``build(folder)`` makes the artifact and writes its files into the (empty, temporary)
    ``folder``; ``load(folder)`` reads it back. The entry is ``<cache_dir>/<kind>/<key>``, where
    the key is :func:`config_key` of ``config``: change any field and a new entry is built.
    A file lock makes a second process wait for the first one's build instead of building again;
    the folder appears under its real name only once complete (atomic rename), with a
    ``cache.json`` recording what it is. An entry that fails to load (a corrupt or truncated
    file) is reported with a warning, deleted and built again. What is returned always comes
    from ``load``, so a fresh build and a cached one give the same artifact.
    """
    root = cache_dir() / kind
    root.mkdir(parents=True, exist_ok=True)
    folder = root / config_key(config)
    with FileLock(str(folder) + ".lock"):
        if folder.is_dir():
            try:
                if not (folder / "cache.json").is_file():
                    raise CheckpointError("cache.json is missing")
                return load(folder)
            except (CheckpointError, SafetensorError, OSError, ValueError, KeyError) as e:
                warnings.warn(
                    f"the cached {kind} in {folder} is corrupt or incomplete ({e}); deleting it "
                    f"and building it again.",
                    stacklevel=2,
                )
                shutil.rmtree(folder)
        tmp = root / f".{folder.name}.{os.getpid()}.part"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            build(tmp)
            record = {"kind": kind, "key": folder.name, "config": to_plain(config)}
            (tmp / "cache.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return load(folder)
