"""GLUE: the task family that reads one token and predicts a class (or a score) per text.

Follows the task-family convention of `ptuning/tasks/__init__.py`: `read`, `encode`, `HEAD`,
`loss`, `evaluate`. data/README.md describes the GLUE layout and its quirks.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import EncoderConfig
from ..errors import OptionError, not_a_file
from ..inference import logits_record, predict_chunks, predict_logits
from ..model import MethodConfig, sequence_head
from ..options import option
from ..prediction import PredictError, check_argument_text, check_finite_logits
from ..text.download import GET_GLUE, data_dir, ensure_glue_task, existing_data_dir
from ..text.batches import EncodedSet, encode_examples
from ..text.tables import (BadRow, DataError, Example, SkippedRows, as_record, collect_rows, given_label_names,
                           read_table, read_header,
                           read_tsv, require_columns, text_field)
from ..text.tokenizer import Tokenizer, check_room
from .metrics import compute_metrics



@dataclass(frozen=True)
class Task:
    name: str                                  # key in TASKS, e.g. "mrpc"
    folder: str                                # folder under the GLUE root, e.g. "MRPC"
    splits: dict[str, str] = field(hash=False)  # split -> file; "test*" splits carry no labels
    text_a_column: str                         # columns are found by header name ...
    text_b_column: str | None                  # None for single-sentence tasks
    label_column: str
    label_values: tuple[str, ...] | None       # labels as the file writes them, in id order
    label_names: tuple[str, ...] | None        # readable name for each id; both None: regression
    metrics: tuple[str, ...]                   # the first one is the one to select models by
    headerless_columns: tuple[str, ...] = ()   # ... or, for files without a header row, by these
    headerless_splits: tuple[str, ...] = ()

    @property
    def num_labels(self) -> int:
        """Width of the classifier: one output for regression, one per class otherwise."""
        return 1 if self.label_names is None else len(self.label_names)


SPLITS = {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}
MNLI_SPLITS = {name: f"{name}.tsv" for name in
               ("train", "dev_matched", "dev_mismatched", "test_matched", "test_mismatched")}
ZERO_ONE = ("0", "1")
NLI = ("entailment", "not_entailment")

# Task(name, folder, splits, text_a / text_b / label column, label values, label names, metrics).
# Label ids follow Hugging Face `datasets` glue, so our ids match checkpoints fine-tuned there.
TASKS = {task.name: task for task in [
    Task("cola", "CoLA", SPLITS, "sentence", None, "label", ZERO_ONE,
         ("unacceptable", "acceptable"), ("mcc",),
         headerless_columns=("source", "label", "original_mark", "sentence"),
         headerless_splits=("train", "dev")),
    Task("sst2", "SST-2", SPLITS, "sentence", None, "label", ZERO_ONE, ("negative", "positive"),
         ("accuracy",)),
    Task("mrpc", "MRPC", SPLITS, "#1 String", "#2 String", "Quality", ZERO_ONE,
         ("not_equivalent", "equivalent"), ("accuracy", "f1")),
    Task("stsb", "STS-B", SPLITS, "sentence1", "sentence2", "score", None, None,
         ("pearson", "spearman")),
    Task("qqp", "QQP", SPLITS, "question1", "question2", "is_duplicate", ZERO_ONE,
         ("not_duplicate", "duplicate"), ("accuracy", "f1")),
    Task("mnli", "MNLI", MNLI_SPLITS, "sentence1", "sentence2", "gold_label",
         ("entailment", "neutral", "contradiction"), ("entailment", "neutral", "contradiction"),
         ("accuracy",)),
    Task("qnli", "QNLI", SPLITS, "question", "sentence", "label", NLI, NLI, ("accuracy",)),
    Task("rte", "RTE", SPLITS, "sentence1", "sentence2", "label", NLI, NLI, ("accuracy",)),
    Task("wnli", "WNLI", SPLITS, "sentence1", "sentence2", "label", ZERO_ONE,
         ("not_entailment", "entailment"), ("accuracy",)),
]}


def find_data_dir(data_dir: str | Path | None = None) -> Path:
    """The GLUE root: the argument if given, else $GLUE_DIR, else ./data/glue."""
    return existing_data_dir("glue", data_dir, "data", how_to=f"put the data in ./data/glue; {GET_GLUE}")


def read_glue(task: Task | str, split: str, data_dir: str | Path | None = None,
              strict: bool = False, report: list | None = None) -> list[Example]:
    """Read one split of a GLUE task from the original TSV files.

    `report`, if given, receives `(line, reason)` for each skipped row (strict=False only).
    """
    if isinstance(task, str):
        key = task.lower().replace("-", "")   # "SST-2" -> "sst2"
        if key not in TASKS:
            raise DataError(f"unknown GLUE task {task!r}; known: {', '.join(TASKS)}")
        task = TASKS[key]
    if split not in task.splits:
        raise DataError(f"{task.name} has no split {split!r}; it has: {', '.join(task.splits)}")
    path = find_data_dir(data_dir) / task.folder / task.splits[split]
    if not path.is_file():
        raise DataError(f"{not_a_file(path)}; {GET_GLUE}")

    rows = read_tsv(path)
    header = task.headerless_columns if split in task.headerless_splits else read_header(path, rows)
    labeled = not split.startswith("test")
    require_columns(path, header, task.text_a_column, task.text_b_column,
                     task.label_column if labeled else None)

    def convert(line: int, fields: list[str]) -> Example:
        record = as_record(fields, header, "tab-separated")
        label = _glue_label(record[task.label_column], task) if labeled else None
        return Example(text_field(record, task.text_a_column), text_field(record, task.text_b_column),
                       label, line)

    skipped = SkippedRows(path, strict, report)
    examples = collect_rows(path, rows, convert, skipped)
    skipped.warn()
    return examples


def _glue_label(raw: str, task: Task) -> int | float:
    raw = raw.strip()
    if task.label_values is None:   # regression: STS-B's similarity score
        try:
            score = float(raw)
        except ValueError:
            raise BadRow(f"score {raw!r} is not a number") from None
        if not math.isfinite(score):
            raise BadRow(f"score {raw!r} is not a finite number")
        return score
    if raw not in task.label_values:
        raise BadRow(f"label {raw!r} is not one of {', '.join(task.label_values)}")
    return task.label_values.index(raw)


# --- the task-family convention (tasks/__init__.py) -------------------------------------------
HEAD = "sequence"  # one token per row -> (B, num_labels) logits; one logit: a regression score
DESCRIPTION = "GLUE tasks and your own tables"
PEFT_TASK_TYPE = "SEQ_CLS"
# GLUE runs the methods' recipes as they are (training/recipes.py: the P-tuning guide's, measured on MRPC).
RECIPES: dict[str, dict] = {}
# --prefix-init text: the prefix starts at these words' keys and values (measured on SQuAD only, BENCHMARKS.md).
PREFIX_TEXT = ("read the sentences and decide : do they mean the same , does one follow from the other , "
               "is the sentence positive or negative , is it good english , how similar are they ?")


TABLES = ("sequence", "mask")  # the families that read users' tables by these columns: GLUE's and cloze tasks


@dataclass(frozen=True)
class Options:
    """Your own tables (--train-file/--dev-file, .tsv/.csv/.jsonl): which columns hold what."""
    text_a: str = option("sentence1", "column of the first text (train.py's --train-file/--dev-file, predict.py's "
                         "--input)", needs="train_file", heads=TABLES)
    text_b: str | None = option(None, "column of the second text, for pairs (default: none)", needs="train_file",
                                heads=TABLES)
    label: str = option("label", "--train-file: the label column", needs="train_file", heads=TABLES)
    task_type: str | None = option(None, "--train-file: labels are classes or scores (default: inferred from the "
                                   "labels)", choices=("classification", "regression"))

    @staticmethod
    def extra_problems(values: dict) -> list[str]:
        if values.get("task_type") and not values.get("train_file"):
            return ["--task-type goes with --train-file (a GLUE task knows its type)"]
        return []


PREDICT_OPTIONS = ("text_a", "text_b")  # the Options predict.py also reads (the columns of its --input)


def read(task: Task | str, split: str, data_dir: str | Path | None = None, strict: bool = False,
         report: list | None = None) -> list[Example]:
    """One split of a GLUE task (`read_glue`)."""
    return read_glue(task, split, data_dir, strict, report)


def label_names(task_name: str, train=None) -> tuple[str, ...] | None:
    """Class names in id order; None for a regression task (one output, the score)."""
    return TASKS[task_name].label_names


def metric_names(task_name: str) -> tuple[str, ...]:
    """The task's metrics; the first selects the best epoch."""
    return TASKS[task_name].metrics


