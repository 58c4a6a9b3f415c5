"""Mixed precision on the CPU as on a GPU: precision choice, autocast parity with transformers + peft,
fused AdamW, the fp16 GradScaler, and train.py / predict.py end to end in bf16, fp16 and fp32."""
import copy

import pytest
import torch
from conftest import padded_batch, tiny_hf_model

from ptuning import precision as amp
from ptuning.errors import OptionError
from ptuning.model import MethodConfig, load_classifier

CPU = torch.device("cpu")
N = 5  # virtual tokens


# --- which precision, which autocast ------------------------------------------------------------

@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_picks_bf16_only_where_the_cpu_has_it(monkeypatch, native, expected):
    monkeypatch.setattr(amp, "cpu_has_bf16", lambda: native)
    assert amp.resolve("auto", CPU) == expected


@pytest.mark.parametrize("requested", ["fp32", "bf16", "fp16"])
def test_an_explicit_precision_is_honoured_on_the_cpu(requested):
    with pytest.warns() if requested != "fp32" and not {"bf16": amp.cpu_has_bf16, "fp16": amp.cpu_has_fp16}[
            requested]() else _no_warning():
        assert amp.resolve(requested, CPU) == requested


class _no_warning:
    def __enter__(self):
        import warnings
        self.catcher = warnings.catch_warnings()
        self.catcher.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self.catcher.__exit__(*exc)


def test_unknown_precision_is_an_option_error():
    with pytest.raises(OptionError, match="--precision 'fp8'"):
        amp.resolve("fp8", CPU)


def test_autocast_and_scaler_per_precision():
    factory, scaler = amp.autocast_for(CPU, "fp32")
    assert scaler is None
    with factory():
        assert not torch.is_autocast_enabled("cpu")
    for precision, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        factory, scaler = amp.autocast_for(CPU, precision)
        with factory():
            assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == dtype
        assert (scaler is not None) == (precision == "fp16")  # fp16 gradients underflow without scaling
    assert amp.storage_dtype("bf16", full_fine_tuning=False) == torch.bfloat16
    assert amp.storage_dtype("bf16", full_fine_tuning=True) == torch.float32  # AdamW's master weights
    assert amp.storage_dtype("fp32", full_fine_tuning=False) == torch.float32


def test_layer_norm_and_residual_stream_stay_fp32_under_autocast(tiny_dirs):
    method = MethodConfig(method="prefix", num_virtual_tokens=N)
    model = load_classifier(tiny_dirs["bert"], method, 2, dtype=torch.bfloat16).eval()
    ids, mask, types = padded_batch("bert")
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = model.encoder(ids, mask, types, prefixes=model.prefix_encoder(ids.shape[0]))
    assert hidden.dtype == torch.float32
    with torch.no_grad():  # without autocast a bf16 model computes in bf16 throughout, as nn.LayerNorm does
        assert model.encoder(ids, mask, types).dtype == torch.bfloat16


# --- parity with transformers + peft under the same CPU autocast --------------------------------
#
# Tolerance, derived per case from transformers itself: err = |HF under bf16 autocast - HF in fp32|,
# relative, in the Frobenius norm, over the logits or one prompt parameter's gradient, on the same inputs
# (8 padded rows of 24 tokens; measured 1e-3 to 0.3: a tiny model's prompt gradients cancel, and bf16 loses
# much of them). Ours must be a bf16 computation as good as theirs up to a factor 2: |ours - HF fp32| <= 2·err,
# and so, by the triangle inequality, |ours - HF bf16| <= 3·err. Both with fp32 weights under autocast (the
# setup of peft + Trainer(bf16=True)) and with the backbone stored in bf16, as train.py stores it for prompt
# methods (which also rounds the embedding tables and LayerNorm weights that autocast leaves in fp32).
# Measured over 3 input seeds: at most 1.4·err from the exact answer and 1.7·err from HF's bf16.

def relative(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm().clamp(min=1e-30)).item()


def peft_case(family, kind):
    import peft

    if kind == "v1":
        config = peft.PromptEncoderConfig(task_type="SEQ_CLS", num_virtual_tokens=N, encoder_hidden_size=16)
        method = MethodConfig(method="ptuning", num_virtual_tokens=N, encoder_hidden_size=16, head_token="first")
        return config, method, "prompt_encoder"
    config = peft.PrefixTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=N, prefix_projection=kind == "projection",
                                     encoder_hidden_size=16)
    method = MethodConfig(method="prefix", num_virtual_tokens=N, prefix_projection=kind == "projection",
                          prefix_hidden_size=16, prefix_position_shift=True)
    return config, method, "prefix_encoder"


def logits_and_grads(model, prompt_module, forward, autocast: bool, device_type="cpu", dtype=torch.bfloat16):
    model.zero_grad(set_to_none=True)
    with torch.autocast(device_type, dtype=dtype, enabled=autocast):
        logits = forward()
    labels = torch.arange(logits.shape[0], device=logits.device) % 2
    torch.nn.functional.cross_entropy(logits.float(), labels).backward()
    return logits.float().detach(), {n: p.grad.clone() for n, p in prompt_module.named_parameters()}


