"""Cloze tasks (tasks/cloze.py): the MLM head at [MASK] read through a verbalizer, against transformers'
`BertForMaskedLM` / `RobertaForMaskedLM` (tiny random models, every bias and LayerNorm randomised), by hand,
and through train.py / predict.py."""
import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY, saved_per_family, tiny_hf_model

from ptuning.errors import CheckpointError, OptionError
from ptuning.model import MethodConfig, load_model
from ptuning.tasks import cloze, family_for, make_head
from ptuning.text.tokenizer import PROMPT_SLOT, Tokenizer, TokenizerError, parse_template

ROOT = Path(__file__).resolve().parents[1]
TOL = dict(atol=1e-5, rtol=1e-5)
MASK_ID = 4                          # the tiny models' mask token (ids only: no tokenizer needed for parity)
LABEL_WORDS = [[[5]], [[7, 8], [9]]]  # label 0: one word of one token; label 1: a two-token word and a word
N = 4                                # virtual tokens


def hf_mlm(family: str, **overrides):
    model = tiny_hf_model(family, kind="mlm", **overrides)  # every bias and LayerNorm randomised, the LM head's too
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # tied, as published
    return model


@pytest.fixture(scope="module")
def mlm_dirs(tmp_path_factory):
    return saved_per_family(tmp_path_factory, "mlm", hf_mlm)


def ours(folder, method):
    return load_model(folder, method, lambda c: cloze.head(c, method, 2, LABEL_WORDS, MASK_ID)).eval()


def cloze_batch(family: str, slots: int):
    """Rows [CLS] slots/2 text... [MASK] text slots/2 text [SEP] + padding; the mask at another place in each row."""
    g = torch.Generator().manual_seed(0)
    cls, sep, pad = (0, 2, 1) if family == "roberta" else (2, 3, 0)
    rows = []
    for length, at in ((9, 3), (7, 5), (5, 2)):
        text = torch.randint(10, 99, (length,), generator=g).tolist()
        text[at] = MASK_ID
        half = slots // 2
        rows.append([cls] + [PROMPT_SLOT] * half + text[:at + 1] + [PROMPT_SLOT] * (slots - half) + text[at + 1:]
                    + [sep])
    width = max(map(len, rows))
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


