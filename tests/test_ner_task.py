"""NER as a task family: reading CoNLL-2003, batches of token labels, loss, evaluation over windows,
train.py and predict.py end to end, peft TOKEN_CLS adapters both ways."""
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import REPO, data_folder, padded_batch, tiny_hf_model

from ptuning.adapters.files import AdapterError
from ptuning.adapters.peft import export_peft, load_peft_adapter
from ptuning.model import MethodConfig, load_model
from ptuning.tasks import family_for, ner
from ptuning.text.batches import make_batch
from ptuning.text.tokenizer import Tokenizer

LABELS = 5
N = 4


@pytest.fixture(scope="module")
def conll_dir():
    return data_folder("conll2003", ("train.txt", "valid.txt"))


@pytest.fixture(scope="module")
def valid(conll_dir):
    return ner.read("conll2003", "dev", conll_dir)


def test_conll2003_is_a_token_family(conll_dir, valid):
    family = family_for("conll2003")
    assert family is ner and family.HEAD == "token" and family.dev_split("conll2003") == "dev"
    train = family.read("conll2003", "train", conll_dir)[:2000]
    assert family.label_names("conll2003", train) == ner.CONLL2003_LABELS == family.label_names("conll2003")
    assert len(valid) == 3250 and valid[0].where.endswith("valid.txt:3")
    assert family.metric_names("conll2003")[0] == "f1"


def test_data_folder_comes_from_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CONLL_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ner.DataError, match=r"nowhere: CoNLL-2003 folder not found \(taken from \$CONLL_DIR\)"):
        ner.read("conll2003", "train")
    (tmp_path / "train.txt").write_text("EU B-ORG\nrejects O\n")
    assert ner.read("conll2003", "train", tmp_path)[0].tags == ["B-ORG", "O"]


def test_dev_tag_outside_the_train_labels_names_its_line(tmp_path, minilm_dir):
    dev = tmp_path / "dev.txt"
    dev.write_text("Paris B-LOC\n\nBob B-PER\nsmiled O\n")
    sentences = ner.read_file(dev)
    tokenizer = Tokenizer.from_folder(minilm_dir)
    with pytest.raises(ner.DataError, match=r"dev.txt:3: tag B-PER \(word 'Bob'\) is not among"):
        ner.encode(tokenizer, sentences, ("O", "B-LOC", "I-LOC"))


def test_batches_pad_token_labels_and_loss_skips_them(minilm_dir, valid):
    tokenizer = Tokenizer.from_folder(minilm_dir)
    data = ner.encode(tokenizer, valid[:8], ner.CONLL2003_LABELS)
    batch = make_batch(data, list(range(8)), tokenizer.pad_id)
    labels = batch["labels"]
    assert labels.shape == batch["input_ids"].shape
    assert (labels[batch["attention_mask"] == 0] == ner.IGNORE).all()
    assert (labels[:, 0] == ner.IGNORE).all()  # [CLS]
    assert int(labels.ne(ner.IGNORE).sum()) == sum(len(s.words) for s in valid[:8])  # one label a word
    logits = torch.randn(*labels.shape, len(ner.CONLL2003_LABELS))
    keep = labels.ne(ner.IGNORE)
    want = torch.nn.functional.cross_entropy(logits[keep], labels[keep])  # HF: mean over labelled positions
    torch.testing.assert_close(ner.loss(logits, batch), want)
    torch.testing.assert_close(ner.loss(logits, batch, reduction="sum") / labels.shape[0], want)
    assert ner.loss(logits, {"labels": torch.full_like(labels, ner.IGNORE)}) == 0  # not NaN


class Oracle(torch.nn.Module):
    """Returns one-hot logits of each window's own labels (found by its ids): perfect predictions
    wherever a window predicts a word, garbage (label 1) elsewhere."""

    def __init__(self, data, num_labels):
        super().__init__()
        self.table = {tuple(e.ids): labels for e, labels in zip(data.encoded, data.labels)}
        self.num_labels = num_labels

    def forward(self, ids, mask, types):
        out = torch.zeros(*ids.shape, self.num_labels)
        for row in range(ids.shape[0]):
            length = int(mask[row].sum()) if mask is not None else ids.shape[1]
            labels = self.table[tuple(ids[row, :length].tolist())]
            for position, label in enumerate(labels):
                out[row, position, label if label != ner.IGNORE else 1] = 1.0
        return out


