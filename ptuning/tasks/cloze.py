"""Cloze tasks: P-tuning v1 as its paper runs NLU. The model's own MLM head reads a [MASK] that a
template places beside the text, and a verbalizer says which word stands for each label.

    template    "[P*3] {a}? [MASK], [P*3] {b}"          (v1: prompts, anchor words, the mask)
    verbalizer  not_equivalent=No, equivalent=Yes
    score(label) = the MLM logit of the label's word at [MASK]       (heads.MaskedLMHead)
    loss         = cross-entropy over the labels' scores             (PET; "GPT Understands, Too" §4)

("GPT Understands, Too", Liu et al. 2021, and PET, Schick & Schütze 2021; P-tuning v2 §2 calls
templates and verbalizers the baseline it does without.) The head is the pretraining's, loaded from a
`*ForMaskedLM` checkpoint and frozen with the encoder: with --method ptuning, prompt or prefix only the
prompts train (the paper's frozen-model setting); --method full trains everything.

Tasks: each GLUE classification task as a cloze task, `--task mrpc-cloze` (GLUE's files, the pattern and
words of `CLOZE` below), and `--task cloze` for your own tables (--train-file/--dev-file: .tsv, .csv, or
.jsonl as FewGLUE ships BoolQ, CB, RTE: `--text-a passage --text-b question`), whose classes are the
verbalizer's labels. Past the label scores everything is GLUE's: metrics, prediction, the files it reads.
Follows the task-family convention of `ptuning/tasks/__init__.py`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..config import EncoderConfig
from ..errors import OptionError, not_a_file, readable_file
from ..heads import MaskedLMHead
from ..model import MethodConfig
from ..options import option
from ..prediction import PredictError, drop_bad_rows
from ..text.batches import EncodedSet, encode_examples
from ..text.download import data_dir, ensure_glue_task
from ..text.tables import DataError, Example, canonical_label, read_table
from ..text.tokenizer import MASKS, Tokenizer, check_room, check_template
from ..weights import CheckpointError, hf_head_keys, resolve_model_dir, stored_head_names
from . import glue

PAIR, SINGLE = "{a}? [MASK], {b}", "{a} It was [MASK]."  # punctuation glued: no space before it
# GLUE task -> (pattern, verbalizer): PET's and LM-BFF's (Gao et al. 2021) manual ones for these tasks.
CLOZE = {
    "mrpc": (PAIR, "not_equivalent=No,equivalent=Yes"),
    "qqp": (PAIR, "not_duplicate=No,duplicate=Yes"),
    "rte": (PAIR, "entailment=Yes,not_entailment=No"),
    "qnli": (PAIR, "entailment=Yes,not_entailment=No"),
    "wnli": (PAIR, "not_entailment=No,entailment=Yes"),
    "mnli": (PAIR, "entailment=Yes,neutral=Maybe,contradiction=No"),
    "sst2": (SINGLE, "negative=terrible,positive=great"),
    "cola": ("{a} This is [MASK].", "unacceptable=incorrect,acceptable=correct"),
}
OWN = "cloze"  # --task cloze: the user's own tables

# --- the task-family convention (tasks/__init__.py) -------------------------------------------
HEAD = "mask"  # each row's [MASK] -> (B, num_labels) label scores
TASKS = tuple(f"{name}-cloze" for name in CLOZE) + (OWN,)
DESCRIPTION = "cloze tasks (the MLM head at [MASK]: --task mrpc-cloze, ..., cloze)"
PEFT_TASK_TYPE = None  # peft has no task model that reads an MLM head through a verbalizer
PREFIX_TEXT = glue.PREFIX_TEXT
# v1 prompts around the pattern, 3 before each text as in the paper's figure; else the methods' recipes.
RECIPES: dict[str, dict] = {"ptuning": dict(num_virtual_tokens=6), "prompt": dict(num_virtual_tokens=6)}
HEAD_OPTIONS = ("label_words", "mask_token_id")  # the task options the head is built from
MLM_KEYS = ("transform.weight", "transform.bias", "norm.weight", "norm.bias", "bias")  # MaskedLMHead's tensors


@dataclass(frozen=True)
class Options:
    """The cloze task's answer words (its table's columns are GLUE's --text-a/--text-b/--label)."""
    verbalizer: str | None = option(
        None, 'each label\'s word at [MASK]: "not_equivalent=No,equivalent=Yes" (several words: "positive=great|'
        'good"), or a JSON file {"label": "word" or ["word", ...]}. Default: the GLUE task\'s (tasks/cloze.py); '
        "--task cloze needs it: its labels are your table's classes")

    @staticmethod
    def extra_problems(values: dict) -> list[str]:
        task, given = values.get("task"), values.get("verbalizer")
        if task == OWN and not values.get("train_file"):
            return ["--task cloze reads your own tables: give --train-file and --dev-file (GLUE's MRPC as a cloze "
                    "task: --task mrpc-cloze)"]
        if task == OWN and not given and not values.get("resume"):  # --resume: the run's own
            return ["--task cloze needs --verbalizer: it names your table's classes and their words, "
                    'e.g. "negative=terrible,positive=great"']
        if given is None or task not in TASKS:
            return []
        try:
            words = parse_verbalizer(given)
            if task != OWN and not values.get("train_file"):  # your own table: its classes are the verbalizer's
                check_labels(words, glue.label_names(base_task(task)), task)
        except OptionError as err:
            return [str(err)]
        return []