def features_of(model, *args):
    """What the head reads (the hidden state at each row's [MASK]), and the head's output."""
    seen = {}
    handle = model.head.register_forward_hook(lambda module, inputs, output: seen.update(x=inputs[0]))
    out = model(*args)
    handle.remove()
    return seen["x"], out


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_v1_template_mlm_logits_and_prompt_gradients_match_transformers(family, mlm_dirs):
    """P-tuning v1 with its prompts in a template: the MLM logits at [MASK] and the prompt encoder's
    gradients equal transformers' masked LM fed the same prompt vectors in the same slots."""
    method = MethodConfig(method="ptuning", num_virtual_tokens=N, encoder_hidden_size=16,
                          template="[P*2] {a} [MASK] [P*2] {b}")
    model = ours(mlm_dirs[family], method)
    hf = hf_mlm(family)
    theirs_prompts = copy.deepcopy(model.prompt_encoder)
    ids, mask = cloze_batch(family, N)
    at = ids.eq(MASK_ID).int().argmax(1)
    weights = torch.randn(ids.shape[0], hf.config.vocab_size, generator=torch.Generator().manual_seed(3))

    features, _ = features_of(model, ids, mask)
    got = model.head.vocab_logits(features)
    (got * weights).sum().backward()

    slots = ids.eq(PROMPT_SLOT)
    embeds = hf.get_input_embeddings()(ids.clamp(min=0))
    embeds = embeds.masked_scatter(slots[..., None], theirs_prompts().expand(ids.shape[0], N, -1))
    want = hf(inputs_embeds=embeds, attention_mask=mask).logits[torch.arange(len(ids)), at]
    (want * weights).sum().backward()

    torch.testing.assert_close(got, want, **TOL)
    for (name, p), q in zip(model.prompt_encoder.named_parameters(), theirs_prompts.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_v2_prefix_mlm_logits_and_prefix_gradients_match_transformers_and_peft(family, mlm_dirs):
    """P-tuning v2 with the MLM head: peft's prefix (FEATURE_EXTRACTION around the masked LM) copied into ours."""
    import peft

    theirs = peft.get_peft_model(hf_mlm(family), peft.PrefixTuningConfig(task_type="FEATURE_EXTRACTION",
                                                                          num_virtual_tokens=N)).eval()
    method = MethodConfig(method="prefix", num_virtual_tokens=N, prefix_position_shift=True,
                          template="{a} [MASK] {b}")
    model = ours(mlm_dirs[family], method)
    model.prefix_encoder.load_state_dict(theirs.prompt_encoder["default"].state_dict())
    ids, mask = cloze_batch(family, 0)
    at = ids.eq(MASK_ID).int().argmax(1)
    weights = torch.randn(ids.shape[0], TINY["vocab_size"], generator=torch.Generator().manual_seed(3))

    features, _ = features_of(model, ids, mask)
    got = model.head.vocab_logits(features)
    want = theirs(input_ids=ids, attention_mask=mask).logits[torch.arange(len(ids)), at]
    torch.testing.assert_close(got, want, **TOL)
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    their_grads = dict(theirs.prompt_encoder["default"].named_parameters())
    for name, p in model.prefix_encoder.named_parameters():
        torch.testing.assert_close(p.grad, their_grads[name].grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_label_scores_and_loss_equal_a_hand_computation_from_transformers_logits(family, mlm_dirs):
    """Label c's score: the mean over its words and their tokens of the MLM logits at [MASK]; the loss:
    cross-entropy over the labels of the mean log-probabilities (PET's, for words of several tokens)."""
    method = MethodConfig(method="full", template="{a} [MASK] {b}")
    model = ours(mlm_dirs[family], method)
    ids, mask = cloze_batch(family, 0)
    at = ids.eq(MASK_ID).int().argmax(1)
    with torch.no_grad():
        logits = hf_mlm(family)(input_ids=ids, attention_mask=mask).logits[torch.arange(len(ids)), at]  # (B, V)
        scores = model(ids, mask)
    by_hand = torch.stack([logits[:, 5], ((logits[:, 7] + logits[:, 8]) / 2 + logits[:, 9]) / 2], dim=1)
    torch.testing.assert_close(scores, by_hand, **TOL)

    labels = torch.tensor([1, 0, 1])
    log_probs = logits.log_softmax(-1)
    pet = torch.stack([log_probs[:, 5], ((log_probs[:, 7] + log_probs[:, 8]) / 2 + log_probs[:, 9]) / 2], dim=1)
    want = -pet.log_softmax(-1)[torch.arange(3), labels].mean()
    torch.testing.assert_close(cloze.loss(scores, {"labels": labels}), want, **TOL)


def test_only_the_prompts_train_and_the_head_is_the_checkpoints(mlm_dirs):
    method = MethodConfig(method="prefix", num_virtual_tokens=N, template="{a} [MASK] {b}")
    model = ours(mlm_dirs["bert"], method)
    assert model.trainable_names() == ["prefix_encoder.embedding.weight"]
    hf = hf_mlm("bert")
    torch.testing.assert_close(model.head.bias, hf.cls.predictions.bias)
    assert model.head.decoder is model.encoder.embeddings.word  # tied: stored once
    assert not any(k.startswith("head.decoder") for k in model.state_dict())
    full = ours(mlm_dirs["bert"], MethodConfig(method="full", template="{a} [MASK] {b}"))
    assert {"head.transform.weight", "head.bias", "encoder.embeddings.word.weight"} <= set(full.trainable_names())


# --- bad input --------------------------------------------------------------------------------------

def test_checkpoint_without_mlm_head_is_refused_naming_its_keys(tiny_dirs):
    method = MethodConfig(method="prefix", template="{a} [MASK] {b}")
    with pytest.raises(CheckpointError, match=r"cls\.predictions\.transform\.dense\.weight.*ForMaskedLM"):
        load_model(tiny_dirs["bert"], method, lambda c: cloze.head(c, method, 2, LABEL_WORDS, MASK_ID))
    with pytest.raises(CheckpointError, match=r"lm_head\.dense\.weight"):
        load_model(tiny_dirs["roberta"], method, lambda c: cloze.head(c, method, 2, LABEL_WORDS, MASK_ID))


def test_untied_decoder_is_refused(tmp_path):
    import transformers as tf

    torch.manual_seed(0)
    tf.BertForMaskedLM(tf.BertConfig(**TINY, tie_word_embeddings=False)).save_pretrained(tmp_path)
    method = MethodConfig(method="prefix", template="{a} [MASK] {b}")
    with pytest.raises(CheckpointError, match="decoder differs from the word embeddings"):
        load_model(tmp_path, method, lambda c: cloze.head(c, method, 2, LABEL_WORDS, MASK_ID))


@pytest.mark.parametrize("template, message", [
    ("{a} {b}", "one \\[MASK\\].*it has 0"),
    (None, "one \\[MASK\\].*it has 0"),
])
def test_template_without_one_mask_is_refused(template, message, mlm_dirs):
    method = MethodConfig(method="prefix", template=template)
    with pytest.raises(OptionError, match=message):
        ours(mlm_dirs["bert"], method)


def test_template_with_two_masks_is_refused():
    with pytest.raises(TokenizerError, match="has \\[MASK\\] 2 times"):
        parse_template("{a} [MASK] [MASK] {b}", 0)
    for glued in ("{a} ? [MASK]x {b}", "{a} ?[MASK] , {b}", "{a} [MASK] , {b}'s", "{a} <mask> {b}", "x{a} [MASK]"):
        with pytest.raises(TokenizerError, match="piece of its own|write the mask as \\[MASK\\]"):
            parse_template(glued, 0)
        with pytest.raises(ValueError, match="piece of its own|write the mask as"):
            MethodConfig(method="prefix", template=glued)


def test_mask_in_a_classifiers_template_and_prompts_in_v2_template_are_refused(tiny_dirs, mlm_dirs):
    from ptuning.model import load_classifier

    with pytest.raises(OptionError, match="MLM head only"):
        load_classifier(tiny_dirs["bert"], MethodConfig(method="ptuning", num_virtual_tokens=2,
                                                        template="[P*2] {a} [MASK] {b}"), 2)
    with pytest.raises(ValueError, match="\\[P\\] slots place v1 prompts"):
        MethodConfig(method="prefix", template="[P*2] {a} [MASK] {b}")


def test_a_row_without_its_one_mask_is_refused_in_evaluation(mlm_dirs):
    model = ours(mlm_dirs["bert"], MethodConfig(method="full", template="{a} [MASK] {b}"))
    ids, mask = cloze_batch("bert", 0)
    ids[1, ids[1].eq(MASK_ID)] = 20
    with pytest.raises(ValueError, match="row 1 holds 0 mask tokens"):
        model(ids, mask)


@pytest.mark.parametrize("text, message", [
    ("equivalent=Yes", "1 label; a classifier needs at least two"),
    ("equivalent=Yes,not_equivalent=", "label 'not_equivalent' has an empty word"),
    ("equivalent=Yes,equivalent=No", "label 'equivalent' is given twice"),
    ("equivalent:Yes,not_equivalent=No", "write label=word"),
    ("=Yes,not_equivalent=No", "write label=word"),
    ("equivalent=Yes|,not_equivalent=No", "empty word"),
    ("equivalent=Yes|Yes,not_equivalent=No", "names a word twice"),
    ("1=Yes,1.0=No", "label '1.0' is given twice \\(as '1'\\)"),
    ("Yes,No", "write label=word entries"),
    (",".join(f"label{i}=word{i}" for i in range(60)) + ",x", "write label=word"),  # long: no path lookup
    ("x" * 5000, "write label=word entries"),
])
def test_bad_verbalizers_are_refused(text, message):
    with pytest.raises(OptionError, match=message):
        cloze.parse_verbalizer(text)


def test_verbalizer_must_name_every_label_and_no_other():
    with pytest.raises(OptionError, match="no word for label 'not_equivalent'; unknown label 'foo'"):
        cloze.check_labels(cloze.parse_verbalizer("equivalent=Yes,foo=No"), ("not_equivalent", "equivalent"),
                           "mrpc-cloze")


def test_verbalizer_from_json_file(tmp_path):
    path = tmp_path / "words.json"
    path.write_text(json.dumps({"negative": ["terrible", "bad"], "positive": "great"}))
    assert cloze.parse_verbalizer(str(path)) == {"negative": ["terrible", "bad"], "positive": ["great"]}
    path.write_text('{"negative": 3, "positive": "great"}')
    with pytest.raises(OptionError, match="key 'negative': a word or a list of words"):
        cloze.parse_verbalizer(str(path))
    path.write_text("not json")
    with pytest.raises(OptionError, match="not a JSON file"):
        cloze.parse_verbalizer(str(path))
    with pytest.raises(OptionError, match="missing.json"):
        cloze.parse_verbalizer(str(tmp_path / "missing.json"))
    path.write_text('{"a": "x", "b": "y", "a": "z"}')
    with pytest.raises(OptionError, match="key 'a' is given twice"):
        cloze.parse_verbalizer(str(path))
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"a": "x", "b": "y"}).encode())  # a BOM, as Windows writes
    assert cloze.parse_verbalizer(str(path)) == {"a": ["x"], "b": ["y"]}
    with pytest.raises(OptionError, match="label 1 must be text"):
        cloze.parse_verbalizer({1: "x", "b": "y"})


