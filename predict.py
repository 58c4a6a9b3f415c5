"""Classify sentences (or sentence pairs), or tag their entities, with an adapter trained by train.py.

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

import argparse
import json
import sys
import warnings
from itertools import accumulate
from pathlib import Path

import numpy as np
import torch

from ptuning.adapters.bank import load_bank
from ptuning.adapters.files import AdapterConfig, atomic_write
from ptuning.adapters.load import load_trained
from ptuning.errors import DataError, OptionError, WriteError, add_debug_flag, finite_float, is_unicode, run_main
from ptuning.inference import inference_autocast, predict_logits
from ptuning.precision import PRECISIONS, resolve
from ptuning.tasks import FAMILIES, glue, ner, qa
from ptuning.tasks.glue import TASKS
from ptuning.text.batches import EncodedSet
from ptuning.text.tables import Example, read_table
from ptuning.text.tokenizer import collate

CHUNK_ROWS = 4096   # rows tokenized and predicted at a time: a big file streams out in bounded memory
SHOW_SKIPPED = 20   # skipped lines listed with their reason on stderr; then up to LIST_SKIPPED more by number
LIST_SKIPPED = 200


class PredictError(OptionError):
    """Arguments that do not fit the adapter or each other; the message names the option (exit status 2)."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="predict.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("texts", nargs="*", help="one text, or two for a pair task")
    p.add_argument("--adapter", required=True, action="append",
                   help="output folder of train.py (or a peft adapter folder); several as NAME=DIR, "
                        "scored together over one backbone (with --input and --adapter-column)")
    p.add_argument("--adapter-column", help="--input column naming each row's adapter (several adapters)")
    p.add_argument("--model", help="base model folder (default: the one in the adapter's config)")
    p.add_argument("--input", help="file of examples (.tsv/.csv/.jsonl) to predict")
    p.add_argument("--output", help="where --input's predictions go, JSON lines (default: stdout)")
    p.add_argument("--text-a", default="sentence1", help="--input column of the first text (default: sentence1)")
    p.add_argument("--text-b", help="--input column of the second text (pair tasks)")
    p.add_argument("--question", help="question answering: the question (with --context)")
    p.add_argument("--context", help="question answering: the text holding the answer (with --question)")
    p.add_argument("--null-threshold", type=finite_float,
                   help="SQuAD v2.0 adapters: decline when the null score beats the best span by more than this "
                        "(default: the training run's)")
    p.add_argument("--skip-bad", action="store_true",
                   help="--input: skip bad rows, list them on stderr, predict the rest (default: stop at the first)")
    p.add_argument("--batch-size", type=int, default=64, help="default: 64")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="default: cuda if available, else cpu")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="fp32, or bf16/fp16 under autocast on the CPU as on a GPU; auto: bf16 where the device "
                        "has it natively, else as train.py (default: fp32, the exact scores)")
    add_debug_flag(p)
    args = p.parse_args(argv)
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
    return args


def probabilities(logits: np.ndarray) -> np.ndarray:
    if logits.shape[-1] == 1:
        return logits  # regression: the score itself
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


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
    """--output must not replace the input, nor a file of an adapter or of the base model."""
    if args.output is None:
        return
    output = Path(args.output).resolve()
    if args.input and output == Path(args.input).resolve():
        raise PredictError(f"--output {args.output} is the --input file; write the predictions elsewhere")
    for folder in folders:
        if folder and (Path(folder).resolve() == output.parent or Path(folder).resolve() == output):
            raise PredictError(f"--output {args.output} is inside {folder}, a folder of the adapter or base "
                               "model; write the predictions elsewhere")


def check_finite_logits(logits: np.ndarray, where: str) -> None:
    if not np.isfinite(logits).all():
        raise DataError(f"{where}: the model produced NaN or infinite scores; its adapter or base weights are "
                        "damaged (nothing was written)")


def check_argument_text(which: str, text: str) -> None:
    """A text given on the command line: not blank, and decodable (no bytes the terminal's encoding
    could not decode, which Python keeps as lone surrogates)."""
    if not text.strip():
        raise PredictError(f"{which} is empty")
    if not is_unicode(text):
        raise PredictError(f"{which} is not valid UTF-8; set the terminal to UTF-8")


