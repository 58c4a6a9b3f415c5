"""Extractive question answering (SQuAD v1.1 / v2.0): read, cut into windows, decode, score.

The pipeline, one function per step:
    read_squad(path)                     -> [Question]   one record per question (text/squad.py)
    make_features(tokenizer, questions)  -> [Feature]    windows of `[CLS] question [SEP] context [SEP]`
    Decoder(questions, features).add(...) per batch of window logits -> .predictions() {id: text}
    squad_scores(predictions, questions) -> exact match / F1 in percent, as the official scripts

and the task-family names of tasks/__init__.py (`--task squad`, `--task squad_v2`): `read`,
`encode` (a `WindowSet`: windows, their labels, and what the decoder needs), `head` (`SpanHead`),
`loss`, `evaluate` (logits stream into the `Decoder` one batch at a time), `answer` (predict.py).

Windows follow Hugging Face's fast tokenizers called with `truncation="only_second",
return_overflowing_tokens=True, stride=doc_stride` (the run_qa.py example): the question and the
special tokens appear in every window, the context is cut into pieces of the room left, and
consecutive pieces overlap by `doc_stride` tokens. Training labels are the first answer's token
span, or position 0 (`<s>` / `[CLS]`) when the window does not hold the whole answer or the
question has none (SQuAD v2.0), as in BERT's paper §4.3 and run_qa.py.
Plain Python + numpy; torch tensors are accepted as logits.
"""
from __future__ import annotations

import math
import re
import string
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer as Backend

from .. import arguments
from ..errors import DataError, OptionError, is_unicode
from ..prediction import PredictError, check_argument_text
from ..heads import SpanHead
from ..inference import CHUNK_ROWS, inference_autocast, run_shard
from ..options import at_least, check, option
from ..parallel import gather_objects, world
from ..text.download import existing_data_dir
from ..text.batches import EncodedSet
from ..text.squad import Question, read_squad
from ..text.lines import text_problem
from ..text.tables import Example, read_table
from ..text.tokenizer import Encoded, check_room

# ---------------------------------------------------------------------------------------------
# Features: windows over the context
# ---------------------------------------------------------------------------------------------

@dataclass
class Feature:
    """One window: `[CLS] question [SEP] context[piece] [SEP]` (RoBERTa: `<s> q </s></s> c </s>`)."""
    example_index: int                          # index into the questions list
    input_ids: list[int]
    token_type_ids: list[int]
    offsets: list[tuple[int, int] | None]       # per position: (start, end) characters in the context; None off it
    context_start: int                          # positions [context_start, context_end) hold context tokens
    context_end: int
    start_position: int | None = None           # training labels (token positions); 0 = <s>/[CLS]: no answer here
    end_position: int | None = None
    question_cut: bool = False                  # the question kept only its first max_question_length tokens
    word_spans: list[tuple[int, int] | None] | None = None  # per position: the whole word's characters


@dataclass(frozen=True)
class _Pair:
    """A tokenized (question, context) pair as plain lists. A `tokenizers.Encoding` builds a new list of
    the whole pair each time one of these is read, so reading them per window position is quadratic."""
    ids: list[int]
    type_ids: list[int]
    offsets: list[tuple[int, int]]
    sequence_ids: list[int | None]
    word_spans: list[tuple[int, int] | None]  # per position: the characters of the context word it is part of


def make_features(tokenizer, questions: list[Question], max_length: int = 384, doc_stride: int = 128,
                  training: bool = False, reserved: int = 0, max_question_length: int = 64) -> list[Feature]:
    """Windows of every question, in order. `tokenizer`: a `tokenizers.Tokenizer` or our
    `Tokenizer` (its `.backend` is used; it is copied, so its settings stay untouched).
    `reserved`: positions kept free for P-tuning v1 virtual tokens the model adds in front; labels
    index `input_ids`, not counting them. Questions longer than `max_question_length` tokens keep
    their first `max_question_length` (as BERT's run_squad.py; HF's run_qa.py would stop), fewer
    if needed to leave a window more than `doc_stride` context tokens."""
    backend = _plain_copy(getattr(tokenizer, "backend", tokenizer))
    specials = backend.post_processor.num_special_tokens_to_add(True) if backend.post_processor else 0
    if not specials:
        raise ValueError("the tokenizer adds no special tokens to a pair; QA needs <s>/[CLS] at position 0")
    # The question gives way so that a window holds more than doc_stride context tokens.
    max_question_length = min(max_question_length, max_length - reserved - specials - doc_stride - 1)
    if doc_stride < 0 or max_question_length < 1:
        raise OptionError(f"windows of {max_length - reserved} tokens ({specials} of them special) leave no room "
                          f"for a question and more than doc_stride {doc_stride} context tokens; lower doc_stride "
                          "(--doc-stride) or raise max_length (--max-length)")
    features = []
    for index, question in enumerate(questions):
        pair = _encode_pair(backend, question)
        for first, last in _windows(pair.sequence_ids, max_length - reserved, max_question_length, doc_stride):
            feature = _window(pair, index, first, last, max_question_length)
            if training:
                feature.start_position, feature.end_position = _labels(feature, question)
            features.append(feature)
    return features