PREDICT_OPTIONS = glue.PREDICT_OPTIONS  # an --input table's columns, as GLUE's


def base_task(task: str) -> str:
    """'mrpc-cloze' -> 'mrpc'."""
    return task.removesuffix("-cloze")


def label_names(task_name: str, train=None) -> tuple[str, ...] | None:
    """A GLUE cloze task's classes in id order (--task cloze: the verbalizer's labels, read in `load`)."""
    return glue.label_names(base_task(task_name)) if task_name != OWN else None


# --- the verbalizer -----------------------------------------------------------------------------------

def parse_verbalizer(text: str | dict) -> dict[str, list[str]]:
    """`label=word|word,label=word`, or the path of a JSON file {label: word or [words]} -> {label: [words]},
    in the order given (an adapter's record, {label: [words]}, is checked alike). Raises OptionError naming
    the entry (or the file) that is wrong."""
    if isinstance(text, dict):
        return _verbalizer_object(text, "--verbalizer")
    if not isinstance(text, str):
        raise OptionError(f"--verbalizer must be text, not {type(text).__name__}")
    if not text.strip():
        raise OptionError('--verbalizer is empty: write label=word entries, e.g. "negative=terrible,positive=great"')
    if text.strip().endswith(".json") or "=" not in text:  # a file's path (label=word entries hold a '=')
        path = Path(text.strip())
        try:
            exists = path.exists()
        except OSError:  # a name too long for a path
            exists = False
        if not exists and not text.strip().endswith(".json"):
            raise OptionError(f"--verbalizer {text!r}: write label=word entries (joined by ',', a label's words "
                              "by '|'), or give the path of a JSON file")
        return _verbalizer_file(path)
    entries = {}
    for entry in text.split(","):
        label, eq, words = entry.partition("=")
        label = label.strip()
        if not eq or not label:
            raise OptionError(f"--verbalizer entry {entry.strip()!r}: write label=word (labels and words joined "
                              "by '=', entries by ',', a label's several words by '|')")
        entries[label] = _words(entries, label, words.split("|"), "--verbalizer")
    return _at_least_two(entries, "--verbalizer")


def _verbalizer_file(path: Path) -> dict[str, list[str]]:
    if not readable_file(path):
        raise OptionError(f"--verbalizer: {not_a_file(path)}")

    def no_repeats(pairs):
        keys = [key for key, _ in pairs]
        repeated = next((key for key in keys if keys.count(key) > 1), None)
        if repeated is not None:
            raise OptionError(f"--verbalizer {path}: key {repeated!r} is given twice")
        return dict(pairs)

    try:
        loaded = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=no_repeats)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise OptionError(f"--verbalizer {path}: not a JSON file ({err})") from None
    except OSError as err:
        raise OptionError(f"--verbalizer {path}: cannot read it ({err.strerror})") from None
    return _verbalizer_object(loaded, f"--verbalizer {path}")


