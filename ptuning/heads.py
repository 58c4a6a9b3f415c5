"""Heads: what a task reads out of the encoder's final hidden states.

Each head says which positions it reads (`reads`), and `PromptModel` hands it those:
    "cls": one token per row, (B, h) -> (B, num_labels). Sequence tasks (GLUE); `num_labels == 1`
           means regression (STS-B): the single logit is the score.
    "mask": each row's [MASK], (B, h) -> (B, num_labels). Cloze tasks: the pretrained MLM head read
           through a verbalizer (`MaskedLMHead`).
    "all": every text position, (B, T, h) -> per-position outputs. Token tasks (NER: `TokenHead`)
           and span tasks (extractive QA: `SpanHead`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .encoder import LayerNorm

HEADS = ("roberta", "pooler")  # the sequence heads `build_head` makes
READS = ("cls", "mask", "all")


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


class MaskedLMHead(nn.Module):
    """The model's own masked-language-model head, read through a verbalizer: P-tuning v1 as its paper
    runs NLU ("GPT Understands, Too", §4: a template with a [MASK], each label a word) and PET.

    hidden at [MASK] -> dense -> gelu -> LayerNorm -> a score per vocabulary token (decoder = the word
    embeddings, tied, plus a bias), as HF `BertOnlyMLMHead` / `RobertaLMHead`. `vocab_logits` gives all
    of them; `forward` only the label words': label c's score is the mean, over its words and each word's
    tokens, of their logits at [MASK]. That is the mean of their log-probabilities plus log Σ exp(logits),
    which is the same for every label of a row, so the softmax over labels (PET's loss, our probabilities)
    is that of the mean log-probabilities, without a softmax over 50,000 tokens. A word of several tokens
    counts every piece, not just its first (a first piece such as "un" may say little).
    """
    reads = "mask"
    pretrained = True  # loaded from the checkpoint (never at random), frozen with the encoder for prompt methods

    def __init__(self, hidden_size: int, vocab_size: int, eps: float, activation: str,
                 label_words: list[list[list[int]]] | None = None, mask_token_id: int | None = None):
        """`label_words[c]`: label c's words, each a list of token ids. None: built only to be sized."""
        super().__init__()
        self.transform = nn.Linear(hidden_size, hidden_size)
        self.norm = LayerNorm(hidden_size, eps=eps)  # fp32 under autocast, as the encoder's
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        if activation not in ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu"):
            raise ValueError(f"activation must be gelu, gelu_new, gelu_pytorch_tanh or relu, not {activation!r}")
        for words in label_words or []:
            if not words or not all(word and all(isinstance(t, int) and 0 <= t < vocab_size for t in word)
                                    for word in words):
                raise ValueError(f"label_words: each label needs words, each word token ids in [0, {vocab_size}): "
                                 f"{words!r}")
        if mask_token_id is not None and not (isinstance(mask_token_id, int) and 0 <= mask_token_id < vocab_size):
            raise ValueError(f"mask_token_id must be a token id in [0, {vocab_size}), not {mask_token_id!r}")
        self.activation = activation  # BERT: config's hidden_act; RoBERTa's LM head: gelu
        self.mask_token_id = mask_token_id
        # One row per label: its word pieces' ids and weights (1 / words / pieces; 0 pads the row).
        ids, weights = [], []
        for words in label_words or []:
            ids.append([t for word in words for t in word])
            weights.append([1 / len(words) / len(word) for word in words for _ in word])
        width = max(map(len, ids), default=0)
        self.register_buffer("word_ids", torch.tensor([row + [0] * (width - len(row)) for row in ids],
                                                      dtype=torch.long).reshape(len(ids), width), persistent=False)
        self.register_buffer("word_weights", torch.tensor([row + [0.0] * (width - len(row)) for row in weights]
                                                          ).reshape(len(ids), width), persistent=False)

    def tie(self, word_embeddings: nn.Embedding) -> None:
        """The decoder is the encoder's word-embedding matrix: held, not registered, so it is stored once."""
        object.__setattr__(self, "decoder", word_embeddings)

    def hidden(self, features: torch.Tensor) -> torch.Tensor:  # (B, h) -> (B, h)
        x = self.transform(features)
        x = F.relu(x) if self.activation == "relu" else \
            F.gelu(x, approximate="none" if self.activation == "gelu" else "tanh")
        return self.norm(x)

    def vocab_logits(self, features: torch.Tensor) -> torch.Tensor:  # (B, h) -> (B, vocab)
        """Every token's MLM logit at [MASK], as HF's `*ForMaskedLM(...).logits` there."""
        x = self.hidden(features)
        return x @ self.decoder.weight.to(x.dtype).T + self.bias

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (B, h) -> (B, num_labels)
        if self.word_ids.numel() == 0:
            raise ValueError("MaskedLMHead was built without label words (label_words=None): give the verbalizer")
        x = self.hidden(features)
        C, M = self.word_ids.shape
        rows = self.decoder.weight[self.word_ids.flatten()].to(x.dtype)  # only the label words' rows
        logits = x @ rows.T + self.bias[self.word_ids.flatten()]           # (B, C·M)
        return (logits.view(-1, C, M) * self.word_weights).sum(dim=-1)


def build_head(kind: str, hidden_size: int, num_labels: int, dropout: float) -> nn.Module:
    if kind == "roberta":
        return RobertaClassificationHead(hidden_size, num_labels, dropout)
    if kind == "pooler":
        return PoolerClassificationHead(hidden_size, num_labels, dropout)
    raise ValueError(f"head must be one of {HEADS}, not {kind!r}")
