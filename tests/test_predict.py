"""predict.py on a tiny adapter: texts and files in, one JSON record per row out, clear errors.

The adapter is trained in seconds: a random 2-layer BERT (hidden 32) with MiniLM's vocabulary and
tokenizer files, P-tuning v2 on 32 MRPC rows for one epoch. `tiny_adapter` builds it once per
session (test_errors.py uses it too).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, TINY

sys.path.insert(0, str(REPO))

import predict  # noqa: E402
import train  # noqa: E402
from ptuning.text.batches import encode_examples  # noqa: E402
from ptuning.adapters.files import ADAPTER_CONFIG  # noqa: E402
from ptuning.adapters.load import load_trained  # noqa: E402
from ptuning.text.tables import Example  # noqa: E402
from ptuning import inference  # noqa: E402
from ptuning.inference import predict_logits  # noqa: E402


# --- the tiny model and adapter (helpers shared with test_errors.py) ------------------------------

def make_tiny_bert(folder: Path, minilm_dir: Path, seed: int = 0, **overrides) -> Path:
    """A random BertForSequenceClassification of conftest's TINY shape (64 positions) with MiniLM's
    30522-token vocabulary, plus MiniLM's tokenizer files: a model folder that loads in milliseconds."""
    import transformers as tf

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = tf.BertConfig(**{**TINY, "vocab_size": 30522, "num_labels": 2, **overrides})
    tf.BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    for name in ("tokenizer.json", "vocab.txt"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder


def train_args(model_dir: Path, out: Path, glue_dir: Path, *extra: str) -> list[str]:
    return ["--task", "mrpc", "--model", str(model_dir), "--data-dir", str(glue_dir), "--max-train-samples", "32",
            "--max-dev-samples", "16", "--batch-size", "16", "--epochs", "1", "--method", "prefix",
            "--num-virtual-tokens", "4", "--lr", "1e-2", "--output-dir", str(out), *extra]


def tiny_adapter(tmp_path_factory, minilm_dir: Path, glue_dir: Path) -> tuple[Path, Path]:
    """(model folder, adapter folder), built once per session under pytest's base temp folder."""
    root = tmp_path_factory.getbasetemp() / "tiny_minilm_vocab"
    model_dir, adapter_dir = root / "model", root / "adapter"
    if not (root / "done").is_file():
        shutil.rmtree(root, ignore_errors=True)
        make_tiny_bert(model_dir, minilm_dir)
        train.main(train_args(model_dir, adapter_dir, glue_dir))
        (root / "done").write_text("")
    return model_dir, adapter_dir


def edited_copy(adapter_dir: Path, dest: Path, edit=None) -> Path:
    """A copy of an adapter folder; `edit(meta)` changes its adapter_config.json in place."""
    shutil.copytree(adapter_dir, dest)
    if edit is not None:
        meta = json.loads((dest / ADAPTER_CONFIG).read_text())
        edit(meta)
        (dest / ADAPTER_CONFIG).write_text(json.dumps(meta))
    return dest


def run_predict(capsys, *argv) -> tuple[int, str, str]:
    """predict.main(argv) -> (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = predict.main([str(a) for a in argv])
    except SystemExit as stop:  # the error boundary (ptuning/errors.py) exits with the error's status
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is faster


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir, glue_dir):
    return tiny_adapter(tmp_path_factory, minilm_dir, glue_dir)


@pytest.fixture(scope="module")
def adapter(tiny):
    return tiny[1]


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


# --- texts on the command line ---------------------------------------------------------------------

def test_pair_prints_each_label(adapter, capsys):
    code, out, err = run_predict(capsys, "--adapter", adapter, "The cat sat.", "A cat was sitting.")
    assert code == 0 and err == ""
    assert [line.split(":")[0] for line in out.splitlines()] == ["not_equivalent", "equivalent"]


def test_one_text_for_a_pair_task_is_an_error(adapter, capsys):
    code, out, err = run_predict(capsys, "--adapter", adapter, "The cat sat.")
    assert code == 2 and out == ""
    assert err.startswith("predict.py: ") and err.count("\n") == 1
    assert "mrpc" in err and "sentence-pair" in err and "two texts" in err


def test_two_texts_for_a_single_sentence_task_is_an_error(adapter, tmp_path, capsys):
    cola = edited_copy(adapter, tmp_path / "cola", lambda meta: meta.update(task="cola"))
    code, _, err = run_predict(capsys, "--adapter", cola, "The cat sat.", "A cat was sitting.")
    assert code == 2 and "cola" in err and "single-sentence" in err and "one text, not two" in err


def test_adapter_of_users_data_takes_one_text_or_two(adapter, tmp_path, capsys):
    own = edited_copy(adapter, tmp_path / "own", lambda meta: meta.update(task=None))
    assert run_predict(capsys, "--adapter", own, "The cat sat.")[0] == 0
    assert run_predict(capsys, "--adapter", own, "The cat sat.", "A cat was sitting.")[0] == 0


@pytest.mark.parametrize("texts, which", [(["", "B."], "first text (argument 1)"),
                                          (["A.", "  \t "], "second text (argument 2)")])
def test_empty_text_on_the_command_line_names_which(adapter, capsys, texts, which):
    code, _, err = run_predict(capsys, "--adapter", adapter, *texts)
    assert code == 2 and f"predict.py: the {which} is empty" in err


def test_undecodable_argument_is_an_error_not_a_crash(adapter, capsys):
    # Python hands bytes the terminal's encoding cannot decode to sys.argv as lone surrogates.
    code, _, err = run_predict(capsys, "--adapter", adapter, b"caf\xe9".decode("utf-8", "surrogateescape"), "B.")
    assert code == 2 and "first text (argument 1) is not valid UTF-8" in err


@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "0", "A.", "B."], "--batch-size must be at least 1"),
    (["A.", "B.", "C."], "one or two texts, not 3"),
    ([], "give one or two texts, --question and --context, or --input FILE"),
    (["--input", "x.tsv", "A."], "one of them"),
    (["--output", "x.jsonl", "A.", "B."], "--output and --skip-bad go with --input"),
])
def test_option_errors(adapter, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        predict.main(["--adapter", str(adapter), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_device_without_gpu(adapter, capsys):
    code, _, err = run_predict(capsys, "--adapter", adapter, "--device", "cuda", "A.", "B.")
    assert code == 2 and "--device cuda: no CUDA GPU" in err


def test_errors_print_one_line_without_traceback(tmp_path):
    """What a user sees from the script itself: one line on stderr, exit status 1."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "predict.py", "--adapter", str(tmp_path / "nothing"), "A."],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"predict.py: {tmp_path / 'nothing' / 'adapter_config.json'}: missing")


# --- --input files ---------------------------------------------------------------------------------

def test_thousands_of_rows_in_batches_in_order(tiny, tmp_path, capsys, monkeypatch):
    model_dir, adapter = tiny
    monkeypatch.setattr(inference, "CHUNK_ROWS", 1000)  # three chunks, each in batches of 64
    rows = [(f"row {i} " + "word " * (i % 7), f"other {i % 13}") for i in range(3000)]
    tsv = tmp_path / "many.tsv"
    tsv.write_text("a\tb\n" + "".join(f"{a}\t{b}\n" for a, b in rows))
    out = tmp_path / "many.jsonl"
    code, printed, err = run_predict(capsys, "--adapter", adapter, "--input", tsv, "--text-a", "a", "--text-b", "b",
                                     "--output", out)
    assert code == 0 and err == "" and printed == f"3000 predictions written to {out}\n"
    got = records(out.read_text())
    assert len(got) == 3000 and [r["line"] for r in got] == list(range(2, 3002))
    assert all(set(r) == {"line", "label", "probabilities", "logits"} for r in got)
    # Each record belongs to its row: a few rows predicted alone give the same logits.
    model, tokenizer, _ = load_trained(adapter)
    picked = [0, 999, 1000, 2345, 2999]
    alone = encode_examples(tokenizer, [Example(*rows[i], None, 0) for i in picked])
    expected = predict_logits(model, alone, 1, tokenizer.pad_id, torch.device("cpu"),
                              lambda: torch.autocast("cpu", enabled=False))
    np.testing.assert_allclose([got[i]["logits"] for i in picked], expected, atol=1e-5)


def test_predictions_to_stdout_carry_the_line(adapter, tmp_path, capsys):
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"a": "A cat.", "b": "A dog."}\n\n{"a": "Rain.", "b": "Snow."}\n')
    code, out, err = run_predict(capsys, "--adapter", adapter, "--input", jsonl, "--text-a", "a", "--text-b", "b")
    assert code == 0 and err == ""
    assert [r["line"] for r in records(out)] == [1, 3]  # the blank line 2 is no row


