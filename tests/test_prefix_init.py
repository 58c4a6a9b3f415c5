"""--prefix-init text: P-tuning v2 started from the keys and values of real words (Li & Liang 2021, §7.4)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import train  # noqa: E402
from ptuning.errors import OptionError  # noqa: E402
from ptuning.model import MethodConfig, load_classifier  # noqa: E402
from ptuning.config import EncoderConfig  # noqa: E402
from ptuning.tasks import glue, ner, qa  # noqa: E402
from ptuning.text.tokenizer import Tokenizer  # noqa: E402
from ptuning.training import run  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def transformers_keys_values(model_dir, ids: list[int]) -> torch.Tensor:
    """What transformers computes for `ids` as one text: every layer's keys and values, (T, 2·L·h)."""
    import transformers as tf

    hf = tf.AutoModel.from_pretrained(model_dir).eval()
    seen = {}
    hooks = [getattr(layer.attention.self, kind).register_forward_hook(
                 lambda module, args, out, key=(i, kind): seen.__setitem__(key, out[0]))
             for i, layer in enumerate(hf.encoder.layer) for kind in ("key", "value")]
    with torch.no_grad():
        hf(input_ids=torch.tensor([ids]))
    for hook in hooks:
        hook.remove()
    return torch.cat([seen[i, kind] for i in range(len(hf.encoder.layer)) for kind in ("key", "value")], dim=-1)


def prefix_model(model_dir, n: int):
    return load_classifier(model_dir, MethodConfig(method="prefix", num_virtual_tokens=n, prefix_init="text"), 2)


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_prefix_from_tokens_holds_the_keys_and_values_transformers_computes(family, tiny_dirs):
    ids = list(range(3, 15))  # no padding id: RoBERTa's positions then count from pad + 1, as ours do
    model = prefix_model(tiny_dirs[family], len(ids)).train()
    model.init_prefix_from_tokens(ids)
    torch.testing.assert_close(model.prefix_encoder.embedding.weight, transformers_keys_values(tiny_dirs[family], ids),
                               atol=1e-5, rtol=1e-5)
    assert model.encoder.training, "the encoder's mode is put back"
    # The layout is the one the prefix encoder reads: layer 0's key for virtual token 0 is its first slice.
    key, value = model.prefix_encoder(1)[0]
    torch.testing.assert_close(key[0, :, 0].reshape(-1), model.prefix_encoder.embedding.weight[0, :key.shape[1] * key.shape[3]])


def test_more_virtual_tokens_than_positions_are_read_in_pieces(tiny_dirs):
    """64 positions (62 for RoBERTa's offset): 70 tokens are read as a text of 62 and one of 8."""
    model = prefix_model(tiny_dirs["roberta"], 70)
    ids = [3 + i % 90 for i in range(70)]
    model.init_prefix_from_tokens(ids)
    limit = model.encoder.config.max_tokens
    expected = torch.cat([transformers_keys_values(tiny_dirs["roberta"], ids[:limit]),
                          transformers_keys_values(tiny_dirs["roberta"], ids[limit:])])
    torch.testing.assert_close(model.prefix_encoder.embedding.weight, expected, atol=1e-5, rtol=1e-5)


def test_prefix_from_tokens_changes_only_the_prefix(tiny_dirs):
    model = prefix_model(tiny_dirs["bert"], 4)
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("prefix_encoder.")}
    model.init_prefix_from_tokens([5, 6, 7, 8])
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(ValueError, match="4 token ids"):
        model.init_prefix_from_tokens([5, 6])


@pytest.mark.parametrize("fields, message", [
    (dict(method="prefix", prefix_init="text", prefix_projection=True), "prefix_projection off"),
    (dict(method="ptuning", prefix_init="text"), "needs --method prefix"),
    (dict(method="full", prefix_init="text"), "needs --method prefix"),
    (dict(method="prefix", prefix_init="vocab"), "prefix_init must be one of"),
    (dict(method="prefix", prefix_init=None), "prefix_init must be one of"),
    (dict(method="prefix", prefix_text="hello"), "prefix_text is the start of prefix_init 'text'"),
    (dict(method="prefix", prefix_init="text", prefix_text=7), "prefix_text must be text or null"),
])
def test_method_config_refuses_what_tokens_cannot_start(fields, message):
    with pytest.raises(ValueError, match=message):
        MethodConfig(**fields)


def test_prefix_start_ids_are_the_text_without_special_tokens_repeated(minilm_dir):
    tokenizer = Tokenizer.from_folder(minilm_dir, EncoderConfig.from_json(minilm_dir))
    words = tokenizer.backend.encode("find the answer", add_special_tokens=False).ids
    assert len(words) == 3 and 101 not in words and 102 not in words
    assert run.prefix_start_ids(tokenizer, "find the answer", 2) == words[:2]
    assert run.prefix_start_ids(tokenizer, "find the answer", 8) == words * 2 + words[:2]
    for text, message in (("", "has no tokens"), ("  \n", "has no tokens"), ("caf\udce9", "not valid UTF-8")):
        with pytest.raises(OptionError, match=message):
            run.prefix_start_ids(tokenizer, text, 4)


