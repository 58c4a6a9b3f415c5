"""SQuAD files (v1.1 and v2.0), read defensively: every malformed structure is named by its file and
JSON path (e.g. `data[3].paragraphs[2].qas[0].answers`). `tasks/qa.py` windows, decodes and scores."""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError, is_unicode, not_a_file

VERSIONS = ("1.1", "2.0")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]   # (text, character start in context); () if unanswerable
    is_impossible: bool = False            # SQuAD v2.0: the context holds no answer
    source: str = field(default="", compare=False)  # where it was read ("dev.json: data[0]...qas[3]"), for errors

    @property
    def where(self) -> str:
        return self.source or f"question {self.id}"


def read_squad(path: str | Path, version: str | None = None, strict: bool = False) -> list[Question]:
    """Questions of a SQuAD JSON file, in file order. `version` None: "2.0" when the file's own
    `version` says so or any question has `is_impossible`, else "1.1". An answer whose
    `answer_start` does not point at its text is kept as written and its question id reported
    in one warning (`strict=True`: an error). Malformed files raise DataError naming the file
    and the JSON path (e.g. `data[3].paragraphs[2].qas[0].answers`)."""
    path = Path(path)
    if version not in (None, *VERSIONS):
        raise ValueError(f"version {version!r}: use None (from the file), '1.1' or '2.0'")
    root = _load_json(path)
    articles = _field(root, "data", list, "", path)
    if not articles:
        raise DataError(f"{path}: `data` is empty; no articles to read")
    version = version or _detect_version(root, articles)
    questions, misplaced, first_seen = [], [], {}
    for article_number, article in enumerate(articles):
        article_path = f"data[{article_number}]"
        for paragraph_number, paragraph in enumerate(_field(article, "paragraphs", list, article_path, path)):
            paragraph_path = f"{article_path}.paragraphs[{paragraph_number}]"
            context = _field(paragraph, "context", str, paragraph_path, path)
            if not context.strip():
                raise DataError(f"{path}: {paragraph_path}.context is empty")
            for number, entry in enumerate(_field(paragraph, "qas", list, paragraph_path, path)):
                entry_path = f"{paragraph_path}.qas[{number}]"
                question = _read_question(entry, context, version, entry_path, path)
                if question.id in first_seen:
                    raise DataError(f"{path}: {entry_path}.id {question.id!r} repeats {first_seen[question.id]}")
                first_seen[question.id] = f"{entry_path}.id"
                if any(context[start:start + len(text)] != text for text, start in question.answers):
                    misplaced.append(question.id)
                questions.append(question)
    if not questions:
        raise DataError(f"{path}: no questions (every paragraph has an empty `qas`)")
    _report_misplaced(path, misplaced, strict)
    return questions


def _load_json(path: Path):
    if not path.is_file():
        raise DataError(not_a_file(path))
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not valid UTF-8 (byte {error.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:
        raise DataError(f"{path}: not usable JSON (nested too deeply)") from None


_TYPE_NAMES = {list: "a list", str: "a string", int: "an integer", bool: "true or false", dict: "an object"}


def _field(node, key: str, kind: type, node_path: str, path: Path):
    """node[key], checked to be of `kind`; errors name the file and the JSON path."""
    if not isinstance(node, dict):
        where = node_path or "the top level"
        raise DataError(f"{path}: {where} should be an object, found {type(node).__name__}")
    key_path = f"{node_path}.{key}" if node_path else key
    if key not in node:
        raise DataError(f"{path}: {key_path} is missing")
    value = node[key]
    # bool is a subclass of int in Python; an answer_start of `true` is still wrong.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DataError(f"{path}: {key_path} should be {_TYPE_NAMES[kind]}, found {type(value).__name__}")
    if kind is str and not is_unicode(value):
        raise DataError(f"{path}: {key_path} holds an unpaired surrogate (a lone \\ud800-\\udfff escape); "
                        "not valid Unicode text")
    return value


def _detect_version(root: dict, articles: list) -> str:
    if "2.0" in str(root.get("version", "")):
        return "2.0"
    for article in articles:
        for paragraph in article.get("paragraphs", []) if isinstance(article, dict) else []:
            for entry in paragraph.get("qas", []) if isinstance(paragraph, dict) else []:
                if isinstance(entry, dict) and "is_impossible" in entry:
                    return "2.0"
    return "1.1"


def _read_question(entry, context: str, version: str, entry_path: str, path: Path) -> Question:
    question_id = _field(entry, "id", str, entry_path, path)
    text = _field(entry, "question", str, entry_path, path)
    if not text.strip():
        raise DataError(f"{path}: {entry_path}.question is empty (id {question_id})")
    answers = []
    for number, answer in enumerate(_field(entry, "answers", list, entry_path, path)):
        answer_path = f"{entry_path}.answers[{number}]"
        answer_text = _field(answer, "text", str, answer_path, path)
        start = _field(answer, "answer_start", int, answer_path, path)
        if not answer_text:
            raise DataError(f"{path}: {answer_path}.text is empty (id {question_id})")
        if start < 0:  # context[-6:] would silently match from the end
            raise DataError(f"{path}: {answer_path}.answer_start is negative ({start}) (id {question_id})")
        answers.append((answer_text, start))
    source = f"{path}: {entry_path} (id {question_id})"
    if version == "1.1":
        v2 = "a SQuAD v2.0 file: use --task squad_v2 (library: read_squad(path, version='2.0'))"
        if entry.get("is_impossible"):
            raise DataError(f"{source}: is_impossible is true in a v1.1 read; {v2}")
        if not answers:
            raise DataError(f"{source}: answers is empty; a v1.1 question needs an answer ({v2})")
        return Question(question_id, text, context, tuple(answers), source=source)
    impossible = _field(entry, "is_impossible", bool, entry_path, path) if "is_impossible" in entry else not answers
    if impossible == bool(answers):  # unanswerable with answers, or answerable without
        state = "has answers" if answers else "has no answers"
        raise DataError(f"{path}: {entry_path}: is_impossible is {str(impossible).lower()} but the "
                        f"question {state} (id {question_id})")
    return Question(question_id, text, context, tuple(answers), impossible, source=source)


def _report_misplaced(path: Path, ids: list[str], strict: bool) -> None:
    if not ids:
        return
    shown = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
    message = f"{path}: {len(ids)} question(s) with an answer_start that does not point at the answer text: {shown}"
    if strict:
        raise DataError(message)
    warnings.warn(message + " (kept as written; their training labels follow answer_start)", stacklevel=3)
