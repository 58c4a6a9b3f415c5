"""Faults that must lose nothing: kills, signals, non-finite numbers, failing disks."""
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import train  # noqa: E402
from ptuning.adapters import files as checkpoint  # noqa: E402
from ptuning.adapters.files import load_state  # noqa: E402
from ptuning.adapters.load import load_trained  # noqa: E402

# 64 rows / 16 = 4 steps an epoch, 3 epochs; the state is saved after every step; a step log every 3 steps,
# so that a log's window spans epochs and kills (a resumed run must log exactly what an uninterrupted one does).
ARGS = ["--task", "mrpc", "--model", "minilm", "--max-train-samples", "64", "--max-dev-samples", "16",
        "--batch-size", "16", "--method", "prefix", "--lr", "1e-2", "--epochs", "3", "--save-steps", "1",
        "--logging-steps", "3"]


def metrics_of(folder):
    rows = [json.loads(line) for line in (Path(folder) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in rows]


def start(out, *extra):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, str(REPO / "train.py"), *ARGS, "--output-dir", str(out), *extra],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_saves(out, count, proc, timeout=300):
    """Wait until the state file has been (re)written `count` times after its first appearance."""
    path, seen, last = Path(out) / checkpoint.STATE, 0, None
    deadline = time.time() + timeout
    while seen < count and time.time() < deadline and proc.poll() is None:
        if path.exists() and path.stat().st_mtime_ns != last:
            last, seen = path.stat().st_mtime_ns, seen + 1
        time.sleep(0.02)


def assert_folder_usable(out):
    load_state(out)  # a resumable state is always there
    if (Path(out) / checkpoint.ADAPTER_CONFIG).exists():  # once an epoch ended: a loadable best adapter
        model, _, _ = load_trained(out)
        assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.fixture(scope="module", params=["fp32", "bf16"])
def uninterrupted(request, tmp_path_factory, glue_dir):
    """(precision, metrics of an uninterrupted run): resumed runs must end bit-identical to it, in fp32
    and in bf16 autocast alike."""
    out = tmp_path_factory.mktemp("whole") / "run"
    assert train.main([*ARGS, "--precision", request.param, "--data-dir", str(glue_dir), "--output-dir", str(out)]) == 0
    return request.param, metrics_of(out)


def test_sigkill_at_random_points_then_resume(tmp_path, uninterrupted, glue_dir):
    precision, expected = uninterrupted
    out = tmp_path / "run"
    rng = random.Random(7)
    resume = []
    for _ in range(3):  # three kills at random points, each followed by --resume
        proc = start(out, "--precision", precision, "--data-dir", str(glue_dir), *resume)
        wait_for_saves(out, rng.randint(1, 4), proc)
        time.sleep(rng.uniform(0, 0.3))
        proc.kill()
        proc.communicate()  # reaps it and closes its pipes
        assert_folder_usable(out)
        resume = ["--resume"]
    proc = start(out, "--data-dir", str(glue_dir), "--resume")  # the precision is the run's own
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert f"cpu, {precision}" in stdout
    assert metrics_of(out) == expected


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_saves_state_and_exits_nonzero(sig, tmp_path, uninterrupted, glue_dir):
    precision, expected = uninterrupted
    out = tmp_path / "run"
    proc = start(out, "--precision", precision, "--data-dir", str(glue_dir))
    wait_for_saves(out, 3, proc)  # the initial state, then two steps
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 128 + sig
    assert "stopped by signal" in stderr and "--resume" in stderr
    assert_folder_usable(out)
    assert train.main([*ARGS, "--data-dir", str(glue_dir), "--output-dir", str(out), "--resume"]) == 0
    assert metrics_of(out) == expected


@pytest.mark.parametrize("precision, said", [("fp32", "loss or gradients are not finite"),
                                              ("fp16", "the loss is not finite")])  # not the scaler's overflow
def test_nonfinite_loss_stops_naming_the_step_and_keeps_good_files(tmp_path, glue_dir, monkeypatch, capsys,
                                                                   precision, said):
    from ptuning.model import PromptModel

    calls = {"n": 0}
    original = PromptModel.forward

    def poisoned(self, *args, **kwargs):
        logits = original(self, *args, **kwargs)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 6:  # the second step of epoch 2
                return logits * float("nan")
        return logits

    monkeypatch.setattr(PromptModel, "forward", poisoned)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as stop:  # status 5: training stopped (ptuning/errors.py)
        train.main([*ARGS, "--data-dir", str(glue_dir), "--output-dir", str(out), "--precision", precision])
    assert stop.value.code == 5
    assert f"step 6: {said}" in capsys.readouterr().err
    state = load_state(out)
    assert (state["epoch"], state["batch_in_epoch"]) == (1, 1)  # the last good step
    assert all(torch.isfinite(t).all() for t in state["trainable"].values())
    assert_folder_usable(out)
    assert [r["epoch"] for r in metrics_of(out) if "train_loss" in r] == [1]
    assert "NaN" not in (out / "metrics.jsonl").read_text()  # the bad step was never logged


def test_disk_full_keeps_previous_files(tmp_path, glue_dir, monkeypatch, capsys):
    out = tmp_path / "run"
    real_save = torch.save
    calls = {"n": 0}

    def failing_save(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            with open(path, "wb") as f:
                f.write(b"partial")  # half a file, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(SystemExit) as stop:  # status 4: the operating system refused a write
        train.main([*ARGS, "--data-dir", str(glue_dir), "--output-dir", str(out)])
    assert stop.value.code == 4
    err = capsys.readouterr().err
    assert "No space left on device" in err and "intact" in err
    monkeypatch.setattr(torch, "save", real_save)
    state = load_state(out)  # the previous state, whole
    assert (state["epoch"], state["batch_in_epoch"]) == (0, 1)
    assert not list(out.glob("*.tmp")), "temporary files left behind"


def test_read_only_folder_gives_a_clear_error_and_keeps_files(tmp_path, glue_dir, monkeypatch, capsys):
    """Root ignores chmod, so the folder turns read-only by refusing new files after the first save."""
    import tempfile

    out = tmp_path / "run"
    real_mkstemp = tempfile.mkstemp
    calls = {"n": 0}

    def read_only(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise PermissionError(errno.EACCES, "Permission denied", str(out))
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(SystemExit) as stop:
        train.main([*ARGS, "--data-dir", str(glue_dir), "--output-dir", str(out)])
    assert stop.value.code == 4
    err = capsys.readouterr().err
    assert f"cannot write to {out}" in err and "Permission denied" in err and "intact" in err
    monkeypatch.setattr(tempfile, "mkstemp", real_mkstemp)
    state = load_state(out)
    assert (state["epoch"], state["batch_in_epoch"]) == (0, 1)


def test_two_cpu_runs_with_the_same_seed_are_identical(tmp_path, uninterrupted, glue_dir):
    precision, expected = uninterrupted
    out = tmp_path / "again"
    assert train.main([*ARGS, "--precision", precision, "--data-dir", str(glue_dir), "--output-dir", str(out)]) == 0
    assert metrics_of(out) == expected
