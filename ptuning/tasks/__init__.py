"""Task families: what a task reads out of the model, and how it is scored.

How prompts enter the encoder (the method: model.py, prompts.py) and what a task reads out (this
folder) are independent. Each task family is one file here, and every file offers the same few
names, found by convention (no registry, no base class):

    HEAD                  "sequence" (one token per row, (B, C) logits: GLUE),
                          "token" (every text position, (B, T, C): NER) or
                          "span" (start and end scores per text position, 2 x (B, T): extractive QA)
    read(task, split, data_dir=None, strict=False, report=None) -> list of examples
                          from the original files; bad input raises `DataError` naming file and line.
                          Families whose files have one fixed format (SQuAD) also take `file=PATH`:
                          that file instead of the split's own (train.py's --train-file/--dev-file)
    dev_split(task) -> str
                          the split to select models on
    label_names(task, train=None) -> tuple[str, ...] | None
                          names of the label ids (None: a regression score); their count sizes the head.
                          A family whose label set comes from the data (NER: the tags seen in the
                          train file) builds it from `train`, the train split's examples; without
                          them (sizing a run) it gives its known set, or None
    metric_names(task) -> tuple[str, ...]
                          what `evaluate` reports; the first one selects the best epoch
    encode(tokenizer, examples, **options) -> EncodedSet
                          token ids plus each example's label(s), aligned with the ids; a family may
                          return a subclass carrying what its `evaluate` needs (qa.WindowSet,
                          ner.WindowSet). A family whose examples hold label names (NER tags) also
                          takes `label_names=` and maps them to ids (None: unlabelled, for prediction)
    head(config, method, num_labels) -> nn.Module
                          a fresh head whose `reads` attribute is "cls" or "all" (heads.py)
    PREFIX_TEXT           words describing the task: where --prefix-init text starts the prefix
    loss(outputs, batch, reduction="mean") -> tensor
                          from the model's outputs and the batch's labels; reduction="sum" sums the
                          rows' losses (the training loop divides by the global batch size)
    evaluate(model, data, batch_size, pad_id, device, autocast, metric_names) -> dict[str, float]
                          predict, decode, score; the first of the family's metrics selects the best epoch

Optional, for a family with options of its own (QA: --doc-stride, --n-best, ...):
    add_options(parser)   adds the family's argparse group (train.py adds every family's)
    options(args) -> dict the keyword arguments train.py passes to `encode`; bad values raise OptionError
    MAX_LENGTH            --max-length when the user gives none (QA: 384, BERT's window)
    training_loss(train_set) -> loss
                          the loss `fit` trains with, when it is not `loss` (NER: a fixed
                          normaliser, so that length-grouped batches weigh every word alike)
A family that takes users' files in several formats offers `read_file(path, **options)` beside
`read` (NER: CoNLL columns or JSONL; GLUE-like tables go through text/tables.py instead).

`family_for(task_name)` says which file serves a task; the training loop (`fit`) takes the
family's `loss` and `evaluate`, so it never assumes what the outputs look like.
"""
from __future__ import annotations

from types import ModuleType

from . import glue, ner, qa

# Task name -> the module that serves it.
FAMILIES: dict[str, ModuleType] = {**{name: glue for name in glue.TASKS}, **{name: ner for name in ner.TASKS},
                                   **{name: qa for name in qa.TASKS}}


def family_for(task_name: str) -> ModuleType:
    """The task-family module for a task name, e.g. `family_for("mrpc")` is `tasks.glue`."""
    if task_name not in FAMILIES:
        raise ValueError(f"unknown task {task_name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[task_name]
