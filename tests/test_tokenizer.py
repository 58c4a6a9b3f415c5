"""The tokenizer: fallbacks from old vocabulary files, truncation room, templates, collate.

Ids are compared with transformers' tokenizers built from the same files.
"""
from __future__ import annotations

import json

import pytest
import torch

from ptuning.config import EncoderConfig
from ptuning.text.tokenizer import (PROMPT_SLOT, Encoded, Tokenizer, TokenizerError, check_template, collate,
                                    parse_template)

CORPUS = ["the cat sat on the mat", "a dog ran in the park", "the quick brown fox jumps over the lazy dog",
          "Hello, world! It's 2024.", "naïve café résumé"] * 20
PAIRS = [("the cat sat", "on the mat"), ("A dog ran in the park.", "The fox jumps!"),
         ("Hello, world!", "naïve café"), ("unseen zebra words", "x")]
BERT_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran",
              "in", "park", "fox", "jump", "##s", "##ing", "cafe", "naive", ".", ",", "!", "'", "?", "hello", "world"]
LONG = " ".join(f"word{i % 50}" for i in range(2000))


def write_config(folder, **overrides):
    config = {**dict(model_type="roberta", vocab_size=300, pad_token_id=1, max_position_embeddings=514,
                     type_vocab_size=1, hidden_size=32, num_attention_heads=4), **overrides}
    (folder / "config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def roberta_folder(tmp_path_factory):
    """A byte-level BPE saved the old way (vocab.json + merges.txt), no tokenizer.json."""
    from tokenizers import ByteLevelBPETokenizer

    folder = tmp_path_factory.mktemp("roberta_bpe")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                            show_progress=False)
    bpe.save_model(str(folder))
    write_config(folder)
    assert not (folder / "tokenizer.json").exists()
    return folder


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert_wordpiece")
    (folder / "vocab.txt").write_text("\n".join(BERT_WORDS) + "\n")
    config = dict(model_type="bert", vocab_size=len(BERT_WORDS), hidden_size=32, num_attention_heads=4,
                  max_position_embeddings=64)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# --- Fallbacks -----------------------------------------------------------------------------------

def test_roberta_fallback_layout(roberta_folder):
    tok = Tokenizer.from_folder(roberta_folder)
    a = tok.backend.encode("the cat", add_special_tokens=False).ids
    b = tok.backend.encode("a dog", add_special_tokens=False).ids
    assert a and b
    enc = tok.encode("the cat", "a dog")
    assert enc.ids == [0, *a, 2, 2, *b, 2]  # <s> A </s></s> B </s>
    assert tok.encode("the cat").ids == [0, *a, 2]
    assert tok.pad_id == 1 and not enc.truncated


def test_roberta_fallback_matches_transformers(roberta_folder):
    import transformers as tf

    # transformers 5 takes `vocab=`/`merges=` (file paths); `vocab_file=` is silently ignored there
    hf = tf.RobertaTokenizerFast(vocab=str(roberta_folder / "vocab.json"), merges=str(roberta_folder / "merges.txt"))
    tok = Tokenizer.from_folder(roberta_folder)
    for a, b in PAIRS:
        want = hf(a, b)["input_ids"]
        assert hf.unk_token_id not in want  # byte-level: the files were really read
        assert tok.encode(a, b).ids == want, (a, b)
        assert tok.encode(a).ids == hf(a)["input_ids"], a


def test_bert_fallback_matches_transformers(bert_folder):
    import transformers as tf

    hf = tf.BertTokenizerFast(vocab=str(bert_folder / "vocab.txt"))
    tok = Tokenizer.from_folder(bert_folder)
    assert tok.pad_id == 0
    assert tok.encode("the cat").ids == [2, 5, 6, 3]  # [CLS] the cat [SEP]
    for a, b in PAIRS:
        want = hf(a, b)
        got = tok.encode(a, b)
        assert got.ids == want["input_ids"], (a, b)
        assert got.type_ids == want["token_type_ids"], (a, b)
    assert 1 in tok.encode("The CAFÉ jumping", "x").ids  # "x": [UNK]
    assert tok.encode("The CAFÉ jumping").ids == [2, 5, 19, 16, 18, 3]  # lower-cased, accents stripped


# --- Truncation ----------------------------------------------------------------------------------

def test_minilm_baked_in_padding_and_truncation_are_off(minilm_dir):
    import transformers as tf

    tok = Tokenizer.from_folder(minilm_dir, reserved_positions=20)
    assert tok.max_length == 512 - 20
    short = tok.encode("A short sentence.")
    assert 3 < len(short.ids) < 128 and not short.truncated  # MiniLM's tokenizer.json pads to 128
    assert len(short.ids) == len(short.type_ids)

    hf = tf.AutoTokenizer.from_pretrained(minilm_dir)
    for a, b in [(LONG, "a short second text"), ("a short first text", LONG), (LONG, None)]:
        got = tok.encode(a, b)
        want = hf(a, b, truncation=True, max_length=492)
        assert len(got.ids) == 492 and got.truncated
        assert got.ids == want["input_ids"] and got.type_ids == want["token_type_ids"]


