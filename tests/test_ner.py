"""NER data: the CoNLL / JSONL reader, word alignment against transformers, windows and merging."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from tokenizers import ByteLevelBPETokenizer, processors
from tokenizers import Tokenizer as Backend

from ptuning.tasks import ner
from ptuning.tasks.ner import IGNORE, encode_sentences, encode_words, merge_windows, predicted_tags, word_tokenizer
from ptuning.text.conll import NerDataError, read_conll, read_jsonl, read_ner

from conftest import data_folder


IOB1 = """-DOCSTART- -X- O O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Jan NNP I-NP I-PER
Smith NNP I-NP B-PER
"""
SENTENCES = [["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
             ["Peter", "Blackburn", "naïve", "café", "Hello", ",", "world", "!", "1996-08-22"],
             ["the", "cat", "sat", "on", "the", "mat"], ["unseen", "zebra", "words", "x"], ["Single"]]


def write(tmp_path, text, name="data.txt", newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode())
    return path


# ---------------------------------------------------------------- reading


def test_iob1_file_is_converted_and_docstart_skipped(tmp_path):
    sentences, label_names = read_conll(write(tmp_path, IOB1))
    assert [s.words for s in sentences] == [["EU", "rejects", "German", "call", "."],
                                            ["Peter", "Blackburn", "Jan", "Smith"]]
    assert sentences[0].tags == ["B-ORG", "O", "B-MISC", "O", "O"]
    assert sentences[1].tags == ["B-PER", "I-PER", "I-PER", "B-PER"]  # B- separates two people
    assert (sentences[0].line, sentences[1].line) == (3, 9)
    assert label_names == ["O", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]


def test_iob2_scheme_rejects_an_inside_tag_that_continues_nothing(tmp_path):
    with pytest.raises(NerDataError, match=r"data.txt:3: I-ORG continues no entity"):
        read_conll(write(tmp_path, IOB1), scheme="iob2")
    with pytest.raises(NerDataError, match="scheme 'bio'"):
        read_conll(write(tmp_path, IOB1), scheme="bio")


def test_iob2_file_is_left_as_it_is(tmp_path):
    text = "A x B-PER\nB x I-PER\nC x B-PER\nD x O\n"
    for scheme in ("auto", "iob2", "iob1"):
        sentences, _ = read_conll(write(tmp_path, text), scheme=scheme)
        assert sentences[0].tags == ["B-PER", "I-PER", "B-PER", "O"]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_blank_line_variants_tabs_and_crlf(tmp_path, newline):
    text = ("\n\n-DOCSTART-\tO\nA\tB-LOC\n  \t \nB\tO\n\n\n\n-DOCSTART-\tO\nC\tB-PER\n-DOCSTART-\tO\n"
            "D\tO\nE  I-LOC")  # whitespace-only line, runs of blank lines, DOCSTART without a blank, no final newline
    sentences, label_names = read_conll(write(tmp_path, text, newline=newline))
    assert [s.words for s in sentences] == [["A"], ["B"], ["C"], ["D", "E"]]
    assert sentences[3].tags == ["O", "B-LOC"]
    assert [s.line for s in sentences] == [4, 6, 11, 13]
    assert label_names == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def test_tag_column(tmp_path):
    sentences, _ = read_conll(write(tmp_path, "EU B-ORG x\nis O y\n"), tag_column=1)
    assert sentences[0].tags == ["B-ORG", "O"]
    with pytest.raises(NerDataError, match=r"data.txt:1: no column 5"):
        read_conll(write(tmp_path, "EU B-ORG x\n"), tag_column=5)


@pytest.mark.parametrize("text, message", [
    ("A x B-PER\nB x I-PER\n\nC I-PER\n", r"data.txt:4: 2 columns, but the file's first token line has 3"),
    ("A x B-PER\nB x PER\n", r"data.txt:2: tag 'PER' is not O, B-X or I-X"),
    ("A x B-PER\nB x E-PER\n", r"data.txt:2: tag 'E-PER'"),
    ("A x B-\n", r"data.txt:1: tag 'B-'"),
    ("", r"data.txt: no sentences"),
    ("\n-DOCSTART- -X- O\n\n", r"data.txt: no sentences"),
])
def test_bad_files_name_file_and_line(tmp_path, text, message):
    with pytest.raises(NerDataError, match=message):
        read_conll(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(NerDataError, match="nothing.txt: file not found"):
        read_conll(tmp_path / "nothing.txt")


def test_dev_file_uses_the_train_label_set(tmp_path):
    _, label_names = read_conll(write(tmp_path, "A x B-PER\nB x O\n", "train.txt"))
    sentences, dev_names = read_conll(write(tmp_path, "C x I-PER\n", "dev.txt"), label_names=label_names)
    assert dev_names == label_names and sentences[0].tags == ["B-PER"]
    with pytest.raises(NerDataError, match=r"dev.txt:3: tag B-LOC is not in the label set"):
        read_conll(write(tmp_path, "C x O\n\nD x B-LOC\n", "dev.txt"), label_names=label_names)


def test_jsonl_with_string_and_integer_tags(tmp_path):
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    lines = [{"tokens": ["Peter", "lives", "here"], "tags": ["B-PER", "O", "O"]},
             {"tokens": ["in", "Paris"], "ner_tags": [0, 3]}]
    path = write(tmp_path, "\n".join(json.dumps(line) for line in lines) + "\n\n", "data.jsonl")
    sentences, label_names = read_ner(path, label_names=names)
    assert label_names == names
    assert [s.tags for s in sentences] == [["B-PER", "O", "O"], ["O", "B-LOC"]]
    assert [s.where for s in sentences] == [f"{path}:1", f"{path}:2"]
    with pytest.raises(NerDataError, match=r"data.jsonl:2: integer tags need their names in id order"):
        read_jsonl(path)


@pytest.mark.parametrize("line, message", [
    ('{"tokens": ["a"], "tags": ["O", "O"]}', "lists of one length"),
    ('{"tokens": ["a"]}', "lists of one length"),
    ('{"tokens": ["a"], "tags": [7]}', "ids in 0..2"),
    ('{"tokens": ["a"], "tags": ["X"]}', "tag 'X' is not O"),
    ('{"tokens": [1], "tags": ["O"]}', "every token must be a string"),
    ('{"tokens": ', "not JSON"),
])
def test_bad_jsonl_lines(tmp_path, line, message):
    path = write(tmp_path, '{"tokens": ["ok"], "tags": ["O"]}\n' + line + "\n", "data.jsonl")
    with pytest.raises(NerDataError, match=f"data.jsonl:2: .*{message}"):
        read_jsonl(path, label_names=["O", "B-PER", "I-PER"])


# ---------------------------------------------------------------- alignment with transformers


@pytest.fixture(scope="module")
def bert(minilm_dir):
    import transformers as tf

    backend = Backend.from_file(str(minilm_dir / "tokenizer.json"))
    return word_tokenizer(backend, "bert"), tf.BertTokenizerFast.from_pretrained(str(minilm_dir))


@pytest.fixture(scope="module")
def roberta(tmp_path_factory):
    """A tiny byte-level BPE with RoBERTa's special tokens, saved as tokenizer.json the way
    roberta-base's is (ByteLevel pre-tokenizer with add_prefix_space false)."""
    import transformers as tf

    folder = tmp_path_factory.mktemp("roberta_words")
    corpus = [" ".join(words) for words in SENTENCES] + ["the cat sat on the mat", "a dog ran in the park"] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                            show_progress=False)
    backend = bpe._tokenizer
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    backend.save(str(folder / "tokenizer.json"))
    reloaded = Backend.from_file(str(folder / "tokenizer.json"))
    hf = tf.RobertaTokenizerFast.from_pretrained(str(folder), add_prefix_space=True)
    return word_tokenizer(reloaded, "roberta"), hf


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_ids_word_ids_and_labels_equal_transformers(family, request):
    ours, hf = request.getfixturevalue(family)
    for words in SENTENCES:
        label_ids = list(range(1, len(words) + 1))
        [window] = encode_words(ours, words, label_ids, max_length=64, stride=8)
        expected = hf(words, is_split_into_words=True)
        assert window.ids == expected["input_ids"], words
        assert window.word_ids == expected.word_ids(), words
        # transformers' run_ner recipe: the first sub-token of each word is labelled, the rest -100.
        previous, labels = None, []
        for word in expected.word_ids():
            labels.append(IGNORE if word is None or word == previous else label_ids[word])
            previous = word
        assert window.labels == labels