def _encode_pair(backend: Backend, question: Question) -> _Pair:
    """The whole pair, special tokens added; a pair the model cannot read is a DataError naming it."""
    problem = _text_problem(question.question, question.context)
    if problem:
        raise DataError(f"{question.where}: {problem}")
    # run_qa.py strips the question's leading white space: it only wastes window room.
    joined = backend.encode(question.question.lstrip(), question.context)
    sequence_ids, offsets = joined.sequence_ids, joined.offsets
    if 1 not in sequence_ids:
        raise DataError(f"{question.where}: {_NO_CONTEXT_TOKENS}")
    # A context word's characters: from its first token's start to its last token's end (the pre-tokenizer's
    # words, as `Encoding.word_to_chars` gives them; the HF pipeline widens answers to these).
    words = {}
    for word, sequence, (start, end) in zip(joined.word_ids, sequence_ids, offsets):
        if sequence == 1 and word is not None:
            first, last = words.get(word, (start, end))
            words[word] = (min(first, start), max(last, end))
    spans = [words[w] if s == 1 and w is not None else None for w, s in zip(joined.word_ids, sequence_ids)]
    return _Pair(joined.ids, joined.type_ids, offsets, sequence_ids, spans)


_NO_CONTEXT_TOKENS = "the context makes no tokens (it holds only characters the tokenizer drops)"


def pair_problem(tokenizer, question: str, context: str) -> str | None:
    """Why a (question, context) pair cannot be windowed, or None: text that is not valid Unicode, or a
    context that makes no tokens (e.g. only zero-width spaces). predict.py skips such rows on --skip-bad."""
    problem = _text_problem(question, context)
    if problem:
        return problem
    backend = getattr(tokenizer, "backend", tokenizer)
    if not any(backend.encode(context, add_special_tokens=False).attention_mask):  # a padded backend pads
        return _NO_CONTEXT_TOKENS
    return None


def _text_problem(question: str, context: str) -> str | None:
    """The question must be text to read (not blank, not only invisible characters); the context valid
    Unicode (one that makes no tokens is found when it is tokenized: _NO_CONTEXT_TOKENS)."""
    problem = text_problem(question)
    if problem:
        return f"the question {problem}"
    if not is_unicode(context):
        return "the context holds an unpaired surrogate (bytes that are not UTF-8); not valid Unicode text"
    return None


def _plain_copy(backend: Backend) -> Backend:
    """A private copy without padding or truncation (MiniLM's tokenizer.json pads to 128)."""
    copy = Backend.from_str(backend.to_str())
    copy.no_padding()
    copy.no_truncation()
    return copy


def _windows(sequence_ids: list, max_length: int, max_question_length: int, doc_stride: int):
    """(first, last) context token numbers (last exclusive) of each window. As the `tokenizers`
    overflow: pieces of `room` tokens starting every `room - doc_stride`, until one reaches the end."""
    question_tokens = min(sequence_ids.count(0), max_question_length)
    context_tokens = sequence_ids.count(1)
    room = max_length - (len(sequence_ids) - sequence_ids.count(0) - context_tokens) - question_tokens
    first = 0
    while True:
        last = min(first + room, context_tokens)
        yield first, last
        if last == context_tokens:
            return
        first += room - doc_stride


def _window(pair: _Pair, example_index: int, first: int, last: int, max_question_length: int) -> Feature:
    """Keep the special tokens, the question's first `max_question_length` tokens, context tokens [first, last)."""
    keep, question_seen, context_seen = [], 0, 0
    for position, sequence in enumerate(pair.sequence_ids):
        if sequence == 0:
            question_seen += 1
            if question_seen <= max_question_length:
                keep.append(position)
        elif sequence == 1:
            if first <= context_seen < last:
                keep.append(position)
            context_seen += 1
        else:
            keep.append(position)
    sequence_ids = [pair.sequence_ids[p] for p in keep]
    context_start = sequence_ids.index(1)
    return Feature(example_index=example_index,
                   input_ids=[pair.ids[p] for p in keep],
                   token_type_ids=[pair.type_ids[p] for p in keep],
                   offsets=[pair.offsets[p] if s == 1 else None for p, s in zip(keep, sequence_ids)],
                   context_start=context_start, context_end=context_start + last - first,
                   question_cut=question_seen > max_question_length,
                   word_spans=[pair.word_spans[p] for p in keep])


