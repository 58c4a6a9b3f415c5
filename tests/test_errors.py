"""What a user reads when something is wrong: one message naming the file, line, key or option.

Model folders and options go through train.py's own `__main__` block (run in this process with
runpy), so the test sees exactly the exit message the shell prints. Adapter folders go through
predict.main and load_trained. Reader- and loader-level messages are tested in test_data.py,
test_loader.py and test_tokenizer.py; these are the same problems seen from the command line.
"""
from __future__ import annotations

import json
import re
import runpy
import shutil
import sys

import pytest
from conftest import REPO, tiny_hf_model
from test_predict import edited_copy, make_tiny_bert, run_predict, tiny_adapter

import train
from ptuning.adapters.files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, AdapterError
from ptuning.adapters.load import load_trained


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is faster


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir, glue_dir):
    return tiny_adapter(tmp_path_factory, minilm_dir, glue_dir)


def train_as_user(monkeypatch, capsys, *argv) -> str:
    """Run `python train.py ARGV`'s main block here; return what the user reads (exit message or stderr)."""
    monkeypatch.setattr(sys, "argv", ["train.py", *map(str, argv)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(REPO / "train.py"), run_name="__main__")
    code, err = exit_.value.code, capsys.readouterr().err
    assert code not in (0, None), f"train.py succeeded: {err}"
    assert "Traceback" not in err
    return code if isinstance(code, str) else err.rstrip("\n")


def broken_copy(model_dir, dest, *remove):
    shutil.copytree(model_dir, dest)
    for name in remove:
        (dest / name).unlink()
    return dest


def mrpc_run(model, glue_dir, out, *extra):
    return ["--task", "mrpc", "--model", model, "--data-dir", glue_dir, "--max-train-samples", "8",
            "--max-dev-samples", "8", "--batch-size", "8", "--epochs", "1", "--method", "prefix",
            "--num-virtual-tokens", "2", "--output-dir", out, *extra]


# --- model folder (what train.py --model says) -----------------------------------------------------

def test_model_without_config_json(tiny, tmp_path, glue_dir, monkeypatch, capsys):
    model = broken_copy(tiny[0], tmp_path / "model", "config.json")
    message = train_as_user(monkeypatch, capsys, *mrpc_run(model, glue_dir, tmp_path / "out"))
    assert message.startswith("train.py: ") and f"{model / 'config.json'}: missing" in message


def test_model_without_any_safetensors(tiny, tmp_path, glue_dir, monkeypatch, capsys):
    model = broken_copy(tiny[0], tmp_path / "model", "model.safetensors")
    message = train_as_user(monkeypatch, capsys, *mrpc_run(model, glue_dir, tmp_path / "out"))
    assert f"train.py: {model}: no model.safetensors or model.safetensors.index.json" in message
    assert "config.json" in message  # it lists what the folder does hold


def test_model_without_tokenizer_files(tiny, tmp_path, glue_dir, monkeypatch, capsys):
    model = broken_copy(tiny[0], tmp_path / "model", "tokenizer.json", "vocab.txt")
    message = train_as_user(monkeypatch, capsys, *mrpc_run(model, glue_dir, tmp_path / "out"))
    assert f"train.py: {model}: no tokenizer.json and no vocab.txt" in message


def test_tokenizer_larger_than_the_model_vocabulary(minilm_dir, tmp_path, glue_dir, monkeypatch, capsys):
    model = tmp_path / "model"
    tiny_hf_model("bert").save_pretrained(model, safe_serialization=True)  # vocab_size 99
    shutil.copy(minilm_dir / "tokenizer.json", model / "tokenizer.json")     # 30522 tokens
    message = train_as_user(monkeypatch, capsys, *mrpc_run(model, glue_dir, tmp_path / "out"))
    assert f"train.py: {model / 'tokenizer.json'}: 30522 tokens, but the model's vocab_size is 99" in message


def test_unknown_model_type(tiny, tmp_path, glue_dir, monkeypatch, capsys):
    model = broken_copy(tiny[0], tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "model_type": "deberta-v2"}))
    message = train_as_user(monkeypatch, capsys, *mrpc_run(model, glue_dir, tmp_path / "out"))
    assert f"train.py: {model / 'config.json'}: unknown model_type 'deberta-v2'" in message
    assert "'bert'" in message and "'roberta'" in message  # what is supported


# --- adapter folder (what predict.py --adapter says) -----------------------------------------------

