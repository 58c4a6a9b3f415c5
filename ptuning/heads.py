"""Heads: what a task reads out of the encoder's final hidden states.

Each head says which positions it reads (`reads`), and `PromptModel` hands it those:
    "cls": one token per row, (B, h) -> (B, num_labels). Sequence tasks (GLUE); `num_labels == 1`
           means regression (STS-B): the single logit is the score.
    "all": every text position, (B, T, h) -> per-position outputs. Token tasks (NER: `TokenHead`)
           and span tasks (extractive QA: `SpanHead`).
"""
from __future__ import annotations

import torch
from torch import nn

HEADS = ("roberta", "pooler")  # the sequence heads `build_head` makes
READS = ("cls", "all")


class RobertaClassificationHead(nn.Module):
    """As HF `RobertaClassificationHead`: dropout → dense → tanh → dropout → out_proj."""
    reads = "cls"

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
    reads = "cls"

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.pooler = nn.Linear(hidden_size, hidden_size)
        self.classifier = nn.Linear(hidden_size, num_labels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(torch.tanh(self.pooler(features))))


class TokenHead(nn.Module):
    """One label per token (NER), as HF `BertForTokenClassification`: dropout → classifier."""
    reads = "all"

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.classifier = nn.Linear(hidden_size, num_labels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (B, T, h) -> (B, T, num_labels)
        return self.classifier(self.dropout(hidden))


class SpanHead(nn.Module):
    """Where an answer starts and ends (extractive QA), as HF `BertForQuestionAnswering`:
    one linear map to two scores per token."""
    reads = "all"

    def __init__(self, hidden_size: int):
        super().__init__()
        self.qa_outputs = nn.Linear(hidden_size, 2)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (B, T, h) -> 2 x (B, T)
        start, end = self.qa_outputs(hidden).unbind(dim=-1)
        return start.contiguous(), end.contiguous()


def build_head(kind: str, hidden_size: int, num_labels: int, dropout: float) -> nn.Module:
    if kind == "roberta":
        return RobertaClassificationHead(hidden_size, num_labels, dropout)
    if kind == "pooler":
        return PoolerClassificationHead(hidden_size, num_labels, dropout)
    raise ValueError(f"head must be one of {HEADS}, not {kind!r}")
