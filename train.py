"""Train P-tuning (v1), prompt tuning, P-tuning v2 (prefix) or full fine-tuning on a GLUE, SQuAD or NER task.

    python train.py --task mrpc                                   # the P-tuning guide's run (roberta-large)
    python train.py --task mrpc --model minilm --method prefix    # offline checkpoint, P-tuning v2
    python train.py --task squad --model minilm --method prefix   # extractive QA (SQuAD v1.1; squad_v2)
    python train.py --task mrpc --dry-run                         # parameter counts only, no weights needed
    python train.py --task conll2003 --model minilm --method prefix  # NER (token classification)

A GLUE task whose files are missing is downloaded into the data folder first (--no-download: don't).

Options left unset take the method's recipe (ptuning/training/recipes.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import string
import sys
import time
from pathlib import Path

import torch

from ptuning.adapters import files
from ptuning.config import KNOWN_SHAPES, EncoderConfig
from ptuning.errors import OptionError, WriteError, add_debug_flag, finite_float, is_unicode, run_main
from ptuning.fast import compile_layers
from ptuning.model import METHODS, MethodConfig, build_model, load_model, parameter_report
from ptuning.tasks import FAMILIES, family_for, glue, ner, qa
from ptuning.text.download import data_dir, ensure_glue_task, existing_data_dir
from ptuning.text.tables import read_table
from ptuning.text.tokenizer import Tokenizer
from ptuning.training.loop import TrainConfig, fit
from ptuning.parallel import barrier, init_distributed
from ptuning.precision import PRECISIONS, device_and_precision, storage_dtype
from ptuning.training.recipes import COMMON, FAMILY_RECIPES, RECIPES
from ptuning.training.report import ReportError, TensorBoardReporter, require_tensorboard
from ptuning.weights import resolve_model_dir

DATA_ROOT = Path(__file__).resolve().parent / "data"  # in the repository, git-ignored: data/glue, ...
PROMPT_OPTIONS = ("num_virtual_tokens", "encoder_hidden_size", "reparam", "prefix_projection", "prefix_hidden_size",
                  "prefix_dropout", "prefix_init", "prefix_text", "template")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="train.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--task", default="mrpc", type=task_name,
                   help="task (default: mrpc; GLUE's spellings MRPC, SST-2 work too): " + ", ".join(FAMILIES))
    g.add_argument("--data-dir", help="GLUE root (default: $GLUE_DIR, else data/glue beside train.py); SQuAD "
                   "folder with train.json/dev.json (default: $SQUAD_DIR, else data/squad); CoNLL-2003 folder "
                   "with train.txt/valid.txt (default: $CONLL_DIR, else data/conll2003)")
    g.add_argument("--no-download", action="store_true",
                   help="never download: a missing GLUE task is an error (default: fetch it into the GLUE root)")
    g.add_argument("--train-file", help="your own training data (.tsv/.csv/.jsonl) instead of a GLUE task; "
                   "with --task squad/squad_v2 an official SQuAD file; with --task ner or conll2003 CoNLL "
                   "columns or JSONL tokens/tags")
    g.add_argument("--dev-file", help="your own dev data, with --train-file")
    g.add_argument("--text-a", default="sentence1", help="column of the first text (default: sentence1)")
    g.add_argument("--text-b", help="column of the second text, for pairs (default: none)")
    g.add_argument("--label", default="label", help="label column (default: label)")
    g.add_argument("--label-names", help="comma-separated labels in id order (default: inferred)")
    g.add_argument("--task-type", choices=("classification", "regression"),
                   help="--train-file: labels are classes or scores (default: inferred from the labels)")
    g.add_argument("--tag-column", type=int, default=-1,
                   help="NER --train-file/--dev-file in CoNLL columns: the tag column, 0-based (default: -1, the last)")
    g.add_argument("--strict", action="store_true", help="bad rows are fatal (default: skipped, counted)")
    g.add_argument("--max-train-samples", type=int, help="use the first N training examples")
    g.add_argument("--max-dev-samples", type=int, help="evaluate on the first N dev examples")
    g.add_argument("--max-length", type=int,
                   help="truncate texts to N tokens (default: what positions allow; QA: windows of 384)")

    for family in dict.fromkeys(FAMILIES.values()):  # each family's own options (tasks/__init__.py)
        if hasattr(family, "add_options"):
            family.add_options(p)

    g = p.add_argument_group("model and method")
    g.add_argument("--model", default="roberta-large",
                   help="HF model folder, hub id in the local HF cache, or 'minilm' (default: roberta-large)")
    g.add_argument("--method", default="ptuning", choices=METHODS, help="default: ptuning (v1)")
    g.add_argument("--num-virtual-tokens", type=int, help="prompt/prefix length (recipe: 20)")
    g.add_argument("--encoder-hidden-size", type=int, help="v1 prompt-encoder width (recipe: 128)")
    g.add_argument("--reparam", choices=("mlp", "lstm", "none"), help="v1 prompt encoder (recipe: mlp)")
    g.add_argument("--prefix-projection", action=argparse.BooleanOptionalAction, help="v2 MLP reparam. (recipe: off)")
    g.add_argument("--prefix-hidden-size", type=int, help="v2 projection width (default: 512)")
    g.add_argument("--prefix-dropout", type=finite_float, help="v2 dropout on prefix entries (recipe: 0.0)")
    g.add_argument("--prefix-init", choices=("random", "text"),
                   help="v2 starting prefixes: random N(0, 1) as peft, or the keys/values of the words of "
                        "--prefix-text (Li & Liang 2021, §7.4) (recipe: random)")
    g.add_argument("--prefix-text", help="with --prefix-init text: the words (default: the task family's "
                                         "description of the task, PREFIX_TEXT in its file)")
    g.add_argument("--prefix-position-shift", action="store_true",
                   help="v2: number text positions after the prefix, as transformers+peft (default: off)")
    g.add_argument("--head", choices=("auto", "roberta", "pooler"), help="default: auto (by family)")
    g.add_argument("--head-token", choices=("cls", "first"),
                   help="v1: read <s>/[CLS] (cls) or position 0 like peft (first) (recipe: cls)")
    g.add_argument("--template", help='v1 prompt placement, e.g. "[P*10] {a} [SEP] {b} [P*10]" (ptuning/text/tokenizer.py)')
    g.add_argument("--attention", choices=("sdpa", "explicit"), default="sdpa", help="default: sdpa")

    g = p.add_argument_group("training")
    g.add_argument("--lr", type=finite_float, help="peak learning rate (recipe per method)")
    g.add_argument("--batch-size", type=int, help="default: 32")
    g.add_argument("--epochs", type=int, help="recipe per method")
    g.add_argument("--weight-decay", type=finite_float, help="default: 0.01")
    g.add_argument("--warmup-ratio", type=finite_float, help="share of steps with linear warm-up (recipe per method)")
    g.add_argument("--max-grad-norm", type=finite_float, help="gradient clipping, 0 = off (default: 1.0)")
    g.add_argument("--grad-accum", type=int, help="batches per optimizer step (default: 1)")
    g.add_argument("--seed", type=int, help="default: 42")
    g.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto: bf16 where the GPU or CPU computes it natively (else fp16 on a GPU, fp32 on a "
                        "CPU); fp16 trains with a GradScaler (default: auto)")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the encoder (fuses the work between matmuls; the first steps compile)")
    g.add_argument("--group-by-length", action=argparse.BooleanOptionalAction,
                   help="batches of similar lengths, less padding (default: on); --no-group-by-length: random batches")
    g.add_argument("--save-steps", type=int, default=0, help="also save the resumable state every N steps")
    g.add_argument("--deterministic", action="store_true",
                   help="CUDA: deterministic kernels only (slower); CPU runs are deterministic already")
    g.add_argument("--stop-after-steps", type=int, default=0, help=argparse.SUPPRESS)  # tests: a simulated kill

    g = p.add_argument_group("output")
    g.add_argument("--output-dir", default="runs/{task}-{method}", help="default: runs/{task}-{method}")
    g.add_argument("--resume", action="store_true", help="continue the run in --output-dir")
    g.add_argument("--overwrite", action="store_true", help="replace a run already in --output-dir")
    g.add_argument("--dry-run", action="store_true", help="print parameter counts and exit (no weights needed)")
    g.add_argument("--report-to", choices=("none", "tensorboard"), default="none",
                   help="also write each epoch's metrics as TensorBoard scalars to OUTPUT_DIR/tensorboard "
                        "(needs tensorboard) (default: none)")
    add_debug_flag(p)
    args = p.parse_args(argv)
    for action in p._actions:  # parsed again without defaults: which options the user gave
        action.default = argparse.SUPPRESS
    args.given = set(vars(p.parse_args(argv)))

    given = {k for k, v in vars(args).items() if v is not None}
    if args.max_length is None and args.task in FAMILIES:
        args.max_length = getattr(FAMILIES[args.task], "MAX_LENGTH", None)
    family = FAMILIES.get(args.task)
    family_recipe = FAMILY_RECIPES.get(getattr(family, "HEAD", None), {}).get(args.method, {})
    for key, value in {**COMMON, **RECIPES[args.method], **family_recipe}.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    problems = []
    if args.method == "full":
        problems += [f"--{k.replace('_', '-')} has no meaning with --method full"
                     for k in PROMPT_OPTIONS if k in given]
    if args.batch_size < 1 or args.epochs < 1 or args.grad_accum < 1:
        problems.append("--batch-size, --epochs and --grad-accum must be at least 1")
    if args.lr <= 0:
        problems.append("--lr must be positive")
    for name in ("max_length", "max_train_samples", "max_dev_samples", "num_virtual_tokens", "encoder_hidden_size",
                 "prefix_hidden_size"):
        if getattr(args, name, None) is not None and getattr(args, name) < 1:
            problems.append(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("weight_decay", "max_grad_norm", "save_steps"):
        if getattr(args, name) < 0:
            problems.append(f"--{name.replace('_', '-')} must not be negative")
    if not 0 <= args.warmup_ratio <= 1:
        problems.append("--warmup-ratio must be between 0 and 1")
    if args.prefix_dropout is not None and not 0 <= args.prefix_dropout < 1:
        problems.append("--prefix-dropout must be in [0, 1)")
    if args.prefix_text is not None and (not args.prefix_text.strip() or not is_unicode(args.prefix_text)):
        problems.append("--prefix-text must hold words (UTF-8)")
    if args.resume and args.overwrite:
        problems.append("--resume and --overwrite contradict each other")
    if family is not None:
        problems += options_of_other_families(args, family)
    if args.task in FAMILIES:
        try:
            family_options(FAMILIES[args.task], args)  # the family checks its own options
        except OptionError as err:
            problems.append(str(err))
    if not 0 <= args.seed <= MAX_SEED:
        problems.append(f"--seed must be between 0 and {MAX_SEED}, not {args.seed}")
    for name in ("encoder_hidden_size", "prefix_hidden_size", "num_virtual_tokens", "batch_size", "max_length"):
        if (getattr(args, name, None) or 0) > MAX_SIZE:  # a typo's extra zeros: refused before any memory is asked
            problems.append(f"--{name.replace('_', '-')} {getattr(args, name)} is absurd (at most {MAX_SIZE})")
    if args.label_names is not None:
        problems += label_names_problems(args.label_names)
        if not args.train_file:
            problems.append("--label-names goes with --train-file (a known task knows its labels)")
        elif family is not None and family.HEAD == "token":  # NER label names are tags
            problems += [f"--label-names: {name!r} is not an NER tag (O, B-X or I-X)"
                         for name in given_label_names(args) if not ner.TAG.fullmatch(name)]
    if args.task_type and not args.train_file:
        problems.append("--task-type goes with --train-file (a GLUE task knows its type)")
    if problems:
        p.error("; ".join(problems))
    try:
        args.output_dir = output_dir_from_template(args.output_dir, task=args.task, method=args.method)
    except ValueError as err:
        p.error(f"--output-dir {args.output_dir!r}: {err}")
    return args


# Options that only one kind of task reads (tasks/__init__.py's HEAD), so that one given to another task is
# refused by name rather than silently ignored (as --num-virtual-tokens with --method full).
FAMILY_OPTIONS = {
    "sequence": ("text_a", "text_b", "label", "label_names", "task_type", "head", "head_token", "template"),
    "token": ("tag_column", "label_names"),
    "span": ("doc_stride", "max_answer_length", "n_best", "null_threshold"),
}
FAMILY_TASKS = {"sequence": "GLUE tasks and your own tables", "token": "NER (--task conll2003, ner)",
                "span": "question answering (--task squad, squad_v2)"}


def options_of_other_families(args, family) -> list[str]:
    """A problem per option the user gave that the task's family does not read."""
    problems, own = [], FAMILY_OPTIONS[family.HEAD]
    for head, names in FAMILY_OPTIONS.items():
        if head == family.HEAD:
            continue
        for name in names:
            if name in args.given and name not in own:
                problems.append(f"--{name.replace('_', '-')} has no meaning with --task {args.task}; it is for "
                                f"{FAMILY_TASKS[head]}")
    if family.HEAD == "span" and "null_threshold" in args.given and getattr(family, "TASKS", {}).get(args.task) != "2.0":
        problems.append(f"--null-threshold has no meaning with --task {args.task}: only SQuAD v2.0 questions may "
                        "have no answer (--task squad_v2)")
    return problems