def test_every_family_describes_its_task():
    for family in (glue, ner, qa):
        assert isinstance(family.PREFIX_TEXT, str) and len(family.PREFIX_TEXT.split()) >= 16


@pytest.mark.parametrize("argv, message", [
    (["--method", "full", "--prefix-init", "text"], "--prefix-init has no meaning with --method full"),
    (["--method", "full", "--prefix-text", "hi"], "--prefix-text has no meaning with --method full"),
    (["--method", "prefix", "--prefix-init", "words"], "invalid choice: 'words'"),
])
def test_train_refuses_bad_prefix_init(argv, message, capsys):
    with pytest.raises(SystemExit):
        run.parse_args(["--task", "mrpc", *argv])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--method", "ptuning", "--prefix-init", "text"], "--prefix-init has no meaning with --method ptuning"),
    (["--method", "prefix", "--prefix-init", "text", "--prefix-projection"], "needs prefix_projection off"),
    (["--method", "prefix", "--prefix-text", "find it"], "prefix_text is the start of prefix_init 'text'"),
])
def test_train_refuses_what_text_cannot_start(extra, message, tiny_dirs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        train.main(["--task", "mrpc", "--model", str(tiny_dirs["bert"]), "--output-dir", str(tmp_path / "run"), *extra])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text", [None, "is this a paraphrase ?"])
def test_train_starts_from_the_text(text, glue_dir, minilm_dir, tmp_path, monkeypatch):
    """train.py hands the text's tokens (the family's by default) to the model; the adapter's config keeps the words."""
    from ptuning.model import PromptModel

    started = []
    original = PromptModel.init_prefix_from_tokens

    def spy(self, ids):
        started.append(list(ids))
        original(self, ids)
        started.append(self.prefix_encoder.embedding.weight.detach().clone())

    monkeypatch.setattr(PromptModel, "init_prefix_from_tokens", spy)
    out = tmp_path / "mrpc-prefix"
    assert train.main(["--task", "mrpc", "--data-dir", str(glue_dir), "--model", str(minilm_dir), "--method", "prefix",
                       "--prefix-init", "text", "--num-virtual-tokens", "6", "--max-train-samples", "8",
                       "--max-dev-samples", "8", "--epochs", "1", "--batch-size", "8", "--lr", "1e-2",
                       "--output-dir", str(out), *(["--prefix-text", text] if text else [])]) == 0
    ids, start = started
    words = text or glue.PREFIX_TEXT
    tokenizer = Tokenizer.from_folder(minilm_dir, EncoderConfig.from_json(minilm_dir))
    assert ids == run.prefix_start_ids(tokenizer, words, 6)
    recorded = json.loads((out / "adapter_config.json").read_text())["method"]
    assert recorded["prefix_init"] == "text" and recorded["prefix_text"] == words
    from safetensors.torch import load_file

    trained = load_file(out / "adapter_model.safetensors")["prefix_encoder.embedding.weight"]
    assert trained.shape == start.shape and not torch.equal(trained, start)  # trained from there
    assert (trained - start).abs().max() < 1.0  # one step of lr 1e-2 moves it little: it did start there


def test_resume_keeps_the_runs_start_and_refuses_another(glue_dir, minilm_dir, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--task", "mrpc", "--data-dir", str(glue_dir), "--model", str(minilm_dir), "--method", "prefix",
              "--num-virtual-tokens", "4", "--max-train-samples", "8", "--max-dev-samples", "8", "--batch-size", "8",
              "--output-dir", str(out)]
    assert train.main([*common, "--prefix-init", "text", "--prefix-text", "same or not ?", "--epochs", "1"]) == 0
    with pytest.raises(SystemExit) as exit_:
        train.main([*common, "--resume", "--epochs", "2", "--prefix-text", "other words"])
    assert exit_.value.code == 2
    assert "--prefix-text other words (the run used same or not ?)" in capsys.readouterr().err
    assert train.main([*common, "--resume", "--epochs", "2"]) == 0  # its own start, adopted
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((out / "adapter_config.json").read_text())["method"]["prefix_text"] == "same or not ?"


@pytest.mark.parametrize("text", ["", "  \t", "caf\udce9"])
def test_train_refuses_a_blank_or_undecodable_prefix_text_before_reading_data(text, capsys):
    with pytest.raises(SystemExit):
        run.parse_args(["--task", "squad", "--method", "prefix", "--prefix-init", "text", "--prefix-text", text])
    assert "--prefix-text must hold words" in capsys.readouterr().err