def test_evaluate_merges_windows_into_one_prediction_per_word(minilm_dir, valid):
    """Windows of at most 24 positions force long sentences apart; every word still gets exactly its
    owner window's prediction, so an oracle scores 1.0 and nothing is cut."""
    tokenizer = Tokenizer.from_folder(minilm_dir, max_length=24)
    sentences = valid[:300]
    data = ner.encode(tokenizer, sentences, ner.CONLL2003_LABELS)
    assert len(data) > len(sentences) and max(len(e.ids) for e in data.encoded) <= 24
    scores = ner.evaluate(Oracle(data, 9), data, 16, tokenizer.pad_id, "cpu", lambda: torch.autocast("cpu", enabled=False))
    assert scores["f1"] == scores["precision"] == scores["recall"] == 1.0
    assert {"f1_PER", "f1_LOC", "f1_ORG", "f1_MISC"} <= set(scores)


def run(script, *args, cwd=REPO, env=None):
    result = subprocess.run([sys.executable, script, *args], cwd=cwd, capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory, conll_dir):
    out = tmp_path_factory.mktemp("runs") / "conll2003-prefix"
    run("train.py", "--task", "conll2003", "--model", "minilm", "--method", "prefix", "--max-train-samples", "48",
        "--max-dev-samples", "32", "--epochs", "1", "--output-dir", str(out), env={"CONLL_DIR": str(conll_dir)})
    return out


def test_train_conll2003_writes_entity_metrics(trained):
    record = json.loads((trained / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"f1", "precision", "recall", "f1_PER"} <= set(record)
    config = json.loads((trained / "adapter_config.json").read_text())
    assert config["task"] == "conll2003" and config["label_names"] == list(ner.CONLL2003_LABELS)
    recipe = ner.RECIPES["prefix"]  # the NER recipe, not the GLUE one (20 tokens, batch 32, lr 1e-2)
    assert (config["method"]["num_virtual_tokens"], config["train"]["batch_size"], config["train"]["lr"]) == \
        (recipe["num_virtual_tokens"], recipe["batch_size"], recipe["lr"]) == (64, 16, 5e-2)


def test_predict_prints_entities_and_writes_offsets(trained, tmp_path):
    out = run("predict.py", "--adapter", str(trained), "George Washington visited Washington .")
    for line in out.splitlines():  # "TYPE<tab>text<tab>words [i, j)", or none found
        assert line == "(no entities)" or (line.split("\t")[0] in ("PER", "LOC", "ORG", "MISC")
                                           and line.split("\t")[2].startswith("words "))
    text = tmp_path / "in.txt"
    text.write_text("George  Washington visited Washington .\n\nEU rejects German call .\n")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(json.dumps({"tokens": ["George", "Washington", "visited", "Washington", "."]}) + "\n")
    for source in (text, jsonl):
        records = [json.loads(line) for line in run("predict.py", "--adapter", str(trained), "--input",
                                                     str(source)).splitlines()]
        assert [r["line"] for r in records] == ([1, 3] if source == text else [1])
        assert len(records[0]["tags"]) == 5
        line = source.read_text().splitlines()[0] if source == text else "George Washington visited Washington ."
        for entity in (e for r in records[:1] for e in r["entities"]):
            assert line[entity["start"]:entity["end"]].split() == entity["text"].split()


def test_predict_reports_a_bad_jsonl_line(trained, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tokens": ["a"]}\n{"words": ["b"]}\n')
    result = subprocess.run([sys.executable, "predict.py", "--adapter", str(trained), "--input", str(bad)], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode != 0 and "bad.jsonl:2:" in result.stderr and "Traceback" not in result.stderr


def test_train_on_users_files(tmp_path):
    """--task ner: JSONL train file, CoNLL dev file with the tag in column 1 of 3."""
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"tokens": ["Alice", "met", "Bob", "in", "Paris"],
                                         "tags": ["B-PER", "O", "B-PER", "O", "B-LOC"]}) + "\n" for _ in range(8)))
    dev = tmp_path / "dev.conll"
    dev.write_text("Alice B-PER NNP\nsleeps O VBZ\n\nParis B-LOC NNP\n")
    out = tmp_path / "run"
    run("train.py", "--task", "ner", "--train-file", str(train), "--dev-file", str(dev), "--tag-column", "1",
        "--model", "minilm", "--method", "prefix", "--epochs", "1", "--output-dir", str(out))
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["task"] == "ner" and config["label_names"] == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]



