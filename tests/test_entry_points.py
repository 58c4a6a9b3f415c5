"""Training and prediction where the package is installed: `ptuning train`, `ptuning predict` and
`python -m ptuning` run the same code as train.py and predict.py in a checkout (ptuning/commands/train.py,
ptuning/commands/predict.py), with the command's own name in its messages."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ptuning import cli

REPO = Path(__file__).resolve().parents[1]


def test_train_and_predict_through_the_ptuning_command(tmp_path, glue_dir, capsys):
    out = tmp_path / "run"
    argv = ["train", "--task", "mrpc", "--model", "minilm", "--method", "prefix", "--max-train-samples", "32",
            "--max-dev-samples", "16", "--epochs", "1", "--data-dir", str(glue_dir), "--output-dir", str(out)]
    assert cli.main(argv) == 0
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[0])["epoch"] == 1
    capsys.readouterr()
    assert cli.main(["predict", "--adapter", str(out), "The cat sat.", "A cat was sitting."]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in shown] == ["not_equivalent", "equivalent"]


def test_python_dash_m_names_the_command_in_its_messages(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ptuning", "train", "--task", "nope"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "ptuning train: error: argument --task: unknown task 'nope'" in done.stderr
    done = subprocess.run([sys.executable, "-m", "ptuning", "train", "--task", "mrpc", "--dry-run"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "trainable params: 1,351,938" in done.stdout
    done = subprocess.run([sys.executable, "-m", "ptuning", "--help"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and all(name in done.stdout for name in ("train", "predict", "export-peft", "plot"))


def test_the_scripts_in_a_checkout_run_the_packages_code():
    import predict
    import train

    import ptuning.commands.predict
    import ptuning.commands.train
    assert train.main is ptuning.commands.train.main and predict.main is ptuning.commands.predict.main


def test_the_programs_do_not_shadow_the_library_api():
    import ptuning
    import ptuning.commands.predict  # noqa: F401
    import ptuning.commands.train  # noqa: F401
    assert callable(ptuning.predict) and ptuning.predict.__module__ == "ptuning.inference"
