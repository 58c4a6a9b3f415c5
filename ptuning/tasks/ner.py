"""Named-entity recognition (token classification): read, encode words, merge windows, score.

Reading. CoNLL column files or JSONL, tags in IOB2 (IOB1 converted): `text/conll.py`.

Encoding. Words go through the `tokenizers` library as one pre-split sequence
(`is_pretokenized=True`), and `word_ids` says which word each sub-token came from: the same ids
as transformers' fast tokenizers with `is_split_into_words=True`. (Encoding each word on its own,
as P-tuning-v2's NER code does, loses the leading space byte-level BPE puts before every word.)
The first sub-token of a word carries its label; the rest, and the special tokens, carry -100.
A sentence longer than the model's positions is split into overlapping windows, never cut: each
word is read from exactly one window (`Window.predicts`), and `merge_windows` puts the words back.

Scoring. `entity_scores` is CoNLL's `conlleval`: an entity is a type and an exact span; precision,
recall and F1 over all entities (micro) and per type.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer as Backend

from .. import arguments
from ..errors import DataError, OptionError, is_unicode
from ..heads import TokenHead
from ..inference import CHUNK_ROWS, gather_rows, inference_autocast, run_shard
from ..model import head_dropout
from ..options import option
from ..prediction import PredictError, check_argument_text
from ..text.batches import EncodedSet
from ..text.conll import TAG, NerDataError, Sentence, read_ner  # noqa: F401 - NerDataError re-exported
from ..text.download import existing_data_dir
from ..text.lines import read_lines, text_problem
from ..text.tables import given_label_names
from ..text.tokenizer import SPECIALS, Encoded, check_room

IGNORE = -100  # label of positions the loss skips (torch's cross_entropy ignore_index default)
UNKNOWN = {"roberta": "<unk>", "bert": "[UNK]"}
# ---------------------------------------------------------------------------------------------
# Encoding words into windows


@dataclass(frozen=True)
class WordTokenizer:
    backend: Backend  # a private copy: no padding, no truncation, a space before every word (BPE)
    cls_id: int
    sep_id: int
    unknown_id: int


def word_tokenizer(backend: Backend, family: str) -> WordTokenizer:
    """A copy of `backend` set up for pre-split words, as transformers does for
    `RobertaTokenizerFast(add_prefix_space=True)`: byte-level BPE sees each word with a leading
    space (`Ġword`), as it would in running text. The caller's backend is left as it was (sentence-
    pair tasks need it without that space)."""
    state = json.loads(backend.to_str())
    state["padding"] = state["truncation"] = None  # windows are cut here; batches padded by collate
    for pre_tokenizer in _byte_level_parts(state.get("pre_tokenizer")):
        pre_tokenizer["add_prefix_space"] = True
    copy = Backend.from_str(json.dumps(state))
    cls_token, sep_token = SPECIALS[family]
    ids = [copy.token_to_id(token) for token in (cls_token, sep_token, UNKNOWN[family])]
    if None in ids:
        raise ValueError(f"the tokenizer lacks {cls_token}, {sep_token} or {UNKNOWN[family]}; "
                         f"is it a {family} tokenizer?")
    return WordTokenizer(copy, *ids)


def _byte_level_parts(pre_tokenizer):
    if not pre_tokenizer:
        return []
    if pre_tokenizer["type"] == "Sequence":
        return [part for inner in pre_tokenizer["pretokenizers"] for part in _byte_level_parts(inner)]
    return [pre_tokenizer] if pre_tokenizer["type"] == "ByteLevel" else []


@dataclass
class Window:
    """One row for the model: `<s>`/`[CLS]`, a stretch of a sentence's sub-tokens, `</s>`/`[SEP]`."""
    sentence: int                 # index of the sentence among those encoded
    num_words: int                # words in that sentence
    ids: list[int]                # (T,) with the special tokens
    type_ids: list[int]           # (T,) all 0: one segment (so `collate` takes windows as they are)
    word_ids: list[int | None]    # (T,) word index of each sub-token, None for special tokens
    predicts: list[int | None]    # (T,) the word this position predicts: its first sub-token, in the
    #                               one window that owns the word; None elsewhere
    labels: list[int]             # (T,) label id where `predicts` is set, else -100


