"""peft adapter folders: ours loads what peft's save_pretrained writes, peft loads what export_peft writes.

Each test compares logits with `PeftModel.from_pretrained` on the same base weights (atol 1e-5).
Version-dependent: peft's folder format (adapter_config.json keys, `prompt_embeddings`, key names) as
written and read by peft 0.10-0.21 and transformers 4.40-5.23, the ranges pinned in setup.cfg's test extra.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, padded_batch, tiny_hf_model

from ptuning.adapters.files import AdapterConfig, AdapterError, save_adapter, weights_fingerprint
from ptuning.adapters.load import load_trained
from ptuning.cli import main as cli_main
from ptuning.model import MethodConfig, load_classifier
from ptuning.adapters.peft import export_peft, is_peft_adapter, load_peft_adapter

N = 5  # virtual tokens
PEFT_CONFIGS = {
    "p_tuning": lambda peft: peft.PromptEncoderConfig(task_type="SEQ_CLS", num_virtual_tokens=N, encoder_hidden_size=16),
    "prompt_tuning": lambda peft: peft.PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=N),
    "prefix": lambda peft: peft.PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=N, prefix_projection=False),
    "prefix_projection": lambda peft: peft.PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=N,
                                                              prefix_projection=True, encoder_hidden_size=16),
}


def hf_base(folder, **kwargs):
    import transformers

    return transformers.AutoModelForSequenceClassification.from_pretrained(folder, **kwargs).eval()


def inputs(family):
    ids, mask, types = padded_batch(family)
    return ids, mask, (types if family == "bert" else None)


def peft_logits(base, adapter_dir, family):
    import peft

    theirs = peft.PeftModel.from_pretrained(base, adapter_dir).eval()
    ids, mask, types = inputs(family)
    kwargs = dict(token_type_ids=types) if types is not None else {}
    with torch.no_grad():
        return theirs(input_ids=ids, attention_mask=mask, **kwargs).logits


def our_logits(model, family):
    with torch.no_grad():
        return model.eval()(*inputs(family))


def train_peft(base, peft_config, batch, steps=3):
    """A few AdamW steps on the given batch, so prompts and head move away from their init."""
    import peft

    torch.manual_seed(1)
    model = peft.get_peft_model(base, peft_config).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        model(**batch, labels=torch.arange(len(batch["input_ids"])) % 2).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def saved_peft_adapter(family, kind, folder, tmp_path, base=None, **save_kwargs):
    ids, mask, types = padded_batch(family, seed=1)
    batch = dict(input_ids=ids, attention_mask=mask, **(dict(token_type_ids=types) if family == "bert" else {}))
    import peft

    train_peft(base or hf_base(folder), PEFT_CONFIGS[kind](peft), batch).save_pretrained(tmp_path, **save_kwargs)
    return tmp_path


# --- loading peft's folders ------------------------------------------------------------------
@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("kind", list(PEFT_CONFIGS))
def test_peft_adapter_loads_with_peft_logits(family, kind, tiny_dirs, tmp_path):
    adapter = saved_peft_adapter(family, kind, tiny_dirs[family], tmp_path)
    assert is_peft_adapter(adapter)
    ours, meta = load_peft_adapter(adapter)  # the base comes from base_model_name_or_path
    assert meta.method.method == ("prefix" if kind.startswith("prefix") else "prompt")
    torch.testing.assert_close(our_logits(ours, family), peft_logits(hf_base(tiny_dirs[family]), adapter, family),
                               atol=1e-5, rtol=1e-5)


def test_peft_bin_adapter_loads_with_weights_only(tiny_dirs, tmp_path):
    adapter = saved_peft_adapter("roberta", "prompt_tuning", tiny_dirs["roberta"], tmp_path, safe_serialization=False)
    assert (adapter / "adapter_model.bin").is_file() and not (adapter / "adapter_model.safetensors").exists()
    ours, _ = load_peft_adapter(adapter)
    torch.testing.assert_close(our_logits(ours, "roberta"), peft_logits(hf_base(tiny_dirs["roberta"]), adapter, "roberta"),
                               atol=1e-5, rtol=1e-5)


class NotATensor:  # pickled into a .bin, weights_only must refuse it
    pass


@pytest.fixture(scope="module")
def prompt_adapter(tiny_dirs, tmp_path_factory):
    """One saved peft PROMPT_TUNING adapter on the tiny RoBERTa; error tests edit copies of it."""
    return saved_peft_adapter("roberta", "prompt_tuning", tiny_dirs["roberta"], tmp_path_factory.mktemp("peft"))


@pytest.fixture
def adapter_copy(prompt_adapter, tmp_path):
    return Path(shutil.copytree(prompt_adapter, tmp_path / "adapter"))


def test_unsafe_bin_refused(adapter_copy):
    from safetensors.torch import load_file

    tensors = load_file(adapter_copy / "adapter_model.safetensors")
    (adapter_copy / "adapter_model.safetensors").unlink()
    torch.save({**tensors, "payload": NotATensor()}, adapter_copy / "adapter_model.bin")
    adapter = adapter_copy
    with pytest.raises(AdapterError, match=r"adapter_model\.bin.*weights_only"):
        load_peft_adapter(adapter)


def edit_config(adapter, **changes):
    path = adapter / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize("changes, message", [
    (dict(peft_type="LORA"), r"peft_type 'LORA' is not supported"),
    (dict(task_type="CAUSAL_LM"), r"task_type 'CAUSAL_LM' is not supported"),
    (dict(num_layers=3), r"field 'num_layers' is 3, but the base model has 2"),
    (dict(num_virtual_tokens=7), r"'prompt_embeddings' has shape \(5, 32\).*num_virtual_tokens is 7"),
])
def test_bad_peft_config_refused(changes, message, adapter_copy):
    edit_config(adapter_copy, **changes)
    with pytest.raises(AdapterError, match=r"adapter_config\.json|adapter_model") as err:
        load_peft_adapter(adapter_copy)
    assert err.match(message)


def test_peft_adapter_of_another_width_refused(tiny_dirs, tmp_path):
    """Trained on a model with hidden size 48; loaded onto the tiny base (32): token_dim names the mismatch."""
    other = tiny_hf_model("roberta", hidden_size=48)
    adapter = saved_peft_adapter("roberta", "prefix", None, tmp_path, base=other)
    with pytest.raises(AdapterError, match=r"adapter_config\.json: field 'token_dim' is 48, but the base model has 32"):
        load_peft_adapter(adapter, model_dir=tiny_dirs["roberta"])


def test_peft_adapter_without_classifier_refused(adapter_copy):
    from safetensors.torch import load_file, save_file

    path = adapter_copy / "adapter_model.safetensors"
    save_file({"prompt_embeddings": load_file(path)["prompt_embeddings"]}, path)
    with pytest.raises(AdapterError, match=r"adapter_model\.safetensors: classifier tensors missing.*"
                                           r"base_model\.classifier\.dense\.weight"):
        load_peft_adapter(adapter_copy)


def test_peft_adapter_with_other_modules_refused(adapter_copy):
    from safetensors.torch import load_file, save_file

    path = adapter_copy / "adapter_model.safetensors"
    key = "base_model.roberta.encoder.layer.0.output.dense.weight"  # modules_to_save=["output.dense"], say
    save_file({**load_file(path), key: torch.zeros(32, 37)}, path)
    with pytest.raises(AdapterError, match=r"modules other than the head.*layer\.0\.output\.dense\.weight"):
        load_peft_adapter(adapter_copy)


# --- exporting ours to peft ------------------------------------------------------------------
EXPORTABLE = {
    "ptuning-mlp": dict(method="ptuning", encoder_hidden_size=16, head_token="first"),
    "ptuning-lstm": dict(method="ptuning", encoder_hidden_size=16, reparam="lstm", head_token="first"),
    "prompt": dict(method="prompt", head_token="first"),
    "prefix": dict(method="prefix", prefix_position_shift=True, prefix_dropout=0.1),
    "prefix-projection": dict(method="prefix", prefix_position_shift=True, prefix_projection=True,
                              prefix_hidden_size=16),
}


def trained_adapter(family, folder, out_dir, **method_fields):
    """Our classifier with perturbed trainable weights, saved as train.py saves it."""
    method = MethodConfig(num_virtual_tokens=N, **method_fields)
    model = load_classifier(folder, method, 2, seed=0)
    torch.manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    meta = AdapterConfig(method, 2, base_model_path=str(folder.resolve()), base_model=str(folder),
                         fingerprint=weights_fingerprint(folder), metrics=["accuracy"], train={}, precision="fp32")
    out_dir.mkdir()
    save_adapter(out_dir, model, meta)
    return model


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("name", list(EXPORTABLE))
def test_export_loads_in_peft_with_our_logits(family, name, tiny_dirs, tmp_path):
    model = trained_adapter(family, tiny_dirs[family], tmp_path / "ours", **EXPORTABLE[name])
    out = export_peft(tmp_path / "ours", tmp_path / "peft")
    expected = our_logits(model, family)
    torch.testing.assert_close(peft_logits(hf_base(tiny_dirs[family]), out, family), expected, atol=1e-5, rtol=1e-5)
    reloaded, _ = load_peft_adapter(out)  # and back into ours
    torch.testing.assert_close(our_logits(reloaded, family), expected, atol=1e-5, rtol=1e-5)


def test_export_of_trained_pooler_via_cli(tiny_dirs, tmp_path):
    """A pooler that trained goes out under modules_to_save "pooler" (the CLI, from a folder)."""
    folder = tiny_dirs["bert"]
    model = load_classifier(folder, MethodConfig(method="prompt", num_virtual_tokens=N, head_token="first"), 2)
    model.head.pooler.requires_grad_(True)
    with torch.no_grad():
        model.head.pooler.weight.add_(0.5)
    meta = AdapterConfig(model.method, 2, base_model_path=str(folder))
    (tmp_path / "ours").mkdir()
    save_adapter(tmp_path / "ours", model, meta)
    assert cli_main(["export-peft", str(tmp_path / "ours"), str(tmp_path / "peft")]) == 0
    config = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert config["modules_to_save"] == ["pooler"] and config["peft_type"] == "PROMPT_TUNING"
    expected = our_logits(model, "bert")
    torch.testing.assert_close(peft_logits(hf_base(folder), tmp_path / "peft", "bert"), expected, atol=1e-5, rtol=1e-5)
    reloaded, _ = load_peft_adapter(tmp_path / "peft")  # base_model.bert.pooler.dense.* read back
    torch.testing.assert_close(our_logits(reloaded, "bert"), expected, atol=1e-5, rtol=1e-5)


def test_export_refuses_v1_reading_cls(tiny_dirs, tmp_path, capsys):
    trained_adapter("roberta", tiny_dirs["roberta"], tmp_path / "ours", method="ptuning", encoder_hidden_size=16,
                    head_token="cls")
    with pytest.raises(AdapterError, match="head_token 'cls'"):
        export_peft(tmp_path / "ours", tmp_path / "peft")
    with pytest.raises(SystemExit) as stop:  # status 3: a bad input folder (ptuning/errors.py)
        cli_main(["export-peft", str(tmp_path / "ours"), str(tmp_path / "peft")])
    assert stop.value.code == 3
    assert "head_token 'cls'" in capsys.readouterr().err
    assert not (tmp_path / "peft").exists()


def test_cli_runs_as_module():
    run = subprocess.run([sys.executable, "-m", "ptuning.cli", "export-peft", "--help"], cwd=REPO,
                         capture_output=True, text=True)
    assert run.returncode == 0 and "ADAPTER_DIR" in run.stdout.replace("adapter_dir", "ADAPTER_DIR")


def test_export_refuses_unshifted_prefix(tiny_dirs, tmp_path):
    model = load_classifier(tiny_dirs["bert"], MethodConfig(method="prefix", num_virtual_tokens=N), 2)
    with pytest.raises(AdapterError, match="prefix_position_shift"):
        export_peft(model, tmp_path / "peft")


# --- real weights ----------------------------------------------------------------------------
def test_minilm_prefix_adapter_through_load_trained(minilm_dir, tmp_path):
    """A peft prefix adapter on MiniLM, trained 2 steps on MRPC-like pairs: load_trained (as predict.py) agrees."""
    import peft
    import transformers

    pairs = [("The cat sat on the mat.", "A cat was sitting on the mat."),
             ("Shares rose 5 percent on Monday.", "The company reported a loss last year.")]
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    batch = hf_tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    base = transformers.BertForSequenceClassification.from_pretrained(minilm_dir, num_labels=2)
    config = peft.PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=4, prefix_projection=True,
                                     encoder_hidden_size=32)
    train_peft(base, config, dict(batch), steps=2).save_pretrained(tmp_path)

    ours, tokenizer, meta = load_trained(tmp_path)  # dispatches on adapter_config.json's peft_type
    assert meta.label_names == ["LABEL_0", "LABEL_1"]
    from ptuning.text.tokenizer import collate

    encoded = collate(tokenizer.encode_batch(pairs), tokenizer.pad_id)
    assert torch.equal(encoded["input_ids"], batch["input_ids"])
    with torch.no_grad():
        mine = ours(encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"])
        theirs = peft.PeftModel.from_pretrained(
            transformers.BertForSequenceClassification.from_pretrained(minilm_dir, num_labels=2), tmp_path).eval()
        expected = theirs(**batch).logits
    torch.testing.assert_close(mine, expected, atol=1e-5, rtol=1e-5)
