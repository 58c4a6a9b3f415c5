"""predict.py's machinery that every task family shares: its options, checks, and how records go out.

What a prediction *is* belongs to the task family (tasks/__init__.py: `check_predict`, `read_rows`,
`predict_rows`, `show`); this module holds what is the same for all of them.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .adapters.files import atomic_write, check_write_target
from .errors import DataError, OptionError, WriteError, add_debug_flag, is_unicode, os_reason
from .options import Parser, add_fields, at_least, flag, option
from .precision import PRECISIONS

SHOW_SKIPPED = 20   # skipped lines listed with their reason on stderr; then up to LIST_SKIPPED more by number
LIST_SKIPPED = 200


class PredictError(OptionError):
    """Arguments that do not fit the adapter or each other; the message names the option (exit status 2)."""


@dataclass
class PredictOptions:
    """predict.py's options that every family reads (a family adds its own: tasks/<family>.py)."""
    adapter_column: str | None = option(None, "--input column naming each row's adapter (several adapters)")
    model: str | None = option(None, "base model folder (default: the one in the adapter's config)")
    input: str | None = option(None, "file of examples (.tsv/.csv/.jsonl) to predict")
    output: str | None = option(None, "where --input's predictions go, JSON lines (default: stdout)")
    skip_bad: bool = option(False, "--input: skip bad rows, list them on stderr, predict the rest (default: stop "
                            "at the first)")
    batch_size: int = option(64, "rows a batch", checks=[at_least(1)])
    device: str = option("cuda" if torch.cuda.is_available() else "cpu", "cpu or cuda (default: cuda if "
                         "available, else cpu)")
    precision: str = option("fp32", "fp32, or bf16/fp16 under autocast on the CPU as on a GPU; auto: bf16 where the "
                            "device has it natively, else as train.py", choices=PRECISIONS)


def parser(prog: str, description: str, families) -> argparse.ArgumentParser:
    """predict.py's command line: the texts, the adapter(s), PredictOptions, and each family's own."""
    p = Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("texts", nargs="*", help="one text, or two for a pair task")
    p.add_argument("--adapter", required=True, action="append",
                   help="output folder of train.py (or a peft adapter folder); several as NAME=DIR, "
                        "scored together over one backbone (with --input and --adapter-column)")
    add_fields(p.add_argument_group("prediction"), PredictOptions)
    for family in families:  # a family's own (QA: --question, --context), and those of its Options it reads
        own, shared = getattr(family, "PredictOptions", None), getattr(family, "PREDICT_OPTIONS", ())
        if own is not None or shared:
            group = p.add_argument_group(family.DESCRIPTION)
            if own is not None:
                add_fields(group, own)
            add_fields(group, family.Options, names=shared)
    add_debug_flag(p)
    return p


def check_arguments(p: argparse.ArgumentParser, args) -> None:
    """What is wrong whatever the adapter (parser.error: status 2)."""
    if args.batch_size < 1:
        p.error(f"--batch-size must be at least 1, not {args.batch_size}")
    if (args.question is None) != (args.context is None):
        p.error("--question and --context go together")
    asked = args.question is not None
    if sum(map(bool, (args.texts, args.input, asked))) > 1:
        p.error("give texts on the command line, --question/--context, or --input FILE: one of them")
    if not args.texts and not args.input and not asked:
        p.error("give one or two texts, --question and --context, or --input FILE")
    if len(args.texts) > 2:
        p.error(f"give one or two texts, not {len(args.texts)} (quote each sentence)")
    if args.input is None and (args.output or args.skip_bad):
        p.error("--output and --skip-bad go with --input FILE")
    columns = [f"--{name.replace('_', '-')}" for name in ("text_a", "text_b") if name in getattr(args, "given", ())]
    if args.input is None and columns:
        p.error(f"{' and '.join(columns)} name{'s a column' if len(columns) == 1 else ' columns'} of --input FILE; "
                "texts on the command line are read as given")
    if len(args.adapter) == 1 and args.adapter_column:
        p.error("--adapter-column names each row's adapter among several (--adapter NAME=DIR, more than one)")
    if len(args.adapter) > 1:
        if not (args.input and args.adapter_column):
            p.error("several adapters score an --input FILE whose --adapter-column names each row's adapter")
        if not all("=" in a for a in args.adapter):
            p.error("give several adapters as NAME=DIR")
        pairs = [a.split("=", 1) for a in args.adapter]
        names = [name.strip() for name, _ in pairs]
        if not all(names) or not all(folder for _, folder in pairs):
            p.error("--adapter NAME=DIR: every adapter needs a name and a folder")
        if len(set(names)) != len(names):
            p.error(f"--adapter: the name {next(n for n in names if names.count(n) > 1)!r} is given twice")
        args.adapter = dict(zip(names, (folder for _, folder in pairs)))
    else:
        args.adapter = args.adapter[0]
        if not args.adapter.strip():
            p.error(f"--adapter {args.adapter!r}: give the folder train.py wrote (or a peft adapter folder)")