def test_label_words_unknown_split_and_clashing(minilm_dir):
    tokenizer = Tokenizer.from_folder(minilm_dir)
    said = []
    ids = cloze.label_word_ids(tokenizer, {"no": ["No"], "yes": ["Yes", "unbelievably"]}, said.append)
    assert ids[0] == [[tokenizer.backend.token_to_id("no")]] and len(ids[1][1]) > 1
    assert len(said) == 1 and "'unbelievably'" in said[0] and "mean of their log-probabilities" in said[0]
    with pytest.raises(OptionError, match="'☃'.*not in the model's vocabulary"):
        cloze.label_word_ids(tokenizer, {"no": ["No"], "yes": ["☃"]})
    with pytest.raises(OptionError, match="'yes' \\(label 'no'\\) and 'Yes' \\(label 'yes'\\) are the same tokens"):
        cloze.label_word_ids(tokenizer, {"no": ["yes"], "yes": ["Yes"]})  # uncased: one word
    with pytest.raises(OptionError, match="same tokens"):  # a word shared, though the label has another too
        cloze.label_word_ids(tokenizer, {"no": ["yes"], "yes": ["yes", "sure"]})
    with pytest.raises(OptionError, match="'\\[MASK\\]' \\(label 'yes'\\) is a special token"):
        cloze.label_word_ids(tokenizer, {"no": ["No"], "yes": ["[MASK]"]})


