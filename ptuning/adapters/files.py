"""Adapter checkpoints: only what trained, beside a JSON that says how to rebuild the rest.

    OUT/adapter_config.json        base model, its fingerprint, method, labels, hyperparameters
    OUT/adapter_model.safetensors  trainable tensors only (prompt/prefix encoder, head)
    OUT/training_state.pt          optimizer, schedule, RNG, position in the run (for --resume)
    OUT/metrics.jsonl              one line per epoch

Every file is written to a temporary name and renamed: a crash mid-write leaves the old one.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..model import MethodConfig

ADAPTER_CONFIG, ADAPTER_WEIGHTS, STATE, METRICS = (
    "adapter_config.json", "adapter_model.safetensors", "training_state.pt", "metrics.jsonl")


class AdapterError(ValueError):
    """An adapter folder is incomplete or does not fit the model it is loaded onto."""


@dataclass
class AdapterConfig:
    """adapter_config.json of a train.py run: how to rebuild the model around the adapter's tensors.

    Read and written only here (`read_adapter`, `save_adapter`); unknown keys are ignored.
    """
    method: MethodConfig                   # how prompts enter and which head token: MethodConfig's fields
    num_labels: int                        # the head's width (1: a regression score)
    base_model_path: str | None = None     # the base model folder, resolved when training
    base_model: str | None = None          # --model as given: a folder, a hub id or "minilm"
    fingerprint: str | None = None         # `weights_fingerprint` of the base; checked when loading
    task: str | None = None                # task name; None: the user's own table
    label_names: list[str] | None = None   # names of the label ids; None: a regression score
    metrics: list[str] | None = None       # dev metrics; the first selected the best epoch
    max_length: int | None = None          # --max-length; None: what the positions allow
    train: dict | None = None              # the TrainConfig the run used
    precision: str | None = None           # fp32 | bf16 | fp16
    best_epoch: int | None = None          # the epoch these tensors come from
    dev_metrics: dict | None = None        # that epoch's dev metrics
    source: str | None = None              # "peft": converted from a peft folder (adapters/peft.py)
    peft_config: dict | None = None        # that folder's own adapter_config.json
    task_options: dict | None = None       # the task family's own options (QA: doc_stride, n_best, ...)

    @classmethod
    def from_dict(cls, raw: dict, source: str) -> "AdapterConfig":
        """From parsed JSON; `source` (the file) starts every error message."""
        if not isinstance(raw, dict):
            raise AdapterError(f"{source}: expected a JSON object")
        for name in ("method", "num_labels"):
            if name not in raw:
                raise AdapterError(f"{source}: field {name!r} is missing")
        try:
            method = MethodConfig(**raw["method"])
        except (TypeError, ValueError) as err:
            raise AdapterError(f"{source}: bad method ({err})") from None
        known = {f.name for f in fields(cls)} - {"method"}
        return cls(method=method, **{k: v for k, v in raw.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)  # the method becomes its dict of fields


def atomic_write(path: str | Path, write) -> None:
    """`write(tmp_path)` writes the file; it only replaces `path` once complete."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, obj) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2) + "\n"))


def append_jsonl(path, obj) -> None:
    """Rewrites the file with one more line (small files), so a reader never sees half a line."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    atomic_write(path, lambda tmp: Path(tmp).write_text(old + json.dumps(obj) + "\n"))


def weights_fingerprint(model_dir: str | Path) -> str:
    """A cheap identity for a checkpoint: sizes, headers and the first MiB of each weight file."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
        with open(path, "rb") as f:
            digest.update(f.read(1 << 20))
    return digest.hexdigest()[:16]


def save_adapter(out_dir: str | Path, model, config: AdapterConfig) -> None:
    """adapter_model.safetensors (what trains) and adapter_config.json."""
    out_dir = Path(out_dir)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in model.trainable_state_dict().items()}
    if any(not torch.isfinite(t).all() for t in tensors.values()):
        raise FloatingPointError("refusing to save an adapter with non-finite weights")
    atomic_write(out_dir / ADAPTER_WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    write_json(out_dir / ADAPTER_CONFIG, config.to_dict())


def read_adapter(adapter_dir: str | Path) -> tuple[AdapterConfig, dict[str, torch.Tensor]]:
    adapter_dir = Path(adapter_dir)
    config_path, weights_path = adapter_dir / ADAPTER_CONFIG, adapter_dir / ADAPTER_WEIGHTS
    for path in (config_path, weights_path):
        if not path.is_file():
            raise AdapterError(f"{path}: missing; is {adapter_dir} an output folder of train.py?")
    try:
        config = AdapterConfig.from_dict(json.loads(config_path.read_text()), str(config_path))
    except json.JSONDecodeError as err:
        raise AdapterError(f"{config_path}: not valid JSON ({err})") from None
    try:
        return config, load_file(weights_path)
    except Exception as err:
        raise AdapterError(f"{weights_path}: cannot read ({err})") from None


def load_adapter_weights(model, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Copy adapter tensors into `model`; names and shapes must match what trains there."""
    own = dict(model.named_parameters())
    wanted = set(model.trainable_names())
    missing, unexpected = sorted(wanted - set(tensors)), sorted(set(tensors) - set(own))
    wrong = [f"{k}: adapter {tuple(t.shape)}, model {tuple(own[k].shape)}"
             for k, t in tensors.items() if k in own and own[k].shape != t.shape]
    if missing or unexpected or wrong:
        raise AdapterError(f"{source}: adapter does not fit the model: missing {missing}, "
                           f"unexpected {unexpected}, wrong shape {wrong}")
    with torch.no_grad():
        for k, t in tensors.items():
            own[k].copy_(t)


def save_state(out_dir: str | Path, state: dict) -> None:
    atomic_write(Path(out_dir) / STATE, lambda tmp: torch.save(state, tmp))


def load_state(out_dir: str | Path) -> dict:
    path = Path(out_dir) / STATE
    if not path.is_file():
        raise AdapterError(f"{path}: missing; nothing to resume (run without --resume)")
    return torch.load(path, map_location="cpu", weights_only=True)
