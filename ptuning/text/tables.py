"""Read users' own tables (.tsv, .csv, .jsonl) into `Example`s; the row reading and bad-row
bookkeeping here are shared with the task readers (tasks/glue.py).

Everything here is plain Python (no torch): files in, `(text_a, text_b, label)` out. Any problem
with the input raises `DataError` naming the file and, where there is one, the 1-based line.
Bad rows (wrong column count, unknown label, empty text, non-numeric score) stop the read when
`strict=True`; otherwise they are skipped, collected into `report` if one is passed, and
summarised in one warning.
"""
from __future__ import annotations

import csv
import json
import math
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import DataError, is_unicode, not_a_file, readable_file  # noqa: F401 - DataError re-exported
from .lines import read_lines, text_problem  # noqa: F401 - read_lines: the readers below and their callers share it


@dataclass(frozen=True)
class Example:
    text_a: str
    text_b: str | None
    label: int | float | None   # class id, regression target, or None for unlabeled files
    line: int                   # 1-based line in the source file, for error messages


def read_table(path: str | Path, text_a: str, text_b: str | None = None, label: str = "label",
               label_names: tuple[str, ...] | list[str] | None = None, strict: bool = False,
               report: list | None = None, task_type: str | None = None, label_what: str = "label",
               needs_labels: bool = False, optional_b: bool = False) -> tuple[list[Example], tuple[str, ...] | None]:
    """Read a user's .tsv (no quoting), .csv (normal quoting) or .jsonl (one object a line).

    Columns are named by `text_a`, `text_b` and `label`. Without a label column the examples
    are unlabeled (label None; for prediction). Labels map to ids through `label_names`, the
    labels as written in the file in id order; when it is not given it is inferred:
      - every label a number and at least one not whole (e.g. 3.8) -> regression, float
        labels, label_names None;
      - otherwise classes, sorted (numerically when all are integers) -> ids 0, 1, ...
    Returns (examples, label_names); label_names is None for regression, and for unlabeled
    files unless given. `report` works as in `read_glue`.

    Labels are values, not strings: `1`, `1.0` and ` 1 ` are one class, a stray BOM is dropped
    (`canonical_label`). `task_type` "classification" or "regression" overrides the inference.
    `label_what` names the column's values in messages (predict.py's bank: "adapter name").
    `needs_labels`: a file to train or score on; it must have the label column, and a classifier's labels
    (inferred, not given) at least two classes: a dev file without labels would score 0 and pass.
    `optional_b`: an empty (or absent) second text is None, not a bad row (a bank's file mixes single texts
    and pairs).
    """
    path = Path(path)
    if not readable_file(path):
        raise DataError(not_a_file(path))
    rows, to_record = _table_source(path, text_a, text_b, label if needs_labels else None)
    regression = task_type == "regression"
    given = None if label_names is None or regression else tuple(canonical_label(str(n)) for n in label_names)
    shown = None if given is None else tuple(str(n) for n in label_names)
    spelling: dict[str, str] = {}

    def convert(line: int, raw) -> Example:
        record = to_record(raw)
        raw_label = record.get(label)   # kept as written for now; ids come once all are read
        if raw_label is not None:
            written = (json.dumps(raw_label) if isinstance(raw_label, bool) else str(raw_label)  # JSON's true
                       ).replace("\ufeff", "").strip()
            raw_label = canonical_label(written)
            spelling.setdefault(raw_label, written)   # names keep the file's first spelling of each value
            if not raw_label:
                raise BadRow(f"empty {label_what} in column {label!r}")
            if given is not None and raw_label not in given:
                raise BadRow(f"{label_what} {written!r} is not one of {', '.join(shown)}")
            if given is None and raw_label.lower().lstrip("+-") in ("nan", "inf", "infinity"):
                raise BadRow(f"label {raw_label!r} is not a finite number")
            if given is None and task_type != "classification" and _too_large(raw_label):  # 1e400: inf when read
                raise BadRow(f"label {raw_label!r} is not a finite number a float32 holds (|x| < 3.4e38)")
            if regression and not is_number(raw_label):
                raise BadRow(f"label {raw_label!r} is not a number (regression)")
        second = None if optional_b and not str(record.get(text_b) or "").strip() else text_field(record, text_b)
        return Example(text_field(record, text_a), second, raw_label, line)

    skipped = SkippedRows(path, strict, report)
    examples = collect_rows(path, rows, convert, skipped)
    labeled = [example for example in examples if example.label is not None]
    if labeled:   # JSONL: rows without the label key are bad when other rows have one
        for example in examples:
            if example.label is None:
                skipped.add(example.line, f"missing {label_what} {label!r}")
    skipped.warn()
    if not labeled and needs_labels:  # JSONL (no header to check): no row has the key
        raise DataError(f"{path}: no row has a {label!r} field; training and scoring read the labels there" +
                        ("" if examples else " (and no row was read)"))
    if not labeled:   # a file to predict on; given names still say what the ids will mean
        return examples, shown
    names = given if given is not None else None if regression else \
        _infer_label_names([ex.label for ex in labeled], classes=task_type == "classification")
    if names is None:
        return [replace(ex, label=float(ex.label)) for ex in labeled], None
    if needs_labels and len(names) < 2:  # a 1-wide head would be read as regression
        raise DataError(f"{path}: every label in column {label!r} is {spelling.get(names[0], names[0])!r}; a "
                        "classifier needs two classes or more (--label-names lists them all when the file "
                        "lacks some; --task-type regression for scores)")
    ids = {name: index for index, name in enumerate(names)}
    shown = shown if given is not None else tuple(spelling.get(name, name) for name in names)
    return [replace(ex, label=ids[ex.label]) for ex in labeled], shown


