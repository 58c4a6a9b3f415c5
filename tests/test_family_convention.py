"""The task-family convention (ptuning/tasks/__init__.py): a new family is one file, and train.py and
predict.py run it unedited; `--help` shows every family's recipes as the recipes say them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import predict  # noqa: E402
import toy_family  # noqa: E402
import train  # noqa: E402
from ptuning import tasks  # noqa: E402
from ptuning.training import recipes, run  # noqa: E402

CONVENTION = ("HEAD", "TASKS", "DESCRIPTION", "PREFIX_TEXT", "PEFT_TASK_TYPE", "Options", "RECIPES", "check_fit",
              "load", "encode_options", "encode", "head", "loss", "training_loss", "evaluate", "check_predict",
              "read_rows", "predict_rows", "show")


@pytest.mark.parametrize("family", [*tasks.MODULES, toy_family], ids=lambda f: f.__name__)
def test_every_family_defines_the_convention(family):
    assert [name for name in CONVENTION if not hasattr(family, name)] == []


def test_a_new_family_runs_in_train_py_and_predict_py_unedited(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tasks, "MODULES", [*tasks.MODULES, toy_family])
    out = tmp_path / "run"
    argv = ["--task", "wordcount", "--model", "minilm", "--method", "prefix", "--max-words", "6",
            "--output-dir", str(out), "--precision", "fp32"]
    assert train.main(argv) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and {"pearson", "spearman"} <= set(records[0])  # the recipe's 2
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["task"] == "wordcount" and config["train"]["batch_size"] == 8 and config["num_labels"] == 1
    capsys.readouterr()
    assert predict.main(["--adapter", str(out), "the cat sat on the mat"]) == 0
    assert capsys.readouterr().out.startswith("'the cat sat on the mat': ")
    # Its option is its own: refused for another task by the one derivation, naming what reads it.
    with pytest.raises(SystemExit) as stopped:
        train.main(["--task", "mrpc", "--max-words", "3", "--dry-run"])
    assert stopped.value.code == 2
    assert "--max-words has no meaning with --task mrpc; it is for word counting" in capsys.readouterr().err


def test_help_shows_every_familys_recipe_values(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = capsys.readouterr().out
    for family in tasks.MODULES:
        name = family.__name__.rsplit(".", 1)[-1]
        for method in recipes.RECIPES:
            recipe = recipes.recipe(family, method, run.CLASSES)
            line = next(line for line in text.splitlines() if line.strip().startswith(f"{name} (") and
                        line.strip().endswith(f"/ {method}:" + line.split(f"/ {method}:", 1)[-1]))
            shown = dict(part.strip().split(" ", 1) for part in line.split(f"/ {method}:", 1)[1].split(","))
            assert shown == {k.replace("_", "-"): str(v) for k, v in recipe.items()}, (name, method)
    # Each recipe option's own help names every family's value (argparse folds the lines).
    folded = " ".join(text.split())
    assert "prompt/prefix length (recipe: glue: ptuning 20, prompt 20, prefix 20; ner: ptuning 16, prompt 16, " \
           "prefix 64; qa: ptuning 20, prompt 20, prefix 16; cloze: ptuning 6, prompt 6, prefix 20; else 20)" in folded
    assert "(recipe: ner: ptuning 16, prompt 16, prefix 16, full 16; qa: prefix 8, full 12; else 32)" in folded


def test_parse_args_fills_the_family_recipe_under_the_methods():
    args = run.parse_args(["--task", "conll2003", "--method", "prefix"])
    assert (args.lr, args.num_virtual_tokens, args.batch_size, args.epochs) == (5e-2, 64, 16, 5)
    args = run.parse_args(["--task", "mrpc", "--method", "prefix", "--batch-size", "8"])
    assert (args.lr, args.num_virtual_tokens, args.batch_size) == (1e-2, 20, 8)
