"""The library checks its arguments: a wrong call raises one of our typed errors naming the argument,
never a torch or numpy error from deep inside; a single string passed as the texts is one text."""
from __future__ import annotations

import copy

import pytest
import torch

import ptuning
from ptuning.errors import AdapterError, OptionError, PtuningError
from ptuning.tasks import ner, qa


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_dir, glue_dir):
    from test_predict import tiny_adapter

    return tiny_adapter(tmp_path_factory, minilm_dir, glue_dir)   # (model folder, adapter folder)


@pytest.fixture(scope="module")
def loaded(tiny):
    return ptuning.load_trained(tiny[1])  # a sequence classifier (MRPC), its tokenizer, its config


def test_a_single_string_is_one_text(loaded):
    model, tokenizer, _ = loaded
    # this MRPC adapter reads pairs: the one text is refused by name, not scored as one row per character
    with pytest.raises(OptionError, match=r"texts\[0\]: .*mrpc, a sentence-pair task"):
        ptuning.predict(model, tokenizer, "The cat sat on the mat.")
    model = copy.copy(model)      # the same weights without the adapter's record (load_classifier's kind):
    model.adapter_config = None   # nothing says what it reads, so single texts are taken
    one = ptuning.predict(model, tokenizer, "The cat sat on the mat.")
    assert one.shape == (1, 2)
    assert (ptuning.predict(model, tokenizer, ["The cat sat on the mat."]) == one).all()
    assert ptuning.predict(model, tokenizer, [("A.", "B."), ["C.", "D."]]).shape == (2, 2)


@pytest.mark.parametrize("texts, culprit", [
    (None, "texts must be"), ([], "texts is empty"), ([123], r"texts\[0\]"), ([("a", "b", "c")], r"texts\[0\]"),
    ([("a", None)], r"texts\[0\]"), ({"a": 1}, "texts must be"), (b"bytes", "texts must be"), (7, "texts must be"),
    (["ok", "\ud800"], r"texts\[1\].*surrogate"),
])
def test_bad_texts_are_named(loaded, texts, culprit):
    model, tokenizer, _ = loaded
    with pytest.raises(OptionError, match=culprit):
        ptuning.predict(model, tokenizer, texts)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True, "8", None])
def test_bad_batch_size_is_named(loaded, batch_size):
    model, tokenizer, _ = loaded
    with pytest.raises(OptionError, match="batch_size must be an integer of at least 1"):
        ptuning.predict(model, tokenizer, ["A."], batch_size=batch_size)


def test_predict_needs_a_model_and_a_sequence_head(loaded):
    model, tokenizer, _ = loaded
    with pytest.raises(OptionError, match="needs the model first"):
        ptuning.predict(None, tokenizer, ["A."])
    with pytest.raises(OptionError, match="answer needs a question-answering"):
        qa.answer(model, tokenizer, [("Who?", "Me.")])
    with pytest.raises(OptionError, match="tag_sentences needs a token-classification"):
        ner.tag_sentences(model, tokenizer, ["O"], [["A"]], 8, "cpu")


@pytest.mark.parametrize("ids, mask, culprit", [
    (torch.tensor([[101.0, 102.0]]), None, "input_ids must be a 2-D integer tensor"),
    (torch.tensor([101, 102]), None, "input_ids must be a 2-D integer tensor"),
    ([[101, 102]], None, "input_ids must be a 2-D integer tensor"),
    (torch.tensor([[101, 102]]), torch.ones(1, 3, dtype=torch.long), r"attention_mask must be a tensor of input_ids' shape"),
    (torch.tensor([[101, 10**6]]), None, "outside the model's vocabulary"),
    (torch.tensor([[101, -5]]), None, "outside the model's vocabulary"),
])
def test_bad_ids_are_named(loaded, ids, mask, culprit):
    model, _, _ = loaded
    with pytest.raises(OptionError, match=culprit):
        model(ids, mask)


@pytest.mark.parametrize("call, error, culprit", [
    (lambda: ptuning.load_trained(None), AdapterError, "adapter_dir must be a folder path"),
    (lambda: ptuning.load_trained(""), AdapterError, "adapter_dir must be a folder path"),
    (lambda: ptuning.load_trained(42), AdapterError, "adapter_dir must be a folder path"),
    (lambda: ptuning.load_bank([]), AdapterError, "load_bank needs a dict"),
    (lambda: ptuning.load_bank({"a": None}), AdapterError, "adapter 'a' must be a folder path"),
])
def test_bad_loader_arguments_are_named(call, error, culprit):
    with pytest.raises(error, match=culprit):
        call()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with a GPU has what is asked for")
def test_cuda_without_a_gpu_is_named(tiny):
    with pytest.raises(OptionError, match="no CUDA GPU is available here"):
        ptuning.load_trained(tiny[1], device="cuda")
    with pytest.raises(OptionError, match="not a device"):
        ptuning.load_trained(tiny[1], device="gpu0")


def test_every_error_above_is_ours(loaded):
    """The checks raise the project's errors, whose classes callers catch (PtuningError, ValueError)."""
    model, tokenizer, _ = loaded
    with pytest.raises(PtuningError):
        ptuning.predict(model, tokenizer, [None])
    with pytest.raises(ValueError):
        ptuning.predict(model, tokenizer, [])


def test_the_bank_checks_its_rows_and_names(tiny):
    from ptuning.text.tokenizer import collate

    bank, tokenizers, _ = ptuning.load_bank({"a": tiny[1], "b": tiny[1]})
    batch = collate([tokenizers["a"].encode("A cat.", "A dog.")] * 2, tokenizers["a"].pad_id)
    ids, mask, types = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
    assert len(bank(ids, mask, types, ["a", "b"])) == 2
    for names, message in ((["a"], "one adapter per row"), ("ab", "one adapter per row"), (["a", "zzz"], "'zzz'")):
        with pytest.raises(OptionError, match=message):
            bank(ids, mask, types, names)
    with pytest.raises(OptionError, match="input_ids must be a 2-D integer tensor"):
        bank(ids.float(), mask, types, ["a", "b"])
    assert torch.equal(torch.stack(bank(ids, None, types, ["a", "b"])), torch.stack(bank(ids, mask, types, ["a", "b"])))


def test_token_types_masks_and_lengths_are_checked(loaded):
    model, _, _ = loaded
    ids = torch.tensor([[101, 1037, 102]])
    for kwargs, message in ((dict(token_type_ids=torch.tensor([[0, 5, 0]])), "token_type_ids must be in 0..1"),
                            (dict(attention_mask=torch.tensor([[1, 2, 1]])), "attention_mask must hold 0"),
                            (dict(input_ids=torch.zeros(0, 3, dtype=torch.long)), "at least one row"),
                            (dict(input_ids=torch.full((1, 600), 101)), "leave room for")):
        with pytest.raises(OptionError, match=message):
            model(**{"input_ids": ids, **kwargs})


def test_numpy_texts_are_read_as_lists_and_a_set_is_refused(loaded):
    """A table's columns (`df[["a", "b"]].values`) are (N, 2) numpy strings; a set has no order for the rows."""
    import numpy as np

    model, tokenizer, _ = loaded
    pairs = [("The cat sat.", "A cat sat."), ("It rained.", "The sun shone.")]
    expected = ptuning.predict(model, tokenizer, pairs)
    assert (ptuning.predict(model, tokenizer, np.array(pairs)) == expected).all()
    with pytest.raises(OptionError, match="texts is a set, which has no order"):
        ptuning.predict(model, tokenizer, set(pairs))
