"""Mixed-adapter scoring: one backbone pass per mixed batch (AdapterBank) vs one pass per adapter.

Rows arrive in order, each naming one of K adapters (v1 and v2, different prompt lengths).
Both ways score the same batches of arriving rows; "per adapter" splits each batch by adapter and
runs each part through that adapter alone, as serving one model per task would.

    python bench/multi_adapter.py [--batch-size 64] [--write]
"""
from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from report import device_name, publish  # noqa: E402

from ptuning.tasks.glue import find_data_dir, read_glue  # noqa: E402
from ptuning.weights import load_encoder, resolve_model_dir  # noqa: E402
from ptuning.model import MethodConfig, PromptModel, sequence_head  # noqa: E402
from ptuning.adapters.bank import AdapterBank  # noqa: E402
from ptuning.text.tokenizer import Tokenizer, collate  # noqa: E402

ADAPTERS = {
    "v1-20": MethodConfig(method="ptuning", num_virtual_tokens=20),
    "v1-8": MethodConfig(method="ptuning", num_virtual_tokens=8, reparam="lstm"),
    "v2-20": MethodConfig(method="prefix", num_virtual_tokens=20),
    "v2-10": MethodConfig(method="prefix", num_virtual_tokens=10, prefix_projection=True),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rows", type=int, default=408, help="MRPC dev rows to score (default: all 408)")
    p.add_argument("--write", action="store_true", help="append the result to BENCHMARKS.md")
    args = p.parse_args()

    model_dir = resolve_model_dir("minilm")
    encoder, _ = load_encoder(model_dir)
    torch.manual_seed(0)
    adapters = {name: PromptModel(encoder, method, sequence_head(encoder.config, method, 2)).eval() for name, method in ADAPTERS.items()}
    bank = AdapterBank(adapters).eval()
    tokenizer = Tokenizer.from_folder(model_dir, encoder.config, 20)  # room for the longest prompt
    rows = read_glue("mrpc", "dev", find_data_dir())[:args.rows]
    names = [list(ADAPTERS)[i % len(ADAPTERS)] for i in range(len(rows))]
    encoded = tokenizer.encode_batch([(r.text_a, r.text_b) for r in rows])
    batches = [range(i, min(i + args.batch_size, len(rows))) for i in range(0, len(rows), args.batch_size)]

    def mixed():
        for idx in batches:
            b = collate([encoded[i] for i in idx], tokenizer.pad_id)
            bank(b["input_ids"], b["attention_mask"], b["token_type_ids"], [names[i] for i in idx])

    def per_adapter():
        for idx in batches:
            for name, model in adapters.items():
                part = [i for i in idx if names[i] == name]
                if part:
                    b = collate([encoded[i] for i in part], tokenizer.pad_id)
                    model(b["input_ids"], b["attention_mask"], b["token_type_ids"])

    results = {}
    with torch.no_grad():
        for label, fn in (("per adapter", per_adapter), ("one pass (AdapterBank)", mixed)) * 2:
            t = time.perf_counter()
            fn()
            results[label] = len(rows) / (time.perf_counter() - t)  # the second round counts (warm)
    device = device_name()
    text = (f"\n### Many adapters, one backbone, {datetime.date.today()}, {device}, MiniLM, fp32\n\n"
            f"`python bench/multi_adapter.py --batch-size {args.batch_size}`: {len(rows)} MRPC dev rows, "
            f"{len(ADAPTERS)} adapters ({', '.join(ADAPTERS)}) in turn, batches of {args.batch_size} arriving rows.\n\n"
            "| way | rows/s |\n|---|---|\n" + "\n".join(f"| {k} | {v:.1f} |" for k, v in results.items()) +
            f"\n\nOne pass is {results['one pass (AdapterBank)'] / results['per adapter']:.2f}× per-adapter passes.\n")
    publish(text, args.write)


if __name__ == "__main__":
    main()