def _verbalizer_object(loaded, where: str) -> dict[str, list[str]]:
    if not isinstance(loaded, dict) or not loaded:
        raise OptionError(f'{where}: expected an object {{"label": "word" or ["word", ...]}}')
    entries = {}
    for label, words in loaded.items():
        if not isinstance(label, str):
            raise OptionError(f"{where}: label {label!r} must be text")
        if isinstance(words, str):
            words = [words]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise OptionError(f"{where}: key {label!r}: a word or a list of words, not {words!r}")
        entries[label.strip()] = _words(entries, label.strip(), words, f"{where}: key {label!r}")
    return _at_least_two(entries, where)


def _words(entries: dict, label: str, words: list[str], where: str) -> list[str]:
    if not label:
        raise OptionError(f"{where}: an empty label")
    same = next((known for known in entries if canonical_label(known) == canonical_label(label)), None)
    if same is not None:  # tables read 1.0 as 1: so do labels here
        raise OptionError(f"{where}: label {label!r} is given twice" + (f" (as {same!r})" if same != label else ""))
    words = [w.strip() for w in words]
    if not words or not all(words):
        raise OptionError(f"{where}: label {label!r} has an empty word")
    if len(set(words)) != len(words):
        raise OptionError(f"{where}: label {label!r} names a word twice")
    return words


def _at_least_two(entries: dict, where: str) -> dict:
    if len(entries) < 2:
        raise OptionError(f"{where}: {len(entries)} label; a classifier needs at least two")
    return entries


def check_labels(verbalizer: dict[str, list[str]], labels, task: str) -> None:
    """Every label of the task has words, and no word is given for a label the task lacks."""
    missing = [label for label in labels if label not in verbalizer]
    unknown = [label for label in verbalizer if label not in labels]
    if missing or unknown:
        raise OptionError(f"--verbalizer for --task {task}: " + "; ".join(
            ([f"no word for label {', '.join(map(repr, missing))}"] if missing else []) +
            ([f"unknown label {', '.join(map(repr, unknown))}"] if unknown else [])) +
            f" (its labels: {', '.join(labels)})")


def label_word_ids(tokenizer: Tokenizer, verbalizer: dict[str, list[str]], say=print) -> list[list[list[int]]]:
    """Each label's words as token ids, as they follow [MASK]'s space ("Yes" -> RoBERTa's "ĠYes").

    A word the vocabulary lacks (it would become the unknown token) and two labels with the same pieces are
    refused; a word of several pieces is said (`say`): its score is the mean over its pieces (MaskedLMHead)."""
    verbalizer = parse_verbalizer(verbalizer)  # {label: word or [words]}, checked as the command line's
    if tokenizer.mask_id is None:
        raise OptionError(f"the tokenizer has no mask token {tokenizer.mask_token}: it cannot fill a [MASK]")
    unknown = {tokenizer.backend.token_to_id(t) for t in ("[UNK]", "<unk>")} - {None}
    special = {tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.mask_id}
    seen, ids = {}, []
    for label, words in verbalizer.items():
        label_ids = []
        for word in words:
            pieces = tokenizer.backend.encode(" " + word, add_special_tokens=False).ids
            if not pieces or unknown & set(pieces):
                raise OptionError(f"--verbalizer: word {word!r} (label {label!r}) is not in the model's vocabulary "
                                  "(it would become the unknown token); choose another word")
            if special & set(pieces):
                raise OptionError(f"--verbalizer: word {word!r} (label {label!r}) is a special token; choose a word")
            if len(pieces) > 1:
                shown = " + ".join(repr(tokenizer.backend.id_to_token(i)) for i in pieces)
                say(f"verbalizer: {word!r} (label {label!r}) is {len(pieces)} tokens, {shown}: its score is the mean "
                    "of their log-probabilities at [MASK]")
            if tuple(pieces) in seen:  # uncased BERT reads "Yes" and "yes" alike
                other, spelled = seen[tuple(pieces)]
                raise OptionError(f"--verbalizer: {spelled!r} (label {other!r}) and {word!r} (label {label!r}) are "
                                  "the same tokens; each word may stand for one label, once")
            seen[tuple(pieces)] = (label, word)
            label_ids.append(pieces)
        ids.append(label_ids)
    return ids