def test_label_word_ids_reads_words_as_the_command_line_does(minilm_dir):
    tokenizer = Tokenizer.from_folder(minilm_dir)
    assert cloze.label_word_ids(tokenizer, {"a": "no", "b": "yes"}) == [[[2053]], [[2748]]]  # a word, not letters
    for bad in ({}, {"a": "no"}, {"a": [], "b": "yes"}):
        with pytest.raises(OptionError):
            cloze.label_word_ids(tokenizer, bad)


def test_head_refuses_ids_outside_the_vocabulary_and_unknown_activations():
    from ptuning.heads import MaskedLMHead

    with pytest.raises(ValueError, match="token ids in \\[0, 99\\)"):
        MaskedLMHead(32, 99, 1e-12, "gelu", [[[-1]], [[5]]], 4)
    with pytest.raises(ValueError, match="token ids"):
        MaskedLMHead(32, 99, 1e-12, "gelu", [[[5]], [[500]]], 4)
    with pytest.raises(ValueError, match="mask_token_id"):
        MaskedLMHead(32, 99, 1e-12, "gelu", [[[5]], [[6]]], 99)
    with pytest.raises(ValueError, match="activation"):
        MaskedLMHead(32, 99, 1e-12, "swish", [[[5]], [[6]]], 4)


