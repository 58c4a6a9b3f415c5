"""A train.py run's options: declared once as dataclass fields, the command line derived from them.

The options come from four places, each the owner of its fields: `RunOptions` (below: data, model,
output), `MethodConfig` (model.py: how prompts enter), `TrainConfig` (loop.py: how to train) and each
task family's `Options` (tasks/<family>.py). `parse_args` builds the parser from them, fills unset
options from the recipes, refuses what the chosen task or method does not read, and checks values.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .. import tasks
from ..adapters.files import output_dir_from_template, take_run_settings
from ..config import KNOWN_SHAPES, EncoderConfig
from ..errors import OptionError, add_debug_flag, is_unicode
from ..model import MethodConfig, build_model, mark_trainable, parameter_report
from ..options import Parser, add_fields, at_least, given_options, not_read, option, problems, sane_size, values_for
from ..precision import PRECISIONS
from ..text.tables import label_names_problems
from ..text.tokenizer import Tokenizer
from ..weights import resolve_model_dir, stored_head_names
from . import recipes
from .loop import TrainConfig


@dataclass
class RunOptions:
    """train.py's options that are neither the method's, the training's nor a task family's own."""
    # data
    task: str = option("mrpc", "the task (GLUE's spellings MRPC, SST-2 work too)", kind=tasks.task_name,
                       group="data")
    data_dir: str | None = option(None, "the task's data folder (default: $GLUE_DIR, $CONLL_DIR or $SQUAD_DIR, "
                                  "else data/glue, data/conll2003 or data/squad beside train.py)", group="data")
    no_download: bool = option(False, "never download: a missing GLUE task is an error (default: fetch it into "
                               "the GLUE root)", group="data")
    train_file: str | None = option(None, "your own training data instead of the task's files: a table "
                                    "(.tsv/.csv/.jsonl) for a GLUE-like task, an official SQuAD file for squad/"
                                    "squad_v2, CoNLL columns or JSONL tokens/tags for conll2003/ner", group="data")
    dev_file: str | None = option(None, "your own dev data, with --train-file", group="data")
    label_names: str | None = option(None, "comma-separated labels in id order (default: inferred; NER: names "
                                     "JSONL integer tags)", heads=("sequence", "token"), group="data")
    strict: bool = option(False, "bad rows are fatal (default: skipped, counted)", group="data")
    max_train_samples: int | None = option(None, "use the first N training examples", checks=[at_least(1)],
                                           group="data")
    max_dev_samples: int | None = option(None, "evaluate on the first N dev examples", checks=[at_least(1)],
                                         group="data")
    max_length: int | None = option(None, "truncate texts to N tokens, special tokens and a template's words included, v1's virtual "
                                    "tokens not (default: what positions allow; QA: "
                                    "windows of 384)", checks=[at_least(1), sane_size()], group="data")
    # model
    model: str = option("roberta-large", "HF model folder, hub id in the local HF cache, or 'minilm'", group="model")
    attention: str = option("sdpa", "fused scaled_dot_product_attention, or the written-out one",
                            choices=("sdpa", "explicit"), group="model")
    # training
    precision: str = option("auto", "auto: bf16 where the GPU or CPU computes it natively (else fp16 on a GPU, "
                            "fp32 on a CPU); fp16 trains with a GradScaler", choices=PRECISIONS, group="training")
    compile: bool = option(False, "torch.compile the encoder (fuses the work between matmuls; the first steps "
                           "compile)", group="training")
    deterministic: bool = option(False, "CUDA: deterministic kernels only (slower); CPU runs are deterministic "
                                 "already", group="training")
    # output
    output_dir: str = option("runs/{task}-{method}", "the run folder", group="output")
    resume: bool = option(False, "continue the run in --output-dir", group="output")
    overwrite: bool = option(False, "replace a run already in --output-dir", group="output")
    dry_run: bool = option(False, "print parameter counts and exit (no weights needed)", group="output")
    report_to: str = option("none", "also write each epoch's metrics as TensorBoard scalars to "
                            "OUTPUT_DIR/tensorboard (needs tensorboard)", choices=("none", "tensorboard"),
                            group="output")

    @staticmethod
    def extra_problems(values: dict) -> list[str]:
        found = []
        if values.get("resume") and values.get("overwrite"):
            found.append("--resume and --overwrite contradict each other")
        if values.get("label_names") is not None:
            found += label_names_problems(values["label_names"])
            if not values.get("train_file"):
                found.append("--label-names goes with --train-file (a known task knows its labels)")
        for name in ("output_dir", "train_file", "dev_file", "data_dir", "model"):  # paths a run's JSON records
            if isinstance(values.get(name), str) and not is_unicode(values[name]):
                found.append(f"--{name.replace('_', '-')}: the path is not valid UTF-8 (the run's JSON files could "
                             "not record it); rename it or choose another")
        if bool(values.get("train_file")) != bool(values.get("dev_file")):  # one split from a file, one from a folder
            given, missing = ("--train-file", "--dev-file") if values.get("train_file") else ("--dev-file", "--train-file")
            found.append(f"{given} needs {missing}: give both files")
        return found


# The option classes of every run, in --help order (each family's own come after the data options).
CLASSES = (RunOptions, MethodConfig, TrainConfig)


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """train.py's command line, derived from the option fields; --help shows every family's recipes."""
    families = tasks.MODULES
    p = Parser(prog=prog, description=description, epilog=recipes.describe(families, CLASSES),
               formatter_class=argparse.RawDescriptionHelpFormatter)
    recipe_help = lambda name: recipes.option_help(name, families, CLASSES)  # noqa: E731
    add_fields(p.add_argument_group("data"), RunOptions, section="data")
    p._option_string_actions["--task"].help += ": " + ", ".join(tasks.families())
    for family in families:
        add_fields(p.add_argument_group(family.DESCRIPTION), family.Options)
    for title, section in (("model and method", "model"), ("training", "training"), ("output", "output")):
        group = p.add_argument_group(title)
        for cls in CLASSES:
            add_fields(group, cls, recipe_help, section=section)
    add_debug_flag(p)
    return p


def parse_args(argv=None, prog: str = "train.py", description: str = "") -> argparse.Namespace:
    """The options of a run: parsed, unset ones filled from the recipes, every one checked (status 2)."""
    p = parser(prog, description)
    args = p.parse_args(argv)
    args.given = given_options(p, argv)
    if args.resume:
        take_run_settings(args)  # the run's own task, method and files decide what the options mean
    family = tasks.family_for(args.task)
    values = vars(args)
    recipes.fill(values, family, args.method, CLASSES)
    owners = [(cls, None) for cls in CLASSES] + [(f.Options, f) for f in tasks.MODULES]
    found = not_read(owners, args.given, family=family, task=args.task, method=args.method, families=tasks.MODULES,
                     values=values)
    for cls in (*CLASSES, family.Options):
        found += problems(cls, values)
    if found:
        p.error("; ".join(dict.fromkeys(found)))
    try:
        args.output_dir = output_dir_from_template(args.output_dir, task=args.task, method=args.method)
    except ValueError as err:
        p.error(f"--output-dir {args.output_dir!r}: {err}")
    return args


def method_config(args) -> MethodConfig:
    try:
        return MethodConfig(**values_for(MethodConfig, vars(args)))
    except ValueError as err:
        raise OptionError(f"--method {args.method}: {err}") from None


def train_config(args) -> TrainConfig:
    return TrainConfig(**values_for(TrainConfig, vars(args)))


def prefix_start_ids(tokenizer, text: str, n: int) -> list[int]:
    """--prefix-init text: the text's token ids (no special tokens), repeated until there are n."""
    if not is_unicode(text):
        raise OptionError("--prefix-text is not valid UTF-8; set the terminal to UTF-8")
    ids = tokenizer.backend.encode(text, add_special_tokens=False).ids
    if not ids:
        raise OptionError(f"--prefix-text {text!r} has no tokens")
    return (ids * (n // len(ids) + 1))[:n]


def dry_run(args, method: MethodConfig, family) -> str:
    """The run's parameter counts, from the model's shape alone (no weights needed): what it will train."""
    model_dir = None
    if args.model in KNOWN_SHAPES and not Path(args.model).is_dir():
        config = KNOWN_SHAPES[args.model]  # size the run from the known shape, no weights needed
    else:
        model_dir = resolve_model_dir(args.model)
        config = EncoderConfig.from_json(model_dir)
    family.check_fit(args, method, config)  # what the run checks before any work, the dry run checks too
    if model_dir is not None and method.template:  # the template's words as tokens: room left for the text
        Tokenizer.from_folder(model_dir, config, method.positions_used, method.template, args.max_length)
    # Users' files say their labels (a table's classes, NER's tags); a known task knows its own.
    names = family.load(args)[2] if args.train_file else family.label_names(args.task)
    num_labels = len(names or ["score"])
    # With a model folder, the family's options are resolved as the run would (cloze: the verbalizer's words).
    options = family.encode_options(args) if model_dir else {}
    model = build_model(config, method, lambda c: tasks.make_head(family, c, method, num_labels, options),
                        device="meta")
    # A pretrained pooler stays frozen, as in the run (mark_trainable): HF's BERT and RoBERTa checkpoints
    # carry one; a folder says whether it does.
    pooler = "pooler.weight" in stored_head_names(model_dir) if model_dir else True
    mark_trainable(model, pooler_pretrained=pooler)
    return (f"{args.model} ({config.model_type}, {config.num_hidden_layers} layers, hidden {config.hidden_size}), "
            f"method {method.method}, {num_labels} labels\n{parameter_report(model)}")