def test_roberta_words_get_their_leading_space(roberta):
    ours, hf = roberta
    [window] = encode_words(ours, ["the", "cat"], max_length=16, stride=0)
    tokens = [ours.backend.id_to_token(i) for i in window.ids]
    assert tokens == ["<s>", "Ġthe", "Ġcat", "</s>"]
    # The caller's backend keeps its own setting: sentence-pair tasks need it unchanged.
    original = Backend.from_str(hf.backend_tokenizer.to_str())
    assert original.pre_tokenizer.add_prefix_space is True  # transformers turned it on in its own copy
    assert Backend.from_str(ours.backend.to_str()).pre_tokenizer.add_prefix_space is True


def test_word_tokenizer_leaves_the_backend_alone(minilm_dir):
    backend = Backend.from_file(str(minilm_dir / "tokenizer.json"))
    ours = word_tokenizer(backend, "bert")
    assert backend.truncation is not None and backend.padding is not None  # MiniLM's baked-in settings
    assert ours.backend.truncation is None and ours.backend.padding is None


def test_a_word_the_tokenizer_drops_gets_the_unknown_token(bert):
    ours, _ = bert
    [window] = encode_words(ours, ["a", "\u200b", "b"], [1, 2, 3], max_length=16, stride=0)
    assert window.ids[2] == ours.unknown_id
    assert window.predicts == [None, 0, 1, 2, None] and window.labels == [IGNORE, 1, 2, 3, IGNORE]


