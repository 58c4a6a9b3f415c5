"""End to end, measured from outside as whole processes: `train.py` against a transformers Trainer + peft
script (bench/hf_trainer.py) doing the same work, start-up, tokenization and evaluation included.

    python bench/end_to_end.py --n 640 --precision fp32 --repeats 3
    python bench/end_to_end.py --n 640 --precision bf16 --repeats 3

Both sides: the first N MRPC training pairs, P-tuning v2 with 20 virtual tokens and no projection, lr
1e-2, 6% warm-up, batch 32, one epoch, then dev accuracy on the whole dev set; MiniLM. Runs alternate
between the sides so that background load hits both alike; the table shows the median wall time.
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from report import device_name, publish  # noqa: E402


def wall(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    return seconds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=640)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--data-dir", default=os.environ.get("GLUE_DIR"), help="GLUE root (default: $GLUE_DIR)")
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args()
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    out = Path(tempfile.mkdtemp())
    sides = {
        "ptuning train.py": [sys.executable, "train.py", "--task", "mrpc", "--model", "minilm", "--method", "prefix",
                             "--max-train-samples", str(args.n), "--epochs", "1", "--precision", args.precision,
                             "--output-dir", str(out / "ours"), "--overwrite", *data],
        "transformers Trainer + peft": [sys.executable, "bench/hf_trainer.py", "--method", "prefix", "--n", str(args.n),
                                        "--precision", args.precision, "--out", str(out / "hf"), *data],
    }
    times = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, argv in sides.items():
            times[name].append(wall(argv))
            print(f"{name}: {times[name][-1]:.1f} s", flush=True)
    ours, theirs = (statistics.median(times[name]) for name in sides)
    rows = "\n".join(f"| {name} | {statistics.median(t):.1f} | {', '.join(f'{x:.1f}' for x in t)} |"
                     for name, t in times.items())
    text = (f"\n### End to end, {datetime.date.today()}, {device_name()}, {args.precision}, {args.n} MRPC pairs\n\n"
            f"`python bench/end_to_end.py {' '.join(sys.argv[1:])}`\n\n| side | median wall s | runs |\n|---|---|---|\n"
            f"{rows}\n\nours {theirs / ours:.2f}× faster, whole processes.\n")
    publish(text, args.write)


if __name__ == "__main__":
    main()
