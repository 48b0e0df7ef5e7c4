"""The artifact cache, atomic writes and weights files (bertlab.checkpoint)."""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import dataclass

import pytest
import torch

from bertlab import checkpoint
from bertlab.checkpoint import CheckpointError, atomic_path, cached, config_key


@dataclass
class Recipe:
    size: int = 3
    name: str = "ones"


def build_ones(config, calls):
    def build(folder):
        calls.append(config.size)
        checkpoint.save_weights({"w": torch.ones(config.size)}, folder / "w.safetensors")

    return build


def load_ones(folder):
    return checkpoint.load_weights(folder / "w.safetensors")["w"]


def test_cached_builds_once_then_loads(private_cache):
    calls = []
    a = cached("toy", Recipe(), build_ones(Recipe(), calls), load_ones)
    b = cached("toy", Recipe(), build_ones(Recipe(), calls), load_ones)
    assert calls == [3] and torch.equal(a, b)
    entry = private_cache / "toy" / config_key(Recipe())
    record = json.loads((entry / "cache.json").read_text())
    assert record["kind"] == "toy" and record["config"] == {"size": 3, "name": "ones"}
    # another config is another entry
    c = cached("toy", Recipe(size=5), build_ones(Recipe(size=5), calls), load_ones)
    assert calls == [3, 5] and c.shape == (5,)


def test_config_key_depends_on_every_field():
    assert config_key(Recipe()) == config_key(Recipe())
    assert config_key(Recipe()) != config_key(Recipe(name="twos"))
    assert config_key({"a": Recipe(), "b": (1, 2)}) == config_key({"b": [1, 2], "a": Recipe()})
    with pytest.raises(TypeError, match="a cache config may hold"):
        config_key({"f": object()})


def test_corrupt_entry_is_reported_and_rebuilt(private_cache):
    calls = []
    cached("toy", Recipe(), build_ones(Recipe(), calls), load_ones)
    weights = private_cache / "toy" / config_key(Recipe()) / "w.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])  # truncated
    with pytest.warns(UserWarning, match="corrupt or incomplete.*building it again"):
        again = cached("toy", Recipe(), build_ones(Recipe(), calls), load_ones)
    assert calls == [3, 3] and torch.equal(again, torch.ones(3))


def test_failed_build_leaves_no_entry(private_cache):
    def broken(folder):
        (folder / "half.txt").write_text("half")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        cached("toy", Recipe(), broken, load_ones)
    assert [p.name for p in (private_cache / "toy").iterdir() if not p.name.endswith(".lock")] == []


def _build_in_process(cache, queue):
    import os

    os.environ["BERTLAB_CACHE"] = str(cache)
    calls = []
    cached("toy", Recipe(), build_ones(Recipe(), calls), load_ones)
    queue.put(len(calls))


def test_two_processes_build_once(private_cache):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_build_in_process, args=(private_cache, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert sorted(queue.get() for _ in procs) == [0, 1]


def test_atomic_path_keeps_the_old_file_on_error(tmp_path):
    dest = tmp_path / "x.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError, match="crash"), atomic_path(dest) as tmp:
        tmp.write_text("new, half")
        raise RuntimeError("crash")
    assert dest.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def test_weights_files_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no weights file"):
        checkpoint.load_weights(tmp_path / "none.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        checkpoint.load_weights(bad)
    tied = torch.ones(2)
    checkpoint.save_weights({"a": tied, "b": tied}, tmp_path / "tied.safetensors")
    assert set(checkpoint.load_weights(tmp_path / "tied.safetensors")) == {"a", "b"}


def test_data_key_follows_the_data():
    from bertlab.checkpoint import data_key

    rows = [{"a": [1, 2], "b": True}, {"a": [3], "b": False}]
    assert data_key(rows) == data_key([dict(r) for r in rows])
    assert data_key(rows) != data_key(rows[:1]) != data_key([{"a": [1, 2], "b": False}])
    assert len(data_key(rows)) == 16
