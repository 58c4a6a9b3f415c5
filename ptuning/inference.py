"""The model over encoded examples, without the training loop: the one evaluation loop that every task
family's evaluation and prediction share (`run_shard`, `gather_rows`), and `predict` for texts."""
from __future__ import annotations

import numpy as np
import torch

from . import arguments
from .errors import OptionError, TokenizerError
from .parallel import gather_objects, world
from .precision import autocast_for, resolve
from .text.batches import EncodedSet, eval_batches


def to_device(batch: dict, device) -> dict:
    """Copy a batch to the device. A batch without padding drops its mask (looked at here, on the
    CPU, so the GPU is not waited for): attention then needs none and SDPA may use flash kernels."""
    if "attention_mask" in batch and bool(batch["attention_mask"].all()):
        batch = {**batch, "attention_mask": None}
    return {k: None if v is None else v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def run_shard(model, data: EncodedSet, batch_size: int, pad_id: int, device, autocast):
    """Yield (row indices into `data`, the model's outputs for those rows), batch by batch, over this
    process's rows: every row alone, or under torchrun the slice rank::size. Batches hold rows of
    similar lengths (`eval_batches`); the model is put in eval mode."""
    rank, size = world()
    mine = list(range(rank, len(data), size))
    shard = EncodedSet([data.encoded[i] for i in mine], [None] * len(mine), 0)  # ids only: no labels
    model.eval()
    for indices, batch in eval_batches(shard, batch_size, pad_id):
        batch = to_device(batch, device)
        with autocast():
            outputs = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        yield [mine[i] for i in indices], outputs


def gather_rows(rows: dict[int, object], count: int) -> list:
    """Every process's {row index: value} (from `run_shard`) as one list in the data's order."""
    merged = [None] * count
    for part in gather_objects(rows):
        for index, value in part.items():
            merged[index] = value
    return merged


def predict_logits(model, data: EncodedSet, batch_size: int, pad_id: int, device, autocast) -> np.ndarray:
    """Logits for every example, in the data's order (sequence heads: one row of logits each)."""
    rows = {}
    for indices, logits in run_shard(model, data, batch_size, pad_id, device, autocast):
        rows.update(zip(indices, logits.float().cpu().numpy()))
    return np.stack(gather_rows(rows, len(data)))


CHUNK_ROWS = 4096   # rows tokenized and predicted at a time: a big file streams out in bounded memory


def predict_chunks(model, tokenizer, examples, batch_size: int, device, precision: str = "fp32"):
    """Yield (example, logits) in input order, CHUNK_ROWS examples (`.text_a`, `.text_b`) at a time."""
    autocast = inference_autocast(device, precision)
    for start in range(0, len(examples), CHUNK_ROWS):
        chunk = examples[start:start + CHUNK_ROWS]
        encoded = tokenizer.encode_batch([(e.text_a, e.text_b) for e in chunk])
        data = EncodedSet(encoded, [None] * len(encoded), sum(e.truncated for e in encoded))
        yield from zip(chunk, predict_logits(model, data, batch_size, tokenizer.pad_id, device, autocast))


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; a single logit (regression) is the score itself."""
    if logits.shape[-1] == 1:
        return logits
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def logits_record(line: int, logits: np.ndarray, names: list[str]) -> dict:
    """A prediction of a sequence head as predict.py writes it: the row's line, the label and its
    probabilities (regression: "score"), and the logits."""
    probs = probabilities(logits[None])[0]
    out = {"line": line}
    if len(names) > 1:
        out["label"] = names[int(probs.argmax())]
        out["probabilities"] = dict(zip(names, map(float, probs)))
    else:
        out["score"] = float(probs[0])
    out["logits"] = [float(x) for x in logits]
    return out


def inference_autocast(device, precision: str = "fp32"):
    """The autocast context factory prediction runs under: `precision` fp32, bf16, fp16 or auto
    (`precision.resolve`), on any device."""
    device = torch.device(device)
    return autocast_for(device, resolve(precision, device))[0]


def predict(model, tokenizer, texts, batch_size: int = 32, precision: str = "fp32") -> np.ndarray:
    """Logits (N, C) for `texts`: strings, or (text_a, text_b) pairs; rows in the order given. A single
    string is one text: `predict(model, tokenizer, "A.")` gives one row.

    The model's own device and dtype are used; `precision` "bf16" (or "fp16", "auto") runs it under
    autocast, on the CPU as on a GPU. The model is left in eval mode.
    """
    if not isinstance(model, torch.nn.Module):
        raise OptionError(f"predict(model, tokenizer, texts) needs the model first (load_trained's), not {model!r}")
    if tokenizer is None:
        raise TokenizerError("predict(model, tokenizer, texts) needs a tokenizer to turn texts into ids; load it "
                             "with load_trained(..., tokenizer=True), or compute logits from ids with model(ids, "
                             "mask, types)")
    reads = getattr(getattr(model, "head", None), "reads", "cls")
    if reads == "all":  # token and span heads give (B, T, C) or start/end pairs: not one row per text
        raise OptionError(f"predict scores whole texts, but this model's {type(model.head).__name__} scores every "
                          "token; use ptuning.tasks.ner.tag_sentences (token) or ptuning.tasks.qa.answer (span)")
    pairs = arguments.texts(texts)
    arguments.count(batch_size, "batch_size")
    config = getattr(model, "adapter_config", None)  # load_trained's: the family says what the adapter reads
    if config is not None:
        from .tasks import family_of_adapter  # here: the task families import this module
        check = getattr(family_of_adapter(config), "check_texts", None)
        if check is not None:
            check(config, pairs)
    encoded = tokenizer.encode_batch(pairs)
    if reads == "mask":  # an MLM head reads the template's one [MASK]: a text holding the mask token adds one
        odd = next((n for n, e in enumerate(encoded) if e.ids.count(model.head.mask_token_id) != 1), None)
        if odd is not None:
            raise OptionError(f"texts[{odd}] holds the mask token {tokenizer.mask_token}; a cloze row has one, where "
                              "the template puts [MASK] (take it out of the text)")
    data = EncodedSet(encoded, [None] * len(encoded), sum(e.truncated for e in encoded))
    device = next(model.parameters()).device
    return predict_logits(model, data, batch_size, tokenizer.pad_id, device, inference_autocast(device, precision))
