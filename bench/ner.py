"""NER on CoNLL-2003: entity F1 of ours (P-tuning v2, P-tuning v1, full fine-tuning) beside
transformers + peft running the same recipe, in one script, over seeds (mean ± std of the last epoch).

    python bench/ner.py                                   # the anchor's budget, 3 seeds (long on CPU)
    python bench/ner.py --n 32 --epochs 1 --seeds 1 --n-dev 64    # a smoke run
    python bench/ner.py --write                           # append the table to BENCHMARKS.md

The budget is the transformers Trainer reference run's (BENCHMARKS.md): MiniLM, the first N=4000 training sentences,
2 epochs, batch 16, 6% linear warm-up, weight decay 0.01; prefix tuning with 16 virtual tokens at
lr 1e-2 (peft `PrefixTuningConfig(task_type="TOKEN_CLS")`, no projection) and full fine-tuning at
lr 5e-5 (`AutoModelForTokenClassification` with HF Trainer); entity F1 on all of valid.txt.
Ours is `train.py` in-process with the same options (its NER recipes are this budget); P-tuning v1
has no peft counterpart in the anchor and runs ours only. peft's F1 is seqeval's (the anchor's);
ours is ptuning's conlleval, which the tests prove equal to seqeval.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import device_name, publish  # noqa: E402

import train  # noqa: E402  (runs train.py in this process, as a user would)
from ptuning.weights import resolve_model_dir  # noqa: E402
from ptuning.tasks import ner  # noqa: E402

ANCHOR_LR = {"prefix": 1e-2, "full": 5e-5}  # transformers + peft: the anchor's learning rates
BATCH, WARMUP, WEIGHT_DECAY = 16, 0.06, 0.01


def run_ours(method, seed, args) -> dict:
    out = Path(args.runs) / f"ner-{method}-s{seed}"
    argv = ["--task", "conll2003", *(["--data-dir", str(args.data_dir)] if args.data_dir else []),
            *(["--precision", args.precision] if args.precision else []), "--model", args.model, "--method", method,
            "--seed", str(seed), "--max-train-samples", str(args.n), "--epochs", str(args.epochs),
            "--batch-size", str(BATCH), "--warmup-ratio", str(WARMUP),
            "--weight-decay", str(WEIGHT_DECAY), "--output-dir", str(out), "--overwrite"]
    if args.random_batches:  # HF Trainer's batch order, for a same-recipe comparison
        argv += ["--no-group-by-length"]
    if method in args.lr_ours:  # else our NER recipe's (ner.RECIPES), and its batch order
        argv += ["--lr", str(args.lr_ours[method])]
    if args.n_dev:
        argv += ["--max-dev-samples", str(args.n_dev)]
    train.main(argv)
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    config = json.loads((out / "adapter_config.json").read_text())
    lr, tokens = config["train"]["lr"], config["method"].get("num_virtual_tokens") if method != "full" else None
    return {"side": "ours", "method": method, "seed": seed, "lr": lr, "tokens": tokens, "f1": last["f1"],
            "precision": config["precision"],
            "samples_s": last["samples_per_s"]}


def run_peft(method, seed, args) -> dict:
    """The anchor's transformers + peft run, with a seed: HF Trainer, first-sub-token labels."""
    from seqeval.metrics import f1_score
    from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                              Trainer, TrainingArguments, set_seed)

    model_dir = str(resolve_model_dir(args.model))
    train_sentences = ner.read("conll2003", "train", args.data_dir)[:args.n]
    dev_sentences = ner.read("conll2003", "dev", args.data_dir)[:args.n_dev or None]
    labels = list(ner.label_names("conll2003", train_sentences))
    label_id = {name: i for i, name in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def encode(sentences):
        encoded = tokenizer([s.words for s in sentences], is_split_into_words=True, truncation=True, max_length=512)
        rows = []
        for i, sentence in enumerate(sentences):
            previous, row_labels = None, []
            for word in encoded.word_ids(i):
                row_labels.append(-100 if word is None or word == previous else label_id[sentence.tags[word]])
                previous = word
            rows.append({**{k: encoded[k][i] for k in encoded.keys()}, "labels": row_labels})
        return rows

    train_rows, dev_rows = encode(train_sentences), encode(dev_sentences)
    set_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(model_dir, num_labels=len(labels))
    if method == "prefix":
        from peft import PrefixTuningConfig, get_peft_model

        model = get_peft_model(model, PrefixTuningConfig(task_type="TOKEN_CLS", num_virtual_tokens=args.tokens_peft))
    steps = args.epochs * -(-len(train_rows) // BATCH)
    lr = args.lr_peft.get(method, ANCHOR_LR[method])
    training = TrainingArguments(output_dir=str(Path(args.runs) / f"ner-peft-{method}-s{seed}"), learning_rate=lr,
                                 per_device_train_batch_size=BATCH, per_device_eval_batch_size=64,
                                 num_train_epochs=args.epochs, weight_decay=WEIGHT_DECAY, warmup_steps=int(WARMUP * steps),
                                 save_strategy="no", eval_strategy="no", report_to=[], disable_tqdm=True, seed=seed,
                                 use_cpu=not args.cuda)
    trainer = Trainer(model=model, args=training, train_dataset=train_rows,
                      data_collator=DataCollatorForTokenClassification(tokenizer))
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    prediction = trainer.predict(dev_rows)
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    gold, predicted = [], []
    for row_logits, row_labels in zip(logits.argmax(-1), prediction.label_ids):
        keep = row_labels != -100
        gold.append([labels[i] for i in row_labels[keep]])
        predicted.append([labels[i] for i in row_logits[keep]])
    return {"side": "peft", "method": method, "seed": seed, "lr": lr,
            "tokens": args.tokens_peft if method == "prefix" else None, "f1": f1_score(gold, predicted),
            "samples_s": len(train_rows) * args.epochs / seconds}


def summary(values) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0:.3f}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="*", default=["prefix", "ptuning", "full"], help="ours (none: peft only)")
    p.add_argument("--peft-methods", nargs="*", default=["prefix", "full"], help="transformers + peft (none: ours only)")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--n", type=int, default=4000, help="first N training sentences (default: 4000)")
    p.add_argument("--n-dev", type=int, help="first N valid sentences (default: all 3250)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--model", default="minilm")
    p.add_argument("--data-dir", help="the CoNLL-2003 folder (default: as train.py finds it: $CONLL_DIR, else "
                   "data/conll2003)")
    p.add_argument("--precision", help="ours: train.py --precision (default: train.py's, auto)")
    p.add_argument("--runs", default="runs/bench")
    p.add_argument("--cuda", action="store_true", help="let transformers use the GPU too (ours uses it when present)")
    p.add_argument("--out", help="also append each run's result as a JSON line here")
    p.add_argument("--lr-ours", nargs="+", default=[], metavar="METHOD=LR",
                   help="ours at another lr (default: our NER recipe's, ner.RECIPES)")
    p.add_argument("--lr-peft", nargs="+", default=[], metavar="METHOD=LR",
                   help=f"transformers + peft at another lr (default: the anchor's, {ANCHOR_LR})")
    p.add_argument("--random-batches", action="store_true", help="ours with random batches (default: length-grouped)")
    p.add_argument("--tokens-peft", type=int, default=16, help="peft's prefix length (default: the anchor's 16)")
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args()
    for name in ("lr_ours", "lr_peft"):
        try:
            setattr(args, name, {m: float(v) for m, v in (pair.split("=") for pair in getattr(args, name))})
        except ValueError:
            p.error(f"--{name.replace('_', '-')}: write METHOD=LR, e.g. prefix=5e-2")

    results = []
    for seed in args.seeds:
        jobs = [("ours", m) for m in args.methods] + [("peft", m) for m in args.peft_methods]
        for side, method in jobs:
            result = (run_ours if side == "ours" else run_peft)(method, seed, args)
            print(json.dumps(result), flush=True)
            results.append(result)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(result) + "\n")

    rows = []
    for key, side, methods in (("ours", "ours", args.methods), ("peft", "transformers + peft", args.peft_methods)):
        for method in methods:
            runs = [r for r in results if r["side"] == key and r["method"] == method]
            per_seed = ", ".join(f"{r['f1']:.3f}" for r in runs)
            rows.append(f"| {side} | {method} | {runs[0]['tokens'] or '–'} | {runs[0]['lr']:g} | {summary([r['f1'] for r in runs])} | {per_seed} | "
                        f"{statistics.mean(r['samples_s'] for r in runs):.1f} |")
    table = ("| side | method | virtual tokens | lr | entity F1, last epoch | per seed | train samples/s |\n"
             "|---|---|---|---|---|---|---|\n"
             + "\n".join(rows))
    dev = f"first {args.n_dev} valid sentences" if args.n_dev else "all of valid.txt"
    note = (f"\n### NER (CoNLL-2003), {datetime.date.today()}, {device_name()}, model {args.model}, seeds {args.seeds}\n\n"
            f"First {args.n} train sentences, {args.epochs} epochs, batch {BATCH}, warm-up {WARMUP:.0%}, weight decay "
            f"{WEIGHT_DECAY}; entity F1 on {dev}. "
            f"`python bench/ner.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}`\n\n{table}\n")
    publish(note, args.write)


if __name__ == "__main__":
    main()