def test_pair_task_input_without_text_b_names_the_option(adapter, tmp_path, capsys):
    tsv = tmp_path / "in.tsv"
    tsv.write_text("a\tb\nA.\tB.\n")
    code, _, err = run_predict(capsys, "--adapter", adapter, "--input", tsv, "--text-a", "a")
    assert code == 2 and "--text-b COLUMN" in err and str(tsv) in err


BAD_JSONL = ('{"a": "A cat.", "b": "A dog."}\n'       # 1 good
             '{"a": "Rain.", "b": \n'                  # 2 malformed
             '{"a": "", "b": "B."}\n'                  # 3 empty text
             '["A.", "B."]\n'                          # 4 not an object
             '{"a": "Sun.", "b": "Moon."}\n'           # 5 good
             '{"a": "Only one."}\n'                    # 6 no second text
             '{"a": "Last.", "b": "One."}\n')          # 7 good


def test_malformed_jsonl_line_stops_with_its_line_number(adapter, tmp_path, capsys):
    jsonl, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    jsonl.write_text(BAD_JSONL)
    code, printed, err = run_predict(capsys, "--adapter", adapter, "--input", jsonl, "--text-a", "a",
                                     "--text-b", "b", "--output", out)
    assert code == 3 and printed == "" and not out.exists()
    assert err.startswith(f"predict.py: {jsonl}:2: not valid JSON") and err.count("\n") == 1