def test_dry_run_sizes_the_head_from_the_train_files_tags(tmp_path):
    train = tmp_path / "train.conll"
    train.write_text("Alice NNP B-PER\nmet VBD O\nParis NNP B-LOC\n\n")
    out = run("train.py", "--task", "ner", "--train-file", str(train), "--dev-file", str(train),
              "--model", "minilm", "--method", "prefix", "--dry-run")
    assert "5 labels" in out  # O, B-/I-LOC, B-/I-PER


# --- peft TOKEN_CLS adapters -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def token_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_token_bert")
    tiny_hf_model("bert", LABELS, kind="token").save_pretrained(folder, safe_serialization=True)
    return folder


def token_model(folder, method):
    return load_model(folder, method, lambda c: ner.head(c, method, LABELS)).eval()


def peft_configs():
    import peft

    return {"prefix": peft.PrefixTuningConfig(task_type="TOKEN_CLS", num_virtual_tokens=N),
            "ptuning": peft.PromptEncoderConfig(task_type="TOKEN_CLS", num_virtual_tokens=N, encoder_hidden_size=16)}


@pytest.mark.parametrize("kind", ["prefix", "ptuning"])
def test_peft_token_adapter_loads_with_its_logits(kind, token_dir, tmp_path):
    import peft

    torch.manual_seed(0)
    theirs = peft.get_peft_model(tiny_hf_model("bert", LABELS, kind="token"), peft_configs()[kind]).eval()
    with torch.no_grad():  # a trained-looking classifier, so the head is really read from the folder
        theirs.base_model.classifier.modules_to_save["default"].weight.normal_()
    theirs.save_pretrained(tmp_path)
    ours, meta = load_peft_adapter(tmp_path, model_dir=token_dir)
    assert meta.task == "ner" and meta.num_labels == LABELS
    ids, mask, types = padded_batch("bert")
    with torch.no_grad():
        want = theirs(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        got = ours(ids, mask, types)
    torch.testing.assert_close(got, want[:, -ids.shape[1]:], atol=1e-5, rtol=1e-5)  # v1: text positions


@pytest.mark.parametrize("kind", ["prefix", "ptuning"])
def test_export_token_adapter_to_peft(kind, token_dir, tmp_path):
    import peft
    import transformers as tf

    method = (MethodConfig(method="prefix", num_virtual_tokens=N, prefix_position_shift=True) if kind == "prefix"
              else MethodConfig(method="ptuning", num_virtual_tokens=N, encoder_hidden_size=16))
    torch.manual_seed(1)
    ours = token_model(token_dir, method)
    with torch.no_grad():
        for p in ours.head.parameters():
            p.normal_()
    export_peft(ours, tmp_path / "peft", model_dir=token_dir)
    assert json.loads((tmp_path / "peft" / "adapter_config.json").read_text())["task_type"] == "TOKEN_CLS"
    base = tf.BertForTokenClassification.from_pretrained(token_dir)
    theirs = peft.PeftModel.from_pretrained(base, tmp_path / "peft").eval()
    ids, mask, types = padded_batch("bert")
    with torch.no_grad():
        want = theirs(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        got = ours(ids, mask, types)
    torch.testing.assert_close(got, want[:, -ids.shape[1]:], atol=1e-5, rtol=1e-5)


def test_export_refuses_a_prefix_without_the_position_shift(token_dir, tmp_path):
    ours = token_model(token_dir, MethodConfig(method="prefix", num_virtual_tokens=N))
    with pytest.raises(AdapterError, match="prefix_position_shift"):
        export_peft(ours, tmp_path / "peft", model_dir=token_dir)


def test_export_peft_command_names_the_token_classification_model(tmp_path, conll_dir, capsys):
    """`ptuning export-peft` of an NER adapter tells the user to load it into a token classifier."""
    from ptuning import cli

    out = tmp_path / "run"
    run("train.py", "--task", "conll2003", "--model", "minilm", "--method", "ptuning", "--max-train-samples", "16",
        "--max-dev-samples", "8", "--epochs", "1", "--output-dir", str(out), env={"CONLL_DIR": str(conll_dir)})
    capsys.readouterr()
    assert cli.main(["export-peft", str(out), str(tmp_path / "peft")]) == 0
    shown = capsys.readouterr().out
    assert "TOKEN_CLS" in shown and "AutoModelForTokenClassification.from_pretrained(" in shown
    assert "SequenceClassification" not in shown
