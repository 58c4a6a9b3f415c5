"""ptuning as a library: the public API, loaders in eval mode, logits without tokenizer files, dtypes
that cannot be honoured, the README's example, and the progress line in logs."""
from __future__ import annotations

import io
import re
import runpy
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, padded_batch

import ptuning
from ptuning.errors import OptionError
from ptuning.model import MethodConfig
from ptuning.training.loop import Progress

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir, glue_dir):
    from test_predict import tiny_adapter

    return tiny_adapter(tmp_path_factory, minilm_dir, glue_dir)   # (model folder, adapter folder)


def test_public_api_imports_light():
    names = ["EncoderConfig", "MethodConfig", "PromptModel", "build_model", "load_model", "load_classifier",
             "load_encoder", "AdapterConfig", "load_trained", "load_bank", "fit", "predict", "family_for"]
    assert set(names) <= set(ptuning.__all__) and all(hasattr(ptuning, name) for name in ptuning.__all__)
    assert ptuning.family_for("mrpc").HEAD == "sequence"
    code = ("import sys, ptuning; heavy = ('matplotlib', 'tensorboard', 'transformers', 'peft', "
            "'torch.utils.tensorboard'); print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def in_training_mode(model) -> list[str]:
    return [name or "(root)" for name, module in model.named_modules() if module.training]


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_loaders_return_eval_models(family, tiny_dirs):
    method = MethodConfig(method="prefix", num_virtual_tokens=3)
    assert in_training_mode(ptuning.load_classifier(tiny_dirs[family], method, 2)) == []
    assert in_training_mode(ptuning.load_encoder(tiny_dirs[family])[0]) == []
    model = ptuning.load_model(tiny_dirs[family], method, lambda c: ptuning.family_for("rte").head(c, method, 3))
    assert in_training_mode(model) == []


def test_trained_and_bank_loaders_return_eval_models(tiny):
    model_dir, adapter_dir = tiny
    assert in_training_mode(ptuning.load_trained(adapter_dir)[0]) == []
    assert in_training_mode(ptuning.load_bank({"a": adapter_dir}, model_dir)[0]) == []


def test_fit_switches_to_training_mode(tiny_dirs, tmp_path):
    from ptuning.text.batches import EncodedSet
    from ptuning.text.tokenizer import Encoded

    method = MethodConfig(method="prefix", num_virtual_tokens=2)
    model = ptuning.load_classifier(tiny_dirs["bert"], method, 2, seed=0)
    data = EncodedSet([Encoded([2, 5 + i, 6, 3], [0, 0, 0, 0]) for i in range(4)], [0, 1, 0, 1], 0)
    glue = ptuning.family_for("mrpc")
    modes = []

    def loss(outputs, batch, reduction="mean"):
        modes.append(model.training)
        return glue.loss(outputs, batch, reduction)

    def evaluate(model, data, batch_size, pad_id, device, autocast, metric_names):
        modes.append(model.training)
        return {"accuracy": 0.5}

    meta = ptuning.AdapterConfig(method, 2)
    (tmp_path / "run").mkdir()   # fit writes into an existing folder (train.py makes it)
    config = ptuning.TrainConfig(epochs=1, batch_size=2, log_seconds=0.0)
    ptuning.fit(model, data, data, config, ptuning.RunFolder(tmp_path / "run", meta),
                ptuning.Scoring(loss, evaluate, ("accuracy",)))
    assert modes[:2] == [True, True]


def test_logits_from_ids_need_no_tokenizer_files(tiny, tmp_path):
    model_dir, adapter_dir = tiny
    bare = tmp_path / "bare"   # the weights and config only
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model_dir / name, bare / name)
    with pytest.raises(ValueError, match="tokenizer"):
        ptuning.load_trained(adapter_dir, bare, check_fingerprint=False)
    model, tokenizer, config = ptuning.load_trained(adapter_dir, bare, tokenizer=False)
    assert tokenizer is None and config.label_names == ["not_equivalent", "equivalent"]
    full_model, _, _ = ptuning.load_trained(adapter_dir)
    ids, mask, types = padded_batch("bert", vocab=1000)
    with torch.no_grad():
        torch.testing.assert_close(model(ids, mask, types), full_model(ids, mask, types), atol=0, rtol=0)


def test_a_dtype_that_cannot_be_honoured_is_an_error(tiny_dirs):
    with pytest.raises(OptionError, match=r"dtype=torch.bfloat16 cannot be honoured with method 'full'"):
        ptuning.load_classifier(tiny_dirs["roberta"], MethodConfig(method="full"), 2, dtype=torch.bfloat16)
    with pytest.raises(OptionError, match=r"dtype=torch.int8: .* floating-point"):
        ptuning.load_classifier(tiny_dirs["roberta"], MethodConfig(method="prefix"), 2, dtype=torch.int8)
    low = ptuning.load_classifier(tiny_dirs["roberta"], MethodConfig(method="prefix"), 2, dtype=torch.bfloat16)
    assert {p.dtype for p in low.encoder.parameters()} == {torch.bfloat16}   # honoured where it can be
    assert ptuning.load_classifier(tiny_dirs["roberta"], MethodConfig(method="full"), 2).head_dtype == torch.float32


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- library example[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its library example"
    return match.group(1)


def test_readme_library_example_runs(tiny, tmp_path, capsys):
    model_dir, adapter_dir = tiny
    code = readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 12
    script = tmp_path / "example.py"
    script.write_text(code.replace('"runs/mrpc-prefix"', repr(str(adapter_dir))))
    runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("The cat sat on the mat. {'not_equivalent': ") and "'equivalent': " in printed[0]
    assert printed[1].startswith("It rained. {") and printed[2].startswith("tensor([[")
    # the example's predict agrees with the model called on the same ids
    model, tokenizer, _ = ptuning.load_trained(adapter_dir)
    logits = ptuning.predict(model, tokenizer, [("one", "sentence"), ("a", "pair")])
    with pytest.raises(ValueError, match=r"texts\[0\]: .* sentence-pair task: give \(text_a, text_b\) pairs"):
        ptuning.predict(model, tokenizer, ["one sentence", ("a", "pair")])   # a pair task wants pairs
    batch = tokenizer.encode("a", "pair")
    with torch.no_grad():
        direct = model(torch.tensor([batch.ids]), None, torch.tensor([batch.type_ids]))
    np.testing.assert_allclose(logits[1], direct[0].numpy(), atol=1e-6)


# --- progress ---------------------------------------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self):
        return True


def run_progress(stream) -> str:
    progress = Progress(steps_per_epoch=4, epochs=2, first_step=0, every_seconds=0.0, stream=stream)
    for step in range(1, 9):
        progress.update(step, lambda: 0.5, samples=16 * step, seconds=float(step))
        if step % 4 == 0:
            progress.done()
    return stream.getvalue()


def test_progress_in_a_log_is_plain_lines():
    text = run_progress(io.StringIO())
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 8 and lines[0].startswith("epoch 1/2 [#####...............] 1/4  loss 0.5000")
    assert lines[3].startswith("epoch 1/2 [####################] 4/4") and "left: epoch 0:00" in lines[3]
    assert lines[4].startswith("epoch 2/2 [#####") and re.search(r"left: epoch \d+:\d\d, run \d+:\d\d$", lines[4])


def test_progress_on_a_terminal_redraws_one_line_per_epoch():
    text = run_progress(Terminal())
    assert text.count("\r") == 8 and text.count("\n") == 2 and text.endswith("\n")
