"""The encoder's configuration: one flat dataclass, fields named as in HF `config.json`."""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

# model_type -> family. The families differ only in embeddings and special tokens:
# RoBERTa numbers positions from padding_idx + 1 and skips padding; BERT numbers from 0.
FAMILIES = {"roberta": "roberta", "xlm-roberta": "roberta", "camembert": "roberta", "bert": "bert"}
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


class ConfigError(ValueError):
    """A model folder's config.json cannot describe an encoder we build."""


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
        if self.model_type not in FAMILIES:
            raise ConfigError(f"unknown model_type {self.model_type!r}; supported: {sorted(FAMILIES)}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(f"hidden_size {self.hidden_size} is not a multiple of "
                              f"num_attention_heads {self.num_attention_heads}")
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
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise ConfigError(f"{path}: missing; a Hugging Face model folder needs config.json")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(raw, source=str(path))


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
