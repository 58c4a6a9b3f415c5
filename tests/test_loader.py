"""Loading HF folders: every way a checkpoint can be laid out, and every way it can be broken.

Each error must name the file or the key, so a user can act on it.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch
from conftest import REPO, padded_batch, tiny_hf_model
from safetensors.torch import load_file, save_file

from ptuning.config import ConfigError
from ptuning.weights import CheckpointError, load_encoder

TOL = dict(atol=1e-5, rtol=1e-5)


def save_tiny(folder, family="roberta", task=True):
    model = tiny_hf_model(family, task=task)
    model.save_pretrained(folder, safe_serialization=True)
    return model


def rewrite(folder, edit):
    """Apply `edit(tensors) -> tensors` to the folder's model.safetensors."""
    path = folder / "model.safetensors"
    tensors = load_file(path)
    save_file(edit(dict(tensors)), path, metadata={"format": "pt"})


def encoder_output(folder, family="roberta"):
    encoder, _ = load_encoder(folder)
    ids, mask, types = padded_batch(family)
    with torch.no_grad():
        return encoder.eval()(input_ids=ids, attention_mask=mask, token_type_ids=types)


# --- Broken weights ------------------------------------------------------------------------------

def test_truncated_safetensors_names_the_file(tmp_path):
    save_tiny(tmp_path)
    path = tmp_path / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_encoder(tmp_path)
    assert str(path) in str(err.value)