@pytest.mark.parametrize("missing", [ADAPTER_CONFIG, ADAPTER_WEIGHTS])
def test_adapter_file_missing(tiny, tmp_path, capsys, missing):
    adapter = edited_copy(tiny[1], tmp_path / "adapter")
    (adapter / missing).unlink()
    with pytest.raises(AdapterError, match=re.escape(f"{adapter / missing}: missing")):
        load_trained(adapter)
    code, _, err = run_predict(capsys, "--adapter", adapter, "A.", "B.")
    assert code == 3
    assert err == f"predict.py: {adapter / missing}: missing; is {adapter} an output folder of train.py?\n"


def test_adapter_trained_on_other_weights(tiny, tmp_path, minilm_dir, capsys):
    other = make_tiny_bert(tmp_path / "other", minilm_dir, seed=1)  # same shape and files, other weights
    code, _, err = run_predict(capsys, "--adapter", tiny[1], "--model", other, "A.", "B.")
    assert code == 3 and f"predict.py: {tiny[1]} was trained on other weights than {other}" in err
    assert "fingerprint" in err


@pytest.mark.parametrize("method, named", [
    ({"method": "lora"}, "method must be one of ('ptuning', 'prompt', 'prefix', 'full'), not 'lora'"),
    ({"rank": 8}, "'rank'"),                                   # a field MethodConfig does not know
    ({"head_token": "last"}, "head_token must be 'cls' or 'first', not 'last'"),
])
def test_adapter_config_with_unknown_method_fields(tiny, tmp_path, capsys, method, named):
    adapter = edited_copy(tiny[1], tmp_path / "adapter", lambda meta: meta["method"].update(method))
    code, _, err = run_predict(capsys, "--adapter", adapter, "A.", "B.")
    assert code == 3 and err.startswith(f"predict.py: {adapter / ADAPTER_CONFIG}: bad method") and named in err


def test_adapter_config_with_more_virtual_tokens_than_positions(tiny, tmp_path, capsys):
    # The tiny model has 64 positions; a shifted prefix of 64 takes them all.
    adapter = edited_copy(tiny[1], tmp_path / "adapter",
                          lambda meta: meta["method"].update(num_virtual_tokens=64, prefix_position_shift=True))
    code, _, err = run_predict(capsys, "--adapter", adapter, "A.", "B.")
    assert code == 3
    assert err == f"predict.py: {adapter / ADAPTER_CONFIG}: 64 virtual tokens leave no room in 64 positions\n"


def test_load_trained_names_the_config_when_virtual_tokens_do_not_fit(tiny, tmp_path):
    adapter = edited_copy(tiny[1], tmp_path / "adapter",
                          lambda meta: meta["method"].update(num_virtual_tokens=64, prefix_position_shift=True))
    with pytest.raises(AdapterError, match=re.escape(str(adapter / ADAPTER_CONFIG))):
        load_trained(adapter)


def test_adapter_config_disagreeing_with_its_weights(tiny, tmp_path, capsys):
    adapter = edited_copy(tiny[1], tmp_path / "adapter", lambda meta: meta["method"].update(num_virtual_tokens=5))
    code, _, err = run_predict(capsys, "--adapter", adapter, "A.", "B.")
    assert code == 3 and f"predict.py: {adapter / ADAPTER_WEIGHTS}: adapter does not fit the model" in err
    assert "prefix_encoder.embedding.weight: adapter (4, " in err and "model (5, " in err


def test_adapter_config_without_base_model_path(tiny, tmp_path, capsys):
    adapter = edited_copy(tiny[1], tmp_path / "adapter", lambda meta: meta.pop("base_model_path"))
    code, _, err = run_predict(capsys, "--adapter", adapter, "A.", "B.")
    assert code == 3 and err == f"predict.py: {adapter / ADAPTER_CONFIG}: field 'base_model_path' is missing\n"
    assert run_predict(capsys, "--adapter", adapter, "--model", tiny[0], "A.", "B.")[0] == 0  # --model fills in


# --- options: refused before any work starts (the output folder is not created) --------------------

OPTION_CASES = [
    (["--method", "full", "--num-virtual-tokens", "5"], "--num-virtual-tokens has no meaning with --method full"),
    (["--batch-size", "0"], "--batch-size, --epochs and --grad-accum must be at least 1"),
    (["--lr", "-1"], "--lr must be positive"),
    (["--resume", "--overwrite"], "--resume and --overwrite contradict each other"),
]


