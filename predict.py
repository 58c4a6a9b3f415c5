"""Classify sentences (or sentence pairs) with an adapter trained by train.py.

    python predict.py --adapter runs/mrpc-prefix "The cat sat." "A cat was sitting."
    python predict.py --adapter runs/mrpc-prefix --input pairs.tsv --output predictions.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ptuning.batches import EncodedSet
from ptuning.checkpoint import load_trained
from ptuning.data import Example, read_table
from ptuning.training import predict_logits


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("texts", nargs="*", help="one text, or two for a pair task")
    p.add_argument("--adapter", required=True, help="output folder of train.py")
    p.add_argument("--model", help="base model folder (default: the one in the adapter's config)")
    p.add_argument("--input", help="file of examples (.tsv/.csv/.jsonl) to predict")
    p.add_argument("--output", help="where --input's predictions go, JSON lines (default: stdout)")
    p.add_argument("--text-a", default="sentence1", help="--input column of the first text (default: sentence1)")
    p.add_argument("--text-b", help="--input column of the second text")
    p.add_argument("--batch-size", type=int, default=64, help="default: 64")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


def probabilities(logits: np.ndarray) -> np.ndarray:
    if logits.shape[-1] == 1:
        return logits  # regression: the score itself
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.texts and not args.input:
        sys.exit("give one or two texts, or --input FILE")
    model, tokenizer, meta = load_trained(args.adapter, args.model, device=args.device)
    names = meta.get("label_names") or ["score"]
    if args.input:
        examples, _ = read_table(args.input, args.text_a, args.text_b, label="__none__")
    else:
        if len(args.texts) > 2:
            sys.exit(f"give one or two texts, not {len(args.texts)} (quote each sentence)")
        examples = [Example(args.texts[0], (args.texts + [None])[1], None, 0)]
    encoded = tokenizer.encode_batch([(e.text_a, e.text_b) for e in examples])
    data = EncodedSet(encoded, [None] * len(encoded), sum(e.truncated for e in encoded))
    logits = predict_logits(model, data, args.batch_size, tokenizer.pad_id, torch.device(args.device),
                            lambda: torch.autocast(args.device, enabled=False))
    probs = probabilities(logits)
    if not args.input:
        for name, value in zip(names, probs[0]):
            print(f"{name}: {value:.0%}" if len(names) > 1 else f"{name}: {value:.4f}")
        return 0
    out = open(args.output, "w") if args.output else sys.stdout
    for row, row_logits in zip(probs, logits):
        record = {"label": names[int(row.argmax())], "probabilities": dict(zip(names, map(float, row)))} \
            if len(names) > 1 else {"score": float(row[0])}
        record["logits"] = [float(x) for x in row_logits]
        out.write(json.dumps(record) + "\n")
    if args.output:
        out.close()
        print(f"{len(probs)} predictions written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