def test_roberta_truncation_leaves_room_for_positions(roberta_folder):
    config = EncoderConfig.from_json(roberta_folder)
    assert config.max_position_embeddings == 514 and config.pad_token_id == 1
    tok = Tokenizer.from_folder(roberta_folder, reserved_positions=20)
    assert tok.max_length == 492  # 514 - (pad + 1) - 20
    enc = tok.encode(LONG, "the cat")
    assert len(enc.ids) == 492 and enc.truncated
    assert enc.ids[0] == 0 and enc.ids[-1] == 2
    assert Tokenizer.from_folder(roberta_folder, reserved_positions=20, max_length=100).max_length == 100


# --- Templates -----------------------------------------------------------------------------------

@pytest.mark.parametrize("template, n, message", [
    ("[P*x] {a}", 1, "a virtual token is \\[P\\], k of them \\[P\\*k\\]"),
    ("[P*2] {b}", 2, "no \\{a\\}"),
    ("[P*2] {a} [P]", 2, "3 virtual tokens, the method 2"),
])
def test_parse_template_errors(template, n, message):
    with pytest.raises(TokenizerError, match=message):
        parse_template(template, n)


def test_parse_template_accepts():
    assert parse_template("[P*2] {a} [SEP] [P] {b} [P]", 4) == ["[P*2]", "{a}", "[SEP]", "[P]", "{b}", "[P]"]


def test_bert_template_layout(bert_folder):
    tok = Tokenizer.from_folder(bert_folder, reserved_positions=4, template="[P*2] {a} [SEP] [P] {b} [P]")
    enc = tok.encode("the cat", "a dog ran")
    s = PROMPT_SLOT
    assert enc.ids == [2, s, s, 5, 6, 3, s, 10, 11, 12, s, 3]
    assert enc.type_ids == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert not enc.truncated
    with pytest.raises(TokenizerError, match="second text"):
        tok.encode("the cat")


def test_roberta_template_layout(roberta_folder):
    tok = Tokenizer.from_folder(roberta_folder, reserved_positions=2, template="{a} [P] [SEP] {b} [P]")
    a = tok.backend.encode("the cat", add_special_tokens=False).ids
    b = tok.backend.encode("a dog", add_special_tokens=False).ids
    enc = tok.encode("the cat", "a dog")
    assert enc.ids == [0, *a, PROMPT_SLOT, 2, 2, *b, PROMPT_SLOT, 2]
    assert set(enc.type_ids) == {0}


def test_roberta_template_words_keep_their_spaces(roberta_folder):
    """RoBERTa's BPE marks a word that follows a space ("Ġwas"): the template's words and texts after the
    first are encoded as the sentence it writes, "the cat ? <mask> , a dog", not glued "the cat?<mask>,a dog"."""
    tok = Tokenizer.from_folder(roberta_folder, template="{a} ? [MASK] , {b}")
    enc = tok.encode("the cat", "a dog")
    piece = lambda text: tok.backend.encode(text, add_special_tokens=False).ids  # noqa: E731
    assert enc.ids == [0, *piece("the cat"), *piece(" ?"), tok.mask_id, *piece(" ,"), *piece(" a dog"), 2]
    assert piece(" a dog") != piece("a dog")
    after_sep = Tokenizer.from_folder(roberta_folder, template="{a} [SEP] {b}").encode("the cat", "a dog")
    assert after_sep.ids == [0, *piece("the cat"), 2, 2, *piece("a dog"), 2]  # a new segment: no space


def test_punctuation_glued_to_a_slot_follows_it_without_a_space(roberta_folder, bert_folder):
    """"{a}? [MASK]." writes "the cat? <mask>." (PET's "It was <mask>."): RoBERTa's "?" and "." without the
    space-marked "Ġ?"/"Ġ."; BERT's pre-tokenizer splits punctuation off either way, so its ids do not change."""
    assert check_template("{a}? [MASK]., {b}") == ["{a}", "?", "[MASK]", ".,", "{b}"]
    assert [type(p).__name__ for p in check_template("{a}? [MASK].")] == ["str", "Glued", "str", "Glued"]
    tok = Tokenizer.from_folder(roberta_folder, template="{a}? It was [MASK]. {b}")
    piece = lambda text: tok.backend.encode(text, add_special_tokens=False).ids  # noqa: E731
    assert piece("?") != piece(" ?") and piece(".") != piece(" .")
    assert tok.encode("the cat", "a dog").ids == [0, *piece("the cat"), *piece("?"), *piece(" It was"), tok.mask_id,
                                                  *piece("."), *piece(" a dog"), 2]
    bert = lambda template: Tokenizer.from_folder(bert_folder, template=template).encode("the cat", "a dog").ids  # noqa: E731
    assert bert("{a}? [MASK]. {b}") == bert("{a} ? [MASK] . {b}")