def _labels(feature: Feature, question: Question) -> tuple[int, int]:
    """Token span of the first answer, or (0, 0) when the window does not hold all of it."""
    if question.is_impossible or not question.answers:
        return 0, 0
    text, start_char = question.answers[0]
    end_char = start_char + len(text)
    # An uncased BERT tokenizer strips accents, and its offsets leave out a combining mark that ends
    # a word ("Jose\u0301"): without this the answer would end in the next word's token.
    while start_char < end_char - 1 < len(question.context) and unicodedata.combining(question.context[end_char - 1]):
        end_char -= 1
    context = range(feature.context_start, feature.context_end)
    offsets = feature.offsets
    if not (offsets[context[0]][0] <= start_char and offsets[context[-1]][1] >= end_char):
        return 0, 0
    # The last token starting at or before the answer, the first token ending at or after it.
    start = max(t for t in context if offsets[t][0] <= start_char)
    end = min(t for t in context if offsets[t][1] >= end_char)
    return start, end


# ---------------------------------------------------------------------------------------------
# Decoding: logits -> answer text
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    score: float      # start logit + end logit
    start_char: int   # the span in the context
    end_char: int
    text: str


class Decoder:
    """Collects the best answer spans of every question, one batch of window logits at a time.

    It keeps only each question's `n_best` candidates and its smallest null score, never the
    logits themselves. Per window (as run_qa.py's postprocessing): the `n_best` highest start
    and end logits; pairs with end >= start, at most `max_answer_length` tokens; score = start +
    end logit. We take the n best among the window's *context* tokens, where run_qa.py takes them
    over all positions and then drops those off the context: padding or question tokens can then
    crowd out real answers, and the result would depend on how a batch is padded.
    SQuAD v2.0 (`version_2=True`): the null score of a window is start[0] + end[0] (<s>/[CLS]);
    a question's null score is the *smallest* over its windows, as run_qa.py; the answer is ""
    when null score - best span score > `null_threshold`.
    """

    def __init__(self, questions: list[Question], features: list[Feature], n_best: int = 20,
                 max_answer_length: int = 30, version_2: bool = False, null_threshold: float = 0.0,
                 align_to_words: bool = False):
        self.questions, self.features, self.align_to_words = questions, features, align_to_words
        self.n_best, self.max_answer_length = n_best, max_answer_length
        self.version_2, self.null_threshold = version_2, null_threshold
        self.candidates: list[list[Candidate]] = [[] for _ in questions]  # best first
        self.null_scores = [float("inf")] * len(questions)
        self.windows_seen = [0] * len(questions)

    def add(self, feature_indices, start_logits, end_logits) -> None:
        """feature_indices: (B,) indices into `features`; start/end logits: (B, T), T >= each window's length."""
        start_logits, end_logits = _as_numpy(start_logits), _as_numpy(end_logits)
        if start_logits.shape != end_logits.shape or start_logits.ndim != 2:
            raise ValueError(f"start and end logits should both be (B, T); got {start_logits.shape} "
                             f"and {end_logits.shape}")
        feature_indices = _as_numpy(feature_indices).tolist()
        finite = np.isfinite(start_logits).all(axis=1) & np.isfinite(end_logits).all(axis=1)  # (B,)
        if not finite.all():
            feature = self.features[feature_indices[int(np.argmin(finite))]]
            raise DataError(f"{self.questions[feature.example_index].where}: the model produced NaN or infinite "
                            "start/end scores; its adapter or base weights are damaged")
        for row, feature_index in enumerate(feature_indices):
            feature = self.features[feature_index]
            if start_logits.shape[1] < len(feature.input_ids):
                raise ValueError(f"logits have {start_logits.shape[1]} positions, feature {feature_index} "
                                 f"{len(feature.input_ids)}")
            self._add_window(feature, start_logits[row], end_logits[row])

    def _add_window(self, feature: Feature, start_row: np.ndarray, end_row: np.ndarray) -> None:
        question = feature.example_index
        self.windows_seen[question] += 1
        self.null_scores[question] = min(self.null_scores[question], float(start_row[0] + end_row[0]))
        first = feature.context_start
        starts = start_row[first:feature.context_end]   # (C,) context positions only
        ends = end_row[first:feature.context_end]
        top_starts = np.argsort(-starts, kind="stable")[:self.n_best][:, None]  # (k, 1)
        top_ends = np.argsort(-ends, kind="stable")[:self.n_best][None, :]      # (1, k)
        allowed = (top_ends >= top_starts) & (top_ends - top_starts < self.max_answer_length)  # (k, k)
        context = self.questions[question].context
        found = list(self.candidates[question])
        rows, columns = np.nonzero(allowed)
        for start, end in zip(top_starts[rows, 0], top_ends[0, columns]):
            start_char, end_char = feature.offsets[first + start][0], feature.offsets[first + end][1]
            if self.align_to_words and feature.word_spans is not None:  # "iff" of "Eiffel": the whole word
                start_char, end_char = feature.word_spans[first + start][0], feature.word_spans[first + end][1]
            while end_char < len(context) and unicodedata.combining(context[end_char]):
                end_char += 1  # the marks an uncased tokenizer's offsets leave out (see _labels)
            found.append(Candidate(float(starts[start] + ends[end]), start_char, end_char,
                                   context[start_char:end_char]))
        self.candidates[question] = _best_unique(found, self.n_best)

    def predictions(self) -> dict[str, str]:
        """question id -> answer text ("" for no answer). Every question must have had a window."""
        missing = [q.id for q, seen in zip(self.questions, self.windows_seen) if not seen]
        if missing:
            raise ValueError(f"{len(missing)} question(s) got no window logits, e.g. {missing[0]}; "
                             "add every feature before asking for predictions")
        return {q.id: self._answer(index) for index, q in enumerate(self.questions)}

    def _answer(self, question: int) -> str:
        best, declined = self.best(question)
        return "" if declined or best is None else best.text

    def best(self, question: int) -> tuple[Candidate | None, bool]:
        """(the best span or None, whether the answer is "no answer": v2.0's null score won, or no span fits)."""
        candidates = self.candidates[question]
        if not candidates:
            return None, True
        best = candidates[0]
        return best, self.version_2 and self.null_scores[question] - best.score > self.null_threshold

    def state(self) -> tuple[list, list, list]:
        """What the decoder keeps (n best, null score, windows seen per question): small, for `merge`."""
        return self.candidates, self.null_scores, self.windows_seen

    def merge(self, state: tuple[list, list, list]) -> None:
        """Take in another decoder's `state()` over other windows of the same questions (torchrun)."""
        candidates, null_scores, windows_seen = state
        for question in range(len(self.questions)):
            self.candidates[question] = _best_unique(self.candidates[question] + candidates[question], self.n_best)
            self.null_scores[question] = min(self.null_scores[question], null_scores[question])
            self.windows_seen[question] += windows_seen[question]


