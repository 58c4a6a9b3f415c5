"""Unit tests for the hostile probe's root causes where the hostile probe (test_hostile.py) sees only the outside."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
import torch

from ptuning import tasks
from ptuning.adapters import files
from ptuning.errors import StateError, finite_float
from ptuning.text.tables import canonical_label, read_table
from ptuning.training.loop import read_metrics


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN", "x"])
def test_finite_float_refuses_non_finite_and_text(text):
    with pytest.raises(argparse.ArgumentTypeError):
        finite_float(text)
    assert finite_float("1e-3") == 1e-3


@pytest.mark.parametrize("given, known", [("MRPC", "mrpc"), ("SST-2", "sst2"), ("sts-b", "stsb"), ("CoLA", "cola")])
def test_task_names_in_glue_spellings(given, known):
    assert tasks.task_name(given) == known


def test_output_dir_template_errors_name_the_field():
    assert files.output_dir_from_template("runs/{task}-{method}", task="rte", method="prefix") == "runs/rte-prefix"
    for bad, said in (("runs/{model}", "{model}"), ("runs/{}", "{}"), ("runs/{task", "'}'")):
        with pytest.raises(ValueError, match=said.replace("{", r"\{").replace("}", r"\}")):
            files.output_dir_from_template(bad, task="rte", method="prefix")


def test_labels_are_values(tmp_path):
    assert [canonical_label(x) for x in ("1", "1.0", " 1 ", "\ufeff1", "1e0", "pos", "0.5")] == \
        ["1", "1", "1", "1", "1", "pos", "0.5"]
    table = tmp_path / "t.tsv"
    table.write_text("s\tlabel\na\t1\nb\t1.0\nc\t0\n")
    examples, names = read_table(table, "s")
    assert names == ("0", "1") and [e.label for e in examples] == [1, 1, 0]
    examples, names = read_table(table, "s", task_type="regression")
    assert names is None and [e.label for e in examples] == [1.0, 1.0, 0.0]


def test_csv_unclosed_quote_names_the_lines_it_swallowed(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text('s,label\nfine,0\n"open,1\nmore,0\nlast,1\n')
    with pytest.raises(ValueError, match=r"t.csv:3: a quote opened on this line is never closed; it swallowed "
                                         r"lines 3-5 \(3 lines\)"):
        read_table(table, "s")


def test_metrics_torn_last_line_is_dropped_but_garbage_is_refused(tmp_path):
    (tmp_path / files.METRICS).write_text('{"epoch": 1, "accuracy": 0.5}\n{"epoch": 2, "accur')
    assert read_metrics(tmp_path) == [{"epoch": 1, "accuracy": 0.5}]
    (tmp_path / files.METRICS).write_text('not json\n{"epoch": 1}\n')
    with pytest.raises(StateError, match="metrics.jsonl:1"):
        read_metrics(tmp_path)


def test_metrics_are_strict_json_and_a_nan_reads_back_as_nan(tmp_path):
    """Pearson's r of constant predictions is NaN: metrics.jsonl holds null there (json.dumps would write the
    bare token NaN, which strict JSON readers refuse), and a resumed run reads it back as NaN."""
    import json
    import math

    files.append_jsonl(tmp_path / files.METRICS, {"epoch": 1, "pearson": float("nan"), "spearman": 0.5,
                                                  "loss": float("inf"), "nested": [float("-inf"), 1.0]})
    line = (tmp_path / files.METRICS).read_text()
    assert line == '{"epoch": 1, "pearson": null, "spearman": 0.5, "loss": null, "nested": [null, 1.0]}\n'
    json.loads(line, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))
    (record,) = read_metrics(tmp_path)
    assert math.isnan(record["pearson"]) and record["spearman"] == 0.5


def test_state_is_loaded_without_running_code_and_checked(tmp_path):
    torch.save({"epoch": "1"}, tmp_path / files.STATE)
    with pytest.raises(StateError, match=r"training_state.pt: key 'epoch' is a str"):
        files.load_state(tmp_path)


def test_replacing_a_run_puts_the_old_one_back_when_the_new_one_fails_early(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / files.METRICS).write_text('{"epoch": 1}\n')
    with pytest.raises(RuntimeError):
        with files.replacing_run(run):
            run.mkdir()
            (run / files.STATE).write_bytes(b"new, no adapter yet")
            raise RuntimeError("failed before the first adapter")
    assert sorted(p.name for p in run.iterdir()) == [files.METRICS]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nothing set aside is left behind


def test_foreign_files_and_stale_temporaries(tmp_path):
    for name in (files.ADAPTER_CONFIG, ".adapter_model.safetensors.ab12.tmp", "thesis.tex"):
        (tmp_path / name).write_text("x")
    assert files.foreign_files(tmp_path) == ["thesis.tex"]
    assert files.remove_stale_temporaries(tmp_path) == [".adapter_model.safetensors.ab12.tmp"]
    assert sorted(os.listdir(tmp_path)) == [files.ADAPTER_CONFIG, "thesis.tex"]


def test_fingerprint_sees_a_change_anywhere_in_the_file(tmp_path):
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(600_000)}, tmp_path / "model.safetensors")  # 2.4 MB: past the first MiB
    before = files.weights_fingerprint(tmp_path)
    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    data[-8] ^= 1
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    assert files.weights_fingerprint(tmp_path) != before


def test_adapter_config_fields_are_checked_for_type_and_range():
    good = {"method": {"method": "prefix", "num_virtual_tokens": 4}, "num_labels": 2, "label_names": ["a", "b"]}
    assert files.AdapterConfig.from_dict(good, "x.json").num_labels == 2
    for change, named in (({"num_labels": "2"}, "num_labels"), ({"max_length": -1}, "max_length"),
                          ({"label_names": ["a"]}, "label_names"), ({"precision": "fp8"}, "precision"),
                          ({"task": "nosuchtask"}, "task"), ({"method": "prefix"}, "method")):
        with pytest.raises(files.AdapterError, match=f"x.json: field '{named}'"):
            files.AdapterConfig.from_dict({**good, **change}, "x.json")
    assert json.dumps(good)  # unchanged


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_written_atomically_get_the_users_umask(tmp_path, umask, mode):
    """A run folder can be shared with a group or served by another user: its files are not mkstemp's 0600."""
    previous = os.umask(umask)
    try:
        files.write_json(tmp_path / "adapter_config.json", {"a": 1})
        files.append_jsonl(tmp_path / "metrics.jsonl", {"epoch": 1})
    finally:
        os.umask(previous)
    for name in ("adapter_config.json", "metrics.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_every_reader_takes_every_line_ending(tmp_path, ending):
    """One line reader (text/lines.py): old-Mac CR-only files are lines too, in tables and CoNLL alike,
    and a form feed inside a line is text, not a line break."""
    from ptuning.text.conll import read_conll

    table = tmp_path / "t.tsv"
    table.write_bytes(ending.join(["sentence\tlabel", "one\x0cline\t1", "two\t0", ""]).encode())
    examples, _ = read_table(table, "sentence")
    assert [(e.text_a, e.line) for e in examples] == [("one\x0cline", 2), ("two", 3)]
    conll = tmp_path / "c.txt"
    conll.write_bytes(ending.join(["EU NNP B-ORG", "rejects VBZ O", "", "Peter NNP B-PER", ""]).encode())
    sentences, _ = read_conll(conll)
    assert [s.words for s in sentences] == [["EU", "rejects"], ["Peter"]] and sentences[1].line == 4


def test_undecodable_bytes_are_named_by_line_everywhere(tmp_path):
    from ptuning.errors import DataError
    from ptuning.tasks.ner import read_sentences

    path = tmp_path / "in.txt"
    path.write_bytes(b"Alice met Bob\rcaf\xe9 au lait\n")
    with pytest.raises(DataError, match=r"in.txt:2: not valid UTF-8 \(byte 0xe9 at column 4\)"):
        read_sentences(str(path), skip_bad=False, skipped=[])


def test_jsonl_tags_true_or_false_are_not_ids(tmp_path):
    from ptuning.text.conll import NerDataError, read_jsonl

    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"tokens": ["a", "b"], "tags": [True, False]}) + "\n")
    with pytest.raises(NerDataError, match=r"t.jsonl:1: tags must be tag names .* not True"):
        read_jsonl(path, label_names=["O", "B-X"])
    path.write_text(json.dumps({"tokens": ["a", "\ud800"], "tags": ["O", "O"]}) + "\n")
    with pytest.raises(NerDataError, match=r"t.jsonl:1: token 1 holds an unpaired surrogate"):
        read_jsonl(path)


