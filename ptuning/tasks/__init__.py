"""Task families: what a task reads out of the model, how it is scored, and everything the scripts ask of it.

How prompts enter the encoder (the method: model.py, prompts.py) and what a task reads out (this
folder) are independent. Each task family is one file here and owns its whole surface: its options,
its recipes, reading its data, encoding, its head and loss, evaluation and prediction. train.py,
predict.py, the adapter code and the peft interop ask the family; none of them names one. Every
family offers the same names, found by convention (no registry, no base class):

    HEAD                  "sequence" (one token per row, (B, C) logits: GLUE), "token" (every text
                          position, (B, T, C): NER), "span" (start and end scores per text
                          position, 2 x (B, T): extractive QA) or "mask" (the MLM head at each row's
                          [MASK], (B, C) label-word scores: cloze tasks)
    TASKS                 the task names it serves (--task)
    DESCRIPTION           those tasks in words, for messages ("NER (--task conll2003, ner)")
    PREFIX_TEXT           words describing the task: where --prefix-init text starts the prefix
    PEFT_TASK_TYPE        peft's task_type for its adapters ("SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS")
    Options               a dataclass of the family's own train.py options (`options.option` fields;
                          may have none); the command line is derived from it
    RECIPES               {method: {option: value}}: what unset options take for this family, on top
                          of the methods' own (training/recipes.py); {} for none

  training (train.py, in this order)
    check_fit(args, method, config)      before any data is read: the model's positions leave room for
                                         a row (raise OptionError naming the option to change)
    load(args) -> (train, dev, label_names, metric_names)
                                         the task's files from its data folder, or the user's own
                                         (--train-file/--dev-file); bad input raises DataError naming
                                         file and line. label_names: names of the label ids (None: a
                                         regression score; their count sizes the head). metric_names:
                                         what `evaluate` reports, the first selects the best epoch
    encode_options(args) -> dict         the family's options as `encode`'s keyword arguments (recorded
                                         in the adapter as task_options; {} for none)
    encode(tokenizer, examples, label_names=None, **options) -> EncodedSet
                                         token ids and each example's label(s); a family may return a
                                         subclass carrying what its `evaluate` needs
    head(config, method, num_labels, **head_options) -> nn.Module
                                         a fresh head whose `reads` is "cls", "mask" or "all" (heads.py);
                                         it also gets the task options named in HEAD_OPTIONS (`make_head`)
    loss(outputs, batch, reduction="mean") -> tensor
                                         "sum" sums the rows' losses (fit divides by the batch size)
    training_loss(train_set) -> loss     the loss `fit` trains with (NER: a fixed normaliser, so that
                                         length-grouped batches weigh every word alike); else `loss`
    evaluate(model, data, batch_size, pad_id, device, autocast, metric_names) -> dict[str, float]

  prediction (predict.py, the library)
    check_predict(args, meta)            predict.py's options against the adapter (PredictError)
    read_rows(args, tokenizer) -> (rows, skipped)
                                         the texts to predict: the command line's, or --input's
                                         (skipped: (line, reason) of bad rows, with --skip-bad)
    predict_rows(model, tokenizer, meta, rows, args) -> iterator of dicts
                                         one JSON-ready record per row, {"line": ...} first
    show(record, args) -> str            a command-line prediction as the console shows it

Optional: MAX_LENGTH (--max-length when the user gives none; QA: 384, BERT's window); check_texts(meta,
pairs) (the library's `predict` on the family's adapter: GLUE refuses single texts for a pair task);
HEAD_OPTIONS (the task options `head` is built from: cloze, the verbalizer's token ids);
default_template(values) (--template when the user gives none: cloze, the task's pattern).
`tests/test_family_convention.py` adds a toy family (regression on one text) that train.py and
predict.py run without being edited: a new family is one new file here plus its tests.
"""
from __future__ import annotations

import argparse
from types import ModuleType

from . import cloze, glue, ner, qa

MODULES: list[ModuleType] = [glue, ner, qa, cloze]  # every family; a new one is added here


def make_head(family: ModuleType, config, method, num_labels: int, task_options: dict | None = None):
    """The family's head, given the task options it is built from (its HEAD_OPTIONS; an adapter records them)."""
    wanted = {k: v for k, v in (task_options or {}).items() if k in getattr(family, "HEAD_OPTIONS", ())}
    return family.head(config, method, num_labels, **wanted)


def families() -> dict[str, ModuleType]:
    """Task name -> the module that serves it."""
    return {name: module for module in MODULES for name in module.TASKS}


def family_for(task_name: str) -> ModuleType:
    """The task-family module for a task name, e.g. `family_for("mrpc")` is `tasks.glue`."""
    known = families()
    if task_name not in known:
        raise ValueError(f"unknown task {task_name!r}; known: {', '.join(known)}")
    return known[task_name]


def task_name(text: str) -> str:
    """argparse type: a known task, in our spelling or GLUE's (MRPC, SST-2, sts-b)."""
    squeeze = lambda name: name.lower().replace("-", "").replace("_", "")  # noqa: E731
    for known in families():
        if text == known or squeeze(text) == squeeze(known):
            return known
    raise argparse.ArgumentTypeError(f"unknown task {text!r}; known: {', '.join(families())}")


def recorded_task(args) -> str | None:
    """The task an adapter records: the run's, or None for a user's own table (its columns, not those of the
    GLUE task named by --task, decide what it reads; such an adapter loads as a GLUE-like one)."""
    return None if family_for(args.task) is glue and args.train_file else args.task


def family_of_adapter(config) -> ModuleType:
    """The family an adapter was trained in (its config's task; a user's own table: GLUE-like)."""
    return family_for(config.task) if config.task is not None else glue


def family_for_peft(task_type: str) -> tuple[ModuleType, str | None]:
    """The family whose heads peft's `task_type` matches, and the task an adapter loaded from peft records
    (a sequence classifier: None, as a user's own table; tokens: ner, users' tags; answers: squad)."""
    family = next(module for module in MODULES if module.PEFT_TASK_TYPE == task_type)
    recorded = {glue: None, ner: "ner", qa: "squad"}
    return family, recorded[family] if family in recorded else next(iter(family.TASKS))
