"""A mixed batch over one backbone gives every row the logits of its adapter run alone."""
import pytest
import torch

from ptuning.adapters.bank import AdapterBank
from ptuning.model import MethodConfig, PromptModel, mark_trainable, sequence_head
from ptuning.weights import load_encoder

ADAPTERS = {
    "v1-first": (MethodConfig(method="ptuning", num_virtual_tokens=3, encoder_hidden_size=8, head_token="first"), 2),
    "v1-cls": (MethodConfig(method="ptuning", num_virtual_tokens=6, encoder_hidden_size=8, reparam="lstm"), 3),
    "prompt": (MethodConfig(method="prompt", num_virtual_tokens=2), 2),
    "prefix": (MethodConfig(method="prefix", num_virtual_tokens=4), 2),
    "prefix-shift": (MethodConfig(method="prefix", num_virtual_tokens=7, prefix_projection=True,
                                  prefix_hidden_size=8, prefix_position_shift=True), 1),
}


def classifier(encoder, method, num_labels=2):
    return PromptModel(encoder, method, sequence_head(encoder.config, method, num_labels))


@pytest.mark.parametrize("family", ["roberta", "bert"])
@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "explicit"])
def test_mixed_batch_equals_each_adapter_alone(family, fused, tiny_dirs):
    encoder, _ = load_encoder(tiny_dirs[family], fused=fused)
    torch.manual_seed(0)
    adapters = {}
    for name, (method, labels) in ADAPTERS.items():
        adapters[name] = classifier(encoder, method, labels)
        mark_trainable(adapters[name], pooler_pretrained=False)
    bank = AdapterBank(adapters).eval()
    ids = torch.randint(3, 99, (10, 9), generator=torch.Generator().manual_seed(3))
    mask = torch.stack([(torch.arange(9) < 9 - row % 6).long() for row in range(10)])  # lengths 9..4, padded
    ids[mask == 0] = 1 if family == "roberta" else 0
    types = torch.zeros_like(ids) if family == "roberta" else (torch.arange(9) >= 4).long().expand(10, 9) * mask
    names = [list(ADAPTERS)[i % len(ADAPTERS)] for i in (0, 1, 2, 3, 4, 3, 1, 0, 4, 2)]
    mixed = bank(ids, mask, types, names)
    for row, name in enumerate(names):
        alone = adapters[name].eval()(ids[row:row + 1], mask[row:row + 1], types[row:row + 1])[0]
        torch.testing.assert_close(mixed[row], alone, atol=1e-5, rtol=1e-5, msg=f"row {row} ({name})")


def test_bank_rejects_full_finetuning_and_templates(tiny_dirs):
    encoder, _ = load_encoder(tiny_dirs["bert"])
    with pytest.raises(ValueError, match="full fine-tuning"):
        AdapterBank({"f": classifier(encoder, MethodConfig(method="full"))})
    with pytest.raises(ValueError, match="template"):
        AdapterBank({"t": classifier(encoder, MethodConfig(num_virtual_tokens=2, template="[P*2] {a}"))})


def tiny_adapters(tmp_path, minilm_dir, specs, seed: int = 0) -> dict:
    """Adapter folders over a tiny random BERT that reads MiniLM's vocabulary: specs (name, method, labels, task)."""
    import shutil

    import transformers as tf

    from ptuning.adapters.files import AdapterConfig, save_adapter, weights_fingerprint
    from ptuning.model import load_classifier

    base = tmp_path / "base"
    torch.manual_seed(seed)
    tf.BertForSequenceClassification(tf.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                                                   num_attention_heads=4, intermediate_size=37)).save_pretrained(
        base, safe_serialization=True)
    shutil.copy(minilm_dir / "tokenizer.json", base)
    dirs = {}
    for name, method, labels, task in specs:
        model = load_classifier(base, method, len(labels), seed=len(name))
        dirs[name] = tmp_path / name
        dirs[name].mkdir()
        save_adapter(dirs[name], model, AdapterConfig(method, len(labels), base_model_path=str(base),
                                                       base_model=str(base), fingerprint=weights_fingerprint(base),
                                                       label_names=labels, task=task))
    return dirs


def predict_main():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import predict
    return predict.main


