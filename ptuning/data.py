"""Read GLUE tasks and users' own tables into `Example`s: the text step of the pipeline.

Everything here is plain Python (no torch): files in, `(text_a, text_b, label)` out. Any problem
with the input raises `DataError` naming the file and, where there is one, the 1-based line.
Bad rows (wrong column count, unknown label, empty text, non-numeric score) stop the read when
`strict=True`; otherwise they are skipped, collected into `report` if one is passed, and
summarised in one warning. data/README.md describes the GLUE layout and its quirks.
"""
from __future__ import annotations

import csv
import json
import math
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

GET_GLUE = "data/README.md explains how to get GLUE (python data/download_glue.py)"


class DataError(ValueError):
    """Input data we cannot use; the message names the file (and line) and what to do."""


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
    def main_metric(self) -> str:
        return self.metrics[0]

    @property
    def is_regression(self) -> bool:
        return self.label_values is None

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


@dataclass(frozen=True)
class Example:
    text_a: str
    text_b: str | None
    label: int | float | None   # class id, regression target, or None for unlabeled files
    line: int                   # 1-based line in the source file, for error messages


def find_data_dir(data_dir: str | Path | None = None) -> Path:
    """The GLUE root: the argument if given, else $GLUE_DIR, else ./data/glue."""
    if data_dir:
        path, source = Path(data_dir), "the --data-dir argument"
    elif os.environ.get("GLUE_DIR"):
        path, source = Path(os.environ["GLUE_DIR"]), "$GLUE_DIR"
    else:
        path, source = Path("data/glue"), f"the default data/glue under {Path.cwd()}"
    if not path.is_dir():
        raise DataError(f"{path}: GLUE folder not found (taken from {source}). Pass --data-dir, "
                        f"set GLUE_DIR, or put the data in ./data/glue; {GET_GLUE}")
    return path


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
        raise DataError(f"{path}: file not found; {GET_GLUE}")

    rows = _read_tsv(path)
    header = task.headerless_columns if split in task.headerless_splits else _header(path, rows)
    labeled = not split.startswith("test")
    _require_columns(path, header, task.text_a_column, task.text_b_column,
                     task.label_column if labeled else None)

    def convert(line: int, fields: list[str]) -> Example:
        record = _as_record(fields, header, "tab-separated")
        label = _glue_label(record[task.label_column], task) if labeled else None
        return Example(_text(record, task.text_a_column), _text(record, task.text_b_column),
                       label, line)

    skipped = _Skipped(path, strict, report)
    examples = _collect(path, rows, convert, skipped)
    skipped.warn()
    return examples


def _glue_label(raw: str, task: Task) -> int | float:
    raw = raw.strip()
    if task.label_values is None:   # regression: STS-B's similarity score
        try:
            score = float(raw)
        except ValueError:
            raise _BadRow(f"score {raw!r} is not a number") from None
        if not math.isfinite(score):
            raise _BadRow(f"score {raw!r} is not a finite number")
        return score
    if raw not in task.label_values:
        raise _BadRow(f"label {raw!r} is not one of {', '.join(task.label_values)}")
    return task.label_values.index(raw)


def read_table(path: str | Path, text_a: str, text_b: str | None = None, label: str = "label",
               label_names: tuple[str, ...] | list[str] | None = None, strict: bool = False,
               report: list | None = None) -> tuple[list[Example], tuple[str, ...] | None]:
    """Read a user's .tsv (no quoting), .csv (normal quoting) or .jsonl (one object a line).

    Columns are named by `text_a`, `text_b` and `label`. Without a label column the examples
    are unlabeled (label None; for prediction). Labels map to ids through `label_names`, the
    labels as written in the file in id order; when it is not given it is inferred:
      - every label a number and at least one not whole (e.g. 3.8) -> regression, float
        labels, label_names None;
      - otherwise classes, sorted (numerically when all are integers) -> ids 0, 1, ...
    Returns (examples, label_names); label_names is None for regression, and for unlabeled
    files unless given. `report` works as in `read_glue`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    rows, to_record = _table_source(path, text_a, text_b)
    given = None if label_names is None else tuple(str(name) for name in label_names)

    def convert(line: int, raw) -> Example:
        record = to_record(raw)
        raw_label = record.get(label)   # kept as written for now; ids come once all are read
        if raw_label is not None:
            raw_label = str(raw_label).strip()
            if not raw_label:
                raise _BadRow(f"empty label in column {label!r}")
            if given is not None and raw_label not in given:
                raise _BadRow(f"label {raw_label!r} is not one of {', '.join(given)}")
            if given is None and raw_label.lower().lstrip("+-") in ("nan", "inf", "infinity"):
                raise _BadRow(f"label {raw_label!r} is not a finite number")
        return Example(_text(record, text_a), _text(record, text_b), raw_label, line)

    skipped = _Skipped(path, strict, report)
    examples = _collect(path, rows, convert, skipped)
    labeled = [example for example in examples if example.label is not None]
    if labeled:   # JSONL: rows without the label key are bad when other rows have one
        for example in examples:
            if example.label is None:
                skipped.add(example.line, f"missing label {label!r}")
    skipped.warn()
    if not labeled:   # a file to predict on; given names still say what the ids will mean
        return examples, given
    names = given if given is not None else _infer_label_names([ex.label for ex in labeled])
    if names is None:
        return [replace(ex, label=float(ex.label)) for ex in labeled], None
    ids = {name: index for index, name in enumerate(names)}
    return [replace(ex, label=ids[ex.label]) for ex in labeled], names


def _infer_label_names(raw_labels: list[str]) -> tuple[str, ...] | None:
    """None for regression (all numbers, some fractional), else the sorted distinct labels."""
    try:
        numbers = [float(raw) for raw in raw_labels]
    except ValueError:
        return tuple(sorted(set(raw_labels)))
    if any(not number.is_integer() for number in numbers):
        return None
    distinct = set(raw_labels)
    if all(raw.lstrip("-").isdigit() for raw in distinct):
        return tuple(sorted(distinct, key=int))   # "10" after "9", not after "1"
    return tuple(sorted(distinct))


def _table_source(path: Path, *text_columns: str | None):
    """(rows, to_record): the file's numbered raw rows and a function making one row a dict."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return ((number, text) for number, text in _read_lines(path) if text.strip()), _json_record
    if suffix not in (".tsv", ".csv"):
        raise DataError(f"{path}: unknown table format {suffix!r}; use .tsv, .csv or .jsonl")
    rows = _read_tsv(path) if suffix == ".tsv" else _read_csv(path)
    header = _header(path, rows)
    _require_columns(path, header, *text_columns)   # the label column may be absent
    kind = "tab-separated" if suffix == ".tsv" else "comma-separated"
    return rows, lambda fields: _as_record(fields, header, kind)


