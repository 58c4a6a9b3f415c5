"""Run the per-method recipes over several seeds and tabulate dev metrics (mean ± std).

    python bench/accuracy.py --tasks mrpc --methods prefix ptuning full --seeds 1 2 3 --model minilm
    python bench/accuracy.py ... --epochs 3 --extra "--head-token first"   # override recipe options
    python bench/accuracy.py ... --jsonl bench/results/mrpc_full_length.jsonl --jobs 3   # a GPU: 3 runs at once

Each run is `train.py` in a process of its own; its metrics.jsonl gives the best-epoch and last-epoch
numbers. The table is printed and, with --write, appended to BENCHMARKS.md under a dated heading;
--jsonl appends one JSON line per run (its settings, every epoch's dev metrics and seconds, the commit).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import device_name, publish  # noqa: E402

from ptuning.tasks.glue import TASKS  # noqa: E402


def commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run_one(task, method, seed, args, threads: int | None = None) -> dict:
    """One train.py run; returns its record (settings and per-epoch metrics, as --jsonl writes it)."""
    out = Path(args.runs) / f"{task}-{method}-s{seed}{args.tag}"
    argv = [sys.executable, str(ROOT / "train.py"), "--task", task, "--method", method, "--seed", str(seed),
            "--model", args.model, "--output-dir", str(out), "--overwrite", *shlex.split(args.extra)]
    if args.epochs:
        argv += ["--epochs", str(args.epochs)]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[1:])} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    epochs = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "train_loss" in r]
    config = json.loads((out / "adapter_config.json").read_text())
    names = TASKS[task].metrics
    return {"task": task, "method": method, "seed": seed, "epochs": len(epochs), "precision": config["precision"],
            "lr": config["train"]["lr"], "num_virtual_tokens": None if method == "full" else
            config["method"]["num_virtual_tokens"], "model": args.model, "extra": args.extra,
            "per_epoch": [{"epoch": e["epoch"], **{k: e[k] for k in names}, "train_loss": e["train_loss"],
                           "seconds": e["seconds"]} for e in epochs],
            "device": device_name(), "date": str(datetime.date.today()), "commit": commit()}


def summary(values) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0:.3f}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["mrpc"])
    p.add_argument("--methods", nargs="+", default=["prefix", "ptuning", "full"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--model", default="minilm")
    p.add_argument("--epochs", type=int, help="override the recipes' epochs (CPU: fewer)")
    p.add_argument("--extra", default="", help="more train.py options, quoted")
    p.add_argument("--tag", default="", help="suffix for run folders")
    p.add_argument("--runs", default="runs/bench")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (a GPU has room for several small ones)")
    p.add_argument("--jsonl", help="append one JSON line per run to this file")
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args()

    plan = [(task, method, seed) for task in args.tasks for method in args.methods for seed in args.seeds]
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None
    results = {}

    def one(item):
        record = run_one(*item, args, threads)
        if args.jsonl:  # as each run ends: a benchmark cut short keeps what it finished
            Path(args.jsonl).parent.mkdir(parents=True, exist_ok=True)
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(record) + "\n")
        results[item] = record
        print(json.dumps(record), flush=True)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, plan))

    rows = []
    for task in args.tasks:
        main_metric = TASKS[task].metrics[0]
        second = TASKS[task].metrics[1] if len(TASKS[task].metrics) > 1 else None
        for method in args.methods:
            runs = [results[(task, method, seed)]["per_epoch"] for seed in args.seeds]
            best = [max(r, key=lambda e: e[main_metric]) for r in runs]
            last = [r[-1] for r in runs]
            cols = [summary([b[main_metric] for b in best]), summary([x[main_metric] for x in last])]
            if second:
                cols += [summary([b[second] for b in best]), summary([x[second] for x in last])]
            per_seed = ", ".join(f"{x[main_metric]:.3f}" for x in last)
            secs = statistics.mean(e["seconds"] for r in runs for e in r)
            rows.append(f"| {task} | {method} {args.extra} | {len(runs[0])} | " + " | ".join(cols) +
                        f" | {per_seed} | {secs:.0f} |")
    header = ("| task | method | epochs | main best | main last | 2nd best | 2nd last | last per seed | s/epoch |\n"
              "|---|---|---|---|---|---|---|---|---|")
    table = "\n".join([header, *rows])
    note = (f"\n### Accuracy, {datetime.date.today()}, {device_name()}, model {args.model}, seeds {args.seeds}\n\n"
            f"`python bench/accuracy.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}`\n\n{table}\n")
    publish(note, args.write)


if __name__ == "__main__":
    main()
