"""NER data files: CoNLL column files and JSONL, read defensively (every error names file and line).

CoNLL column files: `word POS chunk NER`, one token a line, a blank line between sentences,
`-DOCSTART-` lines as document breaks. JSONL: `{"tokens": [...], "tags": [...]}`, the Hugging Face
datasets convention (`ner_tags` is accepted for `tags`). Tags are kept in IOB2 (every entity opens
with `B-`); IOB1 files, where `I-` opens an entity and `B-` only separates two adjacent entities of
one type (the original CoNLL-2003 files), are converted on read. `tasks/ner.py` encodes and scores.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .lines import read_lines, text_problem

TAG = re.compile(r"(?:O|[BI]-\S+)")
COLUMN_SEPARATOR = re.compile(r"[ \t]+")  # only ASCII space and tab: a word may hold other spaces


class NerDataError(DataError):
    """Input data we cannot use; the message names the file and 1-based line."""


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass
class Sentence:
    words: list[str]
    tags: list[str]   # IOB2 tags, one per word
    path: str         # file and 1-based line of the first word, for messages
    line: int
    lines: list[int] | None = None  # each word's line (CoNLL: one a line; JSONL: all the same)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def read_ner(path: str | Path, label_names: list[str] | None = None, scheme: str = "auto",
             tag_column: int = -1) -> tuple[list[Sentence], list[str]]:
    """`read_jsonl` for `.jsonl` / `.json` files, else `read_conll`."""
    if Path(path).suffix in (".jsonl", ".json"):
        return read_jsonl(path, label_names, scheme)
    return read_conll(path, tag_column, scheme, label_names)


def read_conll(path: str | Path, tag_column: int = -1, scheme: str = "auto",
               label_names: list[str] | None = None) -> tuple[list[Sentence], list[str]]:
    """Sentences of a CoNLL column file, and the label names (see `finish` for both arguments)."""
    rows = []  # (word, tag, line) per token; None marks a sentence break
    columns = None
    for number, line in read_lines(path, error=NerDataError):
        stripped = line.strip(" \t\r\n")
        if not stripped or stripped.startswith("-DOCSTART-"):
            rows.append(None)
            continue
        fields = COLUMN_SEPARATOR.split(stripped)
        columns = columns or len(fields)  # the first token line fixes the layout
        if len(fields) != columns:
            raise NerDataError(f"{path}:{number}: {len(fields)} columns, but the file's first token line "
                               f"has {columns}")
        if not -columns <= tag_column < columns:
            raise NerDataError(f"{path}:{number}: no column {tag_column} (the line has {columns}); "
                               "check tag_column")
        rows.append((fields[0], fields[tag_column], number))
    sentences, current = [], []
    for row in rows + [None]:
        if row is None:
            if current:
                sentences.append(current)
            current = []
        else:
            current.append(row)
    return finish(str(path), sentences, label_names, scheme)


def read_jsonl(path: str | Path, label_names: list[str] | None = None,
               scheme: str = "auto") -> tuple[list[Sentence], list[str]]:
    """One JSON object a line with `tokens` and `tags` (or `ner_tags`) lists of one length.
    Integer tags need `label_names` (the dataset's ClassLabel names, in id order)."""
    sentences = []
    for number, line in read_lines(path, error=NerDataError):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise NerDataError(f"{path}:{number}: not JSON ({err.msg})") from None
        tags = record.get("tags", record.get("ner_tags")) if isinstance(record, dict) else None
        words = record.get("tokens") if isinstance(record, dict) else None
        if not isinstance(words, list) or not isinstance(tags, list) or len(words) != len(tags):
            raise NerDataError(f"{path}:{number}: want an object with `tokens` and `tags` lists of one length")
        if not all(isinstance(word, str) for word in words):
            raise NerDataError(f"{path}:{number}: every token must be a string")
        bad = next((i for i, word in enumerate(words) if text_problem(word) and word.strip()), None)
        if bad is not None:  # a word of only invisible characters is a word the tokenizer drops, as a space
            raise NerDataError(f"{path}:{number}: token {bad} {text_problem(words[bad])}")
        if any(isinstance(tag, bool) or not isinstance(tag, (int, str)) for tag in tags):
            raise NerDataError(f"{path}:{number}: tags must be tag names (\"B-PER\") or integer ids, not "
                               f"{next(t for t in tags if isinstance(t, bool) or not isinstance(t, (int, str)))!r}")
        if any(isinstance(tag, int) for tag in tags):
            if label_names is None:
                raise NerDataError(f"{path}:{number}: integer tags need their names in id order "
                                   "(train.py --label-names O,B-PER,I-PER,...)")
            if not all(isinstance(tag, int) and 0 <= tag < len(label_names) for tag in tags):
                raise NerDataError(f"{path}:{number}: tags must all be ids in 0..{len(label_names) - 1}")
            tags = [label_names[tag] for tag in tags]
        if not words:  # a sentence without a word: a mistake in the file, not a sentence to drop unsaid
            raise NerDataError(f"{path}:{number}: `tokens` is empty; a sentence needs at least one word")
        sentences.append([(word, str(tag), number) for word, tag in zip(words, tags)])
    return finish(str(path), sentences, label_names, scheme)


def finish(path: str, rows: list[list[tuple[str, str, int]]], label_names: list[str] | None,
           scheme: str) -> tuple[list[Sentence], list[str]]:
    """Check tags, bring them to IOB2, and check them against the label set.

    scheme: "iob2" (an `I-X` that continues no `X` entity is an error), "iob1" (converted), or
    "auto" (IOB1 if some `I-X` continues nothing, else IOB2; converting IOB2 changes nothing).
    label_names: None for a train file (the set is built from it: `O`, then for every type seen,
    alphabetically, `B-` and `I-`); a dev or test file passes the train file's, and an unknown tag
    is an error.
    """
    if scheme not in ("auto", "iob1", "iob2"):
        raise NerDataError(f"scheme {scheme!r}: choose auto, iob1 or iob2")
    if not rows:
        raise NerDataError(f"{path}: no sentences (empty file?)")
    for sentence in rows:
        for _, tag, line in sentence:
            if not TAG.fullmatch(tag):
                raise NerDataError(f"{path}:{line}: tag {tag!r} is not O, B-X or I-X")
    sentences = []
    for sentence in rows:
        tags = [tag for _, tag, _ in sentence]
        for position, (_, _, line) in enumerate(sentence):
            if scheme == "iob2" and _opens_with_inside(tags, position):
                raise NerDataError(f"{path}:{line}: {tags[position]} continues no entity "
                                   f"(after {tags[position - 1] if position else 'the sentence start'}); "
                                   "is the file IOB1? pass scheme='iob1' or 'auto'")
        sentences.append(Sentence([word for word, _, _ in sentence], to_iob2(tags), path, sentence[0][2],
                                  [line for _, _, line in sentence]))
    if label_names is None:
        types = sorted({tag[2:] for sentence in sentences for tag in sentence.tags if tag != "O"})
        label_names = ["O"] + [f"{prefix}-{name}" for name in types for prefix in "BI"]
    known = set(label_names)
    for sentence, raw in zip(sentences, rows):
        for tag, (_, _, line) in zip(sentence.tags, raw):
            if tag not in known:
                raise NerDataError(f"{path}:{line}: tag {tag} is not in the label set ({', '.join(label_names)}; "
                                   "from the train file, or --label-names)")
    return sentences, list(label_names)


def to_iob2(tags: list[str]) -> list[str]:
    """IOB1 -> IOB2: an `I-X` that does not continue an `X` entity opens one, so it becomes `B-X`."""
    return [f"B-{tag[2:]}" if _opens_with_inside(tags, position) else tag for position, tag in enumerate(tags)]


def _opens_with_inside(tags: list[str], position: int) -> bool:
    tag = tags[position]
    previous = tags[position - 1] if position else "O"
    return tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:])
