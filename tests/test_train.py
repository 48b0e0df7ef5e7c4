"""The training loop: schedules, exact resume, checkpoints and their errors."""

from __future__ import annotations

import pytest
import torch
from helpers import PlainNet, classification_batch, mean_cross_entropy
from torch import nn

from bertlab.train import (
    CheckpointError,
    History,
    TrainConfig,
    Trainer,
    lr_lambda,
    pick_device,
    seed_everything,
)


class TinyNet(nn.Module):
    """Small enough to train in milliseconds, with dropout so that RNG state matters."""

    def __init__(self, d_in=8, d_hidden=16, n_out=3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_in, d_hidden), nn.GELU(), nn.Dropout(0.3), nn.LayerNorm(d_hidden),
            nn.Linear(d_hidden, n_out),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)


class ToyDataset(torch.utils.data.Dataset):
    def __init__(self, n=100, seed=123):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 8, generator=g)
        self.y = (self.x[:, 0] > 0).long() + (self.x[:, 1] > 1).long()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def cross_entropy(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def make_trainer(tmp_path, seed_model=0, **overrides):
    torch.manual_seed(seed_model)
    cfg = dict(
        steps=24, batch_size=16, lr=3e-3, warmup=0.25, ckpt_dir=str(tmp_path), ckpt_every=5,
        progress=False, log_every=4,
    )  # fmt: skip
    cfg.update(overrides)
    return Trainer(TinyNet(), cross_entropy, ToyDataset(), TrainConfig(**cfg))


def params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_loss_goes_down(tmp_path):
    trainer = make_trainer(tmp_path, steps=200, ckpt_dir=None, lr=1e-2)
    history = trainer.fit()
    assert history.loss[-1] < 0.6 * history.loss[0]
    assert history.steps[-1] == 200


def test_resume_is_exact(tmp_path):
    """A run killed at step 13 and resumed (from its step-10 checkpoint) ends identical to an
    uninterrupted run: same parameters, bit for bit. Dropout, per-epoch shuffling, AdamW moments,
    the warmup schedule and the global RNG all have to be restored for this to hold."""
    reference = make_trainer(tmp_path / "a")
    reference.fit()
    expected = params(reference.model)

    crashing = make_trainer(tmp_path / "b")
    calls = {"n": 0}

    def crash_at_13(model, batch):
        calls["n"] += 1
        if calls["n"] == 14:
            raise KeyboardInterrupt("simulated kill")
        return cross_entropy(model, batch)

    crashing.loss_fn = crash_at_13
    with pytest.raises(KeyboardInterrupt):
        crashing.fit()
    assert crashing.step == 13

    # A brand-new process: different initial weights, which the checkpoint must overwrite.
    resumed = make_trainer(tmp_path / "b", seed_model=999)
    resumed.fit()
    assert resumed.step == 24
    got = params(resumed.model)
    for k in expected:
        assert torch.equal(got[k], expected[k]), k
    # The optimizer state too.
    for pa, pb in zip(reference.optimizer.param_groups[0]["params"],
                      resumed.optimizer.param_groups[0]["params"]):  # fmt: skip
        sa, sb = reference.optimizer.state[pa], resumed.optimizer.state[pb]
        assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])


def test_resume_is_exact_with_callable_data(tmp_path):
    """Data given as get_batch(step) resumes exactly too."""

    def get_batch(step):
        g = torch.Generator().manual_seed(step)
        x = torch.randn(8, 8, generator=g)
        return x, (x[:, 0] > 0).long()

    def build(folder, seed_model=0):
        torch.manual_seed(seed_model)
        cfg = TrainConfig(steps=12, ckpt_dir=str(folder), ckpt_every=4, progress=False)
        return Trainer(TinyNet(), cross_entropy, get_batch, cfg)

    a = build(tmp_path / "a")
    a.fit()
    b = build(tmp_path / "b")
    b.fit(stop_at=6)  # pause (a checkpoint is written at the pause)
    c = build(tmp_path / "b", seed_model=5)
    c.fit()
    for k, v in params(a.model).items():
        assert torch.equal(params(c.model)[k], v), k


def test_history_survives_resume(tmp_path):
    t = make_trainer(tmp_path)
    t.fit(stop_at=12)
    t2 = make_trainer(tmp_path)
    h = t2.fit()
    assert h.steps[0] == 4 and h.steps[-1] == 24
    assert History.from_json(h.to_json()) == h


def test_eval_fn_called_periodically(tmp_path):
    seen = []

    def eval_fn(model):
        assert not model.training
        seen.append(True)
        return {"acc": 0.5}

    torch.manual_seed(0)
    cfg = TrainConfig(steps=10, batch_size=10, eval_every=4, progress=False)
    h = Trainer(TinyNet(), cross_entropy, ToyDataset(), cfg, eval_fn=eval_fn).fit()
    assert h.eval_steps == [4, 8, 10]
    assert h.metric("acc") == [0.5, 0.5, 0.5]


def test_schedule_warmup_then_decay():
    f = lr_lambda(TrainConfig(steps=100, warmup=10, schedule="linear"))
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5) and f(100) == 0.0
    g = lr_lambda(TrainConfig(steps=100, warmup=0.1, schedule="cosine"))
    assert (
        g(10) == pytest.approx(1.0) and g(55) == pytest.approx(0.5) and g(100) == pytest.approx(0)
    )


