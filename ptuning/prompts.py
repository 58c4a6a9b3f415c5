"""The two prompt methods' trainable parts. Each is a small module; the encoder stays frozen.

P-tuning v1 (Liu et al. 2021, "GPT Understands, Too", §3): continuous prompt vectors at the
input, produced by a prompt encoder (an MLP or a bi-LSTM) from free embeddings; the
reparameterization makes optimisation stabler than training the vectors directly (§3.2).
P-tuning v2 (Liu et al. 2022, §3.2, "deep prompt tuning"): learned keys and values prepended
in every attention layer, so prompts act at every depth, not only through the input.
"""
from __future__ import annotations

import torch
from torch import nn

REPARAMETERIZATIONS = ("mlp", "lstm", "none")


class PromptEncoder(nn.Module):
    """Makes `num_virtual_tokens` input embeddings, (n, hidden).

    Module names and shapes follow peft's `PromptEncoder`, so its weights copy across:
      mlp:  Linear(h, e) → ReLU → Linear(e, e) → ReLU → Linear(e, h)
      lstm: bidirectional LSTM(h → e, `lstm_layers` layers) → Linear(2e, 2e) → ReLU → Linear(2e, h)
      none: the embeddings themselves (plain prompt tuning, Lester et al. 2021)
    """

    def __init__(self, num_virtual_tokens: int, hidden_size: int, encoder_hidden_size: int = 128,
                 reparam: str = "mlp", lstm_layers: int = 2, lstm_dropout: float = 0.0):
        super().__init__()
        if reparam not in REPARAMETERIZATIONS:
            raise ValueError(f"reparam must be one of {REPARAMETERIZATIONS}, not {reparam!r}")
        self.reparam = reparam
        self.embedding = nn.Embedding(num_virtual_tokens, hidden_size)
        e = encoder_hidden_size
        if reparam == "mlp":
            self.mlp_head = nn.Sequential(nn.Linear(hidden_size, e), nn.ReLU(), nn.Linear(e, e), nn.ReLU(),
                                          nn.Linear(e, hidden_size))
        elif reparam == "lstm":
            self.lstm_head = nn.LSTM(hidden_size, e, num_layers=lstm_layers, dropout=lstm_dropout,
                                     bidirectional=True, batch_first=True)
            self.mlp_head = nn.Sequential(nn.Linear(2 * e, 2 * e), nn.ReLU(), nn.Linear(2 * e, hidden_size))

    def forward(self) -> torch.Tensor:
        # The prompts do not depend on the input: compute them once, the caller broadcasts.
        x = self.embedding.weight                      # (n, h)
        if self.reparam == "lstm":
            x = self.lstm_head(x[None])[0][0]          # (n, 2e): each prompt sees all the others
        if self.reparam != "none":
            x = self.mlp_head(x)                       # (n, h)
        return x


class PrefixEncoder(nn.Module):
    """Makes one (key, value) prefix per layer, each (B, heads, n, head_dim).

    With projection: Embedding(n, h) → Linear(h, p) → Tanh → Linear(p, 2·layers·h) (P-tuning v2's
    reparameterization); without: Embedding(n, 2·layers·h), the prefixes trained directly.
    The flat vector of one virtual token is laid out [layer 0 key | layer 0 value | layer 1 key | …],
    as in peft, so peft's weights copy across.
    """

    def __init__(self, num_virtual_tokens: int, num_layers: int, num_heads: int, hidden_size: int,
                 projection_size: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.num_layers, self.num_heads = num_layers, num_heads
        self.head_dim = hidden_size // num_heads
        width = 2 * num_layers * hidden_size
        if projection_size:
            self.embedding = nn.Embedding(num_virtual_tokens, hidden_size)
            self.transform = nn.Sequential(nn.Linear(hidden_size, projection_size), nn.Tanh(),
                                           nn.Linear(projection_size, width))
        else:
            self.embedding = nn.Embedding(num_virtual_tokens, width)
            self.transform = None
        # The P-tuning-v2 repo drops out prefix entries (hidden_dropout_prob); peft does not.
        self.dropout = nn.Dropout(dropout)

    def forward(self, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        x = self.embedding.weight                                   # (n, h) or (n, 2·L·h)
        if self.transform is not None:
            x = self.transform(x)                                   # (n, 2·L·h)
        n = x.shape[0]
        x = x.view(n, self.num_layers, 2, self.num_heads, self.head_dim)
        x = x.permute(1, 2, 3, 0, 4)                                # (L, 2, heads, n, D)
        prefixes = []
        # Layer by layer (unbind), each broadcast on its own: slicing one (L, 2, B, ...) view instead
        # would make backward build a zero tensor of that whole size for every layer.
        for key_value in x.unbind(0):                               # (2, heads, n, D)
            key_value = key_value.unsqueeze(1).expand(-1, batch_size, -1, -1, -1)  # (2, B, heads, n, D), a view
            if self.dropout.p > 0 and self.training:
                key_value = self.dropout(key_value)                 # a fresh mask per example, as the repo
            prefixes.append(tuple(key_value.unbind(0)))             # (B, heads, n, D) each
        return prefixes