def test_a_question_of_invisible_characters_is_not_asked():
    from ptuning.tasks.qa import pair_problem

    assert "question is empty (it holds only invisible characters)" in pair_problem(None, "\u200b\u200b", "Some text.")


def test_an_edited_config_or_tokenizer_of_the_base_model_is_noticed(tmp_path, minilm_dir, glue_dir):
    """The weights' fingerprint does not see config.json or the tokenizer: they are recorded by content."""
    import shutil

    import train
    from ptuning import load_trained
    from ptuning.errors import AdapterError

    model = tmp_path / "model"
    shutil.copytree(minilm_dir, model)
    out = tmp_path / "run"
    assert train.main(["--task", "mrpc", "--model", str(model), "--method", "prefix", "--max-train-samples", "16",
                       "--max-dev-samples", "8", "--epochs", "1", "--data-dir", str(glue_dir),
                       "--output-dir", str(out)]) == 0
    load_trained(out)
    original = (model / "config.json").read_text()
    (model / "config.json").write_text(json.dumps({**json.loads(original), "layer_norm_eps": 1e-5}))
    with pytest.raises(AdapterError, match=r"config.json differ"):
        load_trained(out)
    (model / "config.json").write_text(original)
    load_trained(out)
    (model / "tokenizer.json").write_text((model / "tokenizer.json").read_text().replace('"[UNK]"', '"[UNK]"', 1) + " ")
    with pytest.raises(AdapterError, match=r"tokenizer.json differ"):
        load_trained(out)