def dev_split(task_name: str) -> str:
    """The split to select models on: MNLI has two dev sets, the matched one is the usual choice."""
    return "dev_matched" if task_name == "mnli" else "dev"


def is_pair(args, task_name: str | None = None) -> bool:
    """Whether the run reads sentence pairs: its table's --text-b, or the GLUE task's columns (`task_name`,
    default --task)."""
    return bool(args.text_b) if args.train_file else TASKS[task_name or args.task].text_b_column is not None


def table_metrics(names) -> tuple[str, ...]:
    """What a user's table is scored by: its classes (F1 too for two), or a regression score (names None)."""
    return ("pearson", "spearman") if names is None else ("accuracy", "f1") if len(names) == 2 else ("accuracy",)


def check_fit(args, method: MethodConfig, config: EncoderConfig) -> None:
    """Room in the position table for the special tokens and one token of each text, before any work."""
    check_room(method, config, args.max_length, pair=is_pair(args))


def load(args):
    """(train, dev, label names or None, metric names): a GLUE task's files (fetched into the GLUE root
    when missing, unless --no-download), or the user's own tables (--train-file/--dev-file)."""
    if args.train_file:
        names = given_label_names(args.label_names)
        train, names = read_table(args.train_file, args.text_a, args.text_b, args.label, names, args.strict,
                                  task_type=given_task_kind(args) or args.task_type, needs_labels=True)
        # The kind it was read as (inferred too) is recorded: a resumed run reads the table alike. Dev labels
        # are read as the train file's: its classes, or scores when it is regression.
        args.task_type = "regression" if names is None else "classification"
        dev, _ = read_table(args.dev_file, args.text_a, args.text_b, args.label, names, args.strict,
                            task_type=args.task_type, needs_labels=True)
        return train, dev, names, table_metrics(names)
    folder = data_dir("glue", args.data_dir)
    ensure_glue_task(args.task, folder, allow_download=not args.no_download)
    train = read(args.task, "train", folder, args.strict)
    dev = read(args.task, dev_split(args.task), folder, args.strict)
    return train, dev, label_names(args.task), metric_names(args.task)