def test_missing_tensor_is_listed_in_our_naming(tmp_path):
    save_tiny(tmp_path)
    rewrite(tmp_path, lambda t: {k: v for k, v in t.items() if k != "roberta.encoder.layer.1.output.dense.weight"})
    with pytest.raises(CheckpointError) as err:
        load_encoder(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert re.search(r"missing: .*layers\.1\.ffn\.down\.weight", message), message
    assert "layers.0.ffn.down.weight" not in message


def test_integer_weight_is_refused_naming_the_key(tmp_path):
    save_tiny(tmp_path)

    def edit(tensors):
        key = "roberta.encoder.layer.1.attention.output.dense.bias"
        tensors[key] = tensors[key].to(torch.int64)
        return tensors

    rewrite(tmp_path, edit)
    with pytest.raises(CheckpointError, match=r"not floating point: layers\.1\.attention\.output\.bias: torch\.int64"):
        load_encoder(tmp_path)


def test_wrong_shape_names_key_and_both_shapes(tmp_path):
    save_tiny(tmp_path)

    def edit(tensors):
        tensors["roberta.encoder.layer.0.attention.self.query.weight"] = torch.zeros(32, 16)
        return tensors

    rewrite(tmp_path, edit)
    with pytest.raises(CheckpointError) as err:
        load_encoder(tmp_path)
    message = str(err.value)
    assert "wrong shape" in message
    assert "layers.0.attention.query.weight: checkpoint (32, 16), model (32, 32)" in message


def test_unknown_key_is_unexpected_but_buffers_and_lm_head_are_ignored(tmp_path):
    save_tiny(tmp_path)
    want = encoder_output(tmp_path)

    def harmless(tensors):
        tensors["roberta.embeddings.position_ids"] = torch.arange(64)[None]
        tensors["roberta.embeddings.token_type_ids"] = torch.zeros(1, 64, dtype=torch.long)
        tensors["lm_head.dense.weight"] = torch.zeros(32, 32)
        tensors["lm_head.bias"] = torch.zeros(99)
        return tensors

    rewrite(tmp_path, harmless)
    torch.testing.assert_close(encoder_output(tmp_path), want, rtol=0, atol=0)

    def unknown(tensors):
        tensors["roberta.encoder.adapter.weight"] = torch.zeros(3)
        tensors["roberta.encoder.layer.7.output.dense.bias"] = torch.zeros(32)  # beyond num_hidden_layers
        return tensors

    rewrite(tmp_path, unknown)
    with pytest.raises(CheckpointError) as err:
        load_encoder(tmp_path)
    message = str(err.value)
    assert re.search(r"unexpected: .*roberta\.encoder\.adapter\.weight", message), message
    assert "layers.7.ffn.down.bias" in message
    assert "position_ids" not in message and "lm_head" not in message and "missing" not in message


# --- Broken config -------------------------------------------------------------------------------

def test_unknown_model_type_names_config_and_type(tmp_path):
    save_tiny(tmp_path)
    config_path = tmp_path / "config.json"
    config = json.loads(config_path.read_text())
    config["model_type"] = "deberta-v2"
    config_path.write_text(json.dumps(config))
    with pytest.raises(ConfigError) as err:
        load_encoder(tmp_path)
    assert str(config_path) in str(err.value) and "'deberta-v2'" in str(err.value)


def test_missing_config_names_the_path(tmp_path):
    save_tiny(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(ConfigError) as err:
        load_encoder(tmp_path)
    assert str(tmp_path / "config.json") in str(err.value) and "missing" in str(err.value)


def test_missing_weights_names_the_folder(tmp_path):
    save_tiny(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError) as err:
        load_encoder(tmp_path)
    assert str(tmp_path) in str(err.value) and "model.safetensors" in str(err.value)


# --- Layouts -------------------------------------------------------------------------------------

def test_sharded_checkpoint_loads_like_unsharded(tmp_path):
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    model = tiny_hf_model("bert")
    model.save_pretrained(single, safe_serialization=True)
    model.save_pretrained(sharded, safe_serialization=True, max_shard_size="20KB")
    index = sharded / "model.safetensors.index.json"
    assert index.is_file() and not (sharded / "model.safetensors").exists()
    shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    assert len(shards) > 1
    torch.testing.assert_close(encoder_output(sharded, "bert"), encoder_output(single, "bert"), rtol=0, atol=0)

    (sharded / shards[-1]).unlink()
    with pytest.raises(CheckpointError) as err:
        load_encoder(sharded)
    assert shards[-1] in str(err.value) and "missing" in str(err.value)


@pytest.mark.parametrize("family, kind", [
    ("roberta", "bare"), ("bert", "bare"),
    ("roberta", "task"), ("bert", "task"),
    ("roberta", "masked-lm"), ("bert", "pretraining"),
])
def test_key_prefixes_load_and_match_transformers(family, kind, tmp_path):
    import transformers as tf

    if kind in ("bare", "task"):
        hf = tiny_hf_model(family, task=kind == "task")
    else:
        config = tiny_hf_model(family, task=False).config
        hf = (tf.RobertaForMaskedLM if kind == "masked-lm" else tf.BertForPreTraining)(config).eval()
    hf.save_pretrained(tmp_path, safe_serialization=True)
    keys = load_file(tmp_path / "model.safetensors").keys()
    if kind == "bare":
        assert any(k.startswith("embeddings.") for k in keys)
    else:
        assert all(k.startswith((f"{family}.", "classifier.", "lm_head.", "cls.")) for k in keys)
    if kind != "task":
        assert any(k.startswith(("lm_head.", "cls.")) for k in keys) == (kind != "bare")
    base = getattr(hf, hf.base_model_prefix, hf)
    ids, mask, types = padded_batch(family)
    with torch.no_grad():
        want = base(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    torch.testing.assert_close(encoder_output(tmp_path, family), want, **TOL)


def test_bert_pooler_comes_back_as_head_state(tmp_path):
    hf = save_tiny(tmp_path, "bert")
    _, head_state = load_encoder(tmp_path)
    assert torch.equal(head_state["pooler.weight"], hf.bert.pooler.dense.weight)
    assert torch.equal(head_state["classifier.weight"], hf.classifier.weight)


def test_old_layernorm_names_gamma_beta(tmp_path):
    save_tiny(tmp_path, "bert")
    want = encoder_output(tmp_path, "bert")

    def rename(tensors):
        return {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
                for k, v in tensors.items()}

    rewrite(tmp_path, rename)
    assert any(k.endswith("LayerNorm.gamma") for k in load_file(tmp_path / "model.safetensors"))
    torch.testing.assert_close(encoder_output(tmp_path, "bert"), want, rtol=0, atol=0)


# --- No transformers/peft at run time -------------------------------------------------------------

def test_ptuning_does_not_import_transformers_or_peft():
    code = ("import sys, ptuning, ptuning.model, ptuning.weights, ptuning.text.tokenizer, ptuning.text.tables, ptuning.tasks.glue, ptuning.tasks.metrics, ptuning.inference, ptuning.adapters.load; "
            "bad=[m for m in sys.modules if m.split('.')[0] in ('transformers','peft')]; assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_ptuning_sources_have_no_transformers_or_peft_imports():
    pattern = re.compile(r"^\s*(import|from)\s+(transformers|peft)\b", re.MULTILINE)
    sources = sorted((REPO / "ptuning").rglob("*.py"))
    assert len(sources) >= 8
    offending = [f"{path.relative_to(REPO)}: {m.group(0).strip()}" for path in sources
                 for m in pattern.finditer(path.read_text(encoding="utf-8"))]
    assert not offending, offending