def test_checkpoint_from_other_model_is_rejected(tmp_path):
    make_trainer(tmp_path).fit(stop_at=5)
    torch.manual_seed(0)
    other = Trainer(
        TinyNet(d_hidden=32), cross_entropy, ToyDataset(),
        TrainConfig(steps=24, batch_size=16, ckpt_dir=str(tmp_path), progress=False),
    )  # fmt: skip
    with pytest.raises(CheckpointError, match=r"shape mismatch.*net\.0\.weight.*\(32, 8\)"):
        other.fit()


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    t = make_trainer(tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint at .*resume=False"):
        t.load(tmp_path / "nope.safetensors")


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    t = make_trainer(tmp_path)
    t.fit(stop_at=5)
    path = tmp_path / "checkpoint.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt.*delete it"):
        make_trainer(tmp_path).fit()


def test_plain_safetensors_is_not_a_checkpoint(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "checkpoint.safetensors"))
    with pytest.raises(CheckpointError, match="not a bertlab training checkpoint"):
        make_trainer(tmp_path).fit()


def test_checkpoint_has_no_pickle(tmp_path):
    t = make_trainer(tmp_path)
    t.fit(stop_at=5)
    head = (tmp_path / "checkpoint.safetensors").read_bytes()[:8]
    assert int.from_bytes(head, "little") > 0  # safetensors header length, not a pickle/zip magic
    assert not (tmp_path / "checkpoint.safetensors").read_bytes().startswith(b"PK")


def test_bad_config_and_data():
    with pytest.raises(ValueError, match="unknown schedule"):
        TrainConfig(schedule="exp")
    with pytest.raises(ValueError, match="steps must be at least 1"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="fewer than one batch"):
        Trainer(TinyNet(), cross_entropy, ToyDataset(n=4), TrainConfig(batch_size=8))
    with pytest.raises(TypeError, match="map-style dataset"):
        Trainer(TinyNet(), cross_entropy, iter([1, 2]), TrainConfig())


def test_divergence_is_reported():
    def nan_loss(model, batch):
        return model(batch[0]).sum() * float("nan")

    t = Trainer(TinyNet(), nan_loss, ToyDataset(), TrainConfig(steps=3, progress=False))
    with pytest.raises(FloatingPointError, match="diverged.*Lower the learning rate"):
        t.fit()


def test_devices_and_seeding():
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")
    seed_everything(3)
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))


# -- gradient accumulation, hooks, metrics, run identity, several processes ----------------------


def plain_trainer(steps=12, accumulate=1, data=classification_batch, batch_size=8, **kw):
    torch.manual_seed(0)
    cfg = TrainConfig(steps=steps, lr=1e-2, warmup=2, accumulate=accumulate, batch_size=batch_size,
                      device="cpu", progress=False, log_every=3, **kw)  # fmt: skip
    return Trainer(PlainNet(), mean_cross_entropy, data, cfg)


@pytest.mark.parametrize("data", ["callable", "dataset"])
def test_accumulation_equals_one_big_batch(data):
    """Two or four micro-batches of a per-example mean loss give the same step as one batch."""
    source = classification_batch if data == "callable" else ToyDataset()
    size = 8 if data == "callable" else 16
    runs = [plain_trainer(accumulate=k, data=source, batch_size=size) for k in (1, 2, 4)]
    for t in runs:
        t.fit()
    for t in runs[1:]:
        for k, v in params(runs[0].model).items():
            assert torch.allclose(params(t.model)[k], v, atol=1e-6), k


def test_accumulation_must_divide_the_batch():
    with pytest.raises(ValueError, match="batch_size=16 does not split into 3 micro-batch"):
        plain_trainer(accumulate=3, data=ToyDataset(), batch_size=16)
    with pytest.raises(ValueError, match=r"get_batch\(0\) returned 8 rows"):
        plain_trainer(accumulate=3).fit()


def test_on_step_hook_and_training_metrics():
    seen = []
    t = plain_trainer(steps=7)
    t.on_step = lambda trainer: seen.append(trainer.step)
    h = t.fit()
    assert seen == list(range(1, 8))
    assert h.steps == [3, 6, 7]
    assert len(h.train_metrics["accuracy"]) == 3
    assert all(0.0 <= a <= 1.0 for a in h.train_metrics["accuracy"])


def test_checkpoint_of_another_run_is_refused(tmp_path):
    def build(run):
        torch.manual_seed(0)
        cfg = TrainConfig(steps=6, ckpt_dir=str(tmp_path), progress=False, device="cpu")
        return Trainer(PlainNet(), mean_cross_entropy, classification_batch, cfg, run_config=run)

    build({"model": "small", "lr": 1}).fit(stop_at=3)
    with pytest.raises(CheckpointError, match=r"another run(.|\n)*'small'(.|\n)*'large'"):
        build({"model": "large", "lr": 1}).fit()
    assert build({"model": "small", "lr": 1}).fit().steps[-1] == 6


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    """torchrun with 2 CPU processes (gloo): each takes half of every global batch, DDP averages
    the gradients, and the final weights equal a single-process run within 1e-5; a run paused
    at step 7 under torchrun and started again ends the same."""
    import subprocess
    import sys
    from pathlib import Path

    from safetensors.torch import load_file

    script = Path(__file__).with_name("ddp_train.py")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]

    def launch(*args):
        done = subprocess.run([*torchrun, str(script), *args], capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]

    launch(str(tmp_path / "ddp.safetensors"))
    launch(str(tmp_path / "resumed.safetensors"), str(tmp_path / "ckpt"), "7")
    launch(str(tmp_path / "resumed.safetensors"), str(tmp_path / "ckpt"))
    single = plain_trainer()
    single.fit()
    for name in ("ddp", "resumed"):
        got = load_file(tmp_path / f"{name}.safetensors")
        for k, v in params(single.model).items():
            assert torch.allclose(got[k], v, atol=1e-5), (name, k)
