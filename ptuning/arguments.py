"""Checks of the library's arguments, so that a wrong call ends in one of our typed errors naming the
argument, not in a torch or numpy error deep inside (as transformers refuses a batch it cannot read).

    texts(["A.", ("A.", "B.")])  -> [("A.", None), ("A.", "B.")]      a single str is one text
    count(0, "batch_size")       -> OptionError: batch_size must be an integer of at least 1, not 0
    device("cuda")               -> OptionError where no CUDA GPU is available
"""
from __future__ import annotations

from pathlib import Path

import torch

from .errors import AdapterError, OptionError
from .text.lines import text_problem


def texts(values, name: str = "texts") -> list[tuple[str, str | None]]:
    """Texts or (text_a, text_b) pairs as pairs. A single string is one text (as transformers' tokenizers
    read it), never a sequence of one-character texts."""
    if isinstance(values, str):
        values = [values]
    if isinstance(values, (set, frozenset)):  # rows come back in the order given: a set has none
        raise OptionError(f"{name} is a {type(values).__name__}, which has no order, so the rows could not be "
                          "matched to the texts: give a list")
    if hasattr(values, "tolist") and not isinstance(values, torch.Tensor):  # numpy: df[[a, b]].values, (N, 2)
        values = values.tolist()
        if isinstance(values, str):  # a 0-d array of one text
            values = [values]
    if values is None or isinstance(values, (bytes, dict)) or not hasattr(values, "__iter__"):
        raise OptionError(f"{name} must be a text, or a list of texts or (text_a, text_b) pairs; not {values!r}")
    pairs = []
    for number, value in enumerate(values):
        if isinstance(value, str):
            value = (value, None)
        elif isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, str) for v in value):
            value = tuple(value)
        else:
            raise OptionError(f"{name}[{number}] must be a text or a (text_a, text_b) pair of texts, not {value!r}")
        problem = next(filter(None, (text_problem(v) for v in value if v is not None)), None)
        if problem:  # as predict.py refuses the same text on its command line
            raise OptionError(f"{name}[{number}]: a text {problem}")
        pairs.append(value)
    if not pairs:
        raise OptionError(f"{name} is empty: give at least one text")
    return pairs


def count(value, name: str, smallest: int = 1) -> int:
    """An integer (not a bool) of at least `smallest`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
        raise OptionError(f"{name} must be an integer of at least {smallest}, not {value!r}")
    return value


def device(value) -> torch.device:
    """A torch device this machine has: the CPU, or a CUDA GPU where one is available."""
    try:
        chosen = torch.device(value)
    except (RuntimeError, TypeError):
        raise OptionError(f"device {value!r}: not a device; use 'cpu' or 'cuda'") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(f"device {value!r}: no CUDA GPU is available here; use 'cpu'")
    if chosen.type not in ("cpu", "cuda"):
        raise OptionError(f"device {value!r}: not supported; use 'cpu' or 'cuda'")
    return chosen


def folder(value, name: str, error=AdapterError) -> Path:
    """A path given as a str or Path (the folder's existence is its reader's to check)."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise error(f"{name} must be a folder path (str or pathlib.Path), not {value!r}")
    return Path(value)


def ids(input_ids, attention_mask, token_type_ids, config, room: int, check_range: bool) -> None:
    """(B, T) integer ids, B and T at least 1 and T at most `room` (the positions left for the text), and a
    mask and token types of that shape; with `check_range`, every id a row of the embedding table (or
    -1, a v1 template's prompt slot), token types rows of theirs, and a mask of 0s and 1s."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point() \
            or input_ids.dtype == torch.bool:
        shown = f"a {input_ids.dim()}-D {input_ids.dtype} tensor" if isinstance(input_ids, torch.Tensor) else repr(input_ids)
        raise OptionError(f"input_ids must be a 2-D integer tensor (batch, tokens), not {shown}")
    if 0 in input_ids.shape or input_ids.device.type == "meta":
        raise OptionError(f"input_ids of shape {tuple(input_ids.shape)} on {input_ids.device}: give at least one "
                          "row of at least one token, as a tensor with values")
    if input_ids.shape[1] > room:
        raise OptionError(f"input_ids has {input_ids.shape[1]} tokens a row; the model's positions leave room for "
                          f"{room} (truncate the text: the tokenizer does, to its max_length)")
    for name, tensor in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
        if tensor is not None and (not isinstance(tensor, torch.Tensor) or tensor.shape != input_ids.shape):
            shown = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else repr(tensor)
            raise OptionError(f"{name} must be a tensor of input_ids' shape {tuple(input_ids.shape)}, not {shown}")
    if check_range:
        low, high = int(input_ids.min()), int(input_ids.max())
        if low < -1 or high >= config.vocab_size:
            raise OptionError(f"input_ids holds {high if high >= config.vocab_size else low}, outside the model's "
                              f"vocabulary of {config.vocab_size} ids")
        if token_type_ids is not None and (int(token_type_ids.min()) < 0 or
                                           int(token_type_ids.max()) >= config.type_vocab_size):
            raise OptionError(f"token_type_ids must be in 0..{config.type_vocab_size - 1} (the model's token types)")
        if attention_mask is not None and not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
            raise OptionError("attention_mask must hold 0 (padding) and 1 (a token) only")
