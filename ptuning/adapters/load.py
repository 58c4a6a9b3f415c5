"""Rebuild a trained model from an adapter folder (ours or peft's): base weights + adapter."""
from __future__ import annotations

from pathlib import Path

import torch

from .. import arguments
from ..model import load_model
from ..tasks import family_of_adapter, make_head
from ..text.tokenizer import Tokenizer
from ..weights import CheckpointError, resolve_model_dir
from .files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, MODEL_FILES, AdapterConfig, AdapterError, check_model_files, \
    load_adapter_weights, read_adapter, weights_fingerprint
from .peft import is_peft_adapter, load_peft_trained


def load_trained(adapter_dir: str | Path, model_dir: str | Path | None = None, device="cpu",
                 dtype: torch.dtype = torch.float32, check_fingerprint: bool = True, tokenizer: bool = True
                 ) -> tuple[torch.nn.Module, Tokenizer | None, AdapterConfig]:
    """Rebuild a trained model: base weights (from the adapter config or `model_dir`) + adapter.

    The head is the one the adapter's task family builds (tasks/); users' own tables, as GLUE.
    Returns (model in eval mode, tokenizer, adapter config). `tokenizer=False` skips the tokenizer
    files (None in its place): enough to compute logits from ids you already have.
    """
    adapter_dir, device = arguments.folder(adapter_dir, "adapter_dir"), arguments.device(device)
    if model_dir is not None:
        arguments.folder(model_dir, "model_dir")
    if is_peft_adapter(adapter_dir):  # saved by peft's save_pretrained: see adapters/peft.py
        return load_peft_trained(adapter_dir, model_dir, device, dtype, tokenizer)
    config, tensors = read_adapter(adapter_dir)
    config_path = Path(adapter_dir) / ADAPTER_CONFIG
    base = model_dir or config.base_model_path
    if not base:
        raise AdapterError(f"{config_path}: field 'base_model_path' is missing")
    if model_dir is not None and Path(model_dir).is_dir() and not (Path(model_dir) / "config.json").is_file():
        raise CheckpointError(f"{model_dir}: not a model folder (no config.json); --model / model_dir names the base "
                              "model, as `from_pretrained` would read it")
    try:
        model_dir = resolve_model_dir(str(base))
    except CheckpointError as err:
        if model_dir:  # the caller's own --model: its message names it
            raise
        raise AdapterError(f"{config_path}: field 'base_model_path' {base!r} is not usable ({err}); "
                           "pass the base model folder (--model)") from None
    if check_fingerprint and config.fingerprint and weights_fingerprint(model_dir) != config.fingerprint:
        raise AdapterError(f"{adapter_dir} was trained on other weights than {model_dir} "
                           f"(fingerprint {config.fingerprint} vs {weights_fingerprint(model_dir)})")
    method, family = config.method, family_of_adapter(config)
    try:
        model = load_model(model_dir, method, lambda c: make_head(family, c, method, config.num_labels,
                                                                  config.task_options), dtype=dtype)
    except ValueError as err:
        if type(err) is not ValueError:  # our loaders' errors already name their file
            raise
        raise AdapterError(f"{config_path}: {err}") from None
    if check_fingerprint:  # after the load: a config.json that cannot be read is named for what is wrong in it
        check_model_files(config, model_dir, str(adapter_dir), MODEL_FILES if tokenizer else ("config.json",))
    load_adapter_weights(model, tensors, str(Path(adapter_dir) / ADAPTER_WEIGHTS))
    text = Tokenizer.from_folder(model_dir, model.encoder.config, method.positions_used, method.template,
                                 config.max_length) if tokenizer else None
    model.adapter_config = config  # what it was trained as: qa.answer and predict read their settings from it
    return model.to(device).eval(), text, config
