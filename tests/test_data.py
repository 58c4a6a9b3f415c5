"""Tests for ptuning/text/tables.py and ptuning/tasks/glue.py: the real GLUE files, malformed files, and users' own tables."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from conftest import data_folder, unavailable
from ptuning.tasks.glue import TASKS, find_data_dir, read_glue
from ptuning.text.tables import DataError, Example, read_table

REPO = Path(__file__).resolve().parents[1]


def glue_with(task: str) -> Path:
    """The GLUE root holding `task`, found (or fetched) as train.py finds it: conftest's `data_folder`,
    which skips with a one-line how-to where it cannot be had, and fails instead when $CI is set."""
    return data_folder("glue", glue_task=task)


# --- the real files -------------------------------------------------------------------------

@pytest.mark.parametrize("task, split, count, labeled", [
    ("mrpc", "train", 3668, True), ("mrpc", "dev", 408, True), ("mrpc", "test", 1725, False),
    ("cola", "train", 8551, True), ("cola", "dev", 1043, True), ("sst2", "dev", 872, True),
    ("stsb", "dev", 1500, True), ("rte", "dev", 277, True), ("wnli", "dev", 71, True),
])
def test_real_row_counts(task, split, count, labeled):
    glue_dir = glue_with(task)
    path = glue_dir / TASKS[task].folder / TASKS[task].splits[split]
    if not path.is_file():  # a fetched task has train and dev only
        unavailable(f"{path} not found; set GLUE_DIR to a GLUE root with the test files (data/README.md)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # the real files have no bad rows to skip
        examples = read_glue(task, split, glue_dir, strict=True)
    assert len(examples) == count
    assert all((example.label is not None) == labeled for example in examples)
    assert all(example.text_a.strip() for example in examples)
    assert all((example.text_b is None) == (TASKS[task].text_b_column is None) for example in examples)


def test_mrpc_dev_bom_does_not_leak():
    glue_dir = glue_with("mrpc")
    # The BOM sits before the header's "Quality"; had it leaked, the label column would be missing.
    first = read_glue("mrpc", "dev", glue_dir)[0]
    assert first == Example(
        "He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .",
        '" The foodservice pie business does not fit our long-term growth strategy .', 1, 2)


def test_quotes_are_text_not_csv_quoting():
    glue_dir = glue_with("mrpc")
    first = read_glue("mrpc", "train", glue_dir)[0]
    assert first.text_a == ('Amrozi accused his brother , whom he called " the witness " , '
                            'of deliberately distorting his evidence .')
    assert first.line == 2


def test_cola_has_no_header():
    glue_dir = glue_with("cola")
    first = read_glue("cola", "train", glue_dir)[0]
    assert first == Example("Our friends won't buy this analysis, let alone the next one we propose.",
                            None, 1, 1)
    assert read_glue("CoLA", "test", glue_dir)[0].text_a == "Bill whistled past the house."


def test_stsb_labels_are_floats():
    glue_dir = glue_with("stsb")
    examples = read_glue("stsb", "dev", glue_dir)
    assert all(isinstance(example.label, float) and 0 <= example.label <= 5 for example in examples)
    assert examples[1].label == 4.75


def test_rte_labels_are_ids():
    glue_dir = glue_with("rte")
    examples = read_glue(TASKS["rte"], "dev", glue_dir)
    assert examples[0].label == 1   # "not_entailment"
    assert examples[1].label == 0   # "entailment"
    assert {example.label for example in examples} == {0, 1}


def test_task_table():
    assert set(TASKS) == {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}
    assert TASKS["mnli"].label_names == ("entailment", "neutral", "contradiction")
    assert TASKS["mnli"].splits["dev_matched"] == "dev_matched.tsv"
    assert TASKS["stsb"].label_values is None and TASKS["stsb"].num_labels == 1
    assert TASKS["mrpc"].metrics[0] == "accuracy" and TASKS["cola"].metrics[0] == "mcc"
    assert len({task for task in TASKS.values()}) == 9   # hashable despite the splits dict


# --- malformed files ------------------------------------------------------------------------

RTE_HEADER = "index\tsentence1\tsentence2\tlabel\n"
GOOD_RTE_ROW = "0\tA man sleeps.\tSomeone sleeps.\tentailment\n"


def write(root: Path, folder: str, name: str, content: str | bytes) -> Path:
    path = root / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# Each bad row sits on line 3, after a header and one good row, before another good row.
BAD_ROWS = {
    "wrong column count": ("RTE", RTE_HEADER, "1\tonly two\n",
                           "expected 4 tab-separated columns, found 2"),
    "label outside set": ("RTE", RTE_HEADER, "1\tA.\tB.\tmaybe\n", "label 'maybe' is not one of"),
    "empty text": ("RTE", RTE_HEADER, "1\t  \tB.\tentailment\n", "empty text in column 'sentence1'"),
    "non-numeric score": ("STS-B", "index\tsentence1\tsentence2\tscore\n", "1\tA.\tB.\thigh\n",
                          "score 'high' is not a number"),
}


@pytest.mark.parametrize("case", BAD_ROWS)
def test_bad_row_is_skipped_and_counted(tmp_path, case):
    folder, header, bad, reason = BAD_ROWS[case]
    good = GOOD_RTE_ROW if folder == "RTE" else "0\tA.\tB.\t2.5\n"
    path = write(tmp_path, folder, "dev.tsv", header + good + bad + good)
    task = "rte" if folder == "RTE" else "stsb"
    report = []
    with pytest.warns(UserWarning, match=re.escape(f"{path}: skipped 1 bad row(s); first at line 3")):
        examples = read_glue(task, "dev", tmp_path, report=report)
    assert [example.line for example in examples] == [2, 4]
    assert len(report) == 1 and report[0][0] == 3 and reason in report[0][1]


@pytest.mark.parametrize("case", BAD_ROWS)
def test_bad_row_is_an_error_when_strict(tmp_path, case):
    folder, header, bad, reason = BAD_ROWS[case]
    path = write(tmp_path, folder, "dev.tsv", header + bad)
    with pytest.raises(DataError, match="^" + re.escape(f"{path}:2: {reason}")):
        read_glue("rte" if folder == "RTE" else "stsb", "dev", tmp_path, strict=True)


@pytest.mark.parametrize("strict", [False, True])
def test_non_utf8_names_file_and_line(tmp_path, strict):
    path = write(tmp_path, "RTE", "dev.tsv",
                 RTE_HEADER.encode() + GOOD_RTE_ROW.encode() + b"1\tcaf\xe9\tB.\tentailment\n")
    with pytest.raises(DataError, match="^" + re.escape(f"{path}:3: not valid UTF-8 (byte 0xe9")):
        read_glue("rte", "dev", tmp_path, strict=strict)


@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("content, message", [
    ("", "file is empty"), (RTE_HEADER, "no data rows"),
    (RTE_HEADER + "1\tx\n", "all 1 rows are bad; the first, line 2: expected 4"),
])
def test_file_without_usable_rows(tmp_path, strict, content, message):
    path = write(tmp_path, "RTE", "dev.tsv", content)
    expected = f"{path}:2: expected 4" if strict and "all 1" in message else f"{path}: {message}"
    with pytest.raises(DataError, match=re.escape(expected)):
        read_glue("rte", "dev", tmp_path, strict=strict)


@pytest.mark.parametrize("strict", [False, True])
def test_missing_split(tmp_path, strict):
    write(tmp_path, "RTE", "train.tsv", RTE_HEADER + GOOD_RTE_ROW)
    expected = re.escape(f"{tmp_path / 'RTE' / 'dev.tsv'}: file not found") + ".*data/README.md"
    with pytest.raises(DataError, match=expected):
        read_glue("rte", "dev", tmp_path, strict=strict)


def test_missing_column_names_file(tmp_path):
    path = write(tmp_path, "RTE", "dev.tsv", "index\tsentence1\tlabel\n0\tA.\tentailment\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: no column 'sentence2' in the header")):
        read_glue("rte", "dev", tmp_path)


def test_unknown_task_and_split(tmp_path):
    with pytest.raises(DataError, match="unknown GLUE task 'squad'"):
        read_glue("squad", "dev", tmp_path)
    with pytest.raises(DataError, match="mnli has no split 'dev'.*dev_matched"):
        read_glue("mnli", "dev", tmp_path)


def test_crlf_and_blank_lines(tmp_path):
    write(tmp_path, "CoLA", "dev.tsv", "gj04\t1\t\tA fine one.\r\n\r\ngj04\t0\t*\tOne fine a.\r\n\n")
    examples = read_glue("cola", "dev", tmp_path, strict=True)
    assert examples == [Example("A fine one.", None, 1, 1), Example("One fine a.", None, 0, 3)]


# --- find_data_dir --------------------------------------------------------------------------

def test_find_data_dir_order(tmp_path, monkeypatch):
    argument, environment, default = (tmp_path / name for name in ("argument", "environment", "cwd"))
    for folder in (argument, environment, default / "data" / "glue"):
        folder.mkdir(parents=True)
    monkeypatch.chdir(default)
    monkeypatch.setenv("GLUE_DIR", str(environment))
    assert find_data_dir(argument) == argument
    assert find_data_dir(None) == environment
    monkeypatch.delenv("GLUE_DIR")
    assert find_data_dir(None).resolve() == (default / "data" / "glue").resolve()


def test_find_data_dir_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GLUE_DIR", raising=False)
    with pytest.raises(DataError, match="the --data-dir argument.*set GLUE_DIR"):
        find_data_dir(tmp_path / "nowhere")
    with pytest.raises(DataError, match=re.escape(f"default data/glue under {tmp_path}")):
        find_data_dir(None)
    monkeypatch.setenv("GLUE_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(DataError, match=r"elsewhere: GLUE folder not found \(taken from \$GLUE_DIR\)"):
        find_data_dir(None)


# --- read_table -----------------------------------------------------------------------------

def test_read_table_tsv_infers_sorted_labels(tmp_path):
    path = write(tmp_path, ".", "mine.tsv", 'text\tlabel\nsaid " hi "\tpos\nbad, really\tneg\n')
    examples, names = read_table(path, "text")
    assert names == ("neg", "pos")
    assert examples == [Example('said " hi "', None, 1, 2), Example("bad, really", None, 0, 3)]


def test_read_table_csv_quoting(tmp_path):
    content = ('premise,hypothesis,gold\n'
               '"Yes, he said ""no"".",He spoke.,yes\n'
               '"two\nlines",One line.,no\n'
               'A,,no\n')
    path = write(tmp_path, ".", "mine.csv", content)
    report = []
    with pytest.warns(UserWarning, match="skipped 1"):
        examples, names = read_table(path, "premise", "hypothesis", label="gold",
                                     label_names=["no", "yes"], report=report)
    assert names == ("no", "yes")
    assert examples == [Example('Yes, he said "no".', "He spoke.", 1, 2),
                        Example("two\nlines", "One line.", 0, 3)]
    assert report == [(5, "empty text in column 'hypothesis'")]   # the quoted record took lines 3-4


def test_read_table_given_label_names_reject_others(tmp_path):
    path = write(tmp_path, ".", "mine.tsv", "text\tlabel\na\tpos\nb\tmeh\n")
    with pytest.raises(DataError, match=re.escape(f"{path}:3: label 'meh' is not one of pos, neg")):
        read_table(path, "text", label_names=("pos", "neg"), strict=True)


def test_read_table_jsonl_malformed_line(tmp_path):
    path = write(tmp_path, ".", "mine.jsonl",
                 '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n{"text": "c", label: 1}\n'
                 '\n{"text": "d", "label": 10}\n')
    with pytest.raises(DataError, match="^" + re.escape(f"{path}:3: not valid JSON")):
        read_table(path, "text", strict=True)
    report = []
    with pytest.warns(UserWarning, match="skipped 1"):
        examples, names = read_table(path, "text", report=report)
    assert names == ("0", "1", "10")   # integers sort as numbers
    assert [(example.label, example.line) for example in examples] == [(1, 1), (0, 2), (2, 5)]
    assert [line for line, _ in report] == [3]


def test_read_table_jsonl_missing_label_and_text(tmp_path):
    path = write(tmp_path, ".", "mine.jsonl",
                 '{"text": "a", "label": "x"}\n{"text": "b"}\n{"label": "y"}\n[1, 2]\n')
    report = []
    with pytest.warns(UserWarning, match="skipped 3"):
        examples, names = read_table(path, "text", report=report)
    assert examples == [Example("a", None, 0, 1)] and names == ("x",)
    assert sorted(report) == [(2, "missing label 'label'"), (3, "missing field 'text'"),
                              (4, "expected a JSON object, found list")]


def test_read_table_regression(tmp_path):
    path = write(tmp_path, ".", "scores.csv", "a,b,score\nx,y,3.8\nx,z,1\nz,y,0.25\n")
    examples, names = read_table(path, "a", "b", label="score")
    assert names is None
    assert [example.label for example in examples] == [3.8, 1.0, 0.25]


def test_read_table_unlabeled(tmp_path):
    path = write(tmp_path, ".", "predict.tsv", "text\nfirst\nsecond\n")
    examples, names = read_table(path, "text")
    assert names is None and [example.label for example in examples] == [None, None]
    _, names = read_table(path, "text", label_names=["neg", "pos"])
    assert names == ("neg", "pos")   # kept, so predictions can be named


def test_read_table_file_errors(tmp_path):
    with pytest.raises(DataError, match="unknown table format '.txt'"):
        read_table(write(tmp_path, ".", "mine.txt", "text\na\n"), "text")
    with pytest.raises(DataError, match="no column 'sentence' in the header"):
        read_table(write(tmp_path, ".", "mine.tsv", "text\tlabel\na\t1\n"), "sentence")
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "absent.csv", "text")


def test_comma_separated_file_under_a_tsv_name_names_the_file(tmp_path):
    """A wrong delimiter: the header has no tab, so the needed columns are not found."""
    folder = tmp_path / "MRPC"
    folder.mkdir()
    (folder / "train.tsv").write_text("Quality,#1 ID,#2 ID,#1 String,#2 String\n1,1,2,a,b\n")
    with pytest.raises(DataError, match=re.escape(str(folder / "train.tsv"))):
        read_glue("mrpc", "train", tmp_path, strict=True)


def test_random_batches_when_not_grouped_by_length():
    """--no-group-by-length: batches are random draws (HF Trainer's default), not runs of similar lengths;
    the same (seed, epoch) still gives the same batches."""
    from ptuning.text.batches import batch_order
    from ptuning.training.loop import TrainConfig

    assert TrainConfig().group_by_length
    lengths = list(range(320))
    grouped = batch_order(lengths, 16, seed=3, epoch=0)
    random = batch_order(lengths, 16, seed=3, epoch=0, chunk_batches=1)
    spread = lambda batches: sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)  # noqa: E731
    assert spread(random) > 5 * spread(grouped)
    assert sorted(i for b in random for i in b) == lengths and random == batch_order(lengths, 16, 3, 0, chunk_batches=1)
