"""End to end on 64 MRPC rows with the real MiniLM checkpoint: train, save, predict, resume."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import predict  # noqa: E402
import train  # noqa: E402
from ptuning.text.batches import encode_examples  # noqa: E402
from ptuning.adapters.load import load_trained  # noqa: E402
from ptuning.tasks.glue import read_glue  # noqa: E402
from ptuning.inference import predict_logits  # noqa: E402

COMMON = ["--task", "mrpc", "--model", "minilm", "--max-train-samples", "64", "--max-dev-samples", "32",
          "--batch-size", "16", "--method", "prefix", "--lr", "1e-2"]


def metrics_of(folder):
    rows = [json.loads(line) for line in (Path(folder) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_s")} for r in rows]


def test_train_predict_roundtrip(tmp_path, glue_dir, minilm_dir, capsys):
    out = tmp_path / "run"
    train.main([*COMMON, "--epochs", "3", "--output-dir", str(out), "--data-dir", str(glue_dir)])
    records = metrics_of(out)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert records[-1]["train_loss"] < records[0]["train_loss"]  # it learns
    assert {"accuracy", "f1"} <= set(records[0])
    meta = json.loads((out / "adapter_config.json").read_text())
    assert meta["method"]["method"] == "prefix" and meta["label_names"] == ["not_equivalent", "equivalent"]

    # The saved adapter, reloaded, gives the logits of the model that was saved (the best epoch).
    model, tokenizer, _ = load_trained(out)
    dev = encode_examples(tokenizer, read_glue("mrpc", "dev", glue_dir)[:32])
    no_amp = lambda: torch.autocast("cpu", enabled=False)
    reloaded = predict_logits(model, dev, 8, tokenizer.pad_id, torch.device("cpu"), no_amp)
    again = predict_logits(model, dev, 32, tokenizer.pad_id, torch.device("cpu"), no_amp)
    np.testing.assert_allclose(reloaded, again, atol=1e-5)  # batching does not change results

    # predict.py on a file reproduces them exactly.
    rows = read_glue("mrpc", "dev", glue_dir)[:32]
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("a\tb\n" + "".join(f"{e.text_a}\t{e.text_b}\n" for e in rows))
    preds = tmp_path / "preds.jsonl"
    predict.main(["--adapter", str(out), "--input", str(tsv), "--text-a", "a", "--text-b", "b",
                  "--output", str(preds), "--batch-size", "32"])
    got = np.array([json.loads(line)["logits"] for line in preds.read_text().splitlines()])
    np.testing.assert_array_equal(got, again)

    capsys.readouterr()
    predict.main(["--adapter", str(out), rows[0].text_a, rows[0].text_b])
    printed = capsys.readouterr().out
    assert "not_equivalent: " in printed and "equivalent: " in printed and "%" in printed


def test_in_memory_model_equals_reloaded_adapter(tmp_path, glue_dir):
    """One epoch: the saved (best = last) adapter must reproduce the in-memory model bit for bit."""
    from ptuning.adapters.files import AdapterConfig
    from ptuning.model import MethodConfig, load_classifier
    from ptuning.tasks import glue
    from ptuning.text.tokenizer import Tokenizer
    from ptuning.adapters.files import RunFolder
    from ptuning.training.loop import Scoring, TrainConfig, fit
    from ptuning.weights import resolve_model_dir

    model_dir = resolve_model_dir("minilm")
    method = MethodConfig(method="ptuning", num_virtual_tokens=4)
    model = load_classifier(model_dir, method, 2, seed=0)
    tok = Tokenizer.from_folder(model_dir, model.encoder.config, method.positions_used)
    train_set = encode_examples(tok, read_glue("mrpc", "train", glue_dir)[:32])
    dev_set = encode_examples(tok, read_glue("mrpc", "dev", glue_dir)[:16])
    meta = AdapterConfig(method, 2, base_model_path=str(model_dir), base_model="minilm",
                         label_names=["not_equivalent", "equivalent"])
    fit(model, train_set, dev_set, TrainConfig(epochs=1, batch_size=16), RunFolder(tmp_path, meta),
        Scoring(glue.loss, glue.evaluate, ("accuracy", "f1")))
    no_amp = lambda: torch.autocast("cpu", enabled=False)
    in_memory = predict_logits(model, dev_set, 16, tok.pad_id, torch.device("cpu"), no_amp)
    reloaded, _, _ = load_trained(tmp_path)
    np.testing.assert_array_equal(predict_logits(reloaded, dev_set, 16, tok.pad_id, torch.device("cpu"), no_amp),
                                  in_memory)


def test_resume_after_interruption_gives_same_metrics(tmp_path, glue_dir, capsys):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    args = [*COMMON, "--epochs", "2", "--data-dir", str(glue_dir), "--max-grad-norm", "1.0"]
    train.main([*args, "--output-dir", str(whole)])
    # 64 rows / 16 = 4 steps an epoch: stop in the middle of epoch 2, as if killed after a save.
    train.main([*args, "--output-dir", str(cut), "--stop-after-steps", "6"])
    assert len(metrics_of(cut)) == 1
    with pytest.raises(SystemExit):  # a second start without --resume refuses to clobber the run
        train.main([*args, "--output-dir", str(cut)])
    with pytest.raises(SystemExit):  # fewer epochs than already trained: nothing would train, said so
        train.main([*COMMON, "--data-dir", str(glue_dir), "--output-dir", str(cut), "--resume", "--epochs", "1"])
    assert "has already trained 1 epoch and part of epoch 2; give --epochs 2 or more" in capsys.readouterr().err
    # --resume alone: the run's own --epochs 2 is adopted (not the recipe's 20), as every other setting
    train.main([*COMMON, "--data-dir", str(glue_dir), "--output-dir", str(cut), "--resume"])
    assert metrics_of(cut) == metrics_of(whole)


def test_dry_run_prints_peft_numbers_for_roberta_large(capsys):
    train.main(["--dry-run"])
    assert "trainable params: 1,351,938 || all params: 355,662,082 || trainable%: 0.3801" in capsys.readouterr().out


def test_step_logs_hold_the_train_loss_between_epochs(tmp_path, glue_dir):
    """--logging-steps N: every N optimizer steps a record (step, fractional epoch, loss since the last log,
    learning rate) joins the epochs' records in metrics.jsonl; at N = an epoch's steps, each log's loss is
    that epoch's train loss."""
    out = tmp_path / "run"
    # 64 rows, batch 16: 4 steps an epoch, 2 epochs, no warm-up: the lr falls linearly from 1e-2 to 0.
    assert train.main([*COMMON, "--batch-size", "16", "--epochs", "2", "--warmup-ratio", "0", "--lr", "1e-2",
                       "--logging-steps", "4", "--data-dir", str(glue_dir), "--output-dir", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [sorted(r) for r in rows[::2]] == [["epoch", "learning_rate", "loss", "step"]] * 2
    logs, epochs = rows[::2], rows[1::2]
    assert [(r["step"], r["epoch"]) for r in logs] == [(4, 1.0), (8, 2.0)]
    assert [r["loss"] for r in logs] == [r["train_loss"] for r in epochs]
    assert [r["step"] for r in epochs] == [4, 8]
    assert [r["learning_rate"] for r in logs] == pytest.approx([1e-2 * 4 / 8, 0.0])
