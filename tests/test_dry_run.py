"""--dry-run reports exactly what the run will train (peft users read print_trainable_parameters as exact):
the same counts as the model train.py loads, for BERT and RoBERTa, every method, with and without a
pretrained pooler in the checkpoint."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import train  # noqa: E402
from ptuning import tasks  # noqa: E402
from ptuning.model import load_model  # noqa: E402
from ptuning.training import run  # noqa: E402


def counts_of(model) -> tuple[int, int]:
    return (sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters()))


def dry_run_counts(capsys, argv) -> tuple[int, int]:
    assert train.main([*argv, "--dry-run"]) == 0
    found = re.search(r"trainable params: ([\d,]+) \|\| all params: ([\d,]+)", capsys.readouterr().out)
    return tuple(int(n.replace(",", "")) for n in found.groups())


def loaded_counts(argv) -> tuple[int, int]:
    args = run.parse_args(argv)
    family, method = tasks.family_for(args.task), run.method_config(args)
    model = load_model(args.model, method, lambda c: family.head(c, method, len(family.label_names(args.task))))
    return counts_of(model)


@pytest.mark.parametrize("method", ["ptuning", "prompt", "prefix", "full"])
@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_dry_run_counts_what_the_run_trains(family, method, tiny_dirs, capsys):
    argv = ["--task", "mrpc", "--model", str(tiny_dirs[family]), "--method", method]
    assert dry_run_counts(capsys, argv) == loaded_counts(argv)


def test_a_checkpoint_without_a_pooler_trains_a_fresh_one_and_the_dry_run_says_so(tiny_dirs, tmp_path, capsys):
    folder = tmp_path / "no-pooler"
    folder.mkdir()
    (folder / "config.json").write_text((tiny_dirs["bert"] / "config.json").read_text())
    tensors = load_file(tiny_dirs["bert"] / "model.safetensors")
    save_file({k: v for k, v in tensors.items() if "pooler" not in k}, folder / "model.safetensors")
    argv = ["--task", "mrpc", "--model", str(folder), "--method", "prefix"]
    with_pooler = dry_run_counts(capsys, ["--task", "mrpc", "--model", str(tiny_dirs["bert"]), "--method", "prefix"])
    without = dry_run_counts(capsys, argv)
    assert without == loaded_counts(argv)
    assert without[0] > with_pooler[0]  # the fresh pooler trains; a pretrained one stays frozen, as peft leaves it


def test_ner_and_qa_dry_runs_count_their_heads(tiny_dirs, capsys):
    for task, extra in (("conll2003", []), ("squad", ["--doc-stride", "16"])):  # the tiny model has 64 positions
        argv = ["--task", task, "--model", str(tiny_dirs["bert"]), "--method", "prefix", *extra]
        assert dry_run_counts(capsys, argv) == loaded_counts(argv)


def test_dry_run_refuses_what_the_run_would_refuse_before_any_work(tiny_dirs, capsys):
    """The family's check_fit runs in a dry run too: a run that cannot fit is said before sizing it."""
    with pytest.raises(SystemExit):
        train.main(["--task", "squad", "--model", str(tiny_dirs["bert"]), "--method", "prefix", "--dry-run"])
    assert "lower --doc-stride" in capsys.readouterr().err
