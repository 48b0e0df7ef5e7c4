"""One full pre-training step (forward, backward, AdamW): bertlab vs transformers, and MFU.

Both models are BERT with L=4, H=256, A=4, I=1024, V=30,522 (BERT-Mini with BERT's vocabulary),
dropout 0.1, on the same batch of 32 sequences of 128 tokens with 15% of the tokens masked
(80/10/10) and an NSP label per sequence:

- bertlab: ``BertForPreTraining`` + ``pretraining.pretraining_loss``, which gathers the masked
  positions' hidden states and decodes only those (about 615 of the 4,096 positions);
- reference: ``transformers.BertForPreTraining`` with SDPA attention, given ``labels`` and
  ``next_sentence_label``: it decodes all 4,096 positions over the 30,522-token vocabulary.

Both use ``torch.optim.AdamW`` (lr 1e-4, weight decay 0.01) over all parameters, 2 threads.
Each step is timed separately after warm-up steps; the figure is the median. ``--dropout 0``
and ``--bf16`` change both models alike (the cpu pre-training preset uses both);
``--compile`` runs ours through ``torch.compile``.

MFU (model FLOPs utilisation) is the useful work of our step per second, divided by the fp32
matrix-multiply peak measured here (a 2048 x 2048 x 2048 matmul, best of several, on the same
threads). Useful work: 6 FLOPs per parameter per token for the encoder's matrices (forward,
and twice that backward), the attention products (4·T·H per token per layer, times 3), and the
MLM head on the predicted positions only (6 (H² + V·H) per prediction).

Prints ``pretrain: bertlab X tok/s, reference Y tok/s, ratio R, MFU M%`` (R > 1: bertlab is
faster). Run: ``python benchmarks/pretrain.py`` (about a minute on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from bertlab.bert import BertConfig, BertForPreTraining
from bertlab.pretraining import mask_tokens, pretraining_loss

L, H, A, I, V, B, T = 4, 256, 4, 1024, 30522, 32, 128


def batch(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (B, T), generator=g)
    ids[:, 0], ids[:, 63], ids[:, -1] = 2, 3, 3  # [CLS] A [SEP] B [SEP]
    types = torch.zeros_like(ids)
    types[:, 64:] = 1
    special = (ids == 2) | (ids == 3)
    masked, labels = mask_tokens(ids, special, mask_id=4, vocab_size=V, generator=g)
    return {
        "input_ids": masked,
        "token_type_ids": types,
        "attention_mask": torch.ones_like(ids),
        "labels": labels,
        "nsp_labels": torch.randint(0, 2, (B,), generator=g),
        "predicted": int((labels != -100).sum()),
        "rows": B,
    }


def peak_flops(threads: int, n: int = 2048, repeat: int = 7) -> float:
    """fp32 matmul FLOP/s on ``threads`` threads: the best of ``repeat`` n x n x n products."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_seconds(lambda: a @ b) for _ in range(repeat))
    return 2 * n**3 / best


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def useful_flops(n_predicted: int) -> float:
    encoder = L * (4 * H * H + 2 * H * I)  # the weight matrices of every layer
    per_token = 6 * encoder + 3 * L * 4 * T * H
    return per_token * B * T + 6 * (H * H + V * H) * n_predicted + 6 * H * H * B


def time_steps(step, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    return statistics.median(_seconds(step) for _ in range(steps))


def _autocast(bf16: bool):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)


def ours_step(b, dropout: float = 0.1, bf16: bool = False, compile_model: bool = False):
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=V,
        hidden=H,
        layers=L,
        heads=A,
        intermediate=I,
        max_position=T,
        dropout=dropout,
        attention_dropout=dropout,
    )
    model = BertForPreTraining(config).train()
    model.bert.check_inputs = False  # the benchmark's inputs are known to be valid
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    forward = torch.compile(model) if compile_model else model

    def step():
        with _autocast(bf16):
            out = pretraining_loss(forward, b)
        out["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def reference_step(b, dropout: float = 0.1, bf16: bool = False):
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=V,
        hidden_size=H,
        num_hidden_layers=L,
        num_attention_heads=A,
        intermediate_size=I,
        max_position_embeddings=T,
        attn_implementation="sdpa",
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    model = transformers.BertForPreTraining(config).train()
    assert model.config._attn_implementation == "sdpa"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    kwargs = dict(
        input_ids=b["input_ids"],
        token_type_ids=b["token_type_ids"],
        attention_mask=b["attention_mask"],
        labels=b["labels"],
        next_sentence_label=b["nsp_labels"],
    )

    def step():
        with _autocast(bf16):
            loss = model(**kwargs).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def check_same_loss(b) -> None:
    """The two models compute the same losses from the same weights (a sanity check)."""
    import transformers

    from bertlab import hf

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=V,
        hidden=H,
        layers=L,
        heads=A,
        intermediate=I,
        max_position=T,
        dropout=0.0,
        attention_dropout=0.0,
    )
    ours = BertForPreTraining(config).eval()
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(ours, folder)
        theirs = transformers.BertForPreTraining.from_pretrained(folder).eval()
    with torch.no_grad():
        mine = pretraining_loss(ours, b)
        out = theirs(
            input_ids=b["input_ids"],
            token_type_ids=b["token_type_ids"],
            attention_mask=b["attention_mask"],
        )
        mlm = F.cross_entropy(out.prediction_logits.view(-1, V), b["labels"].view(-1))
        nsp = F.cross_entropy(out.seq_relationship_logits, b["nsp_labels"])
    assert abs(float(mine["mlm_loss"]) - float(mlm)) < 1e-4, (mine["mlm_loss"], mlm)
    assert abs(float(mine["nsp_loss"]) - float(nsp)) < 1e-4, (mine["nsp_loss"], nsp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dropout", type=float, default=0.1, help="both models (BERT: 0.1)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for both models")
    parser.add_argument("--compile", action="store_true", help="torch.compile our model")
    args = parser.parse_args()
    peak = peak_flops(args.threads)
    b = batch()
    check_same_loss(b)
    ours = time_steps(ours_step(b, args.dropout, args.bf16, args.compile), args.steps, args.warmup)
    theirs = time_steps(reference_step(b, args.dropout, args.bf16), args.steps, args.warmup)
    tokens = B * T
    mfu = useful_flops(b["predicted"]) / ours / peak
    setting = f"dropout {args.dropout}" + (", bf16 autocast" if args.bf16 else ", fp32")
    print(
        f"pretrain: bertlab {tokens / ours:,.0f} tok/s, reference {tokens / theirs:,.0f} tok/s, "
        f"ratio {theirs / ours:.2f}, MFU {100 * mfu:.0f}% "
        f"({setting}; fp32 peak {peak / 1e9:.0f} GFLOP/s; {ours * 1e3:.0f} vs "
        f"{theirs * 1e3:.0f} ms/step)"
    )


if __name__ == "__main__":
    main()
