"""Entity-level precision / recall / F1 equal seqeval's default (conlleval) mode.

seqeval is the oracle only here; `ptuning` never imports it.
"""
from __future__ import annotations

import random

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from ptuning.tasks.ner import entities, entity_scores
from ptuning.text.conll import read_conll

from conftest import data_folder

HAND_CASES = {
    "iob2": (["B-PER I-PER O B-LOC".split()], ["B-PER I-PER O B-LOC".split()]),
    "iob1 style gold, iob2 predictions": (["I-PER I-PER O I-LOC B-LOC".split()],
                                          ["B-PER I-PER O B-LOC B-LOC".split()]),
    "I- after O opens an entity": (["O I-ORG I-ORG O".split()], ["O B-ORG I-ORG O".split()]),
    "I- of another type opens one": (["B-PER I-LOC O".split()], ["B-PER B-LOC O".split()]),
    "adjacent entities of one type": (["B-PER B-PER I-PER".split()], ["B-PER I-PER I-PER".split()]),
    "entities at sentence end": (["O B-MISC".split(), "B-LOC I-LOC".split()], ["O B-MISC".split(), "B-LOC O".split()]),
    "all O": (["O O O".split()], ["O O O".split()]),
    "all O gold, some predicted": (["O O O".split()], ["B-PER O I-ORG".split()]),
    "span off by one": (["B-ORG I-ORG I-ORG O".split()], ["B-ORG I-ORG O O".split()]),
    "type wrong": (["B-ORG I-ORG".split()], ["B-LOC I-LOC".split()]),
    "many sentences": (["B-PER O".split(), "O O".split(), "I-LOC I-LOC B-LOC".split()],
                       ["B-PER O".split(), "B-PER O".split(), "B-LOC I-LOC B-LOC".split()]),
}


def assert_matches_seqeval(gold, predicted):
    ours = entity_scores(gold, predicted)
    report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    assert ours["overall"].precision == pytest.approx(precision_score(gold, predicted, zero_division=0), abs=1e-12)
    assert ours["overall"].recall == pytest.approx(recall_score(gold, predicted, zero_division=0), abs=1e-12)
    assert ours["overall"].f1 == pytest.approx(f1_score(gold, predicted, zero_division=0), abs=1e-12)
    assert ours["overall"].gold == report["micro avg"]["support"]
    types = {name for name in report if not name.endswith("avg")}
    assert set(ours) - {"overall"} == types
    for name in types:
        assert ours[name].precision == pytest.approx(report[name]["precision"], abs=1e-12), name
        assert ours[name].recall == pytest.approx(report[name]["recall"], abs=1e-12), name
        assert ours[name].f1 == pytest.approx(report[name]["f1-score"], abs=1e-12), name
        assert ours[name].gold == report[name]["support"], name


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning",  # seqeval's numpy on a set with no entity
                            "ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("case", HAND_CASES)
def test_hand_cases_match_seqeval(case):
    assert_matches_seqeval(*HAND_CASES[case])


def test_entities_read_as_conlleval():
    assert entities("B-PER B-PER I-PER".split()) == {("PER", 0, 0), ("PER", 1, 2)}
    assert entities("O I-ORG I-ORG".split()) == {("ORG", 1, 2)}
    assert entities("B-PER I-LOC O".split()) == {("PER", 0, 0), ("LOC", 1, 1)}
    assert entities("O O".split()) == set()


def test_known_numbers():
    # 3 gold entities, 2 predicted, 1 exactly right: P 1/2, R 1/3, F1 0.4.
    scores = entity_scores([["B-PER", "I-PER", "O", "B-LOC", "B-ORG"]], [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]])
    assert (scores["overall"].correct, scores["overall"].predicted, scores["overall"].gold) == (1, 2, 3)
    assert scores["overall"].f1 == pytest.approx(0.4)
    assert scores["ORG"].recall == 0.0 and scores["ORG"].precision == 0.0


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="sentence 0"):
        entity_scores([["O", "O"]], [["O"]])


@pytest.fixture(scope="module")
def conll_valid():
    return read_conll(data_folder("conll2003", needs=("valid.txt",)) / "valid.txt")   # $CONLL_DIR


def corrupt(tag_sequences, label_names, rate, seed):
    generator = random.Random(seed)
    return [[generator.choice(label_names) if generator.random() < rate else tag for tag in tags]
            for tags in tag_sequences]


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.3])
def test_conll_valid_with_corrupted_predictions_matches_seqeval(conll_valid, rate):
    sentences, label_names = conll_valid
    gold = [sentence.tags for sentence in sentences]
    predicted = corrupt(gold, label_names, rate, seed=int(rate * 100))
    assert_matches_seqeval(gold, predicted)
    if rate == 0.0:
        assert entity_scores(gold, predicted)["overall"].f1 == 1.0
        assert entity_scores(gold, predicted)["overall"].gold == 5942  # CoNLL-2003 dev entities
