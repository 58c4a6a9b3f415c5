"""Errors a user can cause, and the one boundary that turns them into `prog: message` and an exit status.

Helpers raise these (never `sys.exit`); each entry point's `main` runs inside `run_main`, which prints
exactly one line `prog: message` on stderr and exits with the class's status:

    status  meaning                                          raised as
    ------  -----------------------------------------------  -----------------------------------------
      0     success
      1     internal error: a bug in ptuning (please report)  any exception not listed below
      2     bad command-line option (argparse's own status)   OptionError, argparse's `parser.error`
      3     bad input: model config, weights, tokenizer,      ConfigError, CheckpointError, TokenizerError,
            data file, adapter folder, run state              DataError, AdapterError, StateError
      4     operating-system I/O error: missing permission,   OSError (caught as such), WriteError
            disk full, a path that is a file, not a folder
      5     training stopped: non-finite loss or weights      TrainingStopped (exit_code 5)
    128+N   stopped by signal N: 130 Ctrl-C (SIGINT),          KeyboardInterrupt -> 130; TrainingStopped
            143 SIGTERM, after saving a resumable state        for a signal carries 128+N

`--debug` or the environment variable PTUNING_DEBUG=1 re-raises instead, so the traceback shows.
Every class also subclasses ValueError (except TrainingStopped, a RuntimeError as before), because
callers and tests written before this module catch ValueError.
"""
from __future__ import annotations

import argparse
import errno
import math
import os
import sys
import warnings
from pathlib import Path

EXIT_OK, EXIT_INTERNAL, EXIT_OPTION, EXIT_INPUT, EXIT_IO, EXIT_STOPPED = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM, as shells report them
DEBUG_VARIABLE = "PTUNING_DEBUG"


class PtuningError(Exception):
    """Base of every error a user can cause and fix; the message names the file, line, key or option."""

    exit_code = EXIT_INPUT


class OptionError(PtuningError, ValueError):
    """A command-line option has a bad value or contradicts another; the message names the option."""

    exit_code = EXIT_OPTION


class ConfigError(PtuningError, ValueError):
    """A model folder's config.json cannot describe an encoder we build (names the file and key)."""


class CheckpointError(PtuningError, ValueError):
    """A model's weight files are missing, corrupt, or do not fit its config.json."""


class TokenizerError(PtuningError, ValueError):
    """A model's tokenizer files are missing or do not fit the model."""


class DataError(PtuningError, ValueError):
    """A data file is missing or malformed (names the file and, where there is one, the line)."""


class AdapterError(PtuningError, ValueError):
    """An adapter folder (ours or peft's) is incomplete, malformed, or does not fit the base model."""


class StateError(PtuningError, ValueError):
    """A run's training_state.pt or metrics.jsonl is unreadable, or `--resume` names a different run."""


class WriteError(PtuningError, OSError):
    """The operating system refused a write (disk full, read-only folder); files already written are intact."""

    exit_code = EXIT_IO


class TrainingStopped(PtuningError, RuntimeError):
    """Training stopped on purpose (non-finite numbers, a signal); the files already saved are good."""

    exit_code = EXIT_STOPPED

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def not_a_file(path) -> str:
    """The message for a data path that is not a readable file: a folder, or nothing."""
    try:
        folder = Path(path).is_dir()
    except OSError as err:  # a name too long for the file system
        return f"{str(path)[:80]}…: not a usable path ({err.strerror})"
    return f"{path}: {'a folder, not a file' if folder else 'file not found'}"


def readable_file(path) -> bool:
    """A file to read: a regular one, or a device or pipe (/dev/null, <(...)), not a folder or nothing."""
    try:
        return Path(path).exists() and not Path(path).is_dir()
    except OSError:  # a name too long for the file system: nothing to read
        return False


def is_unicode(text: str) -> bool:
    """False for a string holding an unpaired surrogate (JSON's lone \\ud800 escape, or bytes the
    terminal could not decode), which the tokenizers library refuses with a TypeError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def finite_float(text: str) -> float:
    """argparse type: a float that is not NaN or infinite (both pass every `x <= 0` check)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true",
                        help=f"show the Python traceback of an error (or set {DEBUG_VARIABLE}=1)")


def debug_requested(argv=None) -> bool:
    """`--debug` among the arguments, or PTUNING_DEBUG set to anything but '', '0' or 'false'."""
    if "--debug" in (sys.argv[1:] if argv is None else argv):
        return True
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def os_reason(err: OSError) -> str:
    """What the operating system said, in words a user acts on ("disk full" for ENOSPC)."""
    reason = err.strerror or str(err) or type(err).__name__
    return f"disk full ({reason})" if err.errno == errno.ENOSPC else reason


def describe(err: BaseException) -> tuple[str, int]:
    """(message, exit status) for an exception reaching an entry point."""
    if isinstance(err, PtuningError):
        return str(err), err.exit_code
    if isinstance(err, KeyboardInterrupt):
        return "interrupted (Ctrl-C); files already written are intact", EXIT_INTERRUPTED
    if isinstance(err, OSError):
        where = err.filename if err.filename is not None else None
        reason = os_reason(err)
        if getattr(err, "filename2", None) is not None:
            where = f"{where} -> {err.filename2}"
        return (f"{where}: {reason}" if where is not None else reason), EXIT_IO
    return (f"internal error: {type(err).__name__}: {err} "
            f"(set {DEBUG_VARIABLE}=1 or pass --debug for the traceback)"), EXIT_INTERNAL


def run_main(prog: str, main_fn, argv=None, debug: bool | None = None) -> int:
    """Run `main_fn(argv)` behind the error boundary; returns its status or raises SystemExit(status).

    A SystemExit from argparse (status 2, its own message already printed) passes through unchanged.
    """
    if debug is None:
        debug = debug_requested(argv)
    # A warning (skipped rows, misplaced SQuAD answers) reads as one line from the program, like its
    # errors, not as Python's `file.py:539: UserWarning: ...` with a line of our source after it.
    plain_format = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *_, **__: f"{prog}: warning: {message}\n"
    try:
        return main_fn(argv)
    except SystemExit:
        raise
    except (Exception, KeyboardInterrupt) as err:
        if debug:
            raise
        message, status = describe(err)
        first_line, *rest = message.splitlines() or [""]
        # One line per error: a multi-line message (e.g. a list of mismatched tensors) is indented after it.
        print(f"{prog}: {first_line}" + "".join(f"\n  {line}" for line in rest), file=sys.stderr)
        raise SystemExit(status) from None
    finally:
        warnings.formatwarning = plain_format