def predict_options(family) -> list[str]:
    """The names of a family's own prediction options, in the order declared."""
    own = [f.name for f in dataclasses.fields(family.PredictOptions)] if hasattr(family, "PredictOptions") else []
    return own + list(getattr(family, "PREDICT_OPTIONS", ()))


def refuse_other_families(args, family, families, meta) -> None:
    """An option of another family's prediction, given for this adapter, is refused by name."""
    own = predict_options(family)
    for other in families:
        if other is family:
            continue
        for name in predict_options(other):
            if name in args.given and name not in own:
                raise PredictError(f"{flag(name)}: the adapter was trained on {meta.task or 'your own table'}, "
                                   f"not on {other.DESCRIPTION}")


def check_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise PredictError(f"--device {name!r}: not a device; use cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):
        raise PredictError(f"--device {name}: not supported here; use cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise PredictError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise PredictError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return device


def check_output_target(args, folders) -> None:
    """--output must not replace the input, a file of a run, adapter or model, or write into `folders`."""
    if args.output is None:
        return
    if args.input and Path(args.output).resolve() == Path(args.input).resolve():
        raise PredictError(f"--output {args.output} is the --input file; write the predictions elsewhere")
    check_write_target(args.output, "--output", inputs=[args.input], folders=folders)


def check_argument_text(which: str, text: str) -> None:
    """A text given on the command line: not blank, and decodable (no bytes the terminal's encoding
    could not decode, which Python keeps as lone surrogates)."""
    if not text.strip():
        raise PredictError(f"{which} is empty")
    if not is_unicode(text):
        raise PredictError(f"{which} is not valid UTF-8; set the terminal to UTF-8")


def check_finite_logits(logits: np.ndarray, where: str) -> None:
    if not np.isfinite(logits).all():
        raise DataError(f"{where}: the model produced NaN or infinite scores; its adapter or base weights are "
                        "damaged (nothing was written)")


def drop_bad_rows(args, rows: list, problem, skipped: list[tuple[int, str]]) -> list:
    """--input's rows less those `problem(row)` finds fault with (a reason, or None): the first stops the
    run, named by file:line; with --skip-bad each is listed in `skipped` (kept in line order) and left out."""
    kept = []
    for row in rows:
        reason = problem(row)
        if reason is None:
            kept.append(row)
        elif not args.skip_bad:
            raise DataError(f"{args.input}:{row.line}: {reason} (--skip-bad skips such rows)")
        else:
            skipped.append((row.line, reason))
    skipped.sort()
    return kept


def report_skipped(path: str, skipped: list[tuple[int, str]]) -> None:
    if not skipped:
        return
    lines = [f"predict.py: {path}: skipped {len(skipped)} bad line(s), not predicted:"]
    lines += [f"  line {line}: {reason}" for line, reason in skipped[:SHOW_SKIPPED]]
    rest = [str(line) for line, _ in skipped[SHOW_SKIPPED:]]
    if rest:
        more = ", …" if len(rest) > LIST_SKIPPED else ""
        lines.append(f"  … and {len(rest)} more (lines {', '.join(rest[:LIST_SKIPPED])}{more})")
    print("\n".join(lines), file=sys.stderr)


def write_records(args, records, count: int, skipped) -> None:
    """JSON lines to stdout, or atomically to --output."""
    if args.output is None:
        for rec in records:
            sys.stdout.write(json.dumps(rec) + "\n")
        sys.stdout.flush()
        return

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as file:
            for rec in records:
                file.write(json.dumps(rec) + "\n")
    try:
        atomic_write(args.output, write)  # a failed run leaves no half-written predictions
    except OSError as err:
        raise WriteError(f"--output {args.output}: cannot write ({os_reason(err)})") from None
    note = f" ({len(skipped)} bad line(s) skipped, see above)" if skipped else ""
    print(f"{count} predictions written to {args.output}{note}")