def word_pieces(tokenizer: WordTokenizer, words: list[str]) -> list[list[int]]:
    """Sub-token ids of each word, from one pre-split encoding of the whole sentence.

    A word the tokenizer drops entirely (BERT's normalizer removes control characters and
    zero-width spaces) gets the unknown token, so that it still has a position to predict from;
    transformers would leave that word without a label."""
    encoding = tokenizer.backend.encode(words, is_pretokenized=True, add_special_tokens=False)
    pieces = [[] for _ in words]
    for token_id, word in zip(encoding.ids, encoding.word_ids):
        pieces[word].append(token_id)
    return [ids or [tokenizer.unknown_id] for ids in pieces]


def encode_words(tokenizer: WordTokenizer, words: list[str], label_ids: list[int] | None = None,
                 max_length: int = 512, stride: int = 128, reserved: int = 0,
                 sentence: int = 0) -> list[Window]:
    """The windows of one sentence.

    max_length: positions a row may use; `reserved` of them are kept for P-tuning v1's virtual
    tokens, which the model adds itself, and 2 for the special tokens. What is left is the
    window's capacity C in sub-tokens. A longer sentence gets windows starting every C - stride
    sub-tokens, so consecutive windows share `stride` sub-tokens (as transformers'
    `return_overflowing_tokens` with `stride`). Each word is owned by the window where its first
    sub-token lies farthest from the window's edges (the earlier window on a tie): only there does
    it carry its label and give its prediction.
    """
    capacity = max_length - reserved - 2
    if capacity < 1:
        raise ValueError(f"max_length {max_length} leaves no room for words after {reserved} reserved "
                         "positions and 2 special tokens")
    if not 0 <= stride < capacity:
        raise ValueError(f"stride {stride}: must be at least 0 and below the window's {capacity} sub-tokens")
    if label_ids is not None and len(label_ids) != len(words):
        raise ValueError(f"{len(words)} words but {len(label_ids)} labels")
    pieces = word_pieces(tokenizer, words)
    ids = [token_id for word_ids in pieces for token_id in word_ids]                   # (N,)
    word_of = [word for word, word_ids in enumerate(pieces) for _ in word_ids]          # (N,)
    first_token = [0, *accumulate(len(word_ids) for word_ids in pieces)][:-1]           # (W,)
    step = capacity - stride
    starts = [0]
    while starts[-1] + capacity < len(ids):
        starts.append(starts[-1] + step)
    owner = [max(range(len(starts)), key=lambda k: (_margin(token, starts[k], capacity), -k))
             for token in first_token]
    windows = []
    for k, start in enumerate(starts):
        end = min(start + capacity, len(ids))
        predicts = [word_of[t] if owner[word_of[t]] == k and first_token[word_of[t]] == t else None
                    for t in range(start, end)]
        labels = [IGNORE if word is None or label_ids is None else label_ids[word] for word in predicts]
        windows.append(Window(sentence, len(words), [tokenizer.cls_id] + ids[start:end] + [tokenizer.sep_id],
                              [0] * (end - start + 2), [None] + word_of[start:end] + [None],
                              [None] + predicts + [None], [IGNORE] + labels + [IGNORE]))
    return windows


def _margin(token: int, start: int, capacity: int) -> int:
    """Distance of `token` from the nearer edge of the window [start, start + capacity); -1 outside."""
    if not start <= token < start + capacity:
        return -1
    return min(token - start, start + capacity - 1 - token)


