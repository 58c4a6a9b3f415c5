"""Examples -> token ids -> batches of tensors.

Training batches are grouped by length: shuffle, cut into chunks of many batches, sort each
chunk by length, cut into batches, shuffle the batches. Random enough for SGD, and a batch
pads little (random batches of 32 pad MRPC to ~1.5x its real tokens). The order is a pure
function of (seed, epoch), so a resumed run sees exactly the batches it would have seen.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .tokenizer import Encoded, Tokenizer, collate


@dataclass
class EncodedSet:
    encoded: list[Encoded]
    labels: list            # int class ids, float scores, or None (unlabeled)
    truncated: int          # how many examples lost tokens to truncation

    def __len__(self):
        return len(self.encoded)


def encode_examples(tokenizer: Tokenizer, examples) -> EncodedSet:
    encoded = tokenizer.encode_batch([(e.text_a, e.text_b) for e in examples])
    return EncodedSet(encoded, [e.label for e in examples], sum(e.truncated for e in encoded))


def batch_order(lengths: list[int], batch_size: int, seed: int, epoch: int, chunk_batches: int = 50) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    batches = []
    chunk = batch_size * chunk_batches
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: lengths[i])
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]


def make_batch(data: EncodedSet, indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    batch = collate([data.encoded[i] for i in indices], pad_id)
    labels = [data.labels[i] for i in indices]
    if labels and isinstance(labels[0], list):  # one label per position (NER): pad with -100, ignored by the loss
        length = batch["input_ids"].shape[1]
        batch["labels"] = torch.tensor([row + [-100] * (length - len(row)) for row in labels], dtype=torch.long)
    elif all(label is not None for label in labels):
        dtype = torch.float32 if isinstance(labels[0], float) else torch.long
        batch["labels"] = torch.tensor(labels, dtype=dtype)
    return batch


def eval_batches(data: EncodedSet, batch_size: int, pad_id: int):
    """In file order, but each batch of similar lengths (sorted), with the original index."""
    order = sorted(range(len(data)), key=lambda i: len(data.encoded[i].ids))
    for start in range(0, len(order), batch_size):
        indices = order[start:start + batch_size]
        yield indices, make_batch(data, indices, pad_id)
