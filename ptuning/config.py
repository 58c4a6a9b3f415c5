"""The encoder's configuration: one flat dataclass, fields named as in HF `config.json`."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import ConfigError

# model_type -> family. The families differ only in embeddings and special tokens:
# RoBERTa numbers positions from padding_idx + 1 and skips padding; BERT numbers from 0.
FAMILIES = {"roberta": "roberta", "xlm-roberta": "roberta", "camembert": "roberta", "bert": "bert"}
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


INT_FIELDS = {  # field -> smallest allowed value
    "vocab_size": 1, "hidden_size": 1, "num_hidden_layers": 1, "num_attention_heads": 1, "intermediate_size": 1,
    "max_position_embeddings": 1, "type_vocab_size": 1, "pad_token_id": 0}
DROPOUT_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob")


@dataclass
class EncoderConfig:
    model_type: str = "bert"
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    classifier_dropout: float | None = None
    position_embedding_type: str = "absolute"

    def __post_init__(self):
        """Every field checked for type and range: one validation layer for config.json."""
        for name in ("model_type", "hidden_act", "position_embedding_type"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"key {name!r} must be a string, not {getattr(self, name)!r}")
        if self.model_type not in FAMILIES:
            raise ConfigError(f"unknown model_type {self.model_type!r}; supported: {sorted(FAMILIES)}")
        for name, smallest in INT_FIELDS.items():
            check_int(name, getattr(self, name), smallest)
        for name in DROPOUT_FIELDS:
            check_probability(name, getattr(self, name))
        if self.classifier_dropout is not None:
            check_probability("classifier_dropout", self.classifier_dropout)
        eps = self.layer_norm_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
            raise ConfigError(f"key 'layer_norm_eps' must be a positive finite number, not {eps!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"key 'num_attention_heads': hidden_size {self.hidden_size} is not a multiple of "
                              f"num_attention_heads {self.num_attention_heads}")
        if self.pad_token_id >= self.vocab_size:
            raise ConfigError(f"key 'pad_token_id' {self.pad_token_id} is outside the vocabulary "
                              f"(vocab_size {self.vocab_size})")
        if self.max_position_embeddings <= self.position_offset:
            raise ConfigError(f"key 'max_position_embeddings' {self.max_position_embeddings} leaves no position "
                              f"for a token ({self.model_type} numbers positions from {self.position_offset})")
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"hidden_act {self.hidden_act!r} not supported; supported: {ACTIVATIONS}")
        if self.position_embedding_type != "absolute":
            raise ConfigError(f"position_embedding_type {self.position_embedding_type!r} not supported "
                              "(only 'absolute', as in BERT and RoBERTa)")

    @property
    def family(self) -> str:
        return FAMILIES[self.model_type]

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def position_offset(self) -> int:
        """Index of the first position embedding a token uses (fairseq's RoBERTa reserves 0..pad)."""
        return self.pad_token_id + 1 if self.family == "roberta" else 0

    @property
    def max_tokens(self) -> int:
        """How many tokens (virtual ones included) fit into the position table."""
        return self.max_position_embeddings - self.position_offset

    @classmethod
    def from_dict(cls, raw: dict, source: str = "config") -> "EncoderConfig":
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: expected a JSON object of settings, found {type(raw).__name__}")
        known = {f.name for f in fields(cls)}
        if "model_type" not in raw:
            raise ConfigError(f"{source}: no 'model_type' key; expected one of {sorted(FAMILIES)}")
        try:
            return cls(**{k: v for k, v in raw.items() if k in known})
        except ConfigError as err:
            raise ConfigError(f"{source}: {err}") from None

    @classmethod
    def from_json(cls, path: str | Path) -> "EncoderConfig":
        path = Path(path)
        if path.is_dir() and path.name != "config.json":
            path = path / "config.json"
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder, not a file; a Hugging Face model folder needs config.json")
        if not path.is_file():
            raise ConfigError(f"{path}: missing; a Hugging Face model folder needs config.json")
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as err:
            raise ConfigError(f"{path}: cannot read ({err.strerror or err})") from None
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path}: not valid UTF-8 (byte {err.object[err.start]:#04x} at offset "
                              f"{err.start})") from None
        if not text.strip():
            raise ConfigError(f"{path}: file is empty; expected a JSON object")
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            raise ConfigError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(raw, source=str(path))


def check_int(name: str, value, smallest: int) -> None:
    """Hugging Face writes these as JSON integers: 768.0, "768" and true are refused, not converted."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"key {name!r} must be an integer, not {value!r}")
    if value < smallest:
        raise ConfigError(f"key {name!r} must be at least {smallest}, not {value}")


def check_probability(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"key {name!r} must be a number in [0, 1), not {value!r}")


# Shapes of common checkpoints, so a run can be sized (`train.py --dry-run`) without the weights.
_ROBERTA = dict(model_type="roberta", vocab_size=50265, max_position_embeddings=514, type_vocab_size=1,
                pad_token_id=1, layer_norm_eps=1e-5)
KNOWN_SHAPES = {
    "roberta-base": EncoderConfig(**_ROBERTA),
    "roberta-large": EncoderConfig(**_ROBERTA, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                   intermediate_size=4096),
    "bert-base-uncased": EncoderConfig(),
    "bert-large-uncased": EncoderConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                        intermediate_size=4096),
}