def given_task_kind(args) -> str | None:
    """--task named with --train-file: the table is read as that task's kind (STS-B's scores, the others'
    classes), and must hold what it reads (pairs or single texts). None when --task was left unset."""
    if "task" not in getattr(args, "given", ()) or args.task not in TASKS:
        return None
    task = TASKS[args.task]
    instead = ", or leave --task out (the table's columns and labels then decide)"
    if (task.text_b_column is not None) != bool(args.text_b):
        raise OptionError(f"--task {task.name} reads {'pairs of texts' if task.text_b_column else 'single texts'}, "
                          f"and --train-file {args.train_file} is read with" +
                          (f" --text-b {args.text_b}: drop it" if args.text_b else "out --text-b: give the column "
                           "of the second text") + instead)
    kind = "regression" if task.label_names is None else "classification"
    if args.task_type not in (None, kind):
        raise OptionError(f"--task {task.name} is {kind}; --task-type {args.task_type} contradicts it: drop one" +
                          instead)
    if kind == "regression" and args.label_names:
        raise OptionError(f"--task {task.name} reads scores; --label-names names classes: drop one" + instead)
    return kind


def encode_options(args) -> dict:
    return {}


def encode(tokenizer: Tokenizer, examples: list[Example], label_names=None) -> EncodedSet:
    """Each example's one text or pair of texts as ids, its label beside them."""
    return encode_examples(tokenizer, examples)


def head(config: EncoderConfig, method: MethodConfig, num_labels: int) -> nn.Module:
    return sequence_head(config, method, num_labels)


