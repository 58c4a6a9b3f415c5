"""SQuAD EM/F1: ours (train.py) against transformers + peft, the same recipe side by side, several seeds.

    python bench/squad.py --n 2000 --n-dev 500 --epochs 2 --max-length 256 --seeds 1 2 3 --write
    python bench/squad.py --n 16 --n-dev 8 --epochs 1 --max-length 128 --doc-stride 32 --seeds 1 2   # smoke test
    python bench/squad.py --sides ours --methods prefix --seeds 1 --epochs 8 --precision bf16 \
        --jsonl bench/results/squad_long_budget.jsonl ...                                         # a learning curve

Ours is `train.py --task squad` in-process (its recipe for the method, with --lr/--batch-size/--epochs
below); the last epoch's dev scores are kept (every epoch's with `--jsonl`). The other side is what a transformers user writes:
`AutoModelForQuestionAnswering` (+ peft `PREFIX_TUNING`, task_type QUESTION_ANS, for `prefix`), AdamW
with HF Trainer's decay groups, linear warm-up and decay, gradient clipping 1.0, random batches. Both
sides read the same windows (`tasks.qa.make_features`, proven equal to HF's fast tokenizer by
tests/test_qa.py) and are scored by the same decoder and official-script metric, so the table compares
models and training, not preprocessing. Differences that remain, by design: our prefix keeps the text's
positions (transformers + peft shift them, README "Prefix positions"), and peft 0.21 drops BERT's
token_type_ids for QA prompt methods (tests/test_qa_model.py), ours keeps them.

With `--prefix-init text`, ours starts its prefix at the keys and values of `qa.PREFIX_TEXT` (README "Where the
prefix starts"), and peft gets the same starting tensor copied into its prefix embedding (`--hf-prefix-init
same`, the default; `random` leaves peft at its own N(0, 1) start).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from report import device_name, publish  # noqa: E402

import train  # noqa: E402  (runs train.py in this process, as a user would)
from ptuning.config import EncoderConfig  # noqa: E402
from ptuning.tasks import qa  # noqa: E402
from ptuning.text.batches import make_batch  # noqa: E402
from ptuning.text.tokenizer import Tokenizer  # noqa: E402
from ptuning.training.recipes import RECIPES  # noqa: E402
from ptuning.training.run import prefix_start_ids  # noqa: E402
from ptuning.weights import resolve_model_dir  # noqa: E402


def recipe(method: str, args) -> dict:
    """lr, batch size, epochs, warm-up shared by both sides: our QA recipe's lr unless overridden."""
    ours = {**RECIPES[method], **qa.RECIPES[method]}
    return dict(lr=args.lr.get(method, ours["lr"]), batch_size=args.batch_size, epochs=args.epochs,
                warmup_ratio=ours["warmup_ratio"], weight_decay=0.01)


def ours(method: str, seed: int, args) -> dict:
    r = recipe(method, args)
    out = Path(args.runs) / f"squad-{method}-s{seed}"
    argv = ["--task", "squad", "--model", args.model, "--method", method, "--seed", str(seed),
            "--epochs", str(r["epochs"]), "--lr", str(r["lr"]), "--batch-size", str(r["batch_size"]),
            "--warmup-ratio", str(r["warmup_ratio"]), "--weight-decay", str(r["weight_decay"]),
            "--max-length", str(args.max_length), "--doc-stride", str(args.doc_stride), "--max-train-samples", str(args.n), "--output-dir", str(out),
            "--overwrite"]
    if method == "prefix":
        argv += ["--num-virtual-tokens", str(args.prefix_tokens), "--prefix-init", args.prefix_init]
    if args.n_dev:
        argv += ["--max-dev-samples", str(args.n_dev)]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    if args.precision:
        argv += ["--precision", args.precision]
    started = time.perf_counter()
    train.main(argv)
    seconds = (time.perf_counter() - started) / r["epochs"]
    # metrics.jsonl holds loss lines every few steps and one line per epoch with the dev scores
    epochs = [e for e in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "f1" in e]
    if args.jsonl:
        record = dict(task="squad", method=method, seed=seed, epochs=r["epochs"], lr=r["lr"],
                      batch_size=r["batch_size"], precision=args.precision or "auto", n_train=args.n,
                      n_dev=args.n_dev, max_length=args.max_length, doc_stride=args.doc_stride,
                      num_virtual_tokens=args.prefix_tokens if method == "prefix" else None,
                      prefix_init=args.prefix_init if method == "prefix" else None, commit=commit(),
                      per_epoch=[{k: e[k] for k in ("epoch", "train_loss", "f1", "exact", "seconds")} for e in epochs])
        with open(args.jsonl, "a") as f:
            f.write(json.dumps(record) + "\n")
    return dict(f1=epochs[-1]["f1"], exact=epochs[-1]["exact"], seconds=seconds)