def command_line_examples(texts: list[str]) -> list[Example]:
    for position, text in enumerate(texts):
        check_argument_text(f"the {'first' if position == 0 else 'second'} text (argument {position + 1})", text)
    return [Example(texts[0], texts[1] if len(texts) == 2 else None, None, 0)]


def check_texts_fit_task(args, meta: AdapterConfig) -> None:
    """A GLUE task says whether the adapter reads pairs; adapters trained on users' data may read either."""
    task = TASKS.get(meta.task or "")
    if task is None:
        return
    pairs = task.text_b_column is not None
    trained = f"the adapter was trained on {task.name}, a {'sentence-pair' if pairs else 'single-sentence'} task"
    if args.input:
        if pairs and not args.text_b:
            raise PredictError(f"{trained}: give --text-b COLUMN, the column of {args.input} holding the second text")
        if not pairs and args.text_b:
            raise PredictError(f"{trained}: drop --text-b {args.text_b}")
    elif pairs and len(args.texts) == 1:
        raise PredictError(f"{trained}: give two texts (quote each), not one")
    elif not pairs and len(args.texts) == 2:
        raise PredictError(f"{trained}: give one text, not two")


def read_input(args) -> tuple[list[Example], list[tuple[int, str]]]:
    """The input file's examples, and (line, reason) for each row skipped (--skip-bad only)."""
    skipped = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # read_table's summary warning: we list the skipped lines ourselves
        examples, _ = read_table(args.input, args.text_a, args.text_b, label="__none__",
                                 strict=not args.skip_bad, report=skipped)
    return examples, skipped


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


def predict_chunks(model, tokenizer, examples: list[Example], batch_size: int, device: torch.device,
                   precision: str = "fp32"):
    """Yield (example, logits) in input order, CHUNK_ROWS examples at a time."""
    autocast = inference_autocast(device, precision)
    for start in range(0, len(examples), CHUNK_ROWS):
        chunk = examples[start:start + CHUNK_ROWS]
        encoded = tokenizer.encode_batch([(e.text_a, e.text_b) for e in chunk])
        data = EncodedSet(encoded, [None] * len(encoded), sum(e.truncated for e in encoded))
        yield from zip(chunk, predict_logits(model, data, batch_size, tokenizer.pad_id, device, autocast))


def record(example: Example, logits: np.ndarray, names: list[str]) -> dict:
    probs = probabilities(logits[None])[0]
    out = {"line": example.line}
    if len(names) > 1:
        out["label"] = names[int(probs.argmax())]
        out["probabilities"] = dict(zip(names, map(float, probs)))
    else:
        out["score"] = float(probs[0])
    out["logits"] = [float(x) for x in logits]
    return out


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
        raise WriteError(f"--output {args.output}: cannot write ({err.strerror or err})") from None
    note = f" ({len(skipped)} bad line(s) skipped, see above)" if skipped else ""
    print(f"{count} predictions written to {args.output}{note}")