MAX_SEED = 2**32 - 1    # batch_order draws from seed * 1000 + epoch: far inside torch's int64 seeds
MAX_SIZE = 1 << 16      # widths, prompt lengths, batch sizes: beyond this a typo, not a run


def task_name(text: str) -> str:
    """argparse type: a known task, in our spelling or GLUE's (MRPC, SST-2, sts-b)."""
    squeeze = lambda name: name.lower().replace("-", "").replace("_", "")  # noqa: E731
    for known in FAMILIES:
        if text == known or squeeze(text) == squeeze(known):
            return known
    raise argparse.ArgumentTypeError(f"unknown task {text!r}; known: {', '.join(FAMILIES)}")


def given_label_names(args) -> tuple[str, ...] | None:
    """--label-names as a tuple of stripped names (label_names_problems has checked them), or None."""
    return tuple(name.strip() for name in args.label_names.split(",")) if args.label_names else None


def label_names_problems(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        return [f"--label-names {text!r}: an empty name (write e.g. --label-names neg,pos)"]
    if len(set(names)) != len(names):
        return [f"--label-names {text!r}: a name given twice"]
    if len(names) == 1:
        return [f"--label-names {text!r}: one name is no classification; give every class, or "
                "--task-type regression for scores"]
    return []


def output_dir_from_template(template: str, **fields) -> str:
    """`template` with {task} and {method} filled; a ValueError names what is wrong with it."""
    for _, field, _, _ in string.Formatter().parse(template):  # raises ValueError on an unclosed brace
        if field is not None and field not in fields:
            shown = "{" + field + "}" if field else "{}"
            raise ValueError(f"unknown field {shown}; the template may use {', '.join('{' + f + '}' for f in fields)}")
    return template.format(**fields)


def method_config(args) -> MethodConfig:
    fields = {f.name for f in dataclasses.fields(MethodConfig)}
    try:
        return MethodConfig(**{k: v for k, v in vars(args).items() if k in fields and v is not None})
    except ValueError as err:
        raise OptionError(f"--method {args.method}: {err}") from None


def prefix_start_ids(tokenizer: Tokenizer, text: str, n: int) -> list[int]:
    """--prefix-init text: the text's token ids (no special tokens), repeated until there are n."""
    if not is_unicode(text):
        raise OptionError("--prefix-text is not valid UTF-8; set the terminal to UTF-8")
    ids = tokenizer.backend.encode(text, add_special_tokens=False).ids
    if not ids:
        raise OptionError(f"--prefix-text {text!r} has no tokens")
    return (ids * (n // len(ids) + 1))[:n]


def task_family(args):
    """The module serving the task (tasks/__init__.py); users' own tables are sequence tasks, as GLUE,
    unless the task names another family (--task ner: CoNLL or JSONL files; squad: a SQuAD file)."""
    family = FAMILIES.get(args.task)
    if args.train_file and (family is None or family.HEAD == "sequence"):
        return glue  # --task is not read for users' tables
    return family_for(args.task)


def training_loss(family, train_set):
    """The family's loss for training: its `training_loss(train_set)` where it has one (NER weighs every
    word alike across batches), else its `loss`."""
    return family.training_loss(train_set) if hasattr(family, "training_loss") else family.loss


def family_options(family, args) -> dict:
    """The family's own options (QA: --doc-stride, ...), as keyword arguments of its `encode`."""
    return family.options(args) if hasattr(family, "options") else {}


def dataset_folder(name: str, args) -> Path:
    """The folder of CoNLL-2003 or SQuAD as every entry point finds it (text/download.py's `data_dir`); when
    missing, the message says which setting named it, so the user knows what to change."""
    return existing_data_dir(name, args.data_dir, DATA_ROOT, how_to="give --train-file/--dev-file; data/README.md "
                             "says where to get the files")


def load_data(args):
    """(train examples, dev examples, label names or None, metric names)."""
    family = task_family(args)
    if bool(args.train_file) != bool(args.dev_file):  # every family: one split from a file, one from a folder is a slip
        raise OptionError(f"{'--train-file' if args.train_file else '--dev-file'} needs "
                          f"{'--dev-file' if args.train_file else '--train-file'}: give both files")
    if family.HEAD == "token":  # NER: CoNLL-2003's folder, or users' CoNLL/JSONL files; labels from train
        if args.train_file:
            # --label-names names JSONL integer tags (HF datasets' ClassLabel ids, in id order).
            train = family.read_file(args.train_file, args.tag_column, given_label_names(args))
            dev = family.read_file(args.dev_file, args.tag_column, given_label_names(args))
        else:
            # --data-dir, else $CONLL_DIR, else data/conll2003 beside train.py (`ner` has no folder: read says so)
            folder = dataset_folder("conll2003", args) if args.task == "conll2003" else args.data_dir
            train = family.read(args.task, "train", folder, args.strict)
            dev = family.read(args.task, family.dev_split(args.task), folder, args.strict)
        return train, dev, family.label_names(args.task, train), family.metric_names(args.task)
    if args.train_file and family is glue:
        names = given_label_names(args)
        train, names = read_table(args.train_file, args.text_a, args.text_b, args.label, names, args.strict,
                                  task_type=args.task_type)
        # Dev labels are read as the train file's: its classes, or scores when it is regression.
        dev, _ = read_table(args.dev_file, args.text_a, args.text_b, args.label, names, args.strict,
                            task_type="regression" if names is None else "classification")
        metrics = ("pearson", "spearman") if names is None else ("accuracy", "f1") if len(names) == 2 else ("accuracy",)
        return train, dev, names, metrics
    folder = args.data_dir
    if family is not glue and not args.train_file:  # SQuAD: --data-dir, else $SQUAD_DIR, else data/squad here
        folder = dataset_folder("squad", args)
    if family is glue:  # GLUE is fetched when missing (text/download.py); other families name their own source
        folder = data_dir("glue", args.data_dir, DATA_ROOT)
        ensure_glue_task(args.task, folder, allow_download=not args.no_download)
    # A family with one file format (SQuAD) reads --train-file/--dev-file in place of its folder's files.
    files_given = {split: {"file": file} if file else {}
                   for split, file in (("train", args.train_file), ("dev", args.dev_file))}
    train = family.read(args.task, "train", folder, args.strict, **files_given["train"])
    dev = family.read(args.task, family.dev_split(args.task), folder, args.strict, **files_given["dev"])
    return train, dev, family.label_names(args.task), family.metric_names(args.task)


def dry_run(args, method: MethodConfig) -> None:
    if args.model in KNOWN_SHAPES and not Path(args.model).is_dir():
        config = KNOWN_SHAPES[args.model]  # size the run from the known shape, no weights needed
    else:
        config = EncoderConfig.from_json(resolve_model_dir(args.model))
    family = task_family(args)
    if family.HEAD == "token" and args.train_file:  # NER labels come from the train file's tags: read them
        num_labels = len(load_data(args)[2])
    else:
        num_labels = 2 if args.train_file and family is glue else len(family.label_names(args.task) or ["score"])
    model = build_model(config, method, lambda c: family.head(c, method, num_labels), device="meta")
    print(f"{args.model} ({config.model_type}, {config.num_hidden_layers} layers, hidden {config.hidden_size}), "
          f"method {method.method}, {num_labels} labels")
    print(parameter_report(model))


def main(argv=None) -> int:
    """Behind the one error boundary: a user's mistake prints `train.py: message`, status per errors.py."""
    return run_main("train.py", run, argv)


def adopt_run_settings(args, out_dir: Path) -> dict:
    """--resume: options not given take the run's values; given ones must match it (--epochs may grow).

    Returns the run's resumable state (validated by files.load_state).
    """
    state = files.load_state(out_dir)
    previous = state.get("adapter_config")
    if previous is None:  # a state saved before runs recorded their settings: nothing to compare
        return state
    source = out_dir / files.STATE
    old = files.AdapterConfig.from_dict(previous, str(source))
    # Everything that decides the training set and its batches: a different value would resume at
    # batch k of another batch list.
    data = old.data or {}
    settings = {"task": old.task, "model": old.base_model, **(old.train or {}), **old.method.to_dict(),
                "max_length": old.max_length, **(old.task_options or {}),
                **{k: data.get(k) for k in ("train_file", "dev_file", "max_train_samples", "max_dev_samples")}}
    if old.precision is not None:  # the remaining steps round as the first ones did (fp16: its GradScaler too)
        settings["precision"] = old.precision
    differences = []
    for name, value in settings.items():
        if name in ("epochs", "stop_after_steps", "save_steps", "log_seconds", "eval_batch_size") or \
                not hasattr(args, name):
            continue
        if name not in args.given:
            setattr(args, name, value)
        elif same_setting(name, getattr(args, name), value) is False:
            differences.append(f"--{name.replace('_', '-')} {getattr(args, name)} (the run used {value})")
    if differences:
        raise OptionError(f"--resume: {out_dir} holds a different run: " + "; ".join(differences) +
                          ". Continue it with its own settings, or start a new run in another --output-dir")
    return state


def same_setting(name: str, given, recorded) -> bool:
    if name == "precision":  # `auto` is what it resolves to on this machine
        return device_and_precision(given)[1] == recorded
    if name in ("train_file", "dev_file", "model") and given is not None and recorded is not None:
        return Path(str(given)).resolve() == Path(str(recorded)).resolve() or str(given) == str(recorded)
    return given == recorded


def check_output_dir(out_dir: Path, args, model_dir: Path | None) -> None:
    """Refuse an --output-dir whose replacement would delete what the user owns."""
    blocker = next((p for p in (out_dir, *out_dir.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise WriteError(f"--output-dir {out_dir}: {blocker} is a file, not a folder")
    owned = [("--model", model_dir), ("--data-dir", args.data_dir), ("--train-file", args.train_file),
              ("--dev-file", args.dev_file)]
    for option, path in owned:
        if path is None:
            continue
        path = Path(path).resolve()
        if path == out_dir.resolve() or out_dir.resolve() in path.parents:
            raise OptionError(f"--output-dir {out_dir} holds {option} {path}; choose an empty or new folder")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    foreign = files.foreign_files(out_dir)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
        raise OptionError(f"--output-dir {out_dir} holds files that are not a ptuning run's ({shown}); "
                          "--overwrite only ever replaces a run of train.py: choose another --output-dir")
    if not (args.resume or args.overwrite):
        raise OptionError(f"{out_dir} already holds a run; pass --resume to continue it or --overwrite to replace it")


def check_positions(args, method: MethodConfig, config: EncoderConfig) -> None:
    """Room in the position table for the special tokens and one token of each text, before any work.

    (Below that, the tokenizers library silently stops truncating and the encoder fails on an index.)
    """
    pair = bool(args.text_b) if args.train_file else getattr(glue.TASKS.get(args.task), "text_b_column", None) is not None
    sep_width = 2 if config.family == "roberta" else 1
    texts = 2 if pair else 1
    needed = 2 + (sep_width if pair else 0) + texts  # <s>/[CLS], separators, </s>/[SEP], a token per text
    if method.template:
        pieces = method.template.split()
        fixed = 2 + sum(sep_width if p == "[SEP]" else 0 if p in ("{a}", "{b}") or p.startswith("[P") else 1
                        for p in pieces)
        room = config.max_tokens - fixed - method.num_virtual_tokens
        if room < sum(p in ("{a}", "{b}") for p in pieces):
            raise OptionError(f"--template {method.template!r} with {method.num_virtual_tokens} virtual tokens fills "
                              f"the model's {config.max_tokens} positions: no room is left for the text")
        needed = fixed + method.num_virtual_tokens + texts
    elif config.max_tokens - method.positions_used < needed:
        raise OptionError(f"--num-virtual-tokens {method.num_virtual_tokens} leaves {config.max_tokens - method.positions_used}"
                          f" of the model's {config.max_tokens} positions for the text; it needs at least {needed} "
                          "(special tokens and one token of each text)")
    if args.max_length is not None and args.max_length < needed:
        raise OptionError(f"--max-length {args.max_length} is too short: the special tokens and one token of each "
                          f"text need {needed}")
    if FAMILIES.get(args.task) is qa:  # a QA window: special tokens, a question token, > --doc-stride context tokens
        needed = 2 + sep_width + 1 + max(args.doc_stride, 0) + 1
        room = config.max_tokens - method.positions_used
        if room < needed:
            taken = (f"--num-virtual-tokens {method.num_virtual_tokens} leaves {room} of the model's "
                     f"{config.max_tokens} positions" if method.positions_used else
                     f"the model has {config.max_tokens} positions")
            raise OptionError(f"{taken} for a window; a window needs at least {needed} (special tokens, a question "
                              f"token and more than --doc-stride {args.doc_stride} context tokens): lower "
                              f"{'--num-virtual-tokens or ' if method.positions_used else ''}--doc-stride")


def run(argv=None) -> int:
    args = parse_args(argv)
    out_dir = Path(args.output_dir)
    state = adopt_run_settings(args, out_dir) if args.resume else None
    method = method_config(args)
    if args.dry_run:
        dry_run(args, method)
        return 0
    device, precision = device_and_precision(args.precision)
    device, rank = init_distributed(device)
    say = print if rank == 0 else (lambda *a, **k: None)  # one process prints
    if args.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for determinism
        torch.use_deterministic_algorithms(True)
    if args.report_to == "tensorboard":  # checked before hours of training, not after the first epoch
        try:
            require_tensorboard()
        except ReportError as err:
            raise OptionError(f"--report-to tensorboard: {err}") from None
    model_dir = resolve_model_dir(args.model)
    check_output_dir(out_dir, args, model_dir)
    check_positions(args, method, EncoderConfig.from_json(model_dir))

    train_examples, dev_examples, label_names, metric_names = load_data(args)
    if args.max_train_samples:
        train_examples = train_examples[:args.max_train_samples]
    if args.max_dev_samples:
        dev_examples = dev_examples[:args.max_dev_samples]
    num_labels = 1 if label_names is None else len(label_names)

    # The frozen backbone is stored in half precision; what trains stays fp32 (all of it, for full).
    storage = storage_dtype(precision, method.is_full)
    family = task_family(args)
    model = load_model(model_dir, method, lambda c: family.head(c, method, num_labels), dtype=storage,
                       fused=args.attention == "sdpa", seed=args.seed).to(device)
    if args.compile:  # in place: parameter names, and so checkpoints, stay as they are
        compile_layers(model.encoder)
    tokenizer = Tokenizer.from_folder(model_dir, model.encoder.config, method.positions_used, method.template,
                                      args.max_length)
    options = family_options(family, args)
    # NER maps its tags to ids with the train file's label set; the other families' examples hold ids.
    labels = {"label_names": label_names} if family.HEAD == "token" else {}
    train_set = family.encode(tokenizer, train_examples, **labels, **options)
    dev_set = family.encode(tokenizer, dev_examples, **labels, **options)
    if method.prefix_init == "text":  # a resumed run then loads its trained prefixes over these
        if method.prefix_text is None:
            method.prefix_text = family.PREFIX_TEXT  # the words are recorded in adapter_config.json
        model.init_prefix_from_tokens(prefix_start_ids(tokenizer, method.prefix_text, method.num_virtual_tokens))
    say(f"{args.model}: {parameter_report(model)}")
    say(f"train {len(train_set)} examples ({train_set.truncated} truncated), dev {len(dev_set)} "
          f"({dev_set.truncated} truncated); {device}, {precision}")

    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                         if getattr(args, f.name, None) is not None})
    data = {"max_train_samples": args.max_train_samples, "max_dev_samples": args.max_dev_samples}
    if args.train_file:
        data.update(train_file=str(Path(args.train_file).resolve()), dev_file=str(Path(args.dev_file).resolve()))
    meta = files.AdapterConfig(
        method, num_labels, base_model_path=str(model_dir.resolve()), base_model=args.model,
        fingerprint=files.weights_fingerprint(model_dir),
        task=None if family is glue and args.train_file else args.task,  # the task finds the family when loading
        label_names=list(label_names) if label_names else None, metrics=list(metric_names),
        max_length=args.max_length, train=dataclasses.asdict(cfg), precision=precision, data=data,
        task_options=options or None)
    if state is not None and state.get("adapter_config", {}).get("fingerprint") not in (None, meta.fingerprint):
        raise OptionError(f"--resume: {out_dir} was trained on other base weights than {model_dir} "
                          f"(fingerprint {state['adapter_config']['fingerprint']} vs {meta.fingerprint})")
    barrier()  # every process has checked and loaded before the first one writes
    started = time.perf_counter()
    with files.replacing_run(out_dir, enabled=args.overwrite and rank == 0):
        if rank == 0:
            out_dir.mkdir(parents=True, exist_ok=True)
            files.remove_stale_temporaries(out_dir)
        barrier()
        # Made after the old run (with --overwrite) has been moved aside, inside the new run's folder.
        reporter = TensorBoardReporter(out_dir / "tensorboard") if args.report_to == "tensorboard" and rank == 0 else None
        try:
            records = fit(model, train_set, dev_set, cfg, out_dir, meta, tokenizer.pad_id, device, precision,
                          resume=args.resume, loss=training_loss(family, train_set),
                          evaluate=functools.partial(family.evaluate, metric_names=metric_names),
                          main_metric=metric_names[0], on_epoch=reporter.log_epoch if reporter else None)
        except OSError as err:  # disk full, read-only folder: files already written stay intact
            raise WriteError(f"cannot write to {out_dir}: {err.strerror or err}. Files already there are intact "
                             "(every write goes to a temporary name first).") from err
        finally:
            if reporter is not None:
                reporter.close()
    if records:
        best = max(records, key=lambda r: r[metric_names[0]])
        say(f"done in {time.perf_counter() - started:.0f}s: best epoch {best['epoch']} "
              f"({metric_names[0]} {best[metric_names[0]]:.4f}), last epoch {records[-1][metric_names[0]]:.4f}; "
              f"adapter in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
