"""Every GPU measurement of the project in one command, for a lent GPU machine.

A GPU session has 15 minutes of device time in all, start-up included, so this is one prepared command
that finishes in under 8 minutes on an H100/H200 and writes its results as it goes (a run cut short
keeps what it finished):

    python bench/gpu.py --prepare .gpu             # here, once: what travels (MiniLM fp16 copy, MRPC)
    python bench/gpu.py --carry .gpu --out $OUT    # there (the device tool's run, carry [".gpu"])
    python bench/gpu.py --smoke --out /tmp/gpu     # any CPU: every step at toy sizes (a CI test runs it)

Steps, each with its own share of the time budget (--budget-s). speed runs alone (its timings must not
share the machine); then tests and accuracy run side by side (neither is timed against anything):
    env       torch / transformers / peft versions, the device
    tests     tests/test_cuda.py: parity with transformers + peft on CUDA (fp32 1e-5; bf16/fp16 within
              transformers' own error), fused vs written-out attention, train.py in fp32/bf16/fp16,
              --resume after SIGKILL, predict.py on the GPU
    speed     bench/speed.py --config cuda: roberta-large shape (random init), v1, v2 with and without
              projection, full fine-tuning, bf16, one MRPC epoch a side beside transformers + peft:
              samples/s, s/epoch, peak memory, ratios to peft and to the FLOP floor; a torch.profiler
              table of one step per method
    accuracy  bench/accuracy.py: MRPC at the recipes' full length on MiniLM (v2 20 epochs, v1 20, full
              10), seeds 1 2 3, five runs at a time on the one GPU

Files under --out (the device tool brings back at most 8): gpu.log (everything printed), results.jsonl
(a line per step: status, seconds, summary), tests.xml, speed.jsonl, profile.txt, accuracy.jsonl.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARRY_LIMIT = 64 * 2**20   # what the device tool carries in all
# Seconds of an H200 each step is given at most when the whole plan runs (the smoke run, and a run of
# chosen --steps, give each step all that is left of --budget-s). The 2026-12-04 H200 run: env 24 s
# (importing torch + transformers + peft there), speed 196 s, accuracy 176 s; tests/test_cuda.py did not
# finish in 180 s run serially (each of its train.py processes spends ~20 s starting), hence pytest-xdist.
STEP_BUDGET = {"env": 40, "speed": 210, "tests": 220, "accuracy": 220}
TOGETHER = [["env"], ["speed"], ["tests", "accuracy"]]  # the order; steps in one list run at once


def prepare(folder: Path, glue_dir: str | None) -> None:
    """The carry folder: MiniLM as an fp16 copy (the fp32 weights are 87 MiB, over the limit) and MRPC."""
    sys.path.insert(0, str(ROOT))
    from safetensors.torch import load_file, save_file

    from ptuning.text.download import data_dir
    from ptuning.weights import resolve_model_dir

    minilm, target = resolve_model_dir("minilm"), folder / "minilm"
    target.mkdir(parents=True, exist_ok=True)
    tensors = load_file(minilm / "model.safetensors")
    save_file({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()},
              target / "model.fp16.safetensors", metadata={"format": "pt"})
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (minilm / name).is_file():
            shutil.copy(minilm / name, target / name)
    mrpc = data_dir("glue", glue_dir, ROOT / "data") / "MRPC"
    (folder / "glue" / "MRPC").mkdir(parents=True, exist_ok=True)
    for name in ("train.tsv", "dev.tsv"):
        shutil.copy(mrpc / name, folder / "glue" / "MRPC" / name)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    if size > CARRY_LIMIT:
        raise SystemExit(f"{folder}: {size / 2**20:.1f} MiB, over the device tool's 64 MiB")
    print(f"{folder}: {size / 2**20:.1f} MiB to carry (MiniLM fp16, MRPC); it is git-ignored")


def widen_minilm(carried: Path, target: Path) -> Path:
    """The carried fp16 MiniLM back in fp32 (both sides of every comparison use this same copy)."""
    import torch
    from safetensors.torch import load_file, save_file

    if not (target / "model.safetensors").is_file():
        target.mkdir(parents=True, exist_ok=True)
        tensors = load_file(carried / "model.fp16.safetensors")
        save_file({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in tensors.items()},
                  target / "model.safetensors", metadata={"format": "pt"})
        for path in carried.iterdir():
            if not path.name.startswith("model."):
                shutil.copy(path, target / path.name)
    return target


class Runner:
    """Runs the steps as subprocesses, logs everything to gpu.log, one JSON line per step."""

    def __init__(self, out: Path, budget: float, env: dict, smoke: bool, whole_plan: bool = True):
        self.out, self.env, self.smoke, self.whole_plan = out, env, smoke, whole_plan
        self.deadline = time.monotonic() + budget
        self.log = open(out / "gpu.log", "a", buffering=1)
        self.lock = threading.Lock()

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")

    def together(self, steps: list[tuple[str, list[str], object]]) -> bool:
        """Run these steps at once (threads, each its own process tree); True when all were ok."""
        if len(steps) == 1:
            return self.step(*steps[0])
        results = [False] * len(steps)

        def one(i):
            results[i] = self.step(*steps[i], prefix=f"[{steps[i][0]}] ")
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(steps))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return all(results)

    def step(self, name: str, argv: list[str], summary=None, prefix: str = "") -> bool:
        left = self.deadline - time.monotonic()
        limit = min(STEP_BUDGET[name], left) if self.whole_plan and not self.smoke else left
        record = {"step": name, "command": " ".join(argv[1:])}
        if limit < 5:
            record.update(status="skipped", reason="out of time")
            return self.record(record)
        self.say(f"=== {name}: {record['command']} (at most {limit:.0f} s)")
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        stopped = threading.Event()

        def stop():  # the step and every process it started: a step that hangs silently is stopped too
            stopped.set()
            os.killpg(proc.pid, signal.SIGKILL)
        timer = threading.Timer(limit, stop)
        timer.start()
        tail = []
        for line in proc.stdout:  # streamed into the log as it comes
            self.log.write(prefix + line)
            tail = (tail + [line.rstrip()])[-40:]
        proc.stdout.close()
        proc.wait()
        timer.cancel()
        record["status"] = "timeout" if stopped.is_set() else "ok" if proc.returncode == 0 else "failed"
        record["returncode"] = proc.returncode
        record["seconds"] = round(time.monotonic() - started, 1)
        record["tail"] = tail[-8:]
        if summary is not None:
            try:
                record["summary"] = summary()
            except Exception as err:  # a summary is a convenience: its failure must not end the run
                record["summary"] = f"unreadable: {err}"
        return self.record(record)

    def record(self, record: dict) -> bool:
        with self.lock, open(self.out / "results.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        self.say(f"--- {record['step']}: {record['status']} {record.get('seconds', '')}")
        return record["status"] == "ok"


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="folder for the results (the device tool's $OUT)")
    p.add_argument("--carry", help="the folder --prepare made, carried to the machine")
    p.add_argument("--prepare", metavar="DIR", help="make the carry folder here and stop")
    p.add_argument("--data-dir", help="--prepare: the GLUE root holding MRPC (default: $GLUE_DIR, else data/glue)")
    p.add_argument("--smoke", action="store_true", help="every step on the CPU at toy sizes")
    p.add_argument("--budget-s", type=float, default=450, help="seconds for all steps (default: 450)")
    p.add_argument("--steps", nargs="+", choices=tuple(STEP_BUDGET), default=list(STEP_BUDGET))
    args = p.parse_args(argv)
    if args.prepare:
        prepare(Path(args.prepare), args.data_dir)
        return 0
    if not args.out:
        p.error("--out DIR is needed (or --prepare DIR)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    model = "minilm"
    if args.carry:
        carried = Path(args.carry).resolve()
        model = str(widen_minilm(carried / "minilm", Path("/tmp/ptuning-minilm")))
        env["GLUE_DIR"] = str(carried / "glue")
    env["PTUNING_TEST_MINILM"] = model
    if args.smoke:
        env["PTUNING_TEST_DEVICE"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
    python = sys.executable
    runner = Runner(out, args.budget_s, env, args.smoke, whole_plan=set(args.steps) == set(STEP_BUDGET))
    # tests in parallel processes where pytest-xdist is installed (the GPU image has it): -v names each
    # test in gpu.log as it ends, so a step stopped at its limit still says how far it got
    parallel = ["-n", "6"] if importlib.util.find_spec("xdist") else []

    plan = {
        "env": ([python, "-c", "import torch, transformers, peft, json; print(json.dumps({'torch': torch.__version__, "
                 "'transformers': transformers.__version__, 'peft': peft.__version__, 'cuda': torch.cuda.is_available(), "
                 "'device': torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'}))"], None),
        "tests": ([python, "-m", "pytest", "-v", "-p", "no:cacheprovider", *parallel, "--durations=10",
                   "tests/test_cuda.py", f"--junitxml={out / 'tests.xml'}"], lambda: test_summary(out)),
        "speed": ([python, "bench/speed.py", "--config", "cuda", "--precision", "bf16", "--tokenizer", model,
                   "--methods", "ptuning", "prefix", "prefix-noproj", "full",
                   "--jsonl", str(out / "speed.jsonl"), "--profile", str(out / "profile.txt"),
                   *(["--device", "cpu", "--shape", "tiny", "--steps", "2", "--block", "1"] if args.smoke else [])],
                  lambda: [{k: row[k] for k in ("method", "steps")} | {
                      side: {m: round(v, 3) if isinstance(v, float) else v for m, v in row[side].items()}
                      for side in ("peft", "ours")} for row in jsonl(out / "speed.jsonl")]),
        "accuracy": ([python, "bench/accuracy.py", "--tasks", "mrpc", "--methods", "prefix", "ptuning", "full",
                      "--model", model, "--runs", "/tmp/ptuning-gpu-runs", "--jobs", "5",
                      "--jsonl", str(out / "accuracy.jsonl"),
                      *(["--seeds", "1", "--epochs", "1", "--extra", "--max-train-samples 16 --max-dev-samples 8"]
                        if args.smoke else ["--seeds", "1", "2", "3"])],
                     lambda: [(r["method"], r["seed"], r["per_epoch"][-1]) for r in jsonl(out / "accuracy.jsonl")]),
    }
    if not args.smoke:
        import torch
        if not torch.cuda.is_available():
            runner.say("no CUDA GPU here: use --smoke on a CPU")
            return 2
    ok = True
    for group in TOGETHER:
        chosen = [(name, *plan[name]) for name in group if name in args.steps]
        if chosen:
            ok &= runner.together(chosen)
    runner.say(f"done: {'every step ok' if ok else 'some steps failed, see results.jsonl'}")
    return 0 if ok else 1


def test_summary(out: Path) -> dict:
    """pytest's summary from the junit file: tests, failures, errors, skipped."""
    import xml.etree.ElementTree as ET

    suite = ET.parse(out / "tests.xml").getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    return {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped", "time")}


if __name__ == "__main__":
    sys.exit(main())