def test_a_mask_in_padding_is_not_read(mlm_dirs):
    model = ours(mlm_dirs["bert"], MethodConfig(method="full", template="{a} [MASK] {b}"))
    ids, mask = cloze_batch("bert", 0)
    ids[2, -1] = MASK_ID  # row 2 is padded at its end: a second mask there is padding, not a token
    assert mask[2, -1] == 0
    torch.testing.assert_close(model(ids, mask)[2], model(*cloze_batch("bert", 0))[2])


def test_template_mask_becomes_the_mask_token_once(minilm_dir):
    tokenizer = Tokenizer.from_folder(minilm_dir, reserved_positions=4, template="[P*2] {a} ? [MASK] , [P*2] {b}")
    encoded = tokenizer.encode("The cat sat.", "A cat was sitting.")
    assert encoded.ids.count(tokenizer.mask_id) == 1 and encoded.ids.count(PROMPT_SLOT) == 4
    assert tokenizer.backend.id_to_token(encoded.ids[encoded.ids.index(tokenizer.mask_id) - 1]) == "?"


@pytest.mark.parametrize("values, template", [
    (dict(task="mrpc-cloze", method="ptuning", num_virtual_tokens=6), "[P*3] {a}? [MASK], [P*3] {b}"),
    (dict(task="mrpc-cloze", method="ptuning", num_virtual_tokens=1), "[P*1] {a}? [MASK], {b}"),
    (dict(task="sst2-cloze", method="prompt", num_virtual_tokens=5), "[P*5] {a} It was [MASK]."),
    (dict(task="rte-cloze", method="prefix", num_virtual_tokens=20), "{a}? [MASK], {b}"),
    (dict(task="cloze", method="full", text_b=None), "{a} It was [MASK]."),
    (dict(task="mrpc", method="ptuning", num_virtual_tokens=6), None),
])
def test_default_templates(values, template):
    assert cloze.default_template(values) == template


def test_family_registration(mlm_dirs):
    from ptuning.config import EncoderConfig

    assert family_for("mrpc-cloze") is cloze and family_for("cloze") is cloze and cloze.HEAD == "mask"
    options = {"label_words": LABEL_WORDS, "mask_token_id": 4, "verbalizer": {"a": ["x"], "b": ["y"]}}
    head = make_head(cloze, EncoderConfig.from_json(mlm_dirs["bert"]), MethodConfig(), 2, options)
    assert head.reads == "mask" and head.word_ids.shape == (2, 3)
    torch.testing.assert_close(head.word_weights, torch.tensor([[1.0, 0, 0], [0.25, 0.25, 0.5]]))


# --- train.py / predict.py -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vocab_mlm(tmp_path_factory, minilm_dir):
    """A tiny BertForMaskedLM with MiniLM's vocabulary and tokenizer."""
    folder = tmp_path_factory.mktemp("mlm_vocab")
    hf_mlm("bert", vocab_size=30522, max_position_embeddings=128).save_pretrained(folder, safe_serialization=True)
    for name in ("tokenizer.json", "vocab.txt"):
        shutil.copy(minilm_dir / name, folder / name)
    return folder