def _json_record(text: str) -> dict:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise _BadRow(f"not valid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:
        raise _BadRow("not usable JSON (nested too deeply)") from None
    except ValueError as error:   # e.g. an integer longer than Python's digit limit
        raise _BadRow(f"not usable JSON ({str(error).split(';')[0]})") from None
    if not isinstance(record, dict):
        raise _BadRow(f"expected a JSON object, found {type(record).__name__}")
    return record


# --- lines, rows and bad-row bookkeeping, shared by both readers ---

class _BadRow(Exception):
    """One row we cannot use; the reason becomes `file:line: reason`."""


class _Skipped:
    """Strict: raise at the first bad row. Otherwise remember them for one warning at the end."""

    def __init__(self, path: Path, strict: bool, report: list | None):
        self.path, self.strict, self.report, self.rows = path, strict, report, []

    def add(self, line: int, reason: str) -> None:
        if self.strict:
            raise DataError(f"{self.path}:{line}: {reason}")
        self.rows.append((line, reason))
        if self.report is not None:
            self.report.append((line, reason))

    def warn(self) -> None:
        if self.rows:
            line, reason = self.rows[0]
            warnings.warn(f"{self.path}: skipped {len(self.rows)} bad row(s); first at line "
                          f"{line}: {reason} (strict=True stops at the first one)", stacklevel=3)


def _collect(path: Path, rows, convert, skipped: _Skipped) -> list[Example]:
    """Convert each numbered row to an Example; a row that raises _BadRow goes to `skipped`."""
    examples, seen = [], 0
    for line, row in rows:
        seen += 1
        try:
            examples.append(convert(line, row))
        except _BadRow as bad:
            skipped.add(line, str(bad))
    if seen == 0:
        raise DataError(f"{path}: no data rows (the file is empty or holds only a header)")
    if not examples:
        line, reason = skipped.rows[0]
        raise DataError(f"{path}: all {seen} rows are bad; the first, line {line}: {reason}")
    return examples


def _read_lines(path: Path, keep_ends: bool = False):
    """Yield (line number, text) for each line, decoding UTF-8 one line at a time."""
    with open(path, "rb") as file:   # binary: split on "\n" only, never inside a field
        for number, raw in enumerate(file, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):   # MRPC/dev.tsv has a BOM
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                byte, column = raw[error.start], error.start + 1
                raise DataError(f"{path}:{number}: not valid UTF-8 (byte {byte:#04x} at column "
                                f"{column}); re-save the file as UTF-8") from None
            yield number, text if keep_ends else text.rstrip("\r\n")


def _read_tsv(path: Path):
    # Quoting off: GLUE fields contain `"` as text (MRPC: `" the witness "`). Empty lines are
    # no rows; a line of tabs is one (and is then reported).
    return ((number, text.split("\t")) for number, text in _read_lines(path) if text)


def _read_csv(path: Path):
    consumed = []   # line numbers the reader has taken since the last record

    def texts():
        for number, text in _read_lines(path, keep_ends=True):  # csv needs "\r\n" inside quotes
            consumed.append(number)
            yield text
    try:
        for fields in csv.reader(texts()):
            start = consumed[0]   # a quoted field may span lines: report where the record starts
            consumed.clear()
            if fields:   # csv gives [] for an empty line
                yield start, fields
    except csv.Error as error:   # e.g. a field over csv's size limit
        raise DataError(f"{path}:{consumed[0]}: {error}") from None


def _header(path: Path, rows) -> tuple[str, ...]:
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: file is empty")
    return tuple(name.strip() for name in first[1])


def _require_columns(path: Path, header: tuple[str, ...], *columns: str | None) -> None:
    for column in columns:
        if column is not None and column not in header:
            raise DataError(f"{path}: no column {column!r} in the header "
                            f"(columns: {', '.join(header)})")


def _as_record(fields: list[str], header: tuple[str, ...], kind: str) -> dict[str, str]:
    if len(fields) != len(header):
        raise _BadRow(f"expected {len(header)} {kind} columns, found {len(fields)}")
    return dict(zip(header, fields))   # a repeated column name: the last one wins


def _text(record: dict, column: str | None) -> str | None:
    if column is None:
        return None
    if column not in record:
        raise _BadRow(f"missing field {column!r}")
    value = record[column]
    if not isinstance(value, str):
        raise _BadRow(f"field {column!r} is not text: {value!r}")
    if not value.strip():
        raise _BadRow(f"empty text in column {column!r}")
    return value