def encode_sentences(tokenizer: WordTokenizer, sentences: list[Sentence], label_names: list[str] | None,
                     max_length: int = 512, stride: int = 128, reserved: int = 0) -> list[Window]:
    """All windows of all sentences, in order; `label_names` None (prediction) leaves labels -100."""
    index = {name: number for number, name in enumerate(label_names or [])}
    windows = []
    for number, sentence in enumerate(sentences):
        label_ids = [index[tag] for tag in sentence.tags] if label_names else None
        windows += encode_words(tokenizer, sentence.words, label_ids, max_length, stride, reserved, number)
    return windows


def merge_windows(windows: list[Window], logits) -> list[torch.Tensor]:
    """Per-window token logits -> per-sentence word logits.

    logits: a (B, T, L) tensor, row b for windows[b] (right padding allowed), or a list of (T_b, L).
    Returns one (W, L) tensor per sentence, in sentence order: row w read at word w's first
    sub-token in the window that owns it.
    """
    if len(logits) != len(windows):
        raise ValueError(f"{len(windows)} windows but {len(logits)} rows of logits")
    rows = {}  # sentence -> {word: (L,)}
    sizes = {}
    for window, window_logits in zip(windows, logits):
        sizes[window.sentence] = window.num_words
        words = rows.setdefault(window.sentence, {})
        for position, word in enumerate(window.predicts):
            if word is not None:
                words[word] = window_logits[position]
    merged = []
    for sentence in sorted(rows):
        if len(rows[sentence]) != sizes[sentence]:
            raise ValueError(f"sentence {sentence}: {len(rows[sentence])} of {sizes[sentence]} words "
                             "predicted; were all its windows passed?")
        merged.append(torch.stack([rows[sentence][word] for word in range(sizes[sentence])]))  # (W, L)
    return merged


def predicted_tags(word_logits: list[torch.Tensor], label_names: list[str]) -> list[list[str]]:
    """Argmax of each word's logits, as tag strings (what `entity_scores` takes)."""
    return [[label_names[i] for i in logits.argmax(dim=-1).tolist()] for logits in word_logits]


# ---------------------------------------------------------------------------------------------
# Scoring


@dataclass
class EntityScore:
    precision: float
    recall: float
    f1: float
    gold: int       # entities in the reference (seqeval's "support")
    predicted: int
    correct: int