def run(script, *argv, check=True):
    done = subprocess.run([sys.executable, str(ROOT / script), *map(str, argv)], capture_output=True, text=True,
                          cwd=ROOT)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_train_and_predict_on_a_fewglue_style_jsonl(vocab_mlm, tmp_path):
    """BoolQ as FewGLUE ships it (JSON true/false labels): --task cloze with the verbalizer naming the classes."""
    rows = [{"passage": f"passage number {i} is about cats .", "question": f"is it about cats {i}",
             "label": i % 3 != 0, "idx": i} for i in range(24)]
    data = tmp_path / "boolq.jsonl"
    data.write_text("\n".join(map(json.dumps, rows)) + "\n")
    out = tmp_path / "run"
    done = run("train.py", "--task", "cloze", "--model", vocab_mlm, "--train-file", data, "--dev-file", data,
               "--text-a", "passage", "--text-b", "question", "--verbalizer", "false=No,true=Yes",
               "--method", "ptuning", "--epochs", "1", "--output-dir", out)
    assert "done in" in done.stdout
    meta = json.loads((out / "adapter_config.json").read_text())
    assert meta["method"]["template"] == "[P*3] {a}? [MASK], [P*3] {b}"
    assert meta["task_options"]["verbalizer"] == {"false": ["No"], "true": ["Yes"]}
    assert meta["label_names"] == ["false", "true"] and meta["task"] == "cloze"
    shown = run("predict.py", "--adapter", out, "a passage about cats .", "is it about cats").stdout
    assert "false:" in shown and "true:" in shown
    refused = run("predict.py", "--adapter", out, "a passage [MASK] cats .", "is it", check=False)
    assert refused.returncode != 0 and "mask token" in refused.stderr
    rows = tmp_path / "rows.tsv"  # an --input row holding the mask token is a bad line: named, or skipped
    rows.write_text("passage\tquestion\na passage .\tis it\nthe [MASK] passage\tis it\n")
    argv = ["predict.py", "--adapter", out, "--input", rows, "--text-a", "passage", "--text-b", "question"]
    refused = run(*argv, "--output", tmp_path / "p.jsonl", check=False)
    assert refused.returncode == 3 and f"{rows}:3: the text holds [MASK]" in refused.stderr, refused.stderr
    skipped = run(*argv, "--output", tmp_path / "p.jsonl", "--skip-bad", check=False)
    assert skipped.returncode == 0 and "line 3: the text holds [MASK]" in skipped.stderr, skipped.stderr
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 1
    export = subprocess.run([sys.executable, "-m", "ptuning", "export-peft", str(out), str(tmp_path / "peft")],
                            capture_output=True, text=True, cwd=ROOT)
    assert export.returncode != 0 and "verbalizer" in export.stderr + export.stdout


def test_glue_cloze_words_follow_the_tasks_label_ids_whatever_the_order_given(vocab_mlm, glue_dir, tmp_path):
    """MRPC's label 0 is not_equivalent: its words are scored in column 0 however --verbalizer orders them."""
    out = tmp_path / "run"
    run("train.py", "--task", "mrpc-cloze", "--model", vocab_mlm, "--data-dir", glue_dir, "--method", "prefix",
        "--max-train-samples", "8", "--max-dev-samples", "8", "--epochs", "1", "--output-dir", out,
        "--verbalizer", "equivalent=Yes,not_equivalent=No")
    meta = json.loads((out / "adapter_config.json").read_text())
    assert meta["label_names"] == ["not_equivalent", "equivalent"]
    assert list(meta["task_options"]["verbalizer"]) == ["not_equivalent", "equivalent"]
    assert meta["task_options"]["label_words"] == [[[2053]], [[2748]]]  # "no", "yes" in MiniLM's vocabulary


def test_a_glue_cloze_name_on_your_own_table_takes_the_verbalizers_labels(vocab_mlm, glue_dir, tmp_path):
    """--task mrpc-cloze --train-file: the table's labels (here MRPC's own 0/1) are the verbalizer's."""
    rows = (glue_dir / "MRPC" / "train.tsv").read_text(encoding="utf-8-sig").splitlines()[:9]
    table = tmp_path / "mrpc.tsv"
    table.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    run("train.py", "--task", "mrpc-cloze", "--model", vocab_mlm, "--train-file", table, "--dev-file", table,
        "--text-a", "#1 String", "--text-b", "#2 String", "--label", "Quality", "--verbalizer", "0=No,1=Yes",
        "--epochs", "1", "--output-dir", out)
    assert json.loads((out / "adapter_config.json").read_text())["label_names"] == ["0", "1"]