def commit() -> str:
    import subprocess
    run = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return run.stdout.strip() or "unknown"


def hf_run(method: str, seed: int, args, train_set, dev_set, pad_id: int) -> dict:
    """transformers (+ peft) trained as a Trainer user would, on the same windows."""
    import peft
    import transformers as tf

    r = recipe(method, args)
    torch.manual_seed(seed)
    model = tf.AutoModelForQuestionAnswering.from_pretrained(args.model_dir)
    if method == "prefix":
        model = peft.get_peft_model(model, peft.PrefixTuningConfig(task_type="QUESTION_ANS",
                                                                   num_virtual_tokens=args.prefix_tokens))
        if args.prefix_init == "text" and args.hf_prefix_init == "same":
            with torch.no_grad():
                model.prompt_encoder["default"].embedding.weight.copy_(text_prefix(args))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = [p for n, p in named if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in named if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": r["weight_decay"]},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=r["lr"])
    steps = math.ceil(len(train_set) / r["batch_size"]) * r["epochs"]
    scheduler = tf.get_linear_schedule_with_warmup(optimizer, math.ceil(steps * r["warmup_ratio"]), steps)
    started = time.perf_counter()
    for epoch in range(r["epochs"]):
        model.train()
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()
        for start in range(0, len(order), r["batch_size"]):
            batch = make_batch(train_set, order[start:start + r["batch_size"]], pad_id)
            labels = batch.pop("labels")
            loss = model(**batch, start_positions=labels[:, 0], end_positions=labels[:, 1]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
    seconds = (time.perf_counter() - started) / r["epochs"]
    return dict(**hf_scores(model, dev_set, pad_id), seconds=seconds)


def text_prefix(args) -> torch.Tensor:
    """The starting prefix train.py's --prefix-init text makes for SQuAD, to hand to peft (the same flat layout)."""
    from ptuning.model import MethodConfig, load_model

    method = MethodConfig(method="prefix", num_virtual_tokens=args.prefix_tokens, prefix_init="text")
    model = load_model(args.model_dir, method, lambda c: qa.head(c, method, 1))
    tokenizer = Tokenizer.from_folder(args.model_dir, model.encoder.config)
    model.init_prefix_from_tokens(prefix_start_ids(tokenizer, qa.PREFIX_TEXT, args.prefix_tokens))
    return model.prefix_encoder.embedding.weight.detach().clone()


@torch.no_grad()
def hf_scores(model, data, pad_id: int) -> dict:
    """The same streaming decoder and metric as ours."""
    model.eval()
    settings = data.options
    decoder = qa.Decoder(data.questions, data.features, settings.n_best, settings.max_answer_length)
    for start in range(0, len(data), 64):
        indices = list(range(start, min(start + 64, len(data))))
        batch = make_batch(data, indices, pad_id)
        batch.pop("labels", None)
        out = model(**batch)
        decoder.add(indices, out.start_logits, out.end_logits)
    scores = qa.squad_scores(decoder.predictions(), data.questions, settings.version_2)
    return dict(f1=scores["f1"], exact=scores["exact"])


def summary(values) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0:.2f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=["prefix", "full"], choices=["prefix", "full"])
    p.add_argument("--sides", nargs="+", default=["ours", "hf"], choices=["ours", "hf"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--model", default="minilm")
    p.add_argument("--data-dir", help="SQuAD folder (default: $SQUAD_DIR, else data/squad)")
    p.add_argument("--n", type=int, default=2000, help="first N training questions (default: 2000)")
    p.add_argument("--n-dev", type=int, help="first N dev questions (default: all of dev.json)")
    p.add_argument("--epochs", type=int, default=2, help="default: 2 (CPU; the recipes' 20/10 are for GPUs)")
    p.add_argument("--max-length", type=int, default=384, help="window length (default: 384)")
    p.add_argument("--doc-stride", type=int, default=128, help="default: 128")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--prefix-tokens", type=int, default=qa.RECIPES["prefix"]["num_virtual_tokens"],
                   help="virtual tokens of the prefix, both sides (default: our recipe's %(default)s)")
    p.add_argument("--prefix-init", choices=("random", "text"), default="random",
                   help="ours: train.py --prefix-init (default: random, peft's start)")
    p.add_argument("--hf-prefix-init", choices=("same", "random"), default="same",
                   help="with --prefix-init text: peft starts from the same prefix (same, the default) "
                        "or from its own random one")
    p.add_argument("--lr-prefix", type=float, help=f"default: our QA recipe's {qa.RECIPES['prefix']['lr']}")
    p.add_argument("--lr-full", type=float, help=f"default: our QA recipe's {qa.RECIPES['full']['lr']}")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                   help="ours: train.py --precision (default: its auto); the transformers side always runs fp32, "
                        "so a table of both sides takes fp32 or none")
    p.add_argument("--jsonl", help="ours: append one JSON line per run with every epoch's dev F1/EM and train loss")
    p.add_argument("--runs", default="runs/bench-squad")
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args(argv)
    args.lr = {m: v for m, v in (("prefix", args.lr_prefix), ("full", args.lr_full)) if v is not None}
    args.model_dir = resolve_model_dir(args.model)
    if "hf" in args.sides and args.precision not in (None, "fp32"):
        p.error(f"--precision {args.precision} is for our side only (the transformers side runs fp32); "
                "pass --sides ours, or no --precision")

    if "hf" in args.sides:  # the windows the HF side trains on and is scored on: as train.py makes them
        tokenizer = Tokenizer.from_folder(args.model_dir, EncoderConfig.from_json(args.model_dir),
                                          max_length=args.max_length)
        train_questions = qa.read("squad", "train", args.data_dir)[:args.n]
        dev_questions = qa.read("squad", "dev", args.data_dir)[:args.n_dev]
        train_set, dev_set = (qa.encode(tokenizer, questions, doc_stride=args.doc_stride)
                              for questions in (train_questions, dev_questions))
    rows = []
    for method in args.methods:
        for side in args.sides:
            runs = [ours(method, seed, args) if side == "ours" else
                    hf_run(method, seed, args, train_set, dev_set, tokenizer.pad_id) for seed in args.seeds]
            r = recipe(method, args)
            name = "ptuning" if side == "ours" else ("transformers + peft" if method == "prefix" else "transformers")
            rows.append(f"| {method} | {name} | {r['epochs']} | {r['lr']:g} | {summary([x['f1'] for x in runs])} | "
                        f"{summary([x['exact'] for x in runs])} | {', '.join(format(x['f1'], '.2f') for x in runs)} | "
                        f"{statistics.mean(x['seconds'] for x in runs):.0f} |")
            print(rows[-1], flush=True)
    header = ("| method | side | epochs | lr | F1 (last epoch) | EM | F1 per seed | s/epoch |\n"
              "|---|---|---|---|---|---|---|---|")
    dev = f"first {args.n_dev} of dev.json" if args.n_dev else "dev.json"
    note = (f"\n### SQuAD v1.1, {datetime.date.today()}, {device_name()}, model {args.model}, seeds {args.seeds}\n\n"
            f"First {args.n} training questions, {dev}, windows of {args.max_length} (stride {args.doc_stride}), batch "
            f"{args.batch_size}, prefix {args.prefix_tokens} tokens, prefix init {args.prefix_init}. "
            f"`python bench/squad.py {' '.join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))}`"
            f"\n\n{header}\n" + "\n".join(rows) + "\n")
    publish(note, args.write)
    return rows


if __name__ == "__main__":
    main()