def _best_unique(candidates: list[Candidate], n_best: int) -> list[Candidate]:
    """The n best, one per character span (overlapping windows find the same span twice)."""
    candidates = sorted(candidates, key=lambda c: (-c.score, c.start_char, c.end_char))
    kept, spans = [], set()
    for candidate in candidates:
        if (candidate.start_char, candidate.end_char) not in spans:
            spans.add((candidate.start_char, candidate.end_char))
            kept.append(candidate)
            if len(kept) == n_best:
                break
    return kept


def _as_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor; float() lifts half precision, which numpy lacks for bf16
        values = values.detach().cpu()
        values = (values.float() if values.is_floating_point() else values).numpy()
    return np.asarray(values)


def decode(questions: list[Question], features: list[Feature], batches, n_best: int = 20,
           max_answer_length: int = 30, version_2: bool = False, null_threshold: float = 0.0) -> dict[str, str]:
    """question id -> answer text, from an iterable of (feature_indices, start_logits, end_logits)
    batches (e.g. a generator over the model's outputs); see `Decoder`."""
    decoder = Decoder(questions, features, n_best, max_answer_length, version_2, null_threshold)
    for feature_indices, start_logits, end_logits in batches:
        decoder.add(feature_indices, start_logits, end_logits)
    return decoder.predictions()


# ---------------------------------------------------------------------------------------------
# Scores: exact match and F1 as the official SQuAD evaluation scripts
# ---------------------------------------------------------------------------------------------

