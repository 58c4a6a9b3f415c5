"""Extractive QA wired up: span head parity with transformers + peft, the task family, train.py, predict.py."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from conftest import data_folder, padded_batch, randomize_biases_and_norms, tiny_hf_model

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import predict  # noqa: E402
import train  # noqa: E402
from ptuning.adapters.load import load_trained  # noqa: E402
from ptuning.errors import DataError  # noqa: E402
from ptuning.model import MethodConfig, load_model  # noqa: E402
from ptuning.tasks import family_for, qa  # noqa: E402
from ptuning.text.batches import make_batch  # noqa: E402
from ptuning.text.tokenizer import Tokenizer  # noqa: E402
from ptuning.training import run  # noqa: E402

N = 5  # virtual tokens
pytestmark = pytest.mark.usefixtures("one_thread")


def hf_qa_model(family: str, seed: int = 0, **overrides):
    """A tiny random `BertForQuestionAnswering` / `RobertaForQuestionAnswering`, every bias and LayerNorm random."""
    import transformers as tf

    config = tiny_hf_model(family, task=False, **overrides).config
    torch.manual_seed(seed)
    cls = tf.RobertaForQuestionAnswering if family == "roberta" else tf.BertForQuestionAnswering
    return randomize_biases_and_norms(cls(config), seed).eval()


@pytest.fixture(scope="module")
def qa_dirs(tmp_path_factory):
    dirs = {}
    for family in ("roberta", "bert"):
        dirs[family] = tmp_path_factory.mktemp(f"tiny_qa_{family}")
        hf_qa_model(family).save_pretrained(dirs[family], safe_serialization=True)
    return dirs


def ours(model_dir, **method):
    method = MethodConfig(**method)
    return load_model(model_dir, method, lambda c: qa.head(c, method, 2), fused=method.method != "explicit").eval()


def their_inputs(family):
    ids, mask, types = padded_batch(family)
    return ids, mask, types, (dict(token_type_ids=types) if family == "bert" else {})


def peft_inputs(family):
    """peft 0.21's QUESTION_ANS forward takes `token_type_ids` as a named argument and never passes it
    on, for every prompt method: BERT then sees token type 0 everywhere. Ours is given the same."""
    ids, mask, types, kwargs = their_inputs(family)
    return ids, mask, torch.zeros_like(types), kwargs


def test_peft_question_answering_drops_token_types(qa_dirs):
    import peft
    import transformers as tf

    base = tf.AutoModelForQuestionAnswering.from_pretrained(qa_dirs["bert"])
    theirs = peft.get_peft_model(base, peft.PrefixTuningConfig(task_type="QUESTION_ANS", num_virtual_tokens=N)).eval()
    ids, mask, types, kwargs = their_inputs("bert")
    assert types.any()
    torch.testing.assert_close(theirs(input_ids=ids, attention_mask=mask, **kwargs).start_logits,
                               theirs(input_ids=ids, attention_mask=mask).start_logits, atol=0, rtol=0)


# --- parity ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_full_model_matches_hf_question_answering(family, fused, qa_dirs):
    import transformers as tf

    theirs = tf.AutoModelForQuestionAnswering.from_pretrained(qa_dirs[family]).eval()
    method = MethodConfig(method="full")
    model = load_model(qa_dirs[family], method, lambda c: qa.head(c, method, 2), fused=fused).eval()
    # The key table loaded the trained qa_outputs, not a fresh head.
    torch.testing.assert_close(model.head.qa_outputs.weight, theirs.qa_outputs.weight, atol=0, rtol=0)
    ids, mask, types, kwargs = their_inputs(family)
    expected = theirs(input_ids=ids, attention_mask=mask, **kwargs)
    start, end = model(ids, mask, types)
    torch.testing.assert_close(start, expected.start_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(end, expected.end_logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("projection", [False, True], ids=["no-projection", "projection"])
def test_prefix_tuning_matches_peft_question_answering(family, projection, qa_dirs):
    import peft
    import transformers as tf

    base = tf.AutoModelForQuestionAnswering.from_pretrained(qa_dirs[family])
    theirs = peft.get_peft_model(base, peft.PrefixTuningConfig(task_type="QUESTION_ANS", num_virtual_tokens=N,
                                                               prefix_projection=projection,
                                                               encoder_hidden_size=16)).eval()
    model = ours(qa_dirs[family], method="prefix", num_virtual_tokens=N, prefix_projection=projection,
                 prefix_hidden_size=16, prefix_position_shift=True)
    model.prefix_encoder.load_state_dict(theirs.prompt_encoder["default"].state_dict())
    ids, mask, types, kwargs = peft_inputs(family)
    starts, ends = torch.tensor([1, 4, 2]), torch.tensor([3, 4, 5])
    expected = theirs(input_ids=ids, attention_mask=mask, start_positions=starts, end_positions=ends, **kwargs)
    start, end = model(ids, mask, types)
    torch.testing.assert_close(start, expected.start_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(end, expected.end_logits, atol=1e-5, rtol=1e-5)
    # Same loss (mean of start and end cross-entropy), same gradients on the prefix.
    our_loss = qa.loss((start, end), {"labels": torch.stack([starts, ends], dim=-1)})
    torch.testing.assert_close(our_loss, expected.loss, atol=1e-5, rtol=1e-5)
    our_loss.backward(), expected.loss.backward()
    their_grads = dict(theirs.prompt_encoder["default"].named_parameters())
    for name, p in model.prefix_encoder.named_parameters():
        torch.testing.assert_close(p.grad, their_grads[name].grad, atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_v1_prompts_shift_positions_peft_does_not(family, qa_dirs):
    """peft's QA logits cover the virtual tokens too (n + T positions), so its start/end labels point
    n tokens early (peft issue #1974). Ours return text positions only: logit j is input token j."""
    import peft
    import transformers as tf

    base = tf.AutoModelForQuestionAnswering.from_pretrained(qa_dirs[family])
    theirs = peft.get_peft_model(base, peft.PromptTuningConfig(task_type="QUESTION_ANS", num_virtual_tokens=N)).eval()
    model = ours(qa_dirs[family], method="prompt", num_virtual_tokens=N)
    model.prompt_encoder.load_state_dict(theirs.prompt_encoder["default"].state_dict())
    ids, mask, types, kwargs = peft_inputs(family)
    expected = theirs(input_ids=ids, attention_mask=mask, **kwargs)
    start, end = model(ids, mask, types)
    assert expected.start_logits.shape == (ids.shape[0], N + ids.shape[1]) and start.shape == ids.shape
    torch.testing.assert_close(start, expected.start_logits[:, N:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(end, expected.end_logits[:, N:], atol=1e-5, rtol=1e-5)
    # The training labels index input_ids: our loss is HF's formula on the text positions.
    labels = torch.tensor([[1, 3], [4, 4], [2, 5]])
    text_only = (torch.nn.functional.cross_entropy(expected.start_logits[:, N:], labels[:, 0]) +
                 torch.nn.functional.cross_entropy(expected.end_logits[:, N:], labels[:, 1])) / 2
    torch.testing.assert_close(qa.loss((start, end), {"labels": labels}), text_only, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("peft_type", ["PREFIX_TUNING", "PROMPT_TUNING"])
def test_peft_question_answering_adapter_loads(peft_type, vocab_model, tmp_path):
    import peft
    import transformers as tf

    family = "bert"
    base = tf.AutoModelForQuestionAnswering.from_pretrained(vocab_model)
    config = (peft.PrefixTuningConfig if peft_type == "PREFIX_TUNING" else peft.PromptTuningConfig)(
        task_type="QUESTION_ANS", num_virtual_tokens=N)
    theirs = peft.get_peft_model(base, config)
    with torch.no_grad():  # a trained head, not the base checkpoint's
        theirs.base_model.qa_outputs.modules_to_save["default"].weight.normal_()
    theirs.eval().save_pretrained(tmp_path / "adapter")
    if peft_type == "PROMPT_TUNING":
        # peft trains v1 QA on start/end labels it does not shift past the prompts (#1974): its answers
        # sit n tokens off in the text, so such an adapter is refused rather than decoded wrongly.
        from ptuning.errors import AdapterError
        with pytest.raises(AdapterError, match="#1974"):
            load_trained(tmp_path / "adapter", vocab_model)
        return
    model, tokenizer, meta = load_trained(tmp_path / "adapter", vocab_model)
    assert meta.task == "squad" and meta.source == "peft" and tokenizer.max_length == 64 - N  # both take N positions
    ids, mask, types, kwargs = peft_inputs(family)
    expected = theirs(input_ids=ids, attention_mask=mask, **kwargs)
    skip = N if peft_type == "PROMPT_TUNING" else 0
    start, end = model(ids, mask, types)
    torch.testing.assert_close(start, expected.start_logits[:, skip:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(end, expected.end_logits[:, skip:], atol=1e-5, rtol=1e-5)


# --- the family: encode, loss, evaluate -----------------------------------------------------------

@pytest.fixture(scope="module")
def vocab_model(tmp_path_factory, minilm_dir):
    """A tiny BertForQuestionAnswering with MiniLM's vocabulary and tokenizer (64 positions)."""
    folder = tmp_path_factory.mktemp("tiny_qa_vocab")
    hf_qa_model("bert", vocab_size=30522).save_pretrained(folder, safe_serialization=True)
    for name in ("tokenizer.json", "vocab.txt"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def squad_dir():
    """SQuAD's folder, found as train.py finds it ($SQUAD_DIR, else data/squad); skips with a how-to without it."""
    return data_folder("squad", needs=("train.json", "dev.json"))


@pytest.fixture(scope="module")
def squad_dev(squad_dir):
    return qa.read("squad", "dev", squad_dir)[:12]


def test_family_registration_and_data_folder(tmp_path, monkeypatch, squad_dir):
    assert family_for("squad") is qa and family_for("squad_v2") is qa and qa.HEAD == "span"
    assert qa.metric_names("squad")[0] == "f1" and "NoAns_f1" in qa.metric_names("squad_v2")
    monkeypatch.delenv("SQUAD_DIR", raising=False)
    with pytest.raises(DataError, match="SQUAD_DIR"):
        qa.read("squad", "train", tmp_path / "absent")
    monkeypatch.setenv("SQUAD_DIR", str(squad_dir))
    assert len(qa.read("squad", "dev")) == 1746


def test_encode_labels_and_loss(vocab_model, squad_dev):
    tokenizer = Tokenizer.from_folder(vocab_model, max_length=64)
    data = qa.encode(tokenizer, squad_dev, doc_stride=16)
    assert len(data) == len(data.features) > len(squad_dev)  # long contexts: several windows
    batch = make_batch(data, [0, 1, 2], tokenizer.pad_id)
    assert batch["labels"].shape == (3, 2)
    answered = [i for i, (s, e) in enumerate(data.labels) if s > 0]
    assert answered  # some window holds its whole answer; its label spans the answer text
    feature = data.features[answered[0]]
    question = squad_dev[feature.example_index]
    text, start_char = question.answers[0]
    s, e = data.labels[answered[0]]
    assert feature.offsets[s][0] <= start_char and feature.offsets[e][1] >= start_char + len(text)
    start_logits = torch.full((1, 64), -10.0)
    end_logits = torch.full((1, 64), -10.0)
    start_logits[0, 2], end_logits[0, 3] = 10.0, 10.0
    assert qa.loss((start_logits, end_logits), {"labels": torch.tensor([[2, 3]])}) < 1e-6
    assert qa.loss((start_logits, end_logits), {"labels": torch.tensor([[3, 3]])}) > 1


@pytest.mark.parametrize("method", ["prefix", "prompt", "full"])
def test_evaluate_streams_batches_into_the_decoder(vocab_model, squad_dev, method, monkeypatch):
    model = ours(vocab_model, method=method, num_virtual_tokens=N)
    positions = N if method == "prompt" else 0
    tokenizer = Tokenizer.from_folder(vocab_model, model.encoder.config, positions, max_length=64)
    data = qa.encode(tokenizer, squad_dev, doc_stride=16)
    rows, original_add = [], qa.Decoder.add

    def add(self, indices, start, end):
        rows.append(len(indices))
        assert start.shape == end.shape and start.shape[0] == len(indices)
        return original_add(self, indices, start, end)

    monkeypatch.setattr(qa.Decoder, "add", add)
    import contextlib
    scores = qa.evaluate(model, data, 4, tokenizer.pad_id, "cpu", contextlib.nullcontext, qa.metric_names("squad"))
    assert set(scores) == {"f1", "exact"} and 0 <= scores["f1"] <= 100
    assert max(rows) <= 4 and sum(rows) == len(data)  # one batch of logits at a time, every window once
    again = qa.evaluate(model, data, 64, tokenizer.pad_id, "cpu", contextlib.nullcontext, ("f1", "exact"))
    assert again == pytest.approx(scores)  # batching does not change the answers


class PointAt(torch.nn.Module):
    """A stand-in model: start and end scores 10 where the input holds `token_id`, 5 at [CLS] (no answer)."""
    reads = "all"

    def __init__(self, token_id: int, cls_id: int):
        super().__init__()
        self.token_id, self.cls_id = token_id, cls_id

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        hit = input_ids.eq(self.token_id).float() * 10 + input_ids.eq(self.cls_id).float() * 5
        return hit, hit


def test_answer_windows_long_contexts(vocab_model):
    tokenizer = Tokenizer.from_folder(vocab_model, max_length=64)
    context = " ".join(["the river runs past the old mill"] * 40) + " near zurich ."
    target = tokenizer.backend.encode("zurich", add_special_tokens=False).ids
    assert len(target) == 1
    found, = qa.answer(PointAt(target[0], tokenizer.cls_id), tokenizer, [("Where is it?", context)], 8, "cpu", doc_stride=16)
    assert found["answer"] == "zurich" and context[found["start"]:found["end"]] == "zurich"
    assert not found["declined"] and found["score"] == pytest.approx(20.0)
    declined, = qa.answer(PointAt(target[0], tokenizer.cls_id), tokenizer, [("Where?", "the mill")], 8, "cpu", doc_stride=16,
                          version_2=True)
    assert declined["declined"] and declined["answer"] == "" and declined["null_score"] == pytest.approx(10.0)


# --- train.py and predict.py --------------------------------------------------------------------

def run_args(model_dir, out, *extra):
    return ["--model", str(model_dir), "--max-train-samples", "16", "--max-dev-samples", "8", "--batch-size", "8",
            "--epochs", "1", "--max-length", "64", "--doc-stride", "16", "--num-virtual-tokens", "4",
            "--output-dir", str(out), *extra]


@pytest.fixture(scope="module")
def squad_run(vocab_model, tmp_path_factory, squad_dir):
    out = tmp_path_factory.mktemp("runs") / "squad-prefix"
    assert train.main(["--task", "squad", "--data-dir", str(squad_dir), "--method", "prefix",
                       *run_args(vocab_model, out)]) == 0
    return out


def test_train_squad_writes_metrics_and_options(squad_run):
    record, = [json.loads(line) for line in (squad_run / "metrics.jsonl").read_text().splitlines()]
    assert {"f1", "exact", "train_loss"} <= set(record)
    meta = json.loads((squad_run / "adapter_config.json").read_text())
    assert meta["task"] == "squad" and meta["max_length"] == 64
    assert meta["task_options"]["doc_stride"] == 16 and meta["task_options"]["n_best"] == 20


def test_max_length_defaults_to_384_for_qa_only():
    assert run.parse_args(["--task", "squad"]).max_length == 384
    assert run.parse_args(["--task", "mrpc"]).max_length is None


def test_qa_recipes_fill_unset_options_for_qa_only():
    """SQuAD's ~88k questions take run_qa.py's 2 epochs (full) and the P-tuning-v2 repo's SQuAD script
    (prefix), not GLUE's 10 and 20 epochs; given options still win; v1 keeps the GLUE recipe."""
    from ptuning.tasks import qa
    from ptuning.training.recipes import RECIPES
    full, prefix = (run.parse_args(["--task", "squad_v2", "--method", m]) for m in ("full", "prefix"))
    assert (full.lr, full.epochs, full.batch_size) == (3e-5, 2, 12) == tuple(qa.RECIPES["full"].values())
    assert (prefix.lr, prefix.epochs, prefix.batch_size, prefix.num_virtual_tokens) == (5e-3, 30, 8, 16)
    assert prefix.warmup_ratio == RECIPES["prefix"]["warmup_ratio"]  # the method's, where the QA recipe is silent
    given = run.parse_args(["--task", "squad", "--method", "prefix", "--lr", "5e-2", "--num-virtual-tokens", "64"])
    assert (given.lr, given.num_virtual_tokens, given.epochs) == (5e-2, 64, 30)
    glue_prefix = run.parse_args(["--task", "mrpc", "--method", "prefix"])
    assert (glue_prefix.lr, glue_prefix.epochs, glue_prefix.batch_size) == (1e-2, 20, 32)
    v1 = run.parse_args(["--task", "squad", "--method", "ptuning"])
    assert (v1.lr, v1.epochs, v1.batch_size) == (1e-3, 20, 32)


@pytest.mark.parametrize("option", ["--doc-stride=-1", "--n-best=0", "--max-answer-length=0"])
def test_bad_qa_options_are_named(option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run.parse_args(["--task", "squad", option])
    assert exit_info.value.code == 2 and option.split("=")[0] in capsys.readouterr().err


def test_predict_question_and_input_file(squad_run, tmp_path, capsys):
    capsys.readouterr()
    assert predict.main(["--adapter", str(squad_run), "--question", "Who sat?",
                         "--context", "The cat sat on the mat."]) == 0
    out = capsys.readouterr().out
    assert out.startswith("answer: ") and "score: " in out
    rows = [{"question": "Who sat?", "context": "The cat sat on the mat."},
            {"question": "Where?", "context": " ".join(["A long story about rivers."] * 60)}]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert predict.main(["--adapter", str(squad_run), "--input", str(path), "--output", str(tmp_path / "o.jsonl")]) == 0
    records = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert [r["line"] for r in records] == [1, 2]
    for row, found in zip(rows, records):
        assert row["context"][found["start"]:found["end"]] == found["answer"] and isinstance(found["score"], float)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:   # a bad option: status 2 (ptuning/errors.py)
        predict.main(["--adapter", str(squad_run), "The cat sat."])
    assert stopped.value.code == 2 and "--question" in capsys.readouterr().err


def test_predict_question_needs_context(squad_run, capsys):
    with pytest.raises(SystemExit):
        predict.main(["--adapter", str(squad_run), "--question", "Who?"])
    assert "--question and --context go together" in capsys.readouterr().err


def squad_v2_file(path: Path) -> Path:
    context = "The cat sat on the mat in Paris while the dog slept."
    qas = [{"id": "a", "question": "Who sat?", "answers": [{"text": "The cat", "answer_start": 0}],
            "is_impossible": False},
           {"id": "b", "question": "Where?", "answers": [{"text": "Paris", "answer_start": 26}], "is_impossible": False},
           {"id": "c", "question": "Who flew?", "answers": [], "is_impossible": True,
            "plausible_answers": [{"text": "the dog", "answer_start": 37}]}]
    path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": qas}]}]}))
    return path


def test_squad_v2_from_official_files_and_declining(vocab_model, tmp_path, capsys):
    data = squad_v2_file(tmp_path / "v2.json")
    out = tmp_path / "squad_v2-full"
    assert train.main(["--task", "squad_v2", "--train-file", str(data), "--dev-file", str(data), "--method", "full",
                       *[a for a in run_args(vocab_model, out) if a != "--num-virtual-tokens" and a != "4"]]) == 0
    record, = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"f1", "exact", "HasAns_f1", "NoAns_f1"} <= set(record)
    argv = ["--adapter", str(out), "--question", "Who flew?", "--context", "The cat sat on the mat."]
    capsys.readouterr()
    assert predict.main([*argv, "--null-threshold=-1e9"]) == 0
    assert capsys.readouterr().out.startswith("no answer (declined")
    assert predict.main([*argv, "--null-threshold", "1e9"]) == 0
    assert capsys.readouterr().out.startswith("answer: ")