def loss(logits: torch.Tensor, batch: dict, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over classes; mean squared error for a regression score (STS-B), as HF."""
    labels = batch["labels"]
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1).float(), labels.float(), reduction=reduction)
    return F.cross_entropy(logits.float(), labels, reduction=reduction)


def training_loss(train_set: EncodedSet):
    return loss


def evaluate(model, data: EncodedSet, batch_size: int, pad_id: int, device, autocast,
             metric_names=("accuracy",)) -> dict[str, float]:
    """Metrics over the whole set (under torchrun each process scores a slice, then all gather)."""
    logits = predict_logits(model, data, batch_size, pad_id, device, autocast)
    return compute_metrics(metric_names, logits, np.array(data.labels))


# --- prediction (predict.py) ------------------------------------------------------------------------

def reads_pairs(meta) -> tuple[bool | None, str]:
    """(whether the adapter reads pairs of texts, how to say what it was trained on). A GLUE task says so,
    and so does the table of a user's own run (its --text-b; an adapter older than that record: None)."""
    task, data = TASKS.get(meta.task or ""), meta.data or {}
    if task is None and "text_b" not in data:
        return None, ""
    pairs = task.text_b_column is not None if task is not None else data["text_b"] is not None
    return pairs, (f"the adapter was trained on {task.name}, a {'sentence-pair' if pairs else 'single-sentence'} task"
                   if task is not None else
                   f"the adapter was trained on {'pairs of texts' if pairs else 'single texts'} of "
                   f"{data.get('train_file')}")


def check_texts(meta, pairs: list[tuple[str, str | None]]) -> None:
    """The library's `predict` on this adapter: pairs for a pair task, single texts otherwise."""
    check_pairs_given(reads_pairs(meta), pairs)


def check_pairs_given(wanted: tuple[bool | None, str], pairs: list[tuple[str, str | None]]) -> None:
    """`wanted`: (whether the adapter reads pairs, None: unknown; what it was trained on, in words)."""
    wants_pairs, trained = wanted
    if wants_pairs is None:
        return
    odd = next((n for n, (_, b) in enumerate(pairs) if (b is not None) != wants_pairs), None)
    if odd is not None:
        raise OptionError(f"texts[{odd}]: {trained}: give " +
                          ("(text_a, text_b) pairs" if wants_pairs else "single texts, not pairs"))


def check_predict(args, meta) -> None:
    """A GLUE task says whether the adapter reads pairs, and so does the table of a user's own run."""
    check_pair_arguments(reads_pairs(meta), args)


def check_pair_arguments(wanted: tuple[bool | None, str], args) -> None:
    """predict.py's texts or --input columns against what the adapter reads (`wanted`, as check_pairs_given)."""
    pairs, trained = wanted
    if pairs is None:
        return
    if args.input:
        if pairs and not args.text_b:
            raise PredictError(f"{trained}: give --text-b COLUMN, the column of {args.input} holding the second text")
        if not pairs and args.text_b:
            raise PredictError(f"{trained}: drop --text-b {args.text_b}")
    elif pairs and len(args.texts) == 1:
        raise PredictError(f"{trained}: give two texts (quote each), not one")
    elif not pairs and len(args.texts) == 2:
        raise PredictError(f"{trained}: give one text, not two")


def read_rows(args, tokenizer) -> tuple[list[Example], list[tuple[int, str]]]:
    """The command line's text or pair (line 0), or --input's rows and (line, reason) of those skipped."""
    if args.texts:
        for position, text in enumerate(args.texts):
            check_argument_text(f"the {'first' if position == 0 else 'second'} text (argument {position + 1})", text)
        return [Example(args.texts[0], args.texts[1] if len(args.texts) == 2 else None, None, 0)], []
    skipped = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # read_table's summary warning: predict.py lists the skipped lines itself
        examples, _ = read_table(args.input, args.text_a, args.text_b, label="__none__",
                                 strict=not args.skip_bad, report=skipped)
    return examples, skipped


def predict_rows(model, tokenizer, meta, rows: list[Example], args):
    """One record per row: its line, the label and probabilities (regression: "score"), the logits."""
    names = meta.label_names or ["score"]
    where = (lambda e: f"{args.input}:{e.line}") if args.input else (lambda e: f"adapter {args.adapter}")
    batch_size = args.batch_size if args.input else 1
    for example, logits in predict_chunks(model, tokenizer, rows, batch_size, args.device, args.precision):
        check_finite_logits(logits, where(example))
        yield logits_record(example.line, logits, names)


def show(record: dict, args) -> str:
    """`label: 87%` a class, or `score: 3.1416` for a regression adapter."""
    if "probabilities" in record:
        return "\n".join(f"{name}: {value:.0%}" for name, value in record["probabilities"].items())
    return f"score: {record['score']:.4f}"
