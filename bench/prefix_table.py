"""What prefix length and projection cost and buy: the table of the Korean P-tuning-v2 write-up, in its shape.

Rows: full fine-tuning; P-tuning v2 with prefix 20 / 100 / 200, projection off and on (prefix hidden 512),
and 200 with prefix hidden 768. Columns: dev accuracy (MRPC, MiniLM, the same epochs for every row),
seconds per epoch, peak training memory, trainable parameters.

    python bench/prefix_table.py --epochs 10 --jsonl bench/results/prefix_table.jsonl          # MiniLM, MRPC
    python bench/prefix_table.py --shape roberta-large --steps 3 --jsonl ...                    # time, memory only

Each row is train.py in a fresh process (`measure_run` below). Memory: on the CPU, the process's peak
resident memory (ru_maxrss) minus its resident memory just before `fit` starts, i.e. what training
adds to a loaded model and encoded data; on a GPU, torch.cuda.max_memory_allocated over the run.
`--shape roberta-large` builds a random model of that shape (the weights do not reach these machines)
and times a few training steps of each row instead of training to accuracy.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from report import device_name, publish  # noqa: E402

ROWS = [  # (label, train.py options)
    ("fine-tuning", ["--method", "full"]),
    *[(f"P-tuning v2, prefix {n}{', projection 512' if proj else ''}",
       ["--method", "prefix", "--num-virtual-tokens", str(n), *(["--prefix-projection", "--prefix-hidden-size", "512"]
                                                              if proj else ["--no-prefix-projection"])])
      for n in (20, 100, 200) for proj in (False, True)],
    ("P-tuning v2, prefix 200, projection 768", ["--method", "prefix", "--num-virtual-tokens", "200",
                                                 "--prefix-projection", "--prefix-hidden-size", "768"]),
]

# Run in the row's own process: train.py with `fit` wrapped to read the memory around it.
MEASURE = r"""
import json, resource, sys, time
import torch
import torch._dynamo  # imported by torch's optimizer on its first use: its memory is not training's
import ptuning.commands.train as program

def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

real_fit, seen = program.fit, {}
def measured_fit(model, train_set, *args, **kwargs):
    seen["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    seen["before"] = resident()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    records = real_fit(model, train_set, *args, **kwargs)
    seen["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if torch.cuda.is_available():
        seen["cuda_peak"] = torch.cuda.max_memory_allocated()
    return records
program.fit = measured_fit
status = program.main(sys.argv[2:])
json.dump(seen, open(sys.argv[1], "w"))
sys.exit(status)
"""


def measure_run(options: list[str], out: Path) -> dict:
    """One train.py run in a fresh process: its epochs' metrics and the memory its training added."""
    memory = out.parent / f"{out.name}.memory.json"
    done = subprocess.run([sys.executable, "-c", MEASURE, str(memory), *options, "--output-dir", str(out),
                           "--overwrite"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise SystemExit(f"train.py {' '.join(options)} failed: {done.stderr[-2000:]}")
    seen = json.loads(memory.read_text())
    epochs = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "train_loss" in r]
    cuda = seen.get("cuda_peak")
    return {"trainable": seen["trainable"], "epochs": epochs,
            "peak_mib": round((cuda if cuda is not None else seen["peak"] - seen["before"]) / 2**20, 1),
            "memory": "cuda max_memory_allocated" if cuda is not None else "peak RSS - RSS before fit"}


def roberta_large_dir(folder: Path) -> Path:
    """A random roberta-large-shaped checkpoint with MiniLM's (BERT) vocabulary: shapes are what count."""
    import transformers as tf

    from ptuning.weights import resolve_model_dir

    config = tf.BertConfig(vocab_size=30522, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                           intermediate_size=4096, max_position_embeddings=512)
    tf.BertModel(config).save_pretrained(folder, safe_serialization=True)
    minilm = resolve_model_dir("minilm")
    for name in ("tokenizer.json", "vocab.txt"):
        (folder / name).write_bytes((minilm / name).read_bytes())
    return folder


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10, help="epochs of every row (default: 10)")
    p.add_argument("--shape", choices=("minilm", "roberta-large"), default="minilm")
    p.add_argument("--steps", type=int, default=3, help="--shape roberta-large: training steps a row")
    p.add_argument("--precision", default="auto")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rows", nargs="+", type=int, help="row numbers to run (default: all)")
    p.add_argument("--extra", default="", help="more train.py options, quoted")
    p.add_argument("--jsonl", help="append one JSON line per row to this file")
    p.add_argument("--write", action="store_true", help="append the table to BENCHMARKS.md")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prefix-table-"))
    model = "minilm" if args.shape == "minilm" else str(roberta_large_dir(work / "roberta-large"))
    common = ["--task", "mrpc", "--model", model, "--precision", args.precision, "--seed", str(args.seed),
              *args.extra.split()]
    if args.shape == "minilm":
        common += ["--epochs", str(args.epochs)]
    else:  # time and memory of a few steps: batch 32 as the recipes, the first rows of MRPC
        common += ["--epochs", "1", "--max-train-samples", str(32 * args.steps), "--max-dev-samples", "32",
                   "--no-group-by-length"]
    lines = []
    for number, (label, options) in enumerate(ROWS):
        if args.rows and number not in args.rows:
            continue
        result = measure_run([*common, *options], work / f"row{number}")
        epochs = result["epochs"]
        best = max(e["accuracy"] for e in epochs)
        seconds = sum(e["seconds"] for e in epochs) / len(epochs)
        row = {"row": label, "options": options, "shape": args.shape, "epochs": len(epochs),
               "accuracy_last": epochs[-1]["accuracy"], "accuracy_best": best,
               "seconds_per_epoch": round(seconds, 1), "seconds_per_step": round(seconds / max(epochs[0]["step"], 1), 3),
               "peak_mib": result["peak_mib"], "memory": result["memory"], "trainable": result["trainable"],
               "device": device_name(), "date": str(datetime.date.today()), "precision": args.precision}
        if args.jsonl:
            Path(args.jsonl).parent.mkdir(parents=True, exist_ok=True)
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(row) + "\n")
        cells = ([f"{row['accuracy_last']:.3f} ({best:.3f})", f"{seconds:.1f}"] if args.shape == "minilm"
                 else [f"{row['seconds_per_step']:.2f}"])
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {row['peak_mib']:.0f} | {row['trainable']:,d} |")
        print(lines[-1], flush=True)
    header = ("| row | dev accuracy last (best) | s/epoch | training memory MiB | trainable |\n|---|---|---|---|---|"
              if args.shape == "minilm" else
              "| row | s/step (batch 32) | training memory MiB | trainable |\n|---|---|---|---|")
    note = (f"\n### Prefix length and projection, {datetime.date.today()}, {device_name()}, "
            f"{args.shape}, MRPC, {args.precision}\n\n`python bench/prefix_table.py {' '.join(sys.argv[1:])}`\n\n"
            f"{header}\n" + "\n".join(lines) + "\n")
    publish(note, args.write)


if __name__ == "__main__":
    main()
