"""Run by ``tests/test_train.py`` under torchrun: train ``PlainNet`` for a few steps with the
trainer's DDP support, then rank 0 writes the final weights to ``argv[1]``.

Usage: torchrun --standalone --nproc_per_node=2 tests/ddp_train.py OUT [CKPT_DIR [STOP_AT]]
(with STOP_AT the run pauses there, writing its checkpoint; run again to finish).
"""

from __future__ import annotations

import sys

import torch
from helpers import PlainNet, classification_batch, mean_cross_entropy
from safetensors.torch import save_file

from bertlab.train import TrainConfig, Trainer


def trainer(ckpt_dir: str | None = None, steps: int = 12, accumulate: int = 1) -> Trainer:
    torch.manual_seed(0)
    config = TrainConfig(
        steps=steps,
        lr=1e-2,
        warmup=2,
        ckpt_dir=ckpt_dir,
        ckpt_every=5,
        accumulate=accumulate,
        device="cpu",
        progress=False,
        log_every=3,
    )
    return Trainer(PlainNet(), mean_cross_entropy, classification_batch, config)


if __name__ == "__main__":
    t = trainer(sys.argv[2] if len(sys.argv) > 2 else None)
    t.fit(stop_at=int(sys.argv[3]) if len(sys.argv) > 3 else None)
    if t.rank == 0:
        save_file({k: v.contiguous() for k, v in t.model.state_dict().items()}, sys.argv[1])
