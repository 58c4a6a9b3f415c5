"""Run the per-method recipes over several seeds and tabulate dev metrics (mean ± std).

    python bench/accuracy.py --tasks mrpc --methods prefix ptuning full --seeds 1 2 3 --model minilm
    python bench/accuracy.py ... --epochs 3 --extra "--head-token first"   # override recipe options

Each run is `train.py` in-process; its metrics.jsonl gives the best-epoch and last-epoch numbers.
The table is printed and, with --write, appended to BENCHMARKS.md under a dated heading.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from report import device_name, publish  # noqa: E402

import train  # noqa: E402
from ptuning.tasks.glue import TASKS  # noqa: E402


def run_one(task, method, seed, args) -> list[dict]:
    out = Path(args.runs) / f"{task}-{method}-s{seed}{args.tag}"
    argv = ["--task", task, "--method", method, "--seed", str(seed), "--model", args.model,
            "--output-dir", str(out), "--overwrite", *shlex.split(args.extra)]
    if args.epochs:
        argv += ["--epochs", str(args.epochs)]
    train.main(argv)
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


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
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args()

    rows = []
    for task in args.tasks:
        main_metric = TASKS[task].metrics[0]
        second = TASKS[task].metrics[1] if len(TASKS[task].metrics) > 1 else None
        for method in args.methods:
            runs = [run_one(task, method, seed, args) for seed in args.seeds]
            best = [max(r, key=lambda e: e[main_metric]) for r in runs]
            last = [r[-1] for r in runs]
            cols = [summary([b[main_metric] for b in best]), summary([x[main_metric] for x in last])]
            if second:
                cols += [summary([b[second] for b in best]), summary([x[second] for x in last])]
            per_seed = ", ".join(f"{x[main_metric]:.3f}" for x in last)
            secs = statistics.mean(e["seconds"] for r in runs for e in r)
            rows.append(f"| {task} | {method} {args.extra} | {len(runs[0])} | " + " | ".join(cols) +
                        f" | {per_seed} | {secs:.0f} |")
    device = device_name()
    header = ("| task | method | epochs | main best | main last | 2nd best | 2nd last | last per seed | s/epoch |\n"
              "|---|---|---|---|---|---|---|---|---|")
    table = "\n".join([header, *rows])
    note = (f"\n### Accuracy, {datetime.date.today()}, {device}, model {args.model}, seeds {args.seeds}\n\n"
            f"`python bench/accuracy.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}`\n\n{table}\n")
    publish(note, args.write)


if __name__ == "__main__":
    main()
