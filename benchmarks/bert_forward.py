"""Throughput of ``bertlab.bert.BertModel`` vs ``transformers.BertModel`` (tokens per second).

Both models get the same config and the same weights (copied through ``bertlab.hf``); the
reference uses transformers' default attention (SDPA). Inputs: batch 32 x 128 random token ids
with two segments and no padding. Two modes:

- ``inference``: eval mode, ``torch.no_grad()``, forward only;
- ``train``: train mode (dropout on), forward + backward of the mean of the last hidden state.

Each measurement is a warm-up call, then a few repeats, the two models timed back to back (in
alternating order) so that machine noise hits both. Prints one line per measurement:

    bert_forward[<config>,<mode>]: bertlab X tok/s, reference Y tok/s, ratio R

X and Y are median throughputs; R (ours / theirs, above 1 means bertlab is faster) is the median
of the per-repeat ratios. Run: ``python benchmarks/bert_forward.py``
(about 2 minutes on 2 CPU cores; ``--repeats`` trades time for stability).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import transformers

from bertlab.bert import BertConfig, BertModel
from bertlab.hf import save_pretrained

CONFIGS = {
    "L6-H384-A12": BertConfig(hidden=384, layers=6, heads=12, intermediate=1536),  # MiniLM size
    "L4-H256-A4": BertConfig(hidden=256, layers=4, heads=4, intermediate=1024),  # BERT-Mini
}


def pair(config: BertConfig) -> tuple[BertModel, torch.nn.Module]:
    """Our model and transformers' with the same weights."""
    torch.manual_seed(0)
    ours = BertModel(config)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(ours, tmp)
        theirs = transformers.BertModel.from_pretrained(tmp)  # default attention: sdpa
    return ours, theirs


def step(model: torch.nn.Module, ids, types, mode: str, ours: bool) -> None:
    if mode == "inference":
        with torch.no_grad():
            model(ids, types) if ours else model(input_ids=ids, token_type_ids=types)
    else:
        out = model(ids, types) if ours else model(input_ids=ids, token_type_ids=types)
        out.last_hidden_state.mean().backward()
        model.zero_grad(set_to_none=True)


def measure(config: BertConfig, mode: str, batch: int, length: int, repeats: int):
    ours, theirs = pair(config)
    for m in (ours, theirs):
        m.train(mode == "train")
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, config.vocab_size, (batch, length), generator=gen)
    types = torch.zeros_like(ids)
    types[:, length // 2 :] = 1
    times = {True: [], False: []}
    order = [(True, ours), (False, theirs)]
    for is_ours, m in order:  # warm-up
        step(m, ids, types, mode, is_ours)
    for _ in range(repeats):
        order.reverse()  # alternate who goes first
        for is_ours, m in order:
            t0 = time.perf_counter()
            step(m, ids, types, mode, is_ours)
            times[is_ours].append(time.perf_counter() - t0)
    tokens = batch * length
    # the ratio is the median of the paired ratios (one pair per repeat, timed back to back), which
    # is steadier than a ratio of medians when other work on the machine comes and goes
    ratio = statistics.median(b / a for a, b in zip(times[True], times[False]))
    ours_tps = tokens / statistics.median(times[True])
    return ours_tps, tokens / statistics.median(times[False]), ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    for name, config in CONFIGS.items():
        for mode in ("inference", "train"):
            a, b, ratio = measure(config, mode, args.batch, args.length, args.repeats)
            print(
                f"bert_forward[{name},{mode}]: bertlab {a:,.0f} tok/s, "
                f"reference {b:,.0f} tok/s, ratio {ratio:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