def test_template_truncation_respects_max_length(bert_folder):
    """--max-length counts the text and its special tokens, not the virtual tokens (as without a template,
    where peft's prompts come on top of HF's truncated text): 20 tokens and the template's 4 slots."""
    tok = Tokenizer.from_folder(bert_folder, reserved_positions=4, template="[P*2] {a} [SEP] [P] {b} [P]",
                                max_length=20)
    a, b = " ".join(["the cat"] * 30), "a dog ran"
    enc = tok.encode(a, b)
    assert len(enc.ids) == 20 + 4 and enc.truncated
    plain = Tokenizer.from_folder(bert_folder, reserved_positions=4, max_length=20).encode(a, b)
    assert len([i for i in enc.ids if i != PROMPT_SLOT]) == len(plain.ids) == 20  # the same text kept
    assert enc.ids.count(PROMPT_SLOT) == 4 and enc.ids[0] == 2 and enc.ids[-1] == 3
    assert enc.ids[-5:] == [10, 11, 12, PROMPT_SLOT, 3]  # the short text survives whole (longest first)
    assert len(enc.type_ids) == len(enc.ids)
    fits = tok.encode("the cat", b)
    assert not fits.truncated and len(fits.ids) == 12


def test_template_words_that_leave_no_room_for_the_text_are_refused(bert_folder):
    """The template's words are counted as tokens ("Honestly," is two), not one a word: when they and the
    special tokens fill --max-length, every text was cut to nothing and training went on."""
    template = "[P] {a} Honestly, in my considered opinion, overall it was [MASK]."
    from ptuning.errors import OptionError

    with pytest.raises(OptionError, match="no room is left for the text"):
        Tokenizer.from_folder(bert_folder, reserved_positions=1, template=template, max_length=9)
    tok = Tokenizer.from_folder(bert_folder, reserved_positions=1, template=template, max_length=40)
    assert len(tok.encode("the cat sat").ids) <= 41


def test_template_uses_the_whole_position_table(bert_folder):
    config = EncoderConfig.from_json(bert_folder)  # 64 positions; BERT uses all of them
    tok = Tokenizer.from_folder(bert_folder, config, reserved_positions=4, template="[P*2] {a} [SEP] [P] {b} [P]")
    enc = tok.encode(" ".join(["the cat"] * 40), "a dog ran")
    assert enc.truncated
    assert len(enc.ids) == config.max_tokens  # 64 ids, 4 of them slots: every position used once


# --- Mismatches and missing files ------------------------------------------------------------------

def test_tokenizer_larger_than_model_vocab(roberta_folder, tmp_path):
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes((roberta_folder / name).read_bytes())
    write_config(tmp_path, vocab_size=100)
    size = len(json.loads((roberta_folder / "vocab.json").read_text()))
    with pytest.raises(TokenizerError) as err:
        Tokenizer.from_folder(tmp_path)
    assert str(size) in str(err.value) and "vocab_size is 100" in str(err.value)


def test_vocab_size_error_names_the_files_actually_read(roberta_folder, tmp_path):
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes((roberta_folder / name).read_bytes())
    write_config(tmp_path, vocab_size=100)
    with pytest.raises(TokenizerError) as err:
        Tokenizer.from_folder(tmp_path)
    assert "tokenizer.json" not in str(err.value)
    assert "vocab.json" in str(err.value)


@pytest.mark.parametrize("family", ["roberta", "bert"])
def test_missing_tokenizer_files_name_the_folder(family, tmp_path):
    write_config(tmp_path, model_type=family, pad_token_id=1 if family == "roberta" else 0, type_vocab_size=2)
    with pytest.raises(TokenizerError) as err:
        Tokenizer.from_folder(tmp_path)
    assert str(tmp_path) in str(err.value)
    assert ("vocab.json + merges.txt" if family == "roberta" else "vocab.txt") in str(err.value)


def test_unreadable_tokenizer_json_names_the_file(bert_folder, tmp_path):
    (tmp_path / "config.json").write_bytes((bert_folder / "config.json").read_bytes())
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError) as err:
        Tokenizer.from_folder(tmp_path)
    assert str(tmp_path / "tokenizer.json") in str(err.value)


# --- collate -------------------------------------------------------------------------------------

@pytest.mark.parametrize("pad_id", [0, 1])
def test_collate_right_pads(pad_id):
    encoded = [Encoded([5, 6, 7], [0, 0, 1]), Encoded([8], [0]), Encoded([9, 10, 11, 12, 13], [0, 0, 1, 1, 1])]
    batch = collate(encoded, pad_id=pad_id)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(t.shape == (3, 5) and t.dtype == torch.long for t in batch.values())
    p = pad_id
    assert batch["input_ids"].tolist() == [[5, 6, 7, p, p], [8, p, p, p, p], [9, 10, 11, 12, 13]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 1, 1]]


def test_collate_keeps_prompt_slots():
    batch = collate([Encoded([2, PROMPT_SLOT, 5, 3], [0, 0, 0, 0]), Encoded([2, PROMPT_SLOT, 3], [0, 0, 0])], 0)
    assert batch["input_ids"].tolist() == [[2, -1, 5, 3], [2, -1, 3, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