def test_skip_bad_predicts_the_rest_and_lists_what_it_skipped(adapter, tmp_path, capsys):
    jsonl, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    jsonl.write_text(BAD_JSONL)
    code, printed, err = run_predict(capsys, "--adapter", adapter, "--input", jsonl, "--text-a", "a",
                                     "--text-b", "b", "--output", out, "--skip-bad")
    assert code == 0
    assert [r["line"] for r in records(out.read_text())] == [1, 5, 7]
    assert f"{jsonl}: skipped 4 bad line(s)" in err
    for line, reason in [(2, "not valid JSON"), (3, "empty text in column 'a'"), (4, "expected a JSON object"),
                         (6, "missing field 'b'")]:
        assert f"line {line}: {reason}" in err
    assert printed == f"3 predictions written to {out} (4 bad line(s) skipped, see above)\n"


def test_skip_bad_tsv_with_empty_texts_and_short_rows(adapter, tmp_path, capsys):
    tsv = tmp_path / "in.tsv"
    tsv.write_text("a\tb\nA.\tB.\n \tB.\nA.\t\nonly one column\nC.\tD.\n")
    code, out, err = run_predict(capsys, "--adapter", adapter, "--input", tsv, "--text-a", "a", "--text-b", "b",
                                 "--skip-bad")
    assert code == 0 and [r["line"] for r in records(out)] == [2, 6]
    assert "line 3: empty text in column 'a'" in err and "line 4: empty text in column 'b'" in err
    assert "line 5: expected 2 tab-separated columns, found 1" in err


def test_many_skipped_lines_are_counted_not_all_listed(adapter, tmp_path, capsys):
    tsv = tmp_path / "in.tsv"
    tsv.write_text("a\tb\n" + "x\t\n" * 30 + "C.\tD.\n")
    code, out, err = run_predict(capsys, "--adapter", adapter, "--input", tsv, "--text-a", "a", "--text-b", "b",
                                 "--skip-bad")
    assert code == 0 and [r["line"] for r in records(out)] == [32]
    assert "skipped 30 bad line(s)" in err and "line 21: empty" in err and "line 22: empty" not in err
    assert "… and 10 more (lines 22, 23" in err and "31)" in err


def test_skip_bad_with_no_good_row_left_is_an_error(adapter, tmp_path, capsys):
    tsv = tmp_path / "in.tsv"
    tsv.write_text("a\tb\n\tB.\n")
    code, out, err = run_predict(capsys, "--adapter", adapter, "--input", tsv, "--text-a", "a", "--text-b", "b",
                                 "--skip-bad")
    assert code == 3 and out == "" and f"{tsv}: all 1 rows are bad; the first, line 2: empty text" in err


def test_unwritable_output_names_the_option(adapter, tmp_path, capsys):
    tsv = tmp_path / "in.tsv"
    tsv.write_text("a\tb\nA.\tB.\n")
    out = tmp_path / "no such folder" / "out.jsonl"
    code, _, err = run_predict(capsys, "--adapter", adapter, "--input", tsv, "--text-a", "a", "--text-b", "b",
                               "--output", out)
    assert code == 4 and f"predict.py: --output {out}: cannot write" in err