def test_resume_after_the_train_file_changed_is_refused(tmp_path, capsys):
    import train

    table, dev = tmp_path / "train.tsv", tmp_path / "dev.tsv"
    rows = "".join(f"sentence {i} about cats\t{i % 2}\n" for i in range(24))
    table.write_text("sentence\tlabel\n" + rows)
    dev.write_text("sentence\tlabel\n" + "".join(rows.splitlines(keepends=True)[:8]))
    out = tmp_path / "run"
    argv = ["--task", "sst2", "--train-file", str(table), "--dev-file", str(dev), "--text-a", "sentence",
            "--model", "minilm", "--method", "prefix", "--epochs", "2", "--batch-size", "8", "--output-dir", str(out)]
    assert train.main([*argv, "--stop-after-steps", "2"]) == 0
    table.write_text("sentence\tlabel\n" + rows.replace("cats", "dogs"))  # the same path, other rows
    with pytest.raises(SystemExit) as stopped:
        train.main([*argv, "--resume"])
    assert stopped.value.code == 2 and "the training data differ" in capsys.readouterr().err


def test_a_full_disk_is_named_as_such_with_its_path(tmp_path, monkeypatch):
    """torch reports a failed write as a RuntimeError ("enforce fail ... PytorchStreamWriter failed writing
    file"): it is an OSError here, and the boundary says "disk full" with the path (status 4)."""
    import errno

    from ptuning.errors import describe

    def failing(obj, path, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(torch, "save", failing)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: type("U", (), {"free": 0})())
    with pytest.raises(OSError) as raised:
        files.save_state(tmp_path, {"epoch": 1})
    assert raised.value.errno == errno.ENOSPC
    message, status = describe(raised.value)
    assert status == 4 and "disk full (No space left on device)" in message and str(tmp_path) in message
    assert not list(tmp_path.glob("*.tmp"))  # the temporary went with it


@pytest.mark.parametrize("error", [
    RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 8640 vs 8528"),  # a short write
    Exception("Error while serializing: I/O error: No space left on device (os error 28)"),   # safetensors'
])
def test_every_writer_s_full_disk_is_an_os_error(tmp_path, monkeypatch, error):
    """The adapter's safetensors and the state's torch.save each say a full disk their own way; atomic_write
    makes both the OSError the boundary reports as "disk full" (status 4), and nothing is left behind."""
    import errno

    from ptuning.errors import describe

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: type("U", (), {"free": 0})())
    with pytest.raises(OSError) as raised:
        files.atomic_write(tmp_path / "adapter_model.safetensors", failing)
    assert raised.value.errno == errno.ENOSPC
    message, status = describe(raised.value)
    assert status == 4 and "disk full" in message and "adapter_model.safetensors" in message
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="not a write"):  # any other error passes through as it is
        files.atomic_write(tmp_path / "x", lambda tmp: (_ for _ in ()).throw(ValueError("not a write")))