def run_bank(args) -> None:
    """Several adapters over one backbone: each batch of arriving rows is one encoder pass."""
    device = check_device(args.device)
    args.precision = resolve(args.precision, device)
    bank, tokenizers, metas = load_bank(args.adapter, args.model, device)
    check_output_target(args, [*args.adapter.values(), args.model,
                               *(m.base_model_path for m in metas.values())])
    for meta in metas.values():
        check_texts_fit_task(args, meta)
    names = list(args.adapter)
    skipped = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        examples, _ = read_table(args.input, args.text_a, args.text_b, label=args.adapter_column,
                                 label_names=names, strict=not args.skip_bad, report=skipped)
    report_skipped(args.input, skipped)
    if any(e.label is None for e in examples):
        raise DataError(f"{args.input}: no column {args.adapter_column!r} (--adapter-column) naming each row's adapter")
    pad_id = next(iter(tokenizers.values())).pad_id
    autocast = inference_autocast(device, args.precision)

    def records():
        for start in range(0, len(examples), args.batch_size):
            rows = examples[start:start + args.batch_size]
            adapters = [names[e.label] for e in rows]
            batch = collate([tokenizers[a].encode(e.text_a, e.text_b) for e, a in zip(rows, adapters)], pad_id)
            with autocast():
                logits = bank(*(batch[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids")),
                              adapters)
            for e, a, row_logits in zip(rows, adapters, logits):
                labels = metas[a].label_names or ["score"]
                row_logits = row_logits.float().cpu().numpy()
                check_finite_logits(row_logits, f"{args.input}:{e.line} (adapter {a!r})")
                yield {"adapter": a, **record(e, row_logits, labels)}
    write_records(args, records(), len(examples), skipped)


def run(args) -> None:
    if isinstance(args.adapter, dict):
        return run_bank(args)
    device = check_device(args.device)
    args.precision = resolve(args.precision, device)  # checked before anything is loaded
    examples = command_line_examples(args.texts) if args.texts else None
    model, tokenizer, meta = load_trained(args.adapter, args.model, device=device)
    check_output_target(args, [args.adapter, args.model, meta.base_model_path])
    if FAMILIES.get(meta.task or "") is qa:
        return run_qa(args, model, tokenizer, meta, device)
    for name in ("question", "context", "null_threshold"):  # question answering's options, on another adapter
        if getattr(args, name) is not None:
            raise PredictError(f"--{name.replace('_', '-')}: the adapter was trained on "
                               f"{meta.task or 'your own table'}, not on question answering (squad, squad_v2)")
    if FAMILIES.get(meta.task or "", glue).HEAD == "token":
        return run_tagger(args, model, tokenizer, meta, device)
    check_texts_fit_task(args, meta)
    names = meta.label_names or ["score"]

    if examples is not None:
        (_, logits), = predict_chunks(model, tokenizer, examples, 1, device, args.precision)
        check_finite_logits(logits, f"adapter {args.adapter}")
        probs = probabilities(logits[None])[0]
        for name, value in zip(names, probs):
            print(f"{name}: {value:.0%}" if len(names) > 1 else f"{name}: {value:.4f}")
        return

    examples, skipped = read_input(args)
    report_skipped(args.input, skipped)
    rows = predict_chunks(model, tokenizer, examples, args.batch_size, device, args.precision)

    def records():
        for example, logits in rows:
            check_finite_logits(logits, f"{args.input}:{example.line}")
            yield record(example, logits, names)
    write_records(args, records(), len(examples), skipped)


def run_qa(args, model, tokenizer, meta: AdapterConfig, device: torch.device) -> None:
    """Extractive QA: one --question/--context pair printed, or --input's rows as JSON lines."""
    settings = dict(meta.task_options or {}, version_2=qa.TASKS[meta.task] == "2.0")
    if args.text_b:
        raise PredictError(f"--text-b {args.text_b}: a question-answering adapter reads --input's `question` and "
                           "`context` fields")
    if args.null_threshold is not None and not settings["version_2"]:
        raise PredictError(f"--null-threshold: the adapter was trained on {meta.task} (SQuAD v1.1), whose "
                           "questions always have an answer; it applies to squad_v2 adapters")
    if args.null_threshold is not None:
        settings["null_threshold"] = args.null_threshold
    if args.texts:
        raise PredictError("the adapter answers questions: give --question and --context (or --input FILE)")
    if args.input is None:
        for name in ("question", "context"):
            check_argument_text(f"--{name}", getattr(args, name))
        found, = qa.answer(model, tokenizer, [(args.question, args.context)], 1, device, names=["--context"],
                           precision=args.precision, **settings)
        if found["declined"]:
            print(f"no answer (declined: null score {found['null_score']:.2f} beats the best span "
                  f"{found['answer'] or repr(args.context[found['start']:found['end']])}, score {found['score']:.2f})"
                  if found["score"] is not None else "no answer: no span fits the context")
        else:
            print(f"answer: {found['answer']}\nscore: {found['score']:.2f}\nspan: characters {found['start']}-{found['end']}")
        return
    skipped = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # read_table's summary warning: we list the skipped lines ourselves
        examples, _ = read_table(args.input, "question", "context", label="__none__", strict=not args.skip_bad,
                                 report=skipped)
    if args.skip_bad:  # rows that read well but cannot be windowed (a context of zero-width spaces) are bad rows too
        problems = {e.line: qa.pair_problem(tokenizer, e.text_a, e.text_b) for e in examples}
        skipped = sorted(skipped + [(line, problem) for line, problem in problems.items() if problem])
        examples = [e for e in examples if not problems[e.line]]
        if not examples:
            raise DataError(f"{args.input}: every row is bad; the first, line {skipped[0][0]}: {skipped[0][1]}")
    report_skipped(args.input, skipped)

    def records():
        for start in range(0, len(examples), CHUNK_ROWS):  # bounded memory on big files
            chunk = examples[start:start + CHUNK_ROWS]
            pairs = [(e.text_a, e.text_b) for e in chunk]
            names = [f"{args.input}:{e.line}" for e in chunk]  # an error names the row's line, not its chunk place
            for example, found in zip(chunk, qa.answer(model, tokenizer, pairs, args.batch_size, device, names=names,
                                                       precision=args.precision, **settings)):
                yield {"line": example.line, **found}
    write_records(args, records(), len(examples), skipped)


def run_tagger(args, model, tokenizer, meta: AdapterConfig, device) -> None:
    """Token classification: entities of each sentence (command line), or JSON lines (--input)."""
    if args.text_b:
        raise PredictError(f"--text-b {args.text_b}: a token-classification adapter tags one sentence a line")
    names = meta.label_names or []
    if not names or not all(ner.TAG.fullmatch(name) for name in names):
        # A peft adapter's names come from its base config's id2label, often LABEL_0, LABEL_1, ...
        raise PredictError(f"{args.adapter}: label names {', '.join(names[:4]) or '(none)'} are not IOB tags "
                           "(O, B-X, I-X), so entities cannot be read from them; set id2label in the base "
                           "model's config.json")
    if args.texts:
        for text in args.texts:
            words, _ = ner.split_words(text)
            tags, = ner.tag_sentences(model, tokenizer, names, [words], 1, device, args.precision)
            found = ner.entity_records(words, tags)
            if len(args.texts) > 1:
                print(text)
            for entity in found:
                first, end = entity["words"]
                print(f"{entity['type']}\t{entity['text']}\twords {first}-{end - 1}")
            if not found:
                print("(no entities)")
        return
    skipped = []
    sentences = read_sentences(args.input, args.skip_bad, skipped)  # (line, words, offsets)
    report_skipped(args.input, skipped)

    def records():
        for start in range(0, len(sentences), CHUNK_ROWS):
            chunk = sentences[start:start + CHUNK_ROWS]
            tagged = ner.tag_sentences(model, tokenizer, names, [words for _, words, _ in chunk], args.batch_size,
                                       device, args.precision)
            for (line, words, offsets), tags in zip(chunk, tagged):
                yield {"line": line, "tags": tags, "entities": ner.entity_records(words, tags, offsets)}
    write_records(args, records(), len(sentences), skipped)


def read_sentences(path: str, skip_bad: bool, skipped: list) -> list[tuple[int, list[str], list[tuple[int, int]]]]:
    """(line, words, character offsets) per sentence: a text line split at whitespace, or a JSONL
    line's `tokens` (offsets into the tokens joined by single spaces). Blank lines are passed over."""
    jsonl = path.endswith((".jsonl", ".json"))
    sentences = []
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                if not jsonl:
                    sentences.append((number, *ner.split_words(line)))
                    continue
                try:
                    record = json.loads(line)
                    words = record.get("tokens") if isinstance(record, dict) else None
                    if not (isinstance(words, list) and words and all(isinstance(w, str) and w.strip() for w in words)):
                        raise ValueError("want an object with a `tokens` list of non-empty strings")
                except ValueError as err:
                    reason = f"not JSON ({err.msg})" if isinstance(err, json.JSONDecodeError) else str(err)
                    if not skip_bad:
                        raise DataError(f"{path}:{number}: {reason}") from None
                    skipped.append((number, reason))
                    continue
                starts = [0, *accumulate(len(word) + 1 for word in words)][:-1]  # offsets in " ".join(words)
                sentences.append((number, words, [(start, start + len(word)) for start, word in zip(starts, words)]))
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read ({getattr(err, 'strerror', None) or err})") from None
    if not sentences and not skipped:  # as an empty table: nothing to tag is a mistake, not an empty answer
        raise DataError(f"{path}: no sentences (the file is empty or holds only blank lines)")
    return sentences


def main(argv=None) -> int:
    """Behind the one error boundary (ptuning/errors.py): `predict.py: message`, a status per error kind."""
    def predict(argv):
        run(parse_args(argv))
        return 0
    return run_main("predict.py", predict, argv)


if __name__ == "__main__":
    sys.exit(main())
