"""Rebuild a trained model from an adapter folder (ours or peft's): base weights + adapter."""
from __future__ import annotations

from pathlib import Path

import torch

from ..model import MethodConfig, load_classifier
from ..text.tokenizer import Tokenizer
from ..weights import resolve_model_dir
from .files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, AdapterError, load_adapter_weights, read_adapter, weights_fingerprint
from .peft import is_peft_adapter, load_peft_trained


def load_trained(adapter_dir: str | Path, model_dir: str | Path | None = None, device="cpu",
                 dtype: torch.dtype = torch.float32, check_fingerprint: bool = True):
    """Rebuild a trained classifier: base weights (from the adapter config or `model_dir`) + adapter.

    Returns (model, tokenizer, meta).
    """
    if is_peft_adapter(adapter_dir):  # saved by peft's save_pretrained: see adapters/peft.py
        return load_peft_trained(adapter_dir, model_dir, device, dtype)
    meta, tensors = read_adapter(adapter_dir)
    config_path = Path(adapter_dir) / ADAPTER_CONFIG
    try:
        method = MethodConfig(**meta["method"])
        num_labels = meta["num_labels"]
        base = model_dir or meta["base_model_path"]
    except KeyError as err:
        raise AdapterError(f"{config_path}: field {err} is missing") from None
    except (TypeError, ValueError) as err:
        raise AdapterError(f"{config_path}: bad method ({err})") from None
    model_dir = resolve_model_dir(str(base))
    if check_fingerprint and meta.get("fingerprint") and weights_fingerprint(model_dir) != meta["fingerprint"]:
        raise AdapterError(f"{adapter_dir} was trained on other weights than {model_dir} "
                           f"(fingerprint {meta['fingerprint']} vs {weights_fingerprint(model_dir)})")
    try:
        model = load_classifier(model_dir, method, num_labels, dtype=dtype)
    except ValueError as err:
        if type(err) is not ValueError:  # our loaders' errors already name their file
            raise
        raise AdapterError(f"{config_path}: {err}") from None
    load_adapter_weights(model, tensors, str(Path(adapter_dir) / ADAPTER_WEIGHTS))
    tokenizer = Tokenizer.from_folder(model_dir, model.encoder.config, method.positions_used, method.template,
                                      meta.get("max_length"))
    return model.to(device).eval(), tokenizer, meta