def verbalizer_of(args) -> dict[str, list[str]]:
    """The run's verbalizer: --verbalizer (a resumed run: its record), else the GLUE task's own. On a GLUE
    task's files its labels are put in the task's order, the order of their ids (label c scores words[c]);
    on your own tables (--train-file) the verbalizer's order is the classes' order."""
    if not args.verbalizer and args.task == OWN:
        raise OptionError("--task cloze needs --verbalizer: it names your table's classes and their words")
    words = parse_verbalizer(args.verbalizer or CLOZE[base_task(args.task)][1])
    if args.task == OWN or args.train_file:
        return words
    names = glue.label_names(base_task(args.task))
    check_labels(words, names, args.task)
    return {name: words[name] for name in names}


def default_template(values: dict) -> str | None:
    """--template left unset: the task's pattern; v1's prompts split before the two texts (all before a
    single text), as the paper's "[P*3] {a}? [MASK], [P*3] {b}"."""
    task = values.get("task")
    if task not in TASKS:
        return None
    pattern = CLOZE[base_task(task)][0] if task != OWN else (PAIR if values.get("text_b") else SINGLE)
    if values.get("method") not in ("ptuning", "prompt"):
        return pattern
    n = values["num_virtual_tokens"]
    pieces = pattern.split()
    slot = lambda k: [f"[P*{k}]"] if k else []  # noqa: E731
    if "{b}" in pieces:
        i = pieces.index("{b}")
        pieces = slot(n - n // 2) + pieces[:i] + slot(n // 2) + pieces[i:]
    else:
        pieces = slot(n) + pieces
    return " ".join(pieces)


# --- training -------------------------------------------------------------------------------------------

def reads_pairs(template: str | None) -> bool:
    return bool(template) and "{b}" in check_template(template)


def check_fit(args, method: MethodConfig, config: EncoderConfig) -> None:
    """Before any work (data fetched, weights loaded): the checkpoint holds an MLM head, the template reads
    the task's texts ({b} for pairs, none for single texts), and the position table has room for it and one
    token of each text."""
    try:
        folder = resolve_model_dir(args.model)
    except CheckpointError:  # a dry run sized from a known shape (roberta-large) without its weights
        folder = None
    missing = [k for k in MLM_KEYS if k not in stored_head_names(folder)] if folder is not None else []
    if missing:
        raise CheckpointError(f"{folder}: no pretrained masked-language-model head (missing: "
                              f"{', '.join(hf_head_keys(missing, config.family))}). A cloze task reads it: use a "
                              "*ForMaskedLM checkpoint (roberta-large, bert-base-uncased as published), or a "
                              "classification task (--task mrpc) whose head trains from scratch")
    masks = check_template(method.template).count("[MASK]") if method.template else 0
    if masks != 1:
        raise OptionError(f"--template {method.template!r}: a cloze task's template holds one [MASK], where the "
                          f"MLM head reads the answer (it has {masks}), e.g. '{{a}}? [MASK], {{b}}'")
    if folder is not None:  # every word in the vocabulary, no two labels alike (said again, once, in encode_options)
        label_word_ids(Tokenizer.from_folder(folder), verbalizer_of(args), say=lambda *_: None)
    pairs = glue.is_pair(args, base_task(args.task))
    if reads_pairs(method.template) != pairs:
        data = f"the rows of {args.train_file}" if args.train_file else f"--task {args.task}'s rows"
        raise OptionError(f"--template {method.template!r}: {data} hold " + (
            "pairs of texts, and the template has no {b} for the second" if pairs else
            "one text (no --text-b), and the template has a {b}"))
    check_room(method, config, args.max_length, pair=pairs)


def load(args):
    """(train, dev, label names, metric names): a GLUE task's files, or your own tables whose classes are the
    verbalizer's labels (a row with another label is a bad row, named by file and line)."""
    verbalizer = verbalizer_of(args)
    mask = MASKS[EncoderConfig.from_json(resolve_model_dir(args.model)).family]  # the text must not hold it
    if args.train_file:
        names = tuple(verbalizer)
        train, _ = read_table(args.train_file, args.text_a, args.text_b, args.label, names, args.strict,
                              task_type="classification", needs_labels=True)
        dev, _ = read_table(args.dev_file, args.text_a, args.text_b, args.label, names, args.strict,
                            task_type="classification", needs_labels=True)
        refuse_masks(train, mask, args.train_file)
        refuse_masks(dev, mask, args.dev_file)
        return train, dev, names, glue.table_metrics(names)
    task = glue.TASKS[base_task(args.task)]
    folder = data_dir("glue", args.data_dir)
    ensure_glue_task(task.name, folder, allow_download=not args.no_download)
    splits = {}
    for split in ("train", glue.dev_split(task.name)):
        splits[split] = glue.read(task, split, folder, args.strict)
        refuse_masks(splits[split], mask, folder / task.folder / task.splits[split])
    return (*splits.values(), glue.label_names(task.name), glue.metric_names(task.name))


def refuse_masks(examples: list[Example], mask_token: str, path=None, error=DataError) -> None:
    """A row's one [MASK] is the template's: a text holding the mask token would be a second (`path:line`,
    else `line N`, names the row; line 0 is a text given on the command line)."""
    for example in examples:
        problem = mask_problem(example, mask_token)
        if problem:
            where = f"{path}:{example.line}: " if path else f"line {example.line}: " if example.line else ""
            raise error(where + problem)


def mask_problem(example: Example, mask_token: str) -> str | None:
    if any(text is not None and mask_token in text for text in (example.text_a, example.text_b)):
        return (f"the text holds {mask_token}, the mask token; a cloze row has one, where the template puts "
                "[MASK] (take it out of the text)")
    return None


def encode_options(args) -> dict:
    """The verbalizer, and its words as the model's token ids (recorded in the adapter; the head reads them)."""
    verbalizer = verbalizer_of(args)
    tokenizer = Tokenizer.from_folder(resolve_model_dir(args.model))
    say = print if os.environ.get("RANK", "0") == "0" else (lambda *a, **k: None)
    return {"verbalizer": verbalizer, "label_words": label_word_ids(tokenizer, verbalizer, say),
            "mask_token_id": tokenizer.mask_id}


def encode(tokenizer: Tokenizer, examples: list[Example], label_names=None, **options) -> EncodedSet:
    """Each example through the template; a text that holds the mask token itself is refused by line."""
    refuse_masks(examples, tokenizer.mask_token)
    return encode_examples(tokenizer, examples)


def head(config: EncoderConfig, method: MethodConfig, num_labels: int, label_words=None,
         mask_token_id=None) -> MaskedLMHead:
    """The checkpoint's MLM head, scoring the labels' words. Without words (--dry-run): built to be sized."""
    if label_words is not None and len(label_words) != num_labels:
        raise OptionError(f"the verbalizer has {len(label_words)} labels, the task {num_labels}")
    activation = "gelu" if config.family == "roberta" else config.hidden_act  # RobertaLMHead: gelu, always
    return MaskedLMHead(config.hidden_size, config.vocab_size, config.layer_norm_eps, activation, label_words,
                        mask_token_id)


loss = glue.loss              # cross-entropy over the label words' scores: PET's
training_loss = glue.training_loss
evaluate = glue.evaluate      # the GLUE task's metrics over the label scores


# --- prediction (predict.py) ------------------------------------------------------------------------

def _trained_on(meta) -> tuple[bool, str]:
    pairs = reads_pairs(meta.method.template)
    return pairs, f"the adapter's template {meta.method.template!r} reads {'pairs of texts' if pairs else 'one text'}"


def check_texts(meta, pairs: list[tuple[str, str | None]]) -> None:
    """The library's `predict`: pairs when the template has {b}, single texts otherwise."""
    glue.check_pairs_given(_trained_on(meta), pairs)


def check_predict(args, meta) -> None:
    """predict.py's texts or --input columns: pairs when the template has {b}."""
    glue.check_pair_arguments(_trained_on(meta), args)


def read_rows(args, tokenizer) -> tuple[list[Example], list[tuple[int, str]]]:
    """As GLUE's; an --input row whose text holds the mask token is a bad line (skipped with --skip-bad)."""
    rows, skipped = glue.read_rows(args, tokenizer)
    if args.input is None:
        return rows, skipped  # predict_rows names a command-line text that holds one
    return drop_bad_rows(args, rows, lambda row: mask_problem(row, tokenizer.mask_token), skipped), skipped


def predict_rows(model, tokenizer, meta, rows: list[Example], args):
    """As GLUE's: each row's label and the label words' probabilities (softmax over the labels' scores)."""
    refuse_masks(rows, tokenizer.mask_token, args.input, PredictError)
    yield from glue.predict_rows(model, tokenizer, meta, rows, args)


show = glue.show