@pytest.mark.parametrize("argv, message", OPTION_CASES, ids=[" ".join(a) for a, _ in OPTION_CASES])
def test_bad_options_stop_before_any_work(tiny, tmp_path, glue_dir, monkeypatch, capsys, argv, message):
    out = tmp_path / "out"
    args = ["--task", "mrpc", "--model", tiny[0], "--data-dir", glue_dir, "--output-dir", out, *argv]
    assert message in train_as_user(monkeypatch, capsys, *args)
    assert not out.exists()


def test_output_folder_holding_a_run_is_refused_and_left_alone(tiny, tmp_path, glue_dir, monkeypatch, capsys):
    out = shutil.copytree(tiny[1], tmp_path / "out")  # a folder with a trained adapter in it
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    message = train_as_user(monkeypatch, capsys, *mrpc_run(tiny[0], glue_dir, out))
    assert message == (f"train.py: {out} already holds a run; pass --resume to continue it or --overwrite "
                       "to replace it")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


# --- data ----------------------------------------------------------------------------------------

def test_missing_glue_split_names_the_file(tiny, tmp_path, glue_dir, monkeypatch, capsys):
    mrpc = tmp_path / "glue" / "MRPC"
    mrpc.mkdir(parents=True)
    head = (glue_dir / "MRPC" / "train.tsv").read_text(encoding="utf-8").splitlines(keepends=True)[:9]
    (mrpc / "train.tsv").write_text("".join(head), encoding="utf-8")
    message = train_as_user(monkeypatch, capsys, *mrpc_run(tiny[0], tmp_path / "glue", tmp_path / "out"))
    assert message.startswith(f"train.py: {mrpc / 'dev.tsv'}: file not found") and "data/README.md" in message


def test_texts_longer_than_the_model_are_truncated_and_counted(tiny, tmp_path, capsys):
    # The tiny model has 64 positions: one 300-word row must be cut, the short ones not.
    rows = ["a short one", "word " * 300, "another short one", "the last"]
    table = tmp_path / "own.tsv"
    table.write_text("sentence\tlabel\n" + "".join(f"{text}\t{i % 2}\n" for i, text in enumerate(rows)))
    capsys.readouterr()
    train.main([str(a) for a in ["--train-file", table, "--dev-file", table, "--text-a", "sentence", "--model", tiny[0],
                                 "--method", "prefix", "--num-virtual-tokens", "2", "--epochs", "1",
                                 "--batch-size", "4", "--output-dir", tmp_path / "out"]])
    assert "train 4 examples (1 truncated), dev 4 (1 truncated)" in capsys.readouterr().out


def test_non_utf8_training_file_names_file_and_line(tiny, tmp_path, monkeypatch, capsys):
    table = tmp_path / "own.tsv"
    table.write_bytes(b"sentence\tlabel\nfine\t0\ncaf\xe9\t1\n")
    message = train_as_user(monkeypatch, capsys, "--train-file", table, "--dev-file", table, "--model", tiny[0],
                            "--text-a", "sentence", "--output-dir", tmp_path / "out")
    assert message.startswith(f"train.py: {table}:3: not valid UTF-8 (byte 0xe9 at column 4)")


def test_non_utf8_prediction_file_names_file_and_line(tiny, tmp_path, capsys):
    table = tmp_path / "in.tsv"
    table.write_bytes(b"a\tb\nfine\tok\n\xff\tok\n")
    code, _, err = run_predict(capsys, "--adapter", tiny[1], "--input", table, "--text-a", "a", "--text-b", "b",
                               "--skip-bad")  # a file that is not UTF-8 stops even with --skip-bad
    assert code == 3 and err.startswith(f"predict.py: {table}:3: not valid UTF-8 (byte 0xff at column 1)")


def test_warnings_from_an_entry_point_read_as_one_line_of_the_program():
    """Not Python's `qa.py:539: UserWarning: ...` followed by a line of our source (a subprocess: pytest
    records warnings instead of printing them)."""
    import subprocess
    import sys
    code = ("import warnings; from ptuning.errors import run_main; "
            "run_main('train.py', lambda argv: warnings.warn('2 question(s) misplaced') or 0, []); "
            "warnings.warn('after')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    first, *rest = result.stderr.splitlines()
    assert first == "train.py: warning: 2 question(s) misplaced"
    assert "train.py: warning" not in "".join(rest) and "UserWarning: after" in rest[0]  # restored on the way out