@pytest.mark.parametrize("storage", [torch.float32, torch.bfloat16], ids=["fp32-weights", "bf16-backbone"])
@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("kind", ["v1", "projection", "no-projection"])
def test_bf16_autocast_matches_transformers_peft_within_their_own_bf16_error(family, kind, storage, tiny_dirs):
    import peft

    peft_config, method, name = peft_case(family, kind)
    theirs = peft.get_peft_model(tiny_hf_model(family), peft_config).eval()
    ours = load_classifier(tiny_dirs[family], method, 2, dtype=storage).eval()
    getattr(ours, name).load_state_dict(theirs.prompt_encoder["default"].state_dict())
    ids, mask, types = padded_batch(family, batch=8, length=24)  # enough numbers for a stable relative error
    kwargs = dict(token_type_ids=types) if family == "bert" else {}
    their_forward = lambda: theirs(input_ids=ids, attention_mask=mask, **kwargs).logits  # noqa: E731
    exact = logits_and_grads(theirs, theirs.prompt_encoder["default"], their_forward, autocast=False)
    their_bf16 = logits_and_grads(theirs, theirs.prompt_encoder["default"], their_forward, autocast=True)
    our_bf16 = logits_and_grads(ours, getattr(ours, name),
                                lambda: ours(ids, mask, types if family == "bert" else None), autocast=True)
    pairs = [("logits", exact[0], their_bf16[0], our_bf16[0])]
    pairs += [(f"grad {n}", exact[1][n], their_bf16[1][n], our_bf16[1][n]) for n in exact[1]]
    for what, fp32, hf_bf16, ours_bf16 in pairs:
        err = relative(hf_bf16, fp32)
        assert 0 < err < 1, f"{what}: transformers' bf16 error {err:.2e}"
        assert relative(ours_bf16, fp32) <= 2 * err, what
        assert relative(ours_bf16, hf_bf16) <= 3 * err, what


# --- the optimizer and the GradScaler ---------------------------------------------------------------

def test_fused_adamw_on_the_cpu_equals_the_unfused_one():
    from ptuning.training.loop import fused_available, make_optimizer

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 2))
    twin = copy.deepcopy(model)
    fused = make_optimizer(model, 1e-2, 0.01)
    assert fused_available(list(model.parameters())) and all(g.get("fused") for g in fused.param_groups)
    plain = torch.optim.AdamW([{"params": g["params"], "weight_decay": g["weight_decay"]}
                               for g in make_optimizer(twin, 1e-2, 0.01).param_groups], lr=1e-2, foreach=False)
    for step in range(5):
        x = torch.randn(4, 8, generator=torch.Generator().manual_seed(step))
        for net, optimizer in ((model, fused), (twin, plain)):
            optimizer.zero_grad()
            net(x).square().sum().backward()
            optimizer.step()
    for ours, reference in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-7)


def test_fp16_grad_scaler_skips_an_overflowing_step_and_the_run_goes_on(tiny_dirs, tmp_path):
    import ptuning
    from ptuning.adapters.files import load_state, read_adapter
    from ptuning.text.batches import EncodedSet
    from ptuning.text.tokenizer import Encoded

    method = MethodConfig(method="prefix", num_virtual_tokens=2)
    model = load_classifier(tiny_dirs["bert"], method, 2, dtype=torch.float16, seed=0)
    data = EncodedSet([Encoded([2, 5 + i, 6, 3], [0, 0, 0, 0]) for i in range(8)], [0, 1] * 4, 0)
    glue = ptuning.family_for("mrpc")
    calls, snapshots = [0], {}

    class InfGradient(torch.autograd.Function):  # the loss as it is; its gradient overflows, as fp16's can
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            return grad * float("inf")

    def loss(outputs, batch, reduction="mean"):  # the 2nd of 4 steps overflows: its gradients are inf
        calls[0] += 1
        snapshots[calls[0]] = model.prefix_encoder.embedding.weight.detach().clone()
        value = glue.loss(outputs, batch, reduction)
        return InfGradient.apply(value) if calls[0] == 2 else value

    out = tmp_path / "run"
    out.mkdir()
    config = ptuning.TrainConfig(epochs=2, batch_size=4, lr=1e-2, log_seconds=60)
    run = ptuning.RunFolder(out, ptuning.AdapterConfig(method, 2, precision="fp16"))
    records = ptuning.fit(model, data, data, config, run, ptuning.Scoring(loss, lambda *a: {"accuracy": 0.5},
                                                                          ("accuracy",)))
    assert [r["epoch"] for r in records] == [1, 2]  # it went on
    torch.testing.assert_close(snapshots[3], snapshots[2], rtol=0, atol=0)  # step 2 changed nothing
    assert not torch.equal(snapshots[4], snapshots[3])                       # step 3 did
    scale = load_state(out)["scaler"]["scale"]
    assert scale == 2.0**15  # the scaler started at 2**16 and halved once
    _, tensors = read_adapter(out)
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in tensors.values())