def test_values_matplotlib_cannot_draw_are_named(tmp_path):
    pytest.importorskip("matplotlib")
    from ptuning.training.report import ReportError, plot_runs

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 1e308}\n{"epoch": 2, "train_loss": -1e308}\n')
    with pytest.raises(ReportError, match=r"metrics.jsonl: values too large to draw"):
        plot_runs(run, tmp_path / "x.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no PNG, no temporary


def test_a_kill_between_the_pairs_renames_leaves_the_previous_pair_loadable(tmp_path, minilm_dir, glue_dir,
                                                                            monkeypatch):
    """The adapter's weights and config are one unit: killed after the new weights landed and before the
    new config did, the folder still loads the previous pair, and the next run start puts it back whole."""
    import train
    from ptuning import load_trained

    out = tmp_path / "run"
    argv = ["--task", "mrpc", "--model", "minilm", "--method", "prefix", "--max-train-samples", "16",
            "--max-dev-samples", "8", "--epochs", "1", "--data-dir", str(glue_dir), "--output-dir", str(out)]
    assert train.main(argv) == 0
    before = {k: v.clone() for k, v in load_trained(out)[0].trainable_state_dict().items()}
    model = load_trained(out)[0]
    with torch.no_grad():
        model.prefix_encoder.embedding.weight.add_(1.0)  # other weights to save
    config = files.read_adapter(out)[0]

    def killed(path, obj):  # the new config never lands
        raise KeyboardInterrupt
    monkeypatch.setattr(files, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        files.save_adapter(out, model, config)
    monkeypatch.undo()
    assert (out / files.PREVIOUS).is_file()  # old config, new weights, the old weights beside them
    loaded = load_trained(out)[0].trainable_state_dict()
    assert all(torch.equal(loaded[k], before[k]) for k in before)  # the previous pair, whole
    files.remove_stale_temporaries(out)  # what a run's start does: the pair put back as it was
    assert not (out / files.PREVIOUS).exists() and files.read_adapter(out)[0].weights_sha256 == config.weights_sha256


def test_one_train_py_writes_a_run_folder_at_a_time(tmp_path, glue_dir, capsys):
    import subprocess
    import sys

    import train

    out = tmp_path / "run"
    argv = ["--task", "mrpc", "--model", "minilm", "--method", "prefix", "--max-train-samples", "16",
            "--max-dev-samples", "8", "--epochs", "1", "--data-dir", str(glue_dir), "--output-dir", str(out)]
    lock = files.lock_path(out)
    lock.write_text(f"{os.getpid()} {__import__('socket').gethostname()}")  # a live run holds it
    with pytest.raises(SystemExit) as stopped:
        train.main(argv)
    assert stopped.value.code == 2 and "is being written by another train.py" in capsys.readouterr().err
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(f"{dead.stdout.strip()} {__import__('socket').gethostname()}")  # a killed run's: stale
    assert train.main(argv) == 0
    assert not lock.exists() and (out / files.ADAPTER_CONFIG).is_file()


@pytest.mark.parametrize("name", ["adapter_model.safetensors", "metrics.jsonl", "adapter_config.json",
                                  "training_state.pt", "config.json", "tokenizer.json"])
def test_no_command_writes_over_a_runs_or_models_file(tmp_path, name, capsys):
    """One rule (files.check_write_target) for every command that writes a file: `ptuning plot -o` and
    `predict.py --output` alike never replace a run's, an adapter's or a model's file."""
    from ptuning import cli

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 0.5, "accuracy": 0.7}\n')
    target = run / name
    if name != "metrics.jsonl":
        target.write_bytes(b"precious")
    before = target.read_bytes()
    with pytest.raises(SystemExit) as stopped:
        cli.main(["plot", str(run), "-o", str(target)])
    assert stopped.value.code == 2 and "-o" in capsys.readouterr().err
    assert target.read_bytes() == before
    with pytest.raises(files.OptionError, match="--output"):
        files.check_write_target(target, "--output")


def test_a_new_picture_beside_a_run_is_fine_but_not_a_folder_or_an_input(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert files.check_write_target(run / "curves.png", "-o") == run / "curves.png"
    with pytest.raises(files.WriteError, match="is a folder"):
        files.check_write_target(run, "-o")
    with pytest.raises(files.OptionError, match="is an input"):
        files.check_write_target(tmp_path / "in.tsv", "--output", inputs=[tmp_path / "in.tsv"])


def test_a_killed_writers_temporary_goes_at_the_next_write(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "predictions.jsonl"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".predictions.jsonl.{dead.stdout.strip()}.abc123.tmp"  # what a SIGKILL leaves
    live = tmp_path / f".predictions.jsonl.{os.getpid()}.def456.tmp"          # a writer still at work
    stale.write_text("half")
    live.write_text("half")
    files.atomic_write(target, lambda tmp: Path(tmp).write_text("all\n"))
    assert target.read_text() == "all\n" and not stale.exists() and live.exists()


def test_an_output_dir_that_is_not_utf8_is_refused_before_training(tmp_path, capsys):
    import train

    with pytest.raises(SystemExit) as stopped:
        train.main(["--task", "mrpc", "--output-dir", str(tmp_path / "run\udcff"), "--dry-run"])
    assert stopped.value.code == 2 and "--output-dir: the path is not valid UTF-8" in capsys.readouterr().err


# --- the hostile pass of this round: each root cause, with a case beyond the one found ----------------

def test_writes_follow_symlinks_and_leave_devices_as_they_are(tmp_path):
    target, link = tmp_path / "target.jsonl", tmp_path / "link.jsonl"
    target.write_text("old\n")
    link.symlink_to(target)
    files.atomic_write(link, lambda tmp: Path(tmp).write_text("new\n"))
    assert link.is_symlink() and target.read_text() == "new\n"  # the link stays, its file is replaced
    files.atomic_write("/dev/null", lambda name: Path(name).write_text("gone\n"))
    assert Path("/dev/null").is_char_device()  # written in place, as a shell's `>`: still the device
    assert files.lock_path(link) == files.lock_path(target)  # one lock, whichever name a run is given


def test_a_damaged_training_state_is_refused_by_name(tmp_path):
    from ptuning.errors import StateError

    state = {"epoch": 0, "batch_in_epoch": 0, "best": float("-inf"), "loss_sum": 0.0, "seen": 0, "seconds": 0.0,
             "optimizer": {}, "scheduler": {}, "rng": torch.get_rng_state(),
             "trainable": {"head.classifier.weight": torch.full((2, 3), float("nan"))}}
    files.save_state(tmp_path, state)
    with pytest.raises(StateError, match="head.classifier.weight' holds NaN"):
        files.load_state(tmp_path)
    files.save_state(tmp_path, {**state, "trainable": {"w": torch.zeros(2)}, "epoch": -3})
    with pytest.raises(StateError, match="'epoch' is -3, negative"):
        files.load_state(tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["--method", "prefix", "--reparam", "lstm"], "--reparam has no meaning with --method prefix"),
    (["--method", "prompt", "--encoder-hidden-size", "7"], "--encoder-hidden-size has no meaning with --method prompt"),
    (["--method", "ptuning", "--prefix-dropout", "0.1"], "--prefix-dropout has no meaning with --method ptuning"),
    (["--method", "prefix", "--prefix-hidden-size", "64"], "--prefix-hidden-size has no meaning without --prefix-projection"),
    (["--method", "full", "--head-token", "first"], "--head-token has no meaning with --method full"),
    (["--label", "quality"], "--label has no meaning without --train-file"),
    (["--task", "conll2003", "--tag-column", "2"], "--tag-column has no meaning without --train-file"),
    (["--method", "prefix", "--num-virtual-tokens", "60000"], "is absurd (at most 4096"),
    (["--task", "conll2003", "--method", "ptuning", "--template", "[P*20] {a}"],  # the task's doing, not v1's
     "--template has no meaning with --task conll2003 (--method ptuning reads it for other tasks)"),
])
def test_an_option_nothing_reads_is_refused(argv, message, capsys):
    import train

    with pytest.raises(SystemExit) as stopped:
        train.main(["--task", "mrpc", *argv, "--dry-run"] if "--task" not in argv else [*argv, "--dry-run"])
    assert stopped.value.code == 2 and message in capsys.readouterr().err


def test_regression_labels_past_float32_are_bad_rows(tmp_path):
    from ptuning.errors import DataError

    table = tmp_path / "t.tsv"
    table.write_text("sentence\tscore\na\t0.5\nb\t1e39\nc\t1.5\n")
    with pytest.raises(DataError, match=r"t.tsv:3: label '1e39' is not a finite number a float32 holds"):
        read_table(table, "sentence", label="score", strict=True, task_type="regression")


def test_library_checks_beyond_the_cases_found(tmp_path):
    from ptuning.errors import OptionError
    from ptuning.tasks.qa import Options

    for settings, message in ((dict(n_best=0), "--n-best must be at least 1"),
                              (dict(doc_stride=-5), "--doc-stride must be at least 0"),
                              (dict(null_threshold=float("nan")), "--null-threshold must be a finite number")):
        with pytest.raises(OptionError, match=message):
            Options(**settings)


def test_an_empty_jsonl_sentence_is_a_bad_line(tmp_path):
    from ptuning.text.conll import NerDataError, read_jsonl

    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"tokens": ["a"], "tags": ["O"]}) + "\n" + json.dumps({"tokens": [], "tags": []}) + "\n")
    with pytest.raises(NerDataError, match=r"t.jsonl:2: `tokens` is empty"):
        read_jsonl(path)