def test_train_mrpc_cloze_prefix_and_resume_keeps_the_verbalizer(vocab_mlm, glue_dir, tmp_path):
    out = tmp_path / "run"
    common = ["--task", "mrpc-cloze", "--model", vocab_mlm, "--data-dir", glue_dir, "--method", "prefix",
              "--max-train-samples", "32", "--max-dev-samples", "16", "--output-dir", out,
              "--verbalizer", "not_equivalent=No|False,equivalent=Yes"]
    run("train.py", *common, "--epochs", "1")
    run("train.py", *common, "--epochs", "2", "--resume")
    meta = json.loads((out / "adapter_config.json").read_text())
    assert meta["method"]["template"] == "{a}? [MASK], {b}"
    assert meta["task_options"]["verbalizer"]["not_equivalent"] == ["No", "False"]
    assert len([r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
                if "train_loss" in r]) == 2
    from ptuning import load_trained, predict

    model, tokenizer, _ = load_trained(out)
    probs = predict(model, tokenizer, [("The cat sat.", "A cat sat.")]).shape
    assert probs == (1, 2)
    with pytest.raises(OptionError, match="pairs"):
        predict(model, tokenizer, "one text")


@pytest.mark.parametrize("argv, message", [
    (["--task", "cloze"], "--task cloze reads your own tables"),
    (["--task", "mrpc-cloze", "--verbalizer", "equivalent=Yes,foo=No"], "unknown label 'foo'"),
    (["--task", "mrpc-cloze", "--head-token", "first"], "--head-token has no meaning with --task mrpc-cloze"),
    (["--task", "mrpc", "--method", "prefix", "--template", "{a} [MASK] {b}"], "--template has no meaning"),
    (["--task", "conll2003", "--verbalizer", "a=b,c=d"], "--verbalizer has no meaning with --task conll2003"),
])
def test_command_line_refusals(argv, message):
    done = run("train.py", *argv, "--dry-run", check=False)
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.parametrize("argv, message", [
    (["--template", "{a} ? [MASK] . [MASK]."], "has [MASK] 2 times"),
    (["--template", "{a} ? [MASK] , {b}s"], "write {b} as a piece of its own"),
    (["--template", "{a} ? [MASK] ."], "pairs of texts, and the template has no {b}"),
    (["--template", "{a} ? [mask] , {b}"], "holds one [MASK]"),
    (["--task", "sst2-cloze", "--template", "{a} [MASK] {b}"], "one text (no --text-b), and the template has a {b}"),
    (["--verbalizer", "not_equivalent=No,equivalent=☃"], "not in the model's vocabulary"),
])
def test_refused_before_training(vocab_mlm, tmp_path, argv, message):
    """What would fail later (or never say so) stops before any data is read (the data folder is empty),
    naming the option; --dry-run too."""
    base = ["--model", vocab_mlm, "--data-dir", tmp_path / "no-data", "--no-download", "--method", "prefix",
            "--output-dir", tmp_path / "run"]
    argv = (["--task", "mrpc-cloze"] if "--task" not in argv else []) + argv
    for extra in ([], ["--dry-run"]):
        done = run("train.py", *argv, *base, *extra, check=False)
        assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "run").exists()


def test_a_mask_token_in_the_data_is_refused_naming_file_and_line(vocab_mlm, tmp_path):
    rows = [{"text": "fine text", "label": "a"}, {"text": "a [MASK] here", "label": "b"}]
    data = tmp_path / "t.jsonl"
    data.write_text("\n".join(map(json.dumps, rows)) + "\n")
    done = run("train.py", "--task", "cloze", "--model", vocab_mlm, "--train-file", data, "--dev-file", data,
               "--text-a", "text", "--verbalizer", "a=good,b=bad", "--output-dir", tmp_path / "run", check=False)
    assert done.returncode == 3 and f"{data}:2: the text holds [MASK]" in done.stderr, done.stderr