# --- train.py and predict.py end to end, MiniLM, every family ------------------------------------

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import predict  # noqa: E402
import train  # noqa: E402

CONLL = ("EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n. O\n\nPeter B-PER\nBlackburn I-PER\nvisited O\n"
         "Paris B-LOC\n\n")
SQUAD = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{
    "context": "The cat sat on the mat in Paris. It was a sunny day in May.",
    "qas": [{"id": f"q{i}", "question": question, "answers": [{"text": text, "answer_start": start}]}
            for i, (question, text, start) in enumerate([("Where did the cat sit?", "on the mat", 8),
                                                         ("Which city?", "Paris", 26),
                                                         ("When was it sunny?", "in May", 52),
                                                         ("Who sat?", "The cat", 0)])]}]}]}


def family_run(family, tmp_path, glue_dir):
    """(train.py arguments, predict.py arguments) of a tiny run of the family on MiniLM."""
    common = ["--model", "minilm", "--method", "prefix", "--epochs", "1", "--batch-size", "4", "--lr", "1e-2"]
    if family == "glue":
        return ([*common, "--task", "mrpc", "--data-dir", str(glue_dir), "--max-train-samples", "8",
                 "--max-dev-samples", "4"], ["The cat sat.", "A cat was sitting."])
    if family == "ner":
        (tmp_path / "ner.txt").write_text(CONLL * 4)
        files = ["--train-file", str(tmp_path / "ner.txt"), "--dev-file", str(tmp_path / "ner.txt")]
        return [*common, "--task", "ner", *files], ["Peter visited Paris ."]
    (tmp_path / "squad.json").write_text(json.dumps(SQUAD))
    files = ["--train-file", str(tmp_path / "squad.json"), "--dev-file", str(tmp_path / "squad.json")]
    return ([*common, "--task", "squad", "--max-length", "64", "--doc-stride", "16", *files],
            ["--question", "Where did the cat sit?", "--context", SQUAD["data"][0]["paragraphs"][0]["context"]])


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
@pytest.mark.parametrize("family", ["glue", "ner", "qa"])
def test_train_and_predict_in_each_precision(family, precision, tmp_path, glue_dir, capsys):
    import warnings

    train_args, predict_args = family_run(family, tmp_path, glue_dir)
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fp16 on a CPU without fp16 instructions: "emulated, slower"
        assert train.main([*train_args, "--precision", precision, "--output-dir", str(out)]) == 0
        printed = capsys.readouterr().out
        assert f"cpu, {precision}" in printed  # the run's first lines say what it runs in
        config = json.loads((out / "adapter_config.json").read_text())
        assert config["precision"] == precision
        from ptuning.adapters.files import read_adapter
        _, tensors = read_adapter(out)
        assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in tensors.values())  # fp32 adapters
        answers = {}
        for predict_precision in ("fp32", precision):
            assert predict.main(["--adapter", str(out), "--precision", predict_precision, *predict_args]) == 0
            answers[predict_precision] = capsys.readouterr().out
    assert all(answers.values())
    if family == "qa":
        assert all(text.startswith("answer: ") for text in answers.values())


def test_resume_with_another_precision_is_refused(tmp_path, glue_dir, capsys):
    train_args, _ = family_run("glue", tmp_path, glue_dir)
    out = tmp_path / "run"
    assert train.main([*train_args, "--precision", "bf16", "--output-dir", str(out), "--stop-after-steps", "1"]) == 0
    with pytest.raises(SystemExit) as stop:
        train.main([*train_args, "--precision", "fp32", "--output-dir", str(out), "--resume"])
    assert stop.value.code == 2
    assert "--precision fp32 (the run used bf16)" in capsys.readouterr().err
    # Not given, the run's own precision is adopted.
    assert train.main([*train_args, "--output-dir", str(out), "--resume"]) == 0
    assert "cpu, bf16" in capsys.readouterr().out


def test_library_predict_runs_bf16_on_the_cpu(tmp_path, glue_dir, capsys):
    from ptuning import load_trained
    from ptuning import predict as predict_texts

    train_args, _ = family_run("glue", tmp_path, glue_dir)
    assert train.main([*train_args, "--precision", "fp32", "--output-dir", str(tmp_path / "run")]) == 0
    model, tokenizer, _ = load_trained(tmp_path / "run")
    pairs = [("The cat sat.", "A cat was sitting."), ("It rained.", "The sun shone.")]
    exact = predict_texts(model, tokenizer, pairs)
    fast = predict_texts(model, tokenizer, pairs, precision="bf16")
    assert exact.shape == fast.shape == (2, 2) and exact.dtype == fast.dtype
    assert not (exact == fast).all()  # it did run in bf16 ...
    assert abs(exact - fast).max() < 0.05  # ... and bf16 moves a logit by a little