def entities(tags: list[str]) -> set[tuple[str, int, int]]:
    """(type, first, last) of each entity, read as conlleval does: a `B-`, or an `I-` after `O` or
    after another type, opens one; the next tag that does not continue it closes it."""
    found, opened, kind = set(), None, None
    for position, tag in enumerate(list(tags) + ["O"]):  # the sentence end closes what is open
        prefix, tag_type = (tag[0], tag[2:]) if tag != "O" else ("O", None)
        if opened is not None and (prefix in ("B", "O") or tag_type != kind):
            found.add((kind, opened, position - 1))
            opened = None
        if prefix != "O" and opened is None:
            opened, kind = position, tag_type
    return found


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, EntityScore]:
    """conlleval's entity precision / recall / F1: key "overall" (micro over all entities) and one
    key per entity type. Scores with an empty denominator are 0.0."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    gold_entities, predicted_entities = set(), set()
    for number, (gold_tags, predicted_tags_) in enumerate(zip(gold, predicted)):
        if len(gold_tags) != len(predicted_tags_):
            raise ValueError(f"sentence {number}: {len(gold_tags)} gold tags but {len(predicted_tags_)} predicted")
        gold_entities |= {(number, *entity) for entity in entities(gold_tags)}
        predicted_entities |= {(number, *entity) for entity in entities(predicted_tags_)}
    types = sorted({entity[1] for entity in gold_entities | predicted_entities})
    scores = {"overall": _score(gold_entities, predicted_entities)}
    for name in types:
        scores[name] = _score({entity for entity in gold_entities if entity[1] == name},
                              {entity for entity in predicted_entities if entity[1] == name})
    return scores


def _score(gold: set, predicted: set) -> EntityScore:
    correct = len(gold & predicted)
    precision = correct / len(predicted) if predicted else 0.0
    recall = correct / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return EntityScore(precision, recall, f1, len(gold), len(predicted), correct)


# ---------------------------------------------------------------------------------------------
# The task-family convention (tasks/__init__.py)

HEAD = "token"  # one output per text position: (B, T, num_labels)
DESCRIPTION = "NER (--task conll2003, ner)"
PEFT_TASK_TYPE = "TOKEN_CLS"
# Recipes for unset options, on top of the methods' (training/recipes.py). The budget of the comparison
# in BENCHMARKS.md (bench/ner.py, after the transformers Trainer reference run there): batch 16, 6% warm-up,
# weight decay 0.01; full fine-tuning at lr 5e-5 (HF run_ner's default). v2 (searched at that budget,
# BENCHMARKS.md): 64 virtual tokens at lr 5e-2; 16 tokens at the anchor's lr 1e-2 learn too slowly.
# NER needs fewer epochs than the GLUE recipes: 14k sentences give ~880 steps an epoch.
RECIPES = {
    "ptuning": dict(lr=1e-2, epochs=5, batch_size=16, warmup_ratio=0.06, num_virtual_tokens=16),
    "prompt": dict(lr=1e-2, epochs=5, batch_size=16, warmup_ratio=0.06, num_virtual_tokens=16),
    "prefix": dict(lr=5e-2, epochs=5, batch_size=16, warmup_ratio=0.06, num_virtual_tokens=64),
    "full": dict(lr=5e-5, epochs=3, batch_size=16, warmup_ratio=0.06),
}
# --prefix-init text: the prefix starts at these words' keys and values (measured on SQuAD only, BENCHMARKS.md).
PREFIX_TEXT = ("find the names in the sentence : people , organisations , companies , places , countries , "
               "cities , and other names such as nationalities and events .")
# conll2003: the CoNLL-2003 files in a data folder; ner: only users' files (--train-file/--dev-file).
TASKS = ("conll2003", "ner")
SPLITS = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}
# CoNLL-2003's four types, as `finish` orders a label set built from its train file.
CONLL2003_LABELS = ("O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER")
METRICS = ("f1", "precision", "recall")  # entity level, conlleval; per-type F1 is added as f1_<TYPE>
GET_CONLL = ("put CoNLL-2003's train.txt and valid.txt (the column files) in that folder, "
             "or pass your own files with --train-file/--dev-file")
LOCATE = "give --train-file/--dev-file; data/README.md says where to get the files"  # train.py's wording


@dataclass(frozen=True)
class Options:
    """Your own NER files (--train-file/--dev-file): CoNLL columns or JSONL tokens/tags."""
    tag_column: int = option(-1, "NER --train-file/--dev-file in CoNLL columns: the tag column, 0-based (-1: the "
                             "last)", needs="train_file")

    @staticmethod
    def extra_problems(values: dict) -> list[str]:
        if not (values.get("label_names") and values.get("train_file")):
            return []
        return [f"--label-names: {name!r} is not an NER tag (O, B-X or I-X)"
                for name in given_label_names(values["label_names"]) if not TAG.fullmatch(name)]


def find_data_dir(data_dir: str | Path | None = None) -> Path:
    """The CoNLL-2003 folder: the argument if given, else $CONLL_DIR, else ./data/conll2003."""
    return existing_data_dir("conll2003", data_dir, "data", how_to=GET_CONLL)


def read(task: str, split: str, data_dir: str | Path | None = None, strict: bool = False,
         report: list | None = None) -> list[Sentence]:
    """One split of CoNLL-2003 (IOB1 on disk, IOB2 here). Bad lines are always fatal: a sentence
    cannot lose a word and stay a sentence, so `strict` and `report` change nothing."""
    if task != "conll2003":
        raise DataError(f"task {task!r} has no data folder of its own; give --train-file and --dev-file")
    if split not in SPLITS:
        raise DataError(f"conll2003 has no split {split!r}; it has: {', '.join(SPLITS)}")
    sentences, _ = read_ner(find_data_dir(data_dir) / SPLITS[split])
    return sentences


def read_file(path: str | Path, tag_column: int = -1, label_names: list[str] | None = None) -> list[Sentence]:
    """Users' own data: a CoNLL column file (tags in `tag_column`, default the last) or JSONL
    with `tokens` and `tags` (see `read_ner`). `label_names`, when given, is the tag set in id
    order: it names JSONL integer tags, and a tag outside it is an error."""
    sentences, _ = read_ner(path, label_names, tag_column=tag_column)
    return sentences


def dev_split(task: str) -> str:
    return "dev"


def label_names(task: str, train: list[Sentence] | None = None) -> tuple[str, ...] | None:
    """The label set comes from the training data: `O`, then `B-`/`I-` of each type seen, by name.
    Without it (sizing a run), CoNLL-2003's known set; users' data has none to offer."""
    if train:
        types = sorted({tag[2:] for sentence in train for tag in sentence.tags if tag != "O"})
        return ("O",) + tuple(f"{prefix}-{name}" for name in types for prefix in "BI")
    return CONLL2003_LABELS if task == "conll2003" else None


def metric_names(task: str) -> tuple[str, ...]:
    return METRICS


def check_fit(args, method, config) -> None:
    """Room in the position table for the special tokens and a word piece (a longer sentence is windowed)."""
    check_room(method, config, args.max_length, pair=False)


def load(args):
    """(train, dev, tag names, metric names): CoNLL-2003's folder, or the user's CoNLL/JSONL files; the tag
    set comes from the train file (--label-names names JSONL integer tags, HF datasets' ClassLabel ids)."""
    if args.train_file:
        jsonl = [f for f in (args.train_file, args.dev_file) if Path(f).suffix in (".jsonl", ".json")]
        if len(jsonl) == 2 and "tag_column" in getattr(args, "given", ()):  # no CoNLL file to read it
            raise OptionError(f"--tag-column picks a CoNLL column; {jsonl[0]} and {jsonl[1]} are JSONL, whose tags "
                              "are named (tags)")
        names = given_label_names(args.label_names)
        train, dev = read_file(args.train_file, args.tag_column, names), read_file(args.dev_file, args.tag_column, names)
    else:  # conll2003: --data-dir, else $CONLL_DIR, else data/conll2003; `ner` has no folder (read says so)
        folder = existing_data_dir("conll2003", args.data_dir, how_to=LOCATE) \
            if args.task == "conll2003" else args.data_dir
        train = read(args.task, "train", folder, args.strict)
        dev = read(args.task, dev_split(args.task), folder, args.strict)
    return train, dev, label_names(args.task, train), metric_names(args.task)


def encode_options(args) -> dict:
    return {}


@dataclass
class WindowSet(EncodedSet):
    """An `EncodedSet` of windows (one row each, labels one per position) that also keeps what
    scoring needs: which sentence and word each position predicts, and the sentences' gold tags."""
    windows: list[Window] = None
    sentences: list[Sentence] = None
    label_names: tuple[str, ...] = None


def encode(tokenizer, examples: list[Sentence], label_names: tuple[str, ...] | None = None) -> WindowSet:
    """Sentences -> windows of sub-token ids (`encode_sentences`); labels -100 where nothing is
    predicted. `tokenizer.max_length` already leaves room for v1 prompts put in front."""
    if label_names:
        _check_tags(examples, label_names)
    words = word_tokenizer(tokenizer.backend, tokenizer.family)
    max_length = tokenizer.max_length
    stride = min(128, (max_length - 2) // 2)  # overlap: half a window at most
    windows = encode_sentences(words, examples, list(label_names) if label_names else None, max_length, stride)
    encoded = [Encoded(window.ids, window.type_ids) for window in windows]
    # Nothing is cut: a long sentence becomes several windows instead, so `truncated` stays 0.
    return WindowSet(encoded, [window.labels for window in windows], 0, windows, examples,
                     tuple(label_names) if label_names else None)


def _check_tags(sentences: list[Sentence], label_names) -> None:
    known = set(label_names)
    for sentence in sentences:
        for number, tag in enumerate(sentence.tags):
            if tag not in known:
                line = sentence.lines[number] if sentence.lines else sentence.line
                raise NerDataError(f"{sentence.path}:{line}: tag {tag} (word {sentence.words[number]!r}) is not "
                                   f"among the train file's labels ({', '.join(label_names)})")


def head(config, method, num_labels: int) -> TokenHead:
    """Dropout -> Linear on every text position, as HF `*ForTokenClassification`."""
    return TokenHead(config.hidden_size, num_labels, head_dropout(config))


def summed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, T, L) logits, (B, T) labels -> the cross-entropy summed over the labelled positions."""
    return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE, reduction="sum")


def loss(logits: torch.Tensor, batch: dict, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over the labelled positions only (first sub-token of each owned word): special
    tokens, later sub-tokens, padding and prompts carry -100 (v1 prompts are not even in `logits`).

    "mean" is HF's: the mean over the batch's labelled positions. "sum" is that mean times the
    rows, so that the training loop's division by the batch size gives the same number."""
    labels = batch["labels"]                                                       # (B, T)
    mean = summed_cross_entropy(logits, labels) / labels.ne(IGNORE).sum().clamp(min=1)  # no label: 0, not NaN
    return mean if reduction == "mean" else mean * labels.shape[0]


def training_loss(train_set: EncodedSet):
    """The loss `fit` trains with: every labelled word weighs the same, whatever batch it is in.

    HF's mean over the batch's labelled positions (`loss`) makes a word's weight depend on its batch:
    with length-grouped batches (our default, for speed) a word in a batch of short sentences weighs
    several times one in a batch of long ones, and that cost 3 F1 points on CoNLL-2003
    (BENCHMARKS.md). Here the batch's summed cross-entropy is divided by a fixed number instead,
    rows × the training set's mean labelled positions per row: the same scale as HF's on average
    (equal to it for a batch of the whole set), one weight per word, and sums across torchrun
    processes add up to the global batch's loss.
    """
    labelled = sum(label != IGNORE for labels in train_set.labels for label in labels)
    per_row = max(labelled, 1) / max(len(train_set), 1)

    def word_weighted_loss(logits: torch.Tensor, batch: dict, reduction: str = "mean") -> torch.Tensor:
        total = summed_cross_entropy(logits, batch["labels"]) / per_row   # "sum": the rows' losses
        return total if reduction == "sum" else total / batch["labels"].shape[0]

    return word_weighted_loss


def window_logits(model, data: EncodedSet, batch_size: int, pad_id: int, device, autocast) -> list[torch.Tensor]:
    """(T_i, L) logits of every window, in the data's order, padding cut off (under torchrun each
    process predicts a slice of the windows, then all gather)."""
    rows = {}
    for indices, logits in run_shard(model, data, batch_size, pad_id, device, autocast):
        rows.update((i, row[:len(data.encoded[i].ids)]) for i, row in zip(indices, logits.float().cpu()))
    return gather_rows(rows, len(data))


def evaluate(model, data: WindowSet, batch_size: int, pad_id: int, device, autocast,
             metric_names=METRICS) -> dict[str, float]:
    """Entity precision/recall/F1 over whole sentences: windows merged, one prediction a word."""
    logits = window_logits(model, data, batch_size, pad_id, device, autocast)
    predicted = predicted_tags(merge_windows(data.windows, logits), list(data.label_names))
    scores = entity_scores([sentence.tags for sentence in data.sentences], predicted)
    overall = scores.pop("overall")
    result = {"f1": overall.f1, "precision": overall.precision, "recall": overall.recall}
    return {**result, **{f"f1_{name}": score.f1 for name, score in scores.items()}}


# ---------------------------------------------------------------------------------------------
# Prediction (predict.py)


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Whitespace-separated words of a line, with each word's [start, end) character offsets."""
    found = list(re.finditer(r"\S+", text))
    return [match.group() for match in found], [match.span() for match in found]


def tag_sentences(model, tokenizer, label_names: list[str], word_lists: list[list[str]], batch_size: int,
                  device, precision: str = "fp32") -> list[list[str]]:
    """Predicted IOB2 tags of each sentence (a list of words), one tag a word; [] for no words.
    `precision`: fp32, or bf16/fp16/auto under autocast (`inference.inference_autocast`)."""
    if not callable(model) or (hasattr(model, "head") and not isinstance(model.head, TokenHead)):
        raise OptionError(f"tag_sentences needs a token-classification (NER) model, not one with "
                          f"{type(getattr(model, 'head', model)).__name__}")
    if isinstance(word_lists, str) or not isinstance(word_lists, (list, tuple)) or not all(
            isinstance(words, (list, tuple)) and all(isinstance(w, str) for w in words) for words in word_lists):
        raise OptionError("word_lists must be a list of sentences, each a list of words (str): e.g. "
                          "[['George', 'Washington', 'visited', 'Paris']]")
    bad = next(((n, w) for n, words in enumerate(word_lists) for w in words if text_problem(w)), None)
    if bad is not None:
        raise OptionError(f"word_lists[{bad[0]}]: the word {bad[1]!r} {text_problem(bad[1])}")
    heads = getattr(getattr(model, "head", None), "classifier", None)
    if heads is not None and len(label_names) != heads.out_features:
        raise OptionError(f"label_names has {len(label_names)} names, but the model tags with {heads.out_features}: "
                          "give the adapter's (load_trained's config.label_names)")
    arguments.count(batch_size, "batch_size")
    device = arguments.device(device)
    sentences = [Sentence(words, ["O"] * len(words), "input", 0) for words in word_lists if words]
    if not sentences:
        return [[] for _ in word_lists]
    data = encode(tokenizer, sentences)
    autocast = inference_autocast(device, precision)
    logits = window_logits(model, data, batch_size, tokenizer.pad_id, device, autocast)
    tags = iter(predicted_tags(merge_windows(data.windows, logits), label_names))
    return [next(tags) if words else [] for words in word_lists]


def entity_records(words: list[str], tags: list[str], offsets: list[tuple[int, int]] | None = None) -> list[dict]:
    """The entities of one tagged sentence, in order: type, text, word span [first, last + 1) and,
    when `offsets` are given, the character span [start, end) in the original text."""
    records = []
    for kind, first, last in sorted(entities(tags), key=lambda entity: entity[1]):
        record = {"type": kind, "text": " ".join(words[first:last + 1]), "words": [first, last + 1]}
        if offsets is not None:
            record["start"], record["end"] = offsets[first][0], offsets[last][1]
        records.append(record)
    return records


def check_predict(args, meta) -> None:
    """A tagger reads one sentence a text, and needs IOB tag names to read entities from."""
    names = meta.label_names or []
    if not names or not all(TAG.fullmatch(name) for name in names):
        # A peft adapter's names come from its base config's id2label, often LABEL_0, LABEL_1, ...
        raise PredictError(f"{args.adapter}: label names {', '.join(names[:4]) or '(none)'} are not IOB tags "
                           "(O, B-X, I-X), so entities cannot be read from them; set id2label in the base "
                           "model's config.json")


def read_rows(args, tokenizer) -> tuple[list[tuple[int, list[str], list[tuple[int, int]]]], list[tuple[int, str]]]:
    """(line, words, character offsets) per sentence: each command-line text (its argument number as
    its line), or --input's, and (line, reason) of the lines skipped (--skip-bad)."""
    if args.texts:
        for number, text in enumerate(args.texts):
            which = f"the {'first' if number == 0 else 'second'} text (argument {number + 1})"
            check_argument_text(which, text)
            bad = next((word for word in split_words(text)[0] if text_problem(word)), None)
            if bad is not None:
                raise PredictError(f"{which}: the word {bad!r} {text_problem(bad)}")
        return [(number, *split_words(text)) for number, text in enumerate(args.texts)], []
    skipped = []
    return read_sentences(args.input, args.skip_bad, skipped), skipped


def predict_rows(model, tokenizer, meta, rows, args):
    """Each sentence's IOB2 tags and entities (type, text, word span, character span)."""
    batch_size = args.batch_size if args.input else 1  # command-line sentences are tagged one at a time
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start:start + CHUNK_ROWS]
        tagged = tag_sentences(model, tokenizer, meta.label_names, [words for _, words, _ in chunk], batch_size,
                               args.device, args.precision)
        for (line, words, offsets), tags in zip(chunk, tagged):
            yield {"line": line, "tags": tags, "entities": entity_records(words, tags, offsets)}


