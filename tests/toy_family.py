"""A toy task family, to show what a new one takes: this file, and nothing edited elsewhere.

Task "wordcount": read a sentence, predict how many words it has (a regression on one text).
The data is made up here; a real family reads files in `load`. Every name of the convention in
ptuning/tasks/__init__.py is defined, most by reusing the library's pieces.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch.nn.functional as F

from ptuning.inference import logits_record, predict_chunks, predict_logits
from ptuning.model import sequence_head
from ptuning.options import at_least, option
from ptuning.tasks.metrics import compute_metrics
from ptuning.text.batches import encode_examples
from ptuning.text.tables import Example
from ptuning.text.tokenizer import check_room

HEAD = "sequence"                 # one token per row: a sequence head with one output, the count
TASKS = ("wordcount",)
DESCRIPTION = "word counting (--task wordcount)"
PREFIX_TEXT = "count the words of the sentence ."
PEFT_TASK_TYPE = "SEQ_CLS"
RECIPES = {"prefix": dict(lr=3e-2, epochs=2, batch_size=8)}
WORDS = "the cat sat on a mat while dogs ran past one red house".split()


@dataclass(frozen=True)
class Options:
    max_words: int = option(8, "longest made-up sentence, in words", checks=[at_least(1)])


def check_fit(args, method, config) -> None:
    check_room(method, config, args.max_length, pair=False)


def load(args):
    rng = random.Random(0)

    def sentences(n):
        lengths = [rng.randint(1, args.max_words) for _ in range(n)]
        return [Example(" ".join(rng.choice(WORDS) for _ in range(k)), None, float(k), i + 1)
                for i, k in enumerate(lengths)]
    return sentences(48), sentences(16), None, ("pearson", "spearman")


def encode_options(args) -> dict:
    return {}


def encode(tokenizer, examples, label_names=None):
    return encode_examples(tokenizer, examples)


def head(config, method, num_labels):
    return sequence_head(config, method, num_labels)


def loss(outputs, batch, reduction="mean"):
    return F.mse_loss(outputs.squeeze(-1).float(), batch["labels"].float(), reduction=reduction)


def training_loss(train_set):
    return loss


def evaluate(model, data, batch_size, pad_id, device, autocast, metric_names):
    return compute_metrics(metric_names, predict_logits(model, data, batch_size, pad_id, device, autocast),
                           np.array(data.labels))


def check_predict(args, meta) -> None:
    pass


def read_rows(args, tokenizer):
    return [Example(text, None, None, number) for number, text in enumerate(args.texts)], []


def predict_rows(model, tokenizer, meta, rows, args):
    for example, logits in predict_chunks(model, tokenizer, rows, 1, args.device, args.precision):
        yield logits_record(example.line, logits, ["score"])


def show(record, args) -> str:
    return f"{args.texts[record['line']]!r}: {record['score']:.1f} words"
