"""torchrun with 2 CPU processes (gloo) ends with the metrics of one process on the same global batch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import train  # noqa: E402


@pytest.fixture(scope="module")
def minilm_without_dropout(tmp_path_factory, minilm_dir):
    """MiniLM with dropout off: the processes draw other dropout masks than one process would."""
    folder = tmp_path_factory.mktemp("minilm_nodrop")
    config = json.loads((minilm_dir / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    for name in ("model.safetensors", "tokenizer.json", "vocab.txt"):
        (folder / name).symlink_to(minilm_dir / name)
    return folder


def metrics_of(folder):
    return [json.loads(line) for line in (Path(folder) / "metrics.jsonl").read_text().splitlines()]


def test_two_processes_match_one(tmp_path, minilm_without_dropout, glue_dir):
    args = ["--task", "mrpc", "--model", str(minilm_without_dropout), "--max-train-samples", "60",
            "--max-dev-samples", "30", "--batch-size", "16", "--method", "ptuning", "--num-virtual-tokens", "4",
            "--lr", "1e-2", "--epochs", "2", "--data-dir", str(glue_dir),
            "--precision", "fp32"]  # bf16 rounds a sum of half batches differently from the whole batch's
    assert train.main([*args, "--output-dir", str(tmp_path / "one")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(REPO / "train.py"), *args, "--output-dir", str(tmp_path / "two")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("epoch 1/2") == 1  # one process prints
    one, two = metrics_of(tmp_path / "one"), metrics_of(tmp_path / "two")
    assert len(one) == len(two) == 2
    for a, b in zip(one, two):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-4
        assert (a["accuracy"], a["f1"]) == (b["accuracy"], b["f1"])
    assert (tmp_path / "two" / "adapter_model.safetensors").exists()