# --- round 4 of the hostile pass ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def an_adapter(tmp_path_factory, minilm_dir, glue_dir):
    from test_predict import tiny_adapter

    return tiny_adapter(tmp_path_factory, minilm_dir, glue_dir)[1]


def test_a_run_killed_while_overwrite_replaced_another_gets_the_old_one_back(tmp_path, an_adapter):
    """SIGKILL leaves no `except`: the run set aside (`.run.replaced.*`) is what the folder held; the next
    start puts it back where the new run saved no whole adapter, and says where it is meanwhile."""
    import shutil
    import socket

    run, aside = tmp_path / "run", tmp_path / ".run.replaced.abc123"
    shutil.copytree(an_adapter, aside)
    run.mkdir()
    (run / files.STATE).write_bytes(b"the killed run's first state")
    with pytest.raises(files.AdapterError, match=r"\.run\.replaced\.abc123: train.py puts it back"):
        files.read_adapter(run)
    lock = files.lock_path(run)
    lock.write_text(f"{os.getpid()} {socket.gethostname()}")  # a live train.py writing the folder: hands off
    files.recover_replaced(run)
    assert aside.is_dir() and (run / files.STATE).read_bytes() == b"the killed run's first state"
    lock.unlink()
    # new weights without their config (killed between the two renames) are no adapter: the old run back
    shutil.copy(an_adapter / files.ADAPTER_WEIGHTS, run / files.ADAPTER_WEIGHTS)
    files.recover_replaced(run)
    assert files.whole_adapter(run) and not (run / files.STATE).read_bytes().startswith(b"the killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    # a new run that did save a whole adapter stands; what was set aside then goes
    aside.mkdir()
    (aside / files.STATE).write_text("older")
    files.recover_replaced(run)
    assert files.whole_adapter(run) and not aside.exists()


def test_an_old_run_with_only_a_state_is_put_back_too(tmp_path):
    """A stopped run (--stop-after-steps, a signal) holds a state to --resume and no adapter yet."""
    run, aside = tmp_path / "run", tmp_path / ".run.replaced.x"
    aside.mkdir()
    (aside / files.STATE).write_text("resumable")
    run.mkdir()
    (run / files.STATE).write_text("the killed new run")
    files.recover_replaced(run)
    assert (run / files.STATE).read_text() == "resumable" and not aside.exists()


def test_overwrite_through_a_symlink_replaces_the_real_folder(tmp_path):
    real, link = tmp_path / "real" / "target", tmp_path / "runs" / "link"
    real.mkdir(parents=True)
    link.parent.mkdir()
    link.symlink_to(real)
    (real / files.METRICS).write_text('{"epoch": 1}\n')
    with pytest.raises(RuntimeError):
        with files.replacing_run(link):
            assert not real.exists() and link.is_symlink()  # the folder set aside, the link left alone
            raise RuntimeError("failed before the first adapter")
    assert link.is_symlink() and (real / files.METRICS).is_file()
    assert sorted(p.name for p in real.parent.iterdir()) == ["target"]


def test_a_run_stopped_while_replacing_another_does_not_offer_resume(tmp_path):
    from ptuning.errors import TrainingStopped

    run = tmp_path / "run"
    run.mkdir()
    (run / files.METRICS).write_text('{"epoch": 1}\n')
    with pytest.raises(TrainingStopped, match="holds the run it was replacing, as it was") as stopped:
        with files.replacing_run(run):
            run.mkdir()
            raise TrainingStopped("stopped by signal 15; continue with --resume", exit_code=143)
    assert "--resume" not in str(stopped.value) and stopped.value.exit_code == 143


def test_devices_and_pipes_are_inputs_but_folders_are_not(tmp_path):
    from ptuning.text.lines import read_lines

    assert list(read_lines("/dev/null")) == []
    with pytest.raises(Exception, match="a folder, not a file"):
        list(read_lines(tmp_path))


def test_the_bank_names_a_bad_adapter_column_value_as_an_adapter_name(tmp_path):
    table = tmp_path / "rows.tsv"
    table.write_text("text\tadapter\nfine\tsst2\nodd\tnope\n")
    with pytest.raises(Exception, match=r"adapter name 'nope' is not one of sst2, cola"):
        read_table(table, "text", label="adapter", label_names=("sst2", "cola"), strict=True, label_what="adapter name")


@pytest.mark.parametrize("script, argv", [
    ("train.py", ["--no-such-option"]),
    ("predict.py", ["--adapter", "x", "--adapter-column", "name", "--input", "rows.tsv", "--text-a", "t"]),
    ("ptuning", ["plot"]),
    ("ptuning", ["plot", "runs/r", "--bogus"]),
    ("ptuning", ["export-peft", "a", "b", "c"]),
])
def test_a_command_line_error_is_one_line(script, argv, capsys):
    """argparse prints its whole usage (25 lines) before the message; ours is one line, status 2."""
    import predict
    import train

    from ptuning import cli
    main = {"train.py": train.main, "predict.py": predict.main, "ptuning": cli.main}[script]
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and len(err) == 1 and ": error: " in err[0], err
    if script == "ptuning":  # the subcommand that was given the arguments says so
        assert err[0].startswith(f"ptuning {argv[0]}: error: "), err


def test_overwrite_of_the_current_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    (run / files.METRICS).write_text('{"epoch": 1}\n')
    args = argparse.Namespace(data_dir=None, train_file=None, dev_file=None, resume=False, overwrite=True)
    files.check_output_dir(run, args, None)  # from elsewhere: fine
    monkeypatch.chdir(run)
    with pytest.raises(files.OptionError, match="it is the current folder"):
        files.check_output_dir(Path("."), args, None)


def test_resume_compares_settings_by_meaning():
    """A template is its pieces between spaces ("{a}  ?" is "{a} ?"); paths by where they lead."""
    assert files.same_setting("template", "[P*2]  {a} ?   [MASK]", "[P*2] {a} ? [MASK]")
    assert not files.same_setting("template", "[P*2] {a}? [MASK]", "[P*2] {a} ? [MASK]")  # glued: another text
    assert files.same_setting("train_file", "./x.tsv", "x.tsv")


def test_method_sizes_may_be_numpy_integers_and_are_recorded_as_ints():
    import numpy as np

    from ptuning.model import MethodConfig

    method = MethodConfig(method="prefix", num_virtual_tokens=np.int64(5))
    assert type(method.num_virtual_tokens) is int and json.dumps(method.to_dict())
    with pytest.raises(ValueError, match="num_virtual_tokens must be an integer, not 5.0"):
        MethodConfig(method="prefix", num_virtual_tokens=5.0)