def show(record: dict, args) -> str:
    """A command-line sentence's entities, one a line: type, words, and the word span [first, end) as
    --input's JSON lines give it (words 0, 1 of "George Washington visited": [0, 2))."""
    lines = [args.texts[record["line"]]] if len(args.texts) > 1 else []
    lines += [f"{e['type']}\t{e['text']}\twords [{e['words'][0]}, {e['words'][1]})" for e in record["entities"]]
    return "\n".join(lines if record["entities"] else lines + ["(no entities)"])


def read_sentences(path: str, skip_bad: bool, skipped: list) -> list[tuple[int, list[str], list[tuple[int, int]]]]:
    """(line, words, character offsets) per sentence: a text line split at whitespace, or a JSONL
    line's `tokens` (offsets into the tokens joined by single spaces). Blank lines are passed over."""
    jsonl = path.endswith((".jsonl", ".json"))
    if Path(path).suffix.lower() in (".tsv", ".csv"):  # its header would be tagged as a sentence
        raise DataError(f"{path}: an NER adapter reads one sentence a line (a text file) or JSONL lines with "
                        "`tokens`, not a table; write the sentences one a line to a .txt file")
    sentences = []
    try:
        for number, line in read_lines(path):
            if not line.strip():
                continue
            try:
                if not jsonl:
                    words, offsets = split_words(line)
                    bad = next((word for word in words if text_problem(word)), None)
                    if bad is not None or not is_unicode(line):  # a "word" of only zero-width characters
                        raise ValueError(f"word {bad!r} {text_problem(bad)}" if bad is not None else text_problem(line))
                    sentences.append((number, words, offsets))
                    continue
                record = json.loads(line)
                words = record.get("tokens") if isinstance(record, dict) else None
                if not (isinstance(words, list) and words and all(isinstance(w, str) and w.strip() for w in words)):
                    raise ValueError("want an object with a `tokens` list of non-empty strings")
                bad = next((word for word in words if text_problem(word)), None)
                if bad is not None:
                    raise ValueError(f"token {bad!r} {text_problem(bad)}")
            except ValueError as err:
                reason = f"not JSON ({err.msg})" if isinstance(err, json.JSONDecodeError) else str(err)
                if not skip_bad:
                    raise DataError(f"{path}:{number}: {reason}") from None
                skipped.append((number, reason))
                continue
            starts = [0, *accumulate(len(word) + 1 for word in words)][:-1]  # offsets in " ".join(words)
            sentences.append((number, words, [(start, start + len(word)) for start, word in zip(starts, words)]))
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    if not sentences and not skipped:  # as an empty table: nothing to tag is a mistake, not an empty answer
        raise DataError(f"{path}: no sentences (the file is empty or holds only blank lines)")
    return sentences