def canonical_label(raw: str) -> str:
    """One spelling per label value: stripped, no BOM, a whole number written as an integer (1.0 -> 1)."""
    text = raw.replace("\ufeff", "").strip()
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isfinite(number) and number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    return text


def _too_large(text: str) -> bool:
    """A number whose float is infinite, or past float32's range (the loss would be inf, blamed on --lr)."""
    try:
        return not abs(float(text)) < 3.4e38
    except ValueError:
        return False


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _infer_label_names(raw_labels: list[str], classes: bool = False) -> tuple[str, ...] | None:
    """None for regression (all numbers, some fractional), else the sorted distinct labels."""
    try:
        numbers = [float(raw) for raw in raw_labels]
    except ValueError:
        return tuple(sorted(set(raw_labels)))
    if not classes and any(not number.is_integer() for number in numbers):
        return None
    if classes and any(not number.is_integer() for number in numbers):
        return tuple(sorted(set(raw_labels), key=float))
    distinct = set(raw_labels)
    if all(raw.lstrip("-").isdigit() for raw in distinct):
        return tuple(sorted(distinct, key=int))   # "10" after "9", not after "1"
    return tuple(sorted(distinct))


def _table_source(path: Path, *columns: str | None):
    """(rows, to_record): the file's numbered raw rows and a function making one row a dict."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        return ((number, text) for number, text in read_lines(path) if text.strip()), _json_record
    if suffix not in (".tsv", ".csv"):
        raise DataError(f"{path}: unknown table format {suffix!r}; use .tsv, .csv or .jsonl")
    rows = read_tsv(path) if suffix == ".tsv" else read_csv(path)
    header = read_header(path, rows)
    require_columns(path, header, *columns)   # the label column when it is asked for
    kind = "tab-separated" if suffix == ".tsv" else "comma-separated"
    return rows, lambda fields: as_record(fields, header, kind)


def _json_record(text: str) -> dict:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRow(f"not valid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:
        raise BadRow("not usable JSON (nested too deeply)") from None
    except ValueError as error:   # e.g. an integer longer than Python's digit limit
        raise BadRow(f"not usable JSON ({str(error).split(';')[0]})") from None
    if not isinstance(record, dict):
        raise BadRow(f"expected a JSON object, found {type(record).__name__}")
    return record


# --- lines, rows and bad-row bookkeeping, shared by both readers ---

class BadRow(Exception):
    """One row we cannot use; the reason becomes `file:line: reason`."""


class SkippedRows:
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


def collect_rows(path: Path, rows, convert, skipped: SkippedRows) -> list[Example]:
    """Convert each numbered row to an Example; a row that raises BadRow goes to `skipped`."""
    examples, seen = [], 0
    for line, row in rows:
        seen += 1
        try:
            examples.append(convert(line, row))
        except BadRow as bad:
            skipped.add(line, str(bad))
    if seen == 0:
        raise DataError(f"{path}: no data rows (the file is empty or holds only a header)")
    if not examples:
        line, reason = skipped.rows[0]
        raise DataError(f"{path}: all {seen} rows are bad; the first, line {line}: {reason}")
    return examples


def read_tsv(path: Path):
    # Quoting off: GLUE fields contain `"` as text (MRPC: `" the witness "`). Empty lines are
    # no rows; a line of tabs is one (and is then reported).
    return ((number, text.split("\t")) for number, text in read_lines(path) if text)


def read_csv(path: Path):
    consumed = []   # line numbers the reader has taken since the last record

    def texts():
        for number, text in read_lines(path, keep_ends=True):  # csv needs "\r\n" inside quotes
            consumed.append(number)
            yield text
    try:
        # strict: an unclosed quote is an error at the end of the file, not a field swallowing every row after it
        for fields in csv.reader(texts(), strict=True):
            start = consumed[0]   # a quoted field may span lines: report where the record starts
            consumed.clear()
            if fields:   # csv gives [] for an empty line
                yield start, fields
    except csv.Error as error:   # an unclosed quote, bad quoting, a field over csv's size limit
        if "unexpected end of data" in str(error) and len(consumed) > 1:
            raise DataError(f"{path}:{consumed[0]}: a quote opened on this line is never closed; it swallowed "
                            f"lines {consumed[0]}-{consumed[-1]} ({len(consumed)} lines) into one field. "
                            "Close the quote (or double a quote inside a field: \"\")") from None
        raise DataError(f"{path}:{consumed[0] if consumed else '?'}: {error}") from None


def read_header(path: Path, rows) -> tuple[str, ...]:
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: file is empty")
    return tuple(name.strip() for name in first[1])


def require_columns(path: Path, header: tuple[str, ...], *columns: str | None) -> None:
    for column in columns:
        if column is not None and column not in header:
            raise DataError(f"{path}: no column {column!r} in the header "
                            f"(columns: {', '.join(header)})")
        if column is not None and header.count(column) > 1:  # which one is meant? (a record keeps the last)
            raise DataError(f"{path}: column {column!r} is named {header.count(column)} times in the header")


def as_record(fields: list[str], header: tuple[str, ...], kind: str) -> dict[str, str]:
    if len(fields) != len(header):
        raise BadRow(f"expected {len(header)} {kind} columns, found {len(fields)}")
    return dict(zip(header, fields))   # a repeated column name: the last one wins


def text_field(record: dict, column: str | None) -> str | None:
    if column is None:
        return None
    if column not in record:
        raise BadRow(f"missing field {column!r}")
    value = record[column]
    if not isinstance(value, str):
        raise BadRow(f"field {column!r} is not text: {value!r}")
    if not value.strip():
        raise BadRow(f"empty text in column {column!r}")
    if not is_unicode(value):  # JSON's lone \ud800 escape; the tokenizer would fail on it
        raise BadRow(f"field {column!r} holds an unpaired surrogate; not valid Unicode text")
    if text_problem(value):  # only zero-width characters: the tokenizer makes no tokens of it
        raise BadRow(f"empty text in column {column!r} (it holds only invisible characters, which make no tokens)")
    return value


def given_label_names(text: str | None) -> tuple[str, ...] | None:
    """--label-names "neg,pos" as a tuple of stripped names (`label_names_problems` has checked them), or None."""
    return tuple(name.strip() for name in text.split(",")) if text else None


def label_names_problems(text: str) -> list[str]:
    """What is wrong with a --label-names value: an empty name, one given twice, a single class."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        return [f"--label-names {text!r}: an empty name (write e.g. --label-names neg,pos)"]
    if len(set(names)) != len(names):
        return [f"--label-names {text!r}: a name given twice"]
    if len(names) == 1:
        return [f"--label-names {text!r}: one name is no classification; give every class, or "
                "--task-type regression for scores"]
    return []