def test_resume_compares_the_verbalizer_recorded_not_the_file_again(vocab_mlm, tmp_path):
    """A verbalizer file edited between the start and --resume is another run; the same words as text are not."""
    rows = [{"text": f"text number {i}", "label": ["a", "b"][i % 2]} for i in range(8)]
    data, words = tmp_path / "t.jsonl", tmp_path / "words.json"
    data.write_text("\n".join(map(json.dumps, rows)) + "\n")
    words.write_text(json.dumps({"a": "good", "b": "bad"}))
    common = ["--task", "cloze", "--model", vocab_mlm, "--train-file", data, "--dev-file", data, "--text-a", "text",
              "--output-dir", tmp_path / "run"]
    run("train.py", *common, "--verbalizer", words, "--epochs", "1")
    words.write_text(json.dumps({"a": "fine", "b": "bad"}))
    done = run("train.py", *common, "--verbalizer", words, "--epochs", "2", "--resume", check=False)
    assert done.returncode == 2 and "the run used a=good,b=bad" in done.stderr, done.stderr
    done = run("train.py", *common, "--verbalizer", "b=bad,a=good", "--epochs", "2", "--resume", check=False)
    assert done.returncode == 2 and "the run used a=good,b=bad" in done.stderr, done.stderr  # label order = ids
    run("train.py", *common, "--epochs", "2", "--resume")  # no --verbalizer: the run's own
    run("train.py", *common, "--verbalizer", "a=good,b=bad", "--epochs", "3", "--resume")


def test_library_predict_names_the_text_holding_a_mask(vocab_mlm, tmp_path):
    from ptuning import load_trained, predict

    rows = [{"text": f"text number {i}", "label": ["a", "b"][i % 2]} for i in range(4)]
    data = tmp_path / "t.jsonl"
    data.write_text("\n".join(map(json.dumps, rows)) + "\n")
    run("train.py", "--task", "cloze", "--model", vocab_mlm, "--train-file", data, "--dev-file", data, "--text-a",
        "text", "--verbalizer", "a=good,b=bad", "--epochs", "1", "--output-dir", tmp_path / "run")
    model, tokenizer, _ = load_trained(tmp_path / "run")
    texts = [f"text {i}" for i in range(40)]
    texts[35] = "a [MASK] in it"
    with pytest.raises(OptionError, match="texts\\[35\\] holds the mask token"):
        predict(model, tokenizer, texts, batch_size=8)
    assert predict(model, tokenizer, texts[:3]).shape == (3, 2)


def test_minilm_has_no_mlm_head_and_says_so(tmp_path):
    done = run("train.py", "--task", "mrpc-cloze", "--model", "minilm", "--max-train-samples", "4", "--epochs", "1",
               "--output-dir", tmp_path / "run", check=False)
    assert done.returncode == 3 and "no pretrained masked-language-model head" in done.stderr, done.stderr
    assert "cls.predictions.bias" in done.stderr and not (tmp_path / "run").exists()  # before any data or weights
    dry = run("train.py", "--task", "mrpc-cloze", "--model", "minilm", "--dry-run", check=False)
    assert dry.returncode == 3 and "cls.predictions.transform.dense.weight" in dry.stderr
    assert run("train.py", "--task", "mrpc-cloze", "--dry-run").returncode == 0  # roberta-large's shape, no weights


def test_fused_and_explicit_attention_agree_reading_the_mask(mlm_dirs):
    method = MethodConfig(method="ptuning", num_virtual_tokens=N, template="[P*2] {a} [MASK] [P*2] {b}")
    ids, mask = cloze_batch("roberta", N)
    outs = []
    for fused in (True, False):
        torch.manual_seed(0)
        model = load_model(mlm_dirs["roberta"], method, lambda c: cloze.head(c, method, 2, LABEL_WORDS, MASK_ID),
                           fused=fused).eval()
        outs.append(model(ids, mask))
    torch.testing.assert_close(outs[0], outs[1], **TOL)
    assert F.softmax(outs[0], -1).sum(-1).allclose(torch.ones(3))
