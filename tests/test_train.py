"""The training loop: schedules, exact resume, checkpoints and their errors."""

from __future__ import annotations

import pytest
import torch
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