# ---------------------------------------------------------------- windows


def long_sentence(count=70):
    return [f"word{i}" if i % 3 else "naïveté" for i in range(count)]


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("stride", [0, 5, 12])
def test_long_sentence_windows_cover_every_word_once(family, stride, request):
    ours, _ = request.getfixturevalue(family)
    words = long_sentence()
    label_ids = [i % 5 for i in range(len(words))]
    max_length, reserved = 32, 4
    windows = encode_words(ours, words, label_ids, max_length=max_length, stride=stride, reserved=reserved)
    assert len(windows) > 2
    [single] = encode_words(ours, words, label_ids, max_length=10_000, stride=0)
    content = single.ids[1:-1]
    capacity = max_length - reserved - 2
    for k, window in enumerate(windows):
        assert len(window.ids) <= max_length - reserved
        assert window.ids[0] == single.ids[0] and window.ids[-1] == single.ids[-1]
        start = k * (capacity - stride)
        assert window.ids[1:-1] == content[start:start + capacity]  # consecutive windows share `stride`
    predicted = [word for window in windows for word in window.predicts if word is not None]
    assert sorted(predicted) == list(range(len(words)))
    for window in windows:  # a word's label sits where it is predicted, and nowhere else
        for word, label in zip(window.predicts, window.labels):
            assert label == (IGNORE if word is None else label_ids[word])
            if word is not None:
                assert window.word_ids[window.predicts.index(word)] == word


def test_owner_is_the_window_where_the_word_is_farthest_from_the_edges(bert):
    ours, _ = bert
    words = [f"w{i}" for i in range(20)]  # "w", "##N": two sub-tokens each
    windows = encode_words(ours, words, max_length=12, stride=4)  # 10 sub-tokens a window, every 6
    # word 4 starts at sub-token 8: window 0 covers 0..9 (margin 1), window 1 covers 6..15 (margin 2).
    assert 4 in windows[1].predicts and 4 not in windows[0].predicts
    # word 1 starts at sub-token 2 and only window 0 holds it.
    assert 1 in windows[0].predicts


def test_merge_gives_one_prediction_per_word(roberta):
    ours, _ = roberta
    sentences = [long_sentence(40), ["the", "cat"], long_sentence(25)]
    windows = []
    for number, words in enumerate(sentences):
        windows += encode_words(ours, words, max_length=20, stride=4, sentence=number)
    length = max(len(w.ids) for w in windows)
    num_labels = 3
    logits = torch.full((len(windows), length, num_labels), -1.0)  # (B, T, L), padded
    for row, window in enumerate(windows):
        for position, word in enumerate(window.word_ids):
            if word is not None:
                logits[row, position] = torch.tensor([word, row, position], dtype=torch.float)
    merged = merge_windows(windows, logits)
    assert [len(m) for m in merged] == [len(words) for words in sentences]
    for number, word_logits in enumerate(merged):
        assert word_logits[:, 0].tolist() == list(range(len(sentences[number])))  # each word's own row
        for word, (_, row, position) in enumerate(word_logits.tolist()):
            assert windows[int(row)].sentence == number and windows[int(row)].predicts[int(position)] == word
    assert merge_windows(windows, list(logits))[0].equal(merged[0])
    assert predicted_tags([torch.tensor([[0.0, 5.0, 1.0], [0.0, 1.0, 5.0]])], ["O", "B-X", "I-X"]) == [["B-X", "I-X"]]
    with pytest.raises(ValueError, match="were all its windows passed"):
        merge_windows(windows[1:], logits[1:])