def test_predict_scores_rows_of_several_adapters_like_each_alone(tmp_path, minilm_dir):
    """predict.py --adapter a=DIR --adapter b=DIR --adapter-column: same logits as one adapter at a time."""
    import json

    main = predict_main()
    dirs = tiny_adapters(tmp_path, minilm_dir, [
        ("para", MethodConfig(num_virtual_tokens=3, head_token="first"), ["no", "yes"], None),
        ("nli", MethodConfig(method="prefix", num_virtual_tokens=5), ["e", "n", "c"], None)])
    rows = [("A man is eating.", "Someone eats.", "para"), ("It rains.", "The sun shines brightly today.", "nli"),
            ("Short.", "Also short, but a little longer.", "nli"), ("One more pair", "of sentences", "para")]
    tsv = tmp_path / "rows.tsv"
    tsv.write_text("a\tb\twhich\n" + "".join(f"{a}\t{b}\t{w}\n" for a, b, w in rows))
    out = tmp_path / "mixed.jsonl"
    assert main(["--adapter", f"para={dirs['para']}", "--adapter", f"nli={dirs['nli']}", "--input", str(tsv),
                         "--text-a", "a", "--text-b", "b", "--adapter-column", "which", "--output", str(out)]) == 0
    mixed = [json.loads(line) for line in out.read_text().splitlines()]
    assert [m["adapter"] for m in mixed] == [w for _, _, w in rows]
    for name in dirs:
        alone_out = tmp_path / f"{name}.jsonl"
        assert main(["--adapter", str(dirs[name]), "--input", str(tsv), "--text-a", "a", "--text-b", "b",
                             "--output", str(alone_out)]) == 0
        alone = [json.loads(line) for line in alone_out.read_text().splitlines()]
        for m, a in zip(mixed, alone):
            if m["adapter"] == name:
                assert m["label"] == a["label"]
                torch.testing.assert_close(torch.tensor(m["logits"]), torch.tensor(a["logits"]), atol=1e-5, rtol=1e-5)


def test_one_file_mixes_single_sentence_and_pair_adapters(tmp_path, minilm_dir, capsys):
    """--text-b is read for a pair adapter's rows only: an sst2 row leaves it empty (what is there is not
    read); an mrpc row without it is a bad line, named, or skipped with --skip-bad."""
    import json

    main = predict_main()
    dirs = tiny_adapters(tmp_path, minilm_dir, [
        ("sst2", MethodConfig(num_virtual_tokens=3), ["negative", "positive"], "sst2"),
        ("mrpc", MethodConfig(method="prefix", num_virtual_tokens=4), ["not_equivalent", "equivalent"], "mrpc")])
    rows = [("A fine film.", "", "sst2"), ("A cat sat.", "A cat was sitting.", "mrpc"),
            ("Dull and slow.", "not read", "sst2")]
    tsv = tmp_path / "rows.tsv"
    tsv.write_text("a\tb\ttask\n" + "".join(f"{a}\t{b}\t{t}\n" for a, b, t in rows))
    bank = ["--adapter", f"sst2={dirs['sst2']}", "--adapter", f"mrpc={dirs['mrpc']}", "--text-a", "a",
            "--adapter-column", "task"]
    out = tmp_path / "mixed.jsonl"
    assert main([*bank, "--input", str(tsv), "--text-b", "b", "--output", str(out)]) == 0
    mixed = [json.loads(line) for line in out.read_text().splitlines()]
    assert [m["adapter"] for m in mixed] == ["sst2", "mrpc", "sst2"]
    for text, row in (("A fine film.", 0), ("Dull and slow.", 2)):  # as sst2 alone reads its one text
        single = tmp_path / "single.tsv"
        single.write_text(f"a\n{text}\n")
        assert main(["--adapter", str(dirs["sst2"]), "--input", str(single), "--text-a", "a",
                     "--output", str(tmp_path / f"alone{row}.jsonl")]) == 0
        alone = json.loads((tmp_path / f"alone{row}.jsonl").read_text())
        torch.testing.assert_close(torch.tensor(mixed[row]["logits"]), torch.tensor(alone["logits"]),
                                   atol=1e-5, rtol=1e-5)
    tsv.write_text(tsv.read_text() + "No pair here.\t\tmrpc\n")
    with pytest.raises(SystemExit) as stopped:
        main([*bank, "--input", str(tsv), "--text-b", "b", "--output", str(tmp_path / "bad.jsonl")])
    assert stopped.value.code == 3 and f"{tsv}:5: adapter 'mrpc' reads pairs of texts" in capsys.readouterr().err
    assert main([*bank, "--input", str(tsv), "--text-b", "b", "--output", str(out), "--skip-bad"]) == 0
    assert len(out.read_text().splitlines()) == 3 and "line 5: adapter 'mrpc'" in capsys.readouterr().err


def test_adapters_of_different_base_models_are_named_with_their_own_fingerprints(tmp_path, minilm_dir):
    from ptuning import load_bank
    from ptuning.adapters.files import read_adapter
    from ptuning.errors import AdapterError

    one = tiny_adapters(tmp_path / "one", minilm_dir, [("a", MethodConfig(num_virtual_tokens=2), ["x", "y"], None)])
    other = tiny_adapters(tmp_path / "two", minilm_dir, [("b", MethodConfig(num_virtual_tokens=2), ["x", "y"], None)],
                          seed=5)  # a second random base: other weights, another fingerprint
    prints = {name: read_adapter(folder)[0].fingerprint for name, folder in {**one, **other}.items()}
    assert prints["a"] != prints["b"]
    with pytest.raises(AdapterError, match=f"a {prints['a']}, b {prints['b']}"):
        load_bank({"a": one["a"], "b": other["b"]}, tmp_path / "one" / "base")
