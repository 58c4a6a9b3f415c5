"""config.json: every field checked for type and range, the message naming the file and the key."""
from __future__ import annotations

import json
import os

import pytest

from ptuning.config import EncoderConfig
from ptuning.errors import ConfigError, PtuningError

GOOD_BERT = dict(model_type="bert", vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=37, hidden_act="gelu", hidden_dropout_prob=0.1,
                 attention_probs_dropout_prob=0.1, max_position_embeddings=64, type_vocab_size=2,
                 layer_norm_eps=1e-12, pad_token_id=0, classifier_dropout=None,
                 position_embedding_type="absolute", architectures=["BertForSequenceClassification"])
GOOD_ROBERTA = {**GOOD_BERT, "model_type": "roberta", "pad_token_id": 1, "type_vocab_size": 1}

INT_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "max_position_embeddings", "type_vocab_size", "pad_token_id")
WRONG_INT_TYPES = ("32", 32.0, 32.5, True, None, [32], {"n": 32}, float("nan"))

# (key, value): each a value HF could never have written, or one we cannot build
BAD_VALUES = (
    [(key, value) for key in INT_KEYS for value in WRONG_INT_TYPES]
    + [(key, -1) for key in INT_KEYS]
    + [(key, 0) for key in INT_KEYS if key != "pad_token_id"]
    + [("num_attention_heads", 5), ("num_attention_heads", 64),  # does not divide hidden_size 32
       ("pad_token_id", 99), ("pad_token_id", 10**9),            # outside the vocabulary of 99
       ("layer_norm_eps", "1e-12"), ("layer_norm_eps", 0), ("layer_norm_eps", -1e-5), ("layer_norm_eps", None),
       ("layer_norm_eps", float("inf")), ("layer_norm_eps", float("nan")), ("layer_norm_eps", True),
       ("hidden_dropout_prob", 1.5), ("hidden_dropout_prob", 1), ("hidden_dropout_prob", -0.1),
       ("hidden_dropout_prob", "0.1"), ("hidden_dropout_prob", None), ("hidden_dropout_prob", float("nan")),
       ("attention_probs_dropout_prob", 1.0), ("attention_probs_dropout_prob", "x"),
       ("attention_probs_dropout_prob", False),
       ("classifier_dropout", 1.5), ("classifier_dropout", "0.1"), ("classifier_dropout", -0.5),
       ("model_type", 7), ("model_type", "deberta"), ("model_type", None),
       ("hidden_act", "swish"), ("hidden_act", 3), ("hidden_act", None),
       ("position_embedding_type", "relative_key"), ("position_embedding_type", 0)])


def write_config(folder, raw) -> str:
    path = folder / "config.json"
    path.write_text(json.dumps(raw))
    return str(path)


def message_of(path_or_folder) -> str:
    with pytest.raises(ConfigError) as err:
        EncoderConfig.from_json(path_or_folder)
    assert isinstance(err.value, PtuningError) and isinstance(err.value, ValueError)
    return str(err.value)


@pytest.mark.parametrize("key,value", BAD_VALUES, ids=[f"{k}={v!r}" for k, v in BAD_VALUES])
def test_bad_value_names_the_file_and_the_key(tmp_path, key, value):
    path = write_config(tmp_path, {**GOOD_BERT, key: value})
    message = message_of(tmp_path)
    assert message.startswith(f"{path}: ") and key in message, message


def test_roberta_needs_a_position_after_the_padding_offset(tmp_path):
    path = write_config(tmp_path, {**GOOD_ROBERTA, "max_position_embeddings": 2})  # positions 0..1 are reserved
    message = message_of(tmp_path)
    assert message.startswith(f"{path}: ") and "max_position_embeddings" in message


@pytest.mark.parametrize("raw", [GOOD_BERT, GOOD_ROBERTA, {**GOOD_BERT, "classifier_dropout": 0.0},
                                 {**GOOD_BERT, "hidden_dropout_prob": 0}, {**GOOD_BERT, "layer_norm_eps": 1},
                                 {**GOOD_BERT, "pad_token_id": 98}, {**GOOD_BERT, "unknown_key": "kept out"}])
def test_good_configs_load(tmp_path, raw):
    write_config(tmp_path, raw)
    config = EncoderConfig.from_json(tmp_path)
    assert config.vocab_size == raw["vocab_size"] and config.pad_token_id == raw["pad_token_id"]


@pytest.mark.parametrize("text,says", [("42", "found int"), ("[]", "found list"), ("null", "found NoneType"),
                                       ('"bert"', "found str"), ("", "empty"), ("  \n", "empty"),
                                       ("{", "not valid JSON"), ('{"model_type": "bert",}', "not valid JSON"),
                                       ("{}", "model_type")])
def test_file_that_is_not_an_object_of_settings(tmp_path, text, says):
    (tmp_path / "config.json").write_text(text)
    message = message_of(tmp_path)
    assert message.startswith(f"{tmp_path / 'config.json'}: ") and says in message, message


def test_non_utf8_bytes(tmp_path):
    (tmp_path / "config.json").write_bytes(b'{"model_type": "b\xe9rt"}')
    message = message_of(tmp_path)
    assert message.startswith(f"{tmp_path / 'config.json'}: ") and "UTF-8" in message


def test_directory_named_config_json(tmp_path):
    (tmp_path / "config.json").mkdir()
    message = message_of(tmp_path)
    assert message.startswith(f"{tmp_path / 'config.json'}: ") and "folder" in message
    assert "folder" in message_of(tmp_path / "config.json")  # named directly, too


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    path = write_config(tmp_path, GOOD_BERT)
    os.chmod(path, 0)
    try:
        message = message_of(tmp_path)
    finally:
        os.chmod(path, 0o644)
    assert message.startswith(f"{path}: cannot read")


def test_errors_stay_importable_from_config():
    from ptuning import config, errors

    assert config.ConfigError is errors.ConfigError
