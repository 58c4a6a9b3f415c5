"""Classify sentences (or sentence pairs), tag their entities, or answer questions with an adapter trained by train.py.

`python predict.py` in a checkout, `ptuning predict` where the package is installed (the same code).

    python predict.py --adapter runs/mrpc-prefix "The cat sat." "A cat was sitting."
    python predict.py --adapter runs/mrpc-prefix --input pairs.tsv --text-a a --text-b b --output predictions.jsonl
    python predict.py --adapter runs/squad-prefix --question "Who sat?" --context "The cat sat on the mat."
    python predict.py --adapter runs/squad-prefix --input questions.jsonl    # "question" and "context" fields
    python predict.py --adapter runs/conll2003-prefix "George Washington visited Washington ."
    python predict.py --adapter runs/conll2003-prefix --input sentences.txt --output entities.jsonl

A token-classification (NER) adapter takes each text as one sentence of whitespace-separated
words and prints its entities (type, words, word span). Its --input is one sentence a line, or
JSONL with a `tokens` list a line; each output line holds the input line, the words' tags and the
entities with word spans [first, last + 1) and character offsets [start, end) into the line (for
JSONL: into the tokens joined by single spaces).

Question answering (an adapter trained on squad/squad_v2): the answer, its score (start + end
logit) and its character span in the context; long contexts are read in overlapping windows.
--input writes one JSON record per predicted row: its line in the input file ("line"), the label,
the probabilities and the logits (regression: "score" and the logit). A bad row (empty text,
malformed JSON, wrong column count) stops the run naming its line; with --skip-bad it is left
out, listed on stderr, and the rest is predicted.
"""
from __future__ import annotations

import dataclasses
import sys
import warnings

from ptuning import tasks
from ptuning.tasks import glue
from ptuning.adapters.bank import bank_records, load_bank
from ptuning.adapters.load import load_trained
from ptuning.errors import DataError, run_main
from ptuning.options import given_options
from ptuning.precision import resolve
from ptuning.prediction import (check_arguments, check_device, check_output_target, drop_bad_rows, parser,
                                refuse_other_families, report_skipped, write_records)
from ptuning.text.tables import read_table


def parse_args(argv=None, prog: str = "predict.py"):
    p = parser(prog, __doc__, tasks.MODULES)
    args = p.parse_args(argv)
    args.given = given_options(p, argv)
    check_arguments(p, args)
    return args


def run(args) -> None:
    if isinstance(args.adapter, dict):
        return run_bank(args)
    args.device = check_device(args.device)
    args.precision = resolve(args.precision, args.device)  # checked before anything is loaded
    model, tokenizer, meta = load_trained(args.adapter, args.model, device=args.device)
    check_output_target(args, [args.adapter, args.model, meta.base_model_path])
    family = tasks.family_of_adapter(meta)  # what the adapter predicts: classes, entities or answers
    refuse_other_families(args, family, tasks.MODULES, meta)
    family.check_predict(args, meta)
    rows, skipped = family.read_rows(args, tokenizer)
    records = family.predict_rows(model, tokenizer, meta, rows, args)
    if args.input is None:
        for record in records:
            print(family.show(record, args))
        return
    report_skipped(args.input, skipped)
    write_records(args, records, len(rows), skipped)


def run_bank(args) -> None:
    """Several adapters over one backbone, each --input row scored by the adapter its column names."""
    args.device = check_device(args.device)
    args.precision = resolve(args.precision, args.device)
    bank, tokenizers, metas = load_bank(args.adapter, args.model, args.device)
    check_output_target(args, [*args.adapter.values(), args.model, *(m.base_model_path for m in metas.values())])
    # One file may mix single texts and pairs: --text-b is read for the pair adapters' rows only.
    pairs = {name: glue.reads_pairs(meta)[0] for name, meta in metas.items()}  # True, False, or None: unknown
    for name, meta in metas.items():
        if pairs[name] is False and args.text_b:
            continue
        tasks.family_of_adapter(meta).check_predict(args, meta)
    names, skipped = list(args.adapter), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # read_table's summary warning: the skipped lines are listed below
        examples, _ = read_table(args.input, args.text_a, args.text_b, label=args.adapter_column,
                                 label_names=names, strict=not args.skip_bad, report=skipped,
                                 label_what="adapter name", optional_b=True)
    if any(e.label is None for e in examples):
        raise DataError(f"{args.input}: no column {args.adapter_column!r} (--adapter-column) naming each row's adapter")
    def without_pair(e):  # a pair adapter's row whose second text is empty
        if pairs[names[e.label]] and e.text_b is None:
            return f"adapter {names[e.label]!r} reads pairs of texts; column {args.text_b!r} is empty"
        return None
    examples = drop_bad_rows(args, examples, without_pair, skipped)
    examples = [e if pairs[names[e.label]] is not False else dataclasses.replace(e, text_b=None) for e in examples]
    report_skipped(args.input, skipped)
    write_records(args, bank_records(bank, tokenizers, metas, examples, names, args), len(examples), skipped)


def main(argv=None, prog: str = "predict.py") -> int:
    """Behind the one error boundary (ptuning/errors.py): `predict.py: message`, a status per error kind."""
    def predict(argv):
        run(parse_args(argv, prog))
        return 0
    return run_main(prog, predict, argv)


if __name__ == "__main__":
    sys.exit(main())
