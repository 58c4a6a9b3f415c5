"""The one line reader and the one text check that every reader of users' files uses.

    read_lines(path)   (number, text) per line: universal newlines, so "\\n", "\\r\\n" and a lone "\\r"
                       (old Mac files) end a line and nothing else does (a form feed is text, as
                       in a text editor), a byte-order mark dropped, an undecodable byte named by
                       line and column
    text_problem(s)    why a text cannot be read as one, or None: an unpaired surrogate (bytes that
                       were not UTF-8), or nothing to read (blank, or only invisible characters)
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError, is_unicode, not_a_file, readable_file

LINE_END = re.compile(rb"\r\n|\r|\n")
# Characters that show nothing: zero-width space / non-joiner / joiner, word joiner, BOM, soft hyphen.
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def read_lines(path: str | Path, keep_ends: bool = False, error=DataError):
    """Yield (line number, text) for each line of a UTF-8 file, decoding one line at a time; a problem
    raises `error` (a DataError) naming the file and line."""
    path = Path(path)
    if not readable_file(path):
        raise error(not_a_file(path))
    number = 0
    with open(path, "rb") as file:
        pending = b""  # the last line of a chunk may go on in the next (or be the "\r" of a "\r\n")
        for chunk in iter(lambda: file.read(1 << 20), b""):
            pending += chunk
            lines = _split(pending)
            pending = lines.pop() if not pending.endswith(b"\n") else b""
            for raw in lines:
                number += 1
                yield number, _decode(path, number, raw, keep_ends, error)
        if pending:
            for raw in _split(pending):
                number += 1
                yield number, _decode(path, number, raw, keep_ends, error)


def _split(data: bytes) -> list[bytes]:
    """The lines of `data`, each with its ending; the last one may have none."""
    lines, start = [], 0
    for end in LINE_END.finditer(data):
        lines.append(data[start:end.end()])
        start = end.end()
    if start < len(data):
        lines.append(data[start:])
    return lines


def _decode(path: Path, number: int, raw: bytes, keep_ends: bool, error=DataError) -> str:
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a byte-order mark (MRPC's dev.tsv has one)
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise error(f"{path}:{number}: not valid UTF-8 (byte {raw[bad.start]:#04x} at column "
                    f"{bad.start + 1}); re-save the file as UTF-8") from None
    return text if keep_ends else text.rstrip("\r\n")


def text_problem(text: str) -> str | None:
    """Why `text` cannot be read as a text, or None."""
    if not is_unicode(text):
        return "holds an unpaired surrogate (bytes that are not UTF-8); not valid Unicode text"
    if not text.translate(INVISIBLE).strip():
        return "is empty" if not text.strip() else "is empty (it holds only invisible characters)"
    return None
