"""Classification heads: they read one token's final hidden state and return logits.

`num_labels == 1` means regression (STS-B): the single logit is the score.
"""
from __future__ import annotations

import torch
from torch import nn

HEADS = ("roberta", "pooler")


class RobertaClassificationHead(nn.Module):
    """As HF `RobertaClassificationHead`: dropout → dense → tanh → dropout → out_proj."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, num_labels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (B, h) -> (B, num_labels)
        x = torch.tanh(self.dense(self.dropout(features)))
        return self.out_proj(self.dropout(x))


class PoolerClassificationHead(nn.Module):
    """As HF `BertForSequenceClassification` (and the P-tuning-v2 repo for RoBERTa too):
    pooler (dense → tanh, pretrained with BERT's next-sentence task) → dropout → classifier."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.pooler = nn.Linear(hidden_size, hidden_size)
        self.classifier = nn.Linear(hidden_size, num_labels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(torch.tanh(self.pooler(features))))


def build_head(kind: str, hidden_size: int, num_labels: int, dropout: float) -> nn.Module:
    if kind == "roberta":
        return RobertaClassificationHead(hidden_size, num_labels, dropout)
    if kind == "pooler":
        return PoolerClassificationHead(hidden_size, num_labels, dropout)
    raise ValueError(f"head must be one of {HEADS}, not {kind!r}")