def test_window_arguments_are_checked(bert):
    ours, _ = bert
    with pytest.raises(ValueError, match="stride 30"):
        encode_words(ours, ["a"], max_length=32, stride=30)
    with pytest.raises(ValueError, match="no room"):
        encode_words(ours, ["a"], max_length=6, stride=0, reserved=4)
    with pytest.raises(ValueError, match="2 words but 1 labels"):
        encode_words(ours, ["a", "b"], [0], max_length=32, stride=0)


# ---------------------------------------------------------------- the real dev set


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_conll_dev_sentences_all_align(family, request):
    path = data_folder("conll2003", needs=("valid.txt",)) / "valid.txt"   # $CONLL_DIR; skips (fails in CI) without
    sentences, label_names = read_conll(path)
    assert len(sentences) == 3250
    ours, hf = request.getfixturevalue(family)
    windows = encode_sentences(ours, sentences, label_names, max_length=64, stride=16, reserved=8)
    assert max(len(w.ids) for w in windows) <= 56
    assert len(windows) > len(sentences)  # some dev sentences need several windows at this size
    index = {name: number for number, name in enumerate(label_names)}
    labels = {}
    for window in windows:
        for word, label in zip(window.predicts, window.labels):
            if word is not None:
                labels[(window.sentence, word)] = label
    assert labels == {(number, word): index[tag] for number, sentence in enumerate(sentences)
                      for word, tag in enumerate(sentence.tags)}
    # Unwindowed, every dev sentence has transformers' ids and word ids.
    encoded = hf([s.words for s in sentences], is_split_into_words=True)
    for number, sentence in enumerate(sentences):
        [window] = encode_words(ours, sentence.words, max_length=10_000, stride=0)
        assert window.ids == encoded["input_ids"][number], sentence.where
        assert window.word_ids == encoded.word_ids(number), sentence.where


def test_training_loss_weighs_every_word_alike_across_batches():
    """A batch of short sentences and one of long ones: HF's per-batch mean gives a word of the short
    batch more weight; `training_loss` sums to the mean over every labelled word of the set."""
    from ptuning.text.batches import EncodedSet

    torch.manual_seed(0)
    short = torch.tensor([[-100, 1, 0, -100], [-100, 2, -100, -100]])      # 3 labelled words in 2 rows
    long_ = torch.tensor([[-100, 0, 1, 2, 0, 1, 0, -100], [-100, 1, 1, 0, 2, 2, 0, -100]])  # 12 in 2 rows
    batches = [{"labels": labels} for labels in (short, long_)]
    logits = [torch.randn(*b["labels"].shape, 3) for b in batches]
    rows = [row.tolist() for b in batches for row in b["labels"]]
    loss = ner.training_loss(EncodedSet([None] * 4, rows, 0))

    flat_logits = torch.cat([lg.flatten(0, 1) for lg in logits])
    flat_labels = torch.cat([b["labels"].flatten() for b in batches])
    every_word = F.cross_entropy(flat_logits, flat_labels, ignore_index=-100)   # the set's mean over words
    summed = sum(loss(lg, b, reduction="sum") for lg, b in zip(logits, batches)) / 4
    assert torch.allclose(summed, every_word)
    per_batch_means = sum(ner.loss(lg, b) for lg, b in zip(logits, batches)) / 2  # what HF's mean adds up to
    assert not torch.allclose(per_batch_means, every_word)
    # One batch holding the whole set: the same number as HF's mean.
    whole = {"labels": torch.cat([F.pad(short, (0, 4), value=-100), long_])}
    whole_logits = torch.cat([F.pad(logits[0], (0, 0, 0, 4)), logits[1]])
    assert torch.allclose(loss(whole_logits, whole), ner.loss(whole_logits, whole))
