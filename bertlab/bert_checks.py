"""The checks that give ``bertlab.bert`` clear errors instead of tracebacks from deep in torch.

``BertConfig`` calls :func:`check_config` when it is made, and ``BertModel.forward`` calls
:func:`check_inputs` before it runs (``model.check_inputs = False`` skips that). Each error says
what is wrong and what to change: a too-long sequence names ``max_position`` and says to truncate,
an id outside the vocabulary names the tokenizer to use, and so on. Both functions read only the
config's fields, so they need nothing else from the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from bertlab.bert import BertConfig

__all__ = ["BertConfigError", "BertInputError", "check_config", "check_inputs"]


class BertConfigError(ValueError):
    """A ``BertConfig`` whose sizes do not make a valid BERT (the message says what to change)."""


class BertInputError(ValueError):
    """Inputs the model cannot take (wrong shape, too long, ids out of range); says the fix."""


def _positive_int(config: BertConfig, name: str, hint: str = "") -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BertConfigError(f"BertConfig.{name} must be a positive integer, got {value!r}{hint}.")


def check_config(config: BertConfig) -> None:
    """Raise ``BertConfigError`` when ``config``'s sizes cannot make a BERT."""
    for name in ("vocab_size", "hidden", "layers", "heads", "intermediate"):
        _positive_int(config, name)
    for name in ("max_position", "type_vocab"):
        _positive_int(config, name, " (BERT uses max_position=512 and type_vocab=2)")
    if config.embedding_size is not None:
        _positive_int(config, "embedding_size", " (ALBERT uses 128; None means E = H)")
    if config.hidden % config.heads != 0:
        divisors = [a for a in range(1, config.hidden + 1) if config.hidden % a == 0]
        near = sorted(divisors, key=lambda a: abs(a - config.heads))[:3]
        raise BertConfigError(
            f"BertConfig.hidden={config.hidden} is not divisible by heads={config.heads}: each "
            f"head gets hidden/heads dimensions, so pick heads from the divisors of "
            f"{config.hidden} (closest: {sorted(near)}) or change hidden to a multiple of "
            f"{config.heads} (BERT uses heads = hidden / 64)."
        )
    for name in ("dropout", "attention_dropout"):
        p = getattr(config, name)
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p < 1.0:
            raise BertConfigError(
                f"BertConfig.{name} must be a probability in [0, 1), got {p!r} "
                f"(BERT uses 0.1; use 0.0 to switch dropout off)."
            )
    for name, value in (("layer_norm_eps", 1e-12), ("initializer_range", 0.02)):
        if not getattr(config, name) > 0:
            raise BertConfigError(
                f"BertConfig.{name} must be > 0, got {getattr(config, name)!r} (BERT uses {value})."
            )
    if not 0 <= config.pad_token_id < config.vocab_size:
        raise BertConfigError(
            f"BertConfig.pad_token_id={config.pad_token_id} is not an id of the vocabulary "
            f"(0..{config.vocab_size - 1})."
        )


def check_inputs(
    config: BertConfig,
    input_ids,
    token_type_ids=None,
    attention_mask=None,
    device: torch.device | None = None,
) -> None:
    """Raise ``BertInputError`` when the inputs do not fit a model of ``config`` on ``device``.

    Checks types, shapes, the length against ``max_position``, the device, and that every id is
    in its table (that last check reads the values, which costs one device synchronisation).
    """
    if not isinstance(input_ids, torch.Tensor):
        raise BertInputError(
            f"input_ids must be a torch.Tensor of token ids, got {type(input_ids).__name__}; "
            f"wrap it with torch.tensor(...)."
        )
    if input_ids.dim() != 2:
        hint = " (one sequence: add the batch dimension with input_ids.unsqueeze(0))"
        raise BertInputError(
            f"input_ids must be 2-D (batch, sequence), got shape {tuple(input_ids.shape)}"
            + (hint if input_ids.dim() == 1 else "")
            + "."
        )
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
        raise BertInputError(
            f"input_ids must hold integer token ids, got dtype {input_ids.dtype}; "
            f"convert with input_ids.long()."
        )
    length = input_ids.size(1)
    if length == 0:
        raise BertInputError("input_ids has length 0: give at least one token ([CLS]).")
    if length > config.max_position:
        raise BertInputError(
            f"sequence length {length} is longer than max_position={config.max_position}, the "
            f"number of learned position embeddings: truncate the inputs to at most "
            f"{config.max_position} tokens, or use a BertConfig with a larger max_position."
        )
    if device is not None and input_ids.device != device:
        raise BertInputError(
            f"input_ids are on {input_ids.device} but the model is on {device}: "
            f"move them with .to({str(device)!r})."
        )
    for name, t in (("token_type_ids", token_type_ids), ("attention_mask", attention_mask)):
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise BertInputError(f"{name} must be a torch.Tensor, got {type(t).__name__}.")
        if t.shape != input_ids.shape:
            raise BertInputError(
                f"{name} has shape {tuple(t.shape)} but input_ids has shape "
                f"{tuple(input_ids.shape)}: they must match, one entry per token."
            )
        if t.device != input_ids.device:
            raise BertInputError(
                f"{name} is on {t.device} but input_ids is on {input_ids.device}; "
                f"put them on the same device."
            )
    if bool(((input_ids < 0) | (input_ids >= config.vocab_size)).any()):
        lo, hi = int(input_ids.min()), int(input_ids.max())
        raise BertInputError(
            f"input_ids must be in [0, vocab_size={config.vocab_size}), got values from {lo} to "
            f"{hi}: encode with the tokenizer whose vocabulary matches the model, or use a "
            f"BertConfig with vocab_size >= {hi + 1}."
        )
    if token_type_ids is not None:
        if token_type_ids.dtype.is_floating_point:
            raise BertInputError(
                f"token_type_ids must be integers, got dtype {token_type_ids.dtype}."
            )
        if bool(((token_type_ids < 0) | (token_type_ids >= config.type_vocab)).any()):
            hi = int(token_type_ids.max())
            raise BertInputError(
                f"token_type_ids must be in [0, type_vocab={config.type_vocab}) (0 = sentence A, "
                f"1 = sentence B), got values up to {hi} (min {int(token_type_ids.min())}): "
                f"use segment ids 0/1, or a BertConfig with type_vocab >= {hi + 1}."
            )