_PUNCTUATION = set(string.punctuation)  # ASCII only, as the official script: "。" or "«" stay
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Official SQuAD normalisation: lower case, drop ASCII punctuation, drop a/an/the, one space."""
    text = "".join(character for character in text.lower() if character not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str, version_2: bool = False) -> float:
    """F1 of the normalised words. v2.0 rule: if either side is empty, 1 when both are, else 0
    (v1.1's script gives 0 whenever no word is shared, even when both are empty)."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if version_2 and (not predicted or not expected):
        return float(predicted == expected)
    shared = sum((Counter(predicted) & Counter(expected)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: dict[str, str], questions: list[Question],
                 version_2: bool | None = None) -> dict[str, float]:
    """Exact match and F1 in percent, each the best over a question's gold answers. With the v2.0
    rules (`version_2`; None: when any question is unanswerable) gold answers that normalise to
    nothing are dropped, an unanswerable question's gold is [""], and HasAns_* / NoAns_* are added.
    The task decides, not the data: a squad_v2 dev set whose questions all have answers is still
    scored as the v2.0 script scores it. A question without a prediction scores 0 (as v1.1's
    script) and is named in a warning."""
    if version_2 is None:
        version_2 = any(q.is_impossible for q in questions)
    missing = [q.id for q in questions if q.id not in predictions]
    if missing:
        warnings.warn(f"{len(missing)} question(s) have no prediction and score 0, e.g. {missing[0]}", stacklevel=2)
    exact, f1 = [], []
    for question in questions:
        golds = [text for text, _ in question.answers]
        if version_2:
            golds = [text for text in golds if normalize_answer(text)] or [""]
        prediction = predictions.get(question.id)
        exact.append(0.0 if prediction is None else max(exact_match(prediction, g) for g in golds))
        f1.append(0.0 if prediction is None else max(token_f1(prediction, g, version_2) for g in golds))
    scores = _percentages("", exact, f1)
    if version_2:
        answerable = [not q.is_impossible for q in questions]
        for prefix, wanted in (("HasAns_", True), ("NoAns_", False)):
            chosen = [index for index, flag in enumerate(answerable) if flag == wanted]
            if chosen:
                scores.update(_percentages(prefix, [exact[i] for i in chosen], [f1[i] for i in chosen]))
    return scores


def _percentages(prefix: str, exact: list[float], f1: list[float]) -> dict[str, float]:
    return {f"{prefix}exact": 100.0 * sum(exact) / len(exact), f"{prefix}f1": 100.0 * sum(f1) / len(f1),
            f"{prefix}total": len(exact)}


# ---------------------------------------------------------------------------------------------
# The task-family convention (tasks/__init__.py): --task squad, --task squad_v2
# ---------------------------------------------------------------------------------------------

HEAD = "span"               # start and end scores per text position, 2 x (B, T)
PEFT_TASK_TYPE = "QUESTION_ANS"
TASKS = {"squad": "1.1", "squad_v2": "2.0"}
MAX_LENGTH = 384            # --max-length when not given: BERT's and run_qa.py's window
# Recipes for unset options, on top of the methods' (training/recipes.py). SQuAD has ~88k questions, so far fewer
# epochs than GLUE's. Full fine-tuning: HF run_qa.py's documented SQuAD v1.1 run (lr 3e-5, batch 12,
# 2 epochs). P-tuning v2: the P-tuning-v2 repo's SQuAD v1.1 script (run_squad_roberta.sh: batch 8,
# lr 5e-3, 16 virtual tokens, 30 epochs). Short CPU runs learn faster at a higher lr (BENCHMARKS.md:
# 64 tokens at 5e-2). v1 keeps the GLUE recipes: neither source has a v1 SQuAD run to follow.
RECIPES = {
    "prefix": dict(lr=5e-3, epochs=30, batch_size=8, num_virtual_tokens=16),
    "full": dict(lr=3e-5, epochs=2, batch_size=12),
}
# --prefix-init text: the prefix starts at these words' keys and values (BENCHMARKS.md, SQuAD: better than
# random, and better than the first tokens of the training text).
PREFIX_TEXT = ("the answer to the question is found in the passage below . read the context and find the span "
               "that answers the question : who , what , when , where , which , how many , why .")
SPLIT_FILES = {"train": "train.json", "dev": "dev.json"}
GET_SQUAD = "the official files are train-v1.1.json / dev-v1.1.json (v2.0: train-v2.0.json / dev-v2.0.json)"
LOCATE = "give --train-file/--dev-file; data/README.md says where to get the files"  # train.py's wording


DESCRIPTION = "question answering (--task squad, squad_v2)"  # the tasks, as an option refused elsewhere names them


@dataclass(frozen=True)
class Options:
    """How questions are windowed and answers decoded: train.py's question-answering options."""
    doc_stride: int = option(128, "context tokens shared by consecutive windows", checks=[at_least(0)])
    max_answer_length: int = option(30, "longest answer in tokens", checks=[at_least(1)])
    n_best: int = option(20, "best starts and ends tried per window", checks=[at_least(1)])
    null_threshold: float = option(0.0, "SQuAD v2.0: decline when the null score beats the best span by more "
                                   "than this", tasks=("squad_v2",), why="only SQuAD v2.0 questions may have no answer",
                                   checks=[((lambda v: math.isfinite(v)), "{flag} must be a finite number, not {value}")])
    version_2: bool = option(False, cli=False)  # SQuAD v2.0: questions may have no answer (from the task)

    def __post_init__(self):
        check(self)  # the library's answer(..., n_best=0) is refused as train.py's --n-best 0 is


@dataclass(frozen=True)
class PredictOptions:
    """predict.py: one question about one text (--input reads `question` and `context` fields instead)."""
    question: str | None = option(None, "the question (with --context)")
    context: str | None = option(None, "the text holding the answer (with --question)")
    align_to_words: bool = option(True, "widen an answer to the whole words it touches, as the HF pipeline "
                                  "(--no-align-to-words: the tokens' own characters, as in evaluation)", negatable=True)


PREDICT_OPTIONS = ("null_threshold",)  # the Options predict.py also reads (unset: the training run's)


def encode_options(args) -> dict:
    """The family's options of a run (and the task's version), as keyword arguments of `encode`."""
    return dict(doc_stride=args.doc_stride, max_answer_length=args.max_answer_length, n_best=args.n_best,
                null_threshold=args.null_threshold, version_2=TASKS.get(args.task) == "2.0")


def find_data_dir(data_dir: str | Path | None = None) -> Path:
    """The SQuAD folder: the argument if given, else $SQUAD_DIR, else ./data/squad."""
    return existing_data_dir("squad", data_dir, "data", how_to=f"give --train-file/--dev-file; {GET_SQUAD}")


def read(task: str, split: str, data_dir: str | Path | None = None, strict: bool = False,
         report: list | None = None, file: str | Path | None = None) -> list[Question]:
    """One split (train.json / dev.json in the data folder), or `file` (an official SQuAD file) instead."""
    if split not in SPLIT_FILES:
        raise DataError(f"{task} has no split {split!r}; it has: {', '.join(SPLIT_FILES)}")
    path = Path(file) if file else find_data_dir(data_dir) / SPLIT_FILES[split]
    return read_squad(path, TASKS[task], strict)


def dev_split(task: str) -> str:
    return "dev"


def check_fit(args, method, config) -> None:
    """A window holds the special tokens, a question token and more than --doc-stride context tokens."""
    check_room(method, config, args.max_length, pair=False)
    needed = 2 + (2 if config.family == "roberta" else 1) + 1 + max(args.doc_stride, 0) + 1
    room = config.max_tokens - method.positions_used
    if room < needed:
        taken = (f"--num-virtual-tokens {method.num_virtual_tokens} leaves {room} of the model's "
                 f"{config.max_tokens} positions" if method.positions_used else
                 f"the model has {config.max_tokens} positions")
        raise OptionError(f"{taken} for a window; a window needs at least {needed} (special tokens, a question "
                          f"token and more than --doc-stride {args.doc_stride} context tokens): lower "
                          f"{'--num-virtual-tokens or ' if method.positions_used else ''}--doc-stride")


def load(args):
    """(train, dev, ("start", "end"), metric names): train.json/dev.json of the SQuAD folder (--data-dir,
    else $SQUAD_DIR, else data/squad), or official SQuAD files given as --train-file/--dev-file."""
    folder = None if args.train_file else existing_data_dir("squad", args.data_dir, how_to=LOCATE)
    train = read(args.task, "train", folder, args.strict, file=args.train_file)
    dev = read(args.task, dev_split(args.task), folder, args.strict, file=args.dev_file)
    return train, dev, label_names(args.task), metric_names(args.task)


def label_names(task: str) -> tuple[str, ...]:
    """What the head scores per position; two names size nothing (the span head is Linear(h, 2))."""
    return ("start", "end")


def metric_names(task: str) -> tuple[str, ...]:
    """F1 selects the best epoch, as the SQuAD leaderboards rank."""
    if TASKS[task] == "2.0":
        return ("f1", "exact", "HasAns_f1", "HasAns_exact", "NoAns_f1", "NoAns_exact")
    return ("f1", "exact")


@dataclass
class WindowSet(EncodedSet):
    """An `EncodedSet` of windows (labels: (start, end) token positions), with what decoding needs."""
    questions: list[Question] = None
    features: list[Feature] = None
    options: Options = Options()


def encode(tokenizer, examples: list[Question], label_names=None, **settings) -> WindowSet:
    """Every question's windows of `tokenizer.max_length` tokens, labelled with the first answer's span.
    `settings`: `Options` fields (train.py passes `options(args)`)."""
    settings = Options(**settings)
    features = make_features(tokenizer, examples, tokenizer.max_length, settings.doc_stride, training=True)
    encoded = [Encoded(f.input_ids, f.token_type_ids) for f in features]
    labels = [(f.start_position, f.end_position) for f in features]
    cut = sum(f.question_cut for f in features)  # windows whose question was cut (contexts never are)
    return WindowSet(encoded, labels, cut, questions=examples, features=features, options=settings)


def head(config, method, num_labels: int) -> SpanHead:
    return SpanHead(config.hidden_size)


def loss(outputs: tuple[torch.Tensor, torch.Tensor], batch: dict, reduction: str = "mean") -> torch.Tensor:
    """Mean of the start and end cross-entropies, as HF `BertForQuestionAnswering` (over every
    position, padding included, as HF). With v1 prompts in front the model returns text positions
    only, so the labels index `input_ids` as they are (peft's issue #1974 does not shift them)."""
    start_logits, end_logits = outputs                     # (B, T) each
    start, end = batch["labels"].unbind(dim=-1)            # (B,) each
    return (F.cross_entropy(start_logits.float(), start, reduction=reduction) +
            F.cross_entropy(end_logits.float(), end, reduction=reduction)) / 2


def training_loss(train_set: EncodedSet):
    return loss


@torch.no_grad()
def decoded(model, data: WindowSet, batch_size: int, pad_id: int, device, autocast,
            align_to_words: bool = False) -> "Decoder":
    """Run the model over the windows and stream each batch's logits into a `Decoder`: only one
    batch of logits exists at a time. Under torchrun each process decodes a slice of the windows
    and the decoders' small states (n best per question) are merged."""
    settings = data.options
    decoder = Decoder(data.questions, data.features, settings.n_best, settings.max_answer_length,
                      settings.version_2, settings.null_threshold, align_to_words)
    for indices, (start_logits, end_logits) in run_shard(model, data, batch_size, pad_id, device, autocast):
        decoder.add(indices, start_logits, end_logits)
    rank, size = world()
    if size > 1:
        for other_rank, state in enumerate(gather_objects(decoder.state())):
            if other_rank != rank:
                decoder.merge(state)
    return decoder


def evaluate(model, data: WindowSet, batch_size: int, pad_id: int, device, autocast,
             metric_names=("f1", "exact")) -> dict[str, float]:
    """EM and F1 (v2.0: also HasAns_* / NoAns_*) in percent over the set's questions."""
    scores = squad_scores(decoded(model, data, batch_size, pad_id, device, autocast).predictions(), data.questions,
                          data.options.version_2)
    return {name: scores[name] for name in metric_names if name in scores}


def answer(model, tokenizer, pairs: list[tuple[str, str]], batch_size: int = 64, device="cpu",
           names: list[str] | None = None, precision: str = "fp32", align_to_words: bool = True,
           config=None, **settings) -> list[dict]:
    """Answers to (question, context) pairs, for predict.py. Long contexts are windowed (never cut)
    and decoded as in evaluation. Each answer: {"answer", "score" (start + end logit), "start",
    "end" (characters of the context), "declined" (v2.0: the null score won; the answer is "")},
    and "null_score" for v2.0. `names` (e.g. "file:line") name the pairs in errors; default "pair N".
    `precision`: fp32, or bf16/fp16/auto under autocast (`inference.inference_autocast`).
    `align_to_words`: widen a span to the whole words it touches ("iff" of "Eiffel" -> "Eiffel"), as the
    HF question-answering pipeline does by default; evaluation does not (run_qa.py's scoring).
    `config`: the adapter's AdapterConfig (default: the one `load_trained` gave the model), whose recorded
    windowing and decoding options (doc_stride, n_best, ..., v2.0's null threshold) are the defaults
    that `settings` override, as predict.py does."""
    if not callable(model) or (hasattr(model, "head") and not isinstance(model.head, SpanHead)):
        raise OptionError(f"answer needs a question-answering (span) model, not one with "
                          f"{type(getattr(model, 'head', model)).__name__}")
    if isinstance(pairs, (str, tuple)) or not isinstance(pairs, list) or not all(
            isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(t, str) for t in p) for p in pairs):
        raise OptionError("pairs must be a list of (question, context) pairs of texts: [('Who sat?', 'The cat "
                          "sat.')]")
    arguments.count(batch_size, "batch_size")
    device = arguments.device(device)
    config = config if config is not None else getattr(model, "adapter_config", None)
    recorded = {}
    if config is not None:
        recorded = dict(config.task_options or {}, version_2=TASKS.get(config.task) == "2.0")
    settings = Options(**{**recorded, **settings})
    names = names or [f"pair {number + 1}" for number in range(len(pairs))]
    questions = [Question(name, question, context, (), source=name) for name, (question, context) in zip(names, pairs)]
    features = make_features(tokenizer, questions, tokenizer.max_length, settings.doc_stride)
    data = WindowSet([Encoded(f.input_ids, f.token_type_ids) for f in features], [None] * len(features), 0,
                     questions=questions, features=features, options=settings)
    decoder = decoded(model, data, batch_size, tokenizer.pad_id, device, inference_autocast(device, precision),
                      align_to_words)
    answers = []
    for index in range(len(questions)):
        best, declined = decoder.best(index)
        found = {"answer": "" if declined else best.text, "score": None if best is None else round(best.score, 4),
                 "start": None if best is None else best.start_char, "end": None if best is None else best.end_char,
                 "declined": declined}
        if settings.version_2:
            found["null_score"] = round(decoder.null_scores[index], 4)
        answers.append(found)
    return answers


# ---------------------------------------------------------------------------------------------
# Prediction (predict.py)
# ---------------------------------------------------------------------------------------------

def check_predict(args, meta) -> None:
    """A QA adapter answers --question about --context, or --input's `question`/`context` fields."""
    if args.texts:
        raise PredictError("the adapter answers questions: give --question and --context (or --input FILE)")
    if "null_threshold" in args.given and TASKS[meta.task] != "2.0":
        raise PredictError(f"--null-threshold: the adapter was trained on {meta.task} (SQuAD v1.1), whose "
                           "questions always have an answer; it applies to squad_v2 adapters")


def read_rows(args, tokenizer) -> tuple[list[Example], list[tuple[int, str]]]:
    """--question/--context (line 0), or --input's rows. Rows that cannot be read and rows that cannot be
    windowed (a context of zero-width spaces) are bad rows alike: the first in the file stops the run,
    or with --skip-bad every one is skipped."""
    if args.input is None:
        for name in ("question", "context"):
            check_argument_text(f"--{name}", getattr(args, name))
        if text_problem(args.question):  # only invisible characters: nothing to ask
            raise PredictError(f"--question {text_problem(args.question)}")
        return [Example(args.question, args.context, None, 0)], []
    skipped = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # read_table's summary warning: predict.py lists the skipped lines itself
        try:
            examples, _ = read_table(args.input, "question", "context", label="__none__", strict=False, report=skipped)
        except DataError:
            if skipped and not args.skip_bad:  # every row is bad: the first one, by its line
                raise DataError(f"{args.input}:{skipped[0][0]}: {skipped[0][1]}") from None
            raise
    problems = {e.line: pair_problem(tokenizer, e.text_a, e.text_b) for e in examples}
    skipped = sorted(skipped + [(line, problem) for line, problem in problems.items() if problem])
    if skipped and not args.skip_bad:
        raise DataError(f"{args.input}:{skipped[0][0]}: {skipped[0][1]}")
    examples = [e for e in examples if not problems[e.line]]
    if not examples:
        raise DataError(f"{args.input}: every row is bad; the first, line {skipped[0][0]}: {skipped[0][1]}")
    return examples, skipped


def predict_rows(model, tokenizer, meta, rows: list[Example], args):
    """Each question's answer: {"line", "answer", "score", "start", "end", "declined"} (v2.0: "null_score")."""
    settings = {"null_threshold": args.null_threshold} if "null_threshold" in args.given else {}
    for start in range(0, len(rows), CHUNK_ROWS):  # bounded memory on big files
        chunk = rows[start:start + CHUNK_ROWS]
        # An error names the row's line (not its place in the chunk), or the option that gave the context.
        names = [f"{args.input}:{e.line}" for e in chunk] if args.input else ["--context"]
        found = answer(model, tokenizer, [(e.text_a, e.text_b) for e in chunk], args.batch_size if args.input else 1,
                       args.device, names=names, precision=args.precision, align_to_words=args.align_to_words,
                       config=meta, **settings)
        for example, answered in zip(chunk, found):
            yield {"line": example.line, **answered}


def show(found: dict, args) -> str:
    if found["declined"]:
        if found["score"] is None:
            return "no answer: no span fits the context"
        span = found["answer"] or repr(args.context[found["start"]:found["end"]])
        return (f"no answer (declined: null score {found['null_score']:.2f} beats the best span {span}, "
                f"score {found['score']:.2f})")
    return f"answer: {found['answer']}\nscore: {found['score']:.2f}\nspan: characters {found['start']}-{found['end']}"
