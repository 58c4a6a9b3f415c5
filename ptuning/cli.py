"""The `ptuning` command: training, prediction, and tools around adapter folders.

    ptuning train --task mrpc --model minilm --method prefix       # train.py's options (ptuning train --help)
    ptuning predict --adapter runs/mrpc-prefix "A." "B."             # predict.py's options
    ptuning export-peft runs/mrpc-prefix runs/mrpc-prefix-peft     # load it with PeftModel.from_pretrained
    ptuning plot runs/mrpc-ptuning runs/mrpc-prefix -o curves.png  # dev metrics and train loss per epoch
    python -m ptuning train ...                                    # the same without the installed command
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import add_debug_flag, run_main
from .options import Parser


def export_peft_command(args) -> int:
    import json

    from .adapters.files import ADAPTER_CONFIG
    from .adapters.peft import export_peft

    out_dir = export_peft(args.adapter_dir, args.out_dir, args.model, overwrite=args.overwrite)
    config = json.loads((out_dir / ADAPTER_CONFIG).read_text())
    num_labels = json.loads((Path(args.adapter_dir) / ADAPTER_CONFIG).read_text())["num_labels"]  # ours, checked
    # The transformers class with the head of the adapter's task type (its family's PEFT_TASK_TYPE).
    model_class = {"SEQ_CLS": "AutoModelForSequenceClassification",
                   "TOKEN_CLS": "AutoModelForTokenClassification"}[config["task_type"]]
    print(f"{config['peft_type']} {config['task_type']} adapter written to {out_dir}; in Python, with transformers "
          f"and peft:\n  base = {model_class}.from_pretrained({config['base_model_name_or_path']!r}, "
          f"num_labels={num_labels})\n  model = PeftModel.from_pretrained(base, {str(out_dir)!r})")
    return 0


def plot_command(args) -> int:
    from .training.report import plot_runs  # matplotlib itself is imported only when drawing

    metrics = [name.strip() for name in args.metrics.split(",") if name.strip()] if args.metrics else None
    print(f"wrote {plot_runs(args.run_dirs, args.output, metrics)}")
    return 0


def parse_args(argv=None):
    parser = Parser(prog="ptuning", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in PROGRAMS.items():  # listed in --help; `main` hands their arguments over whole
        subcommands.add_parser(name, help=text, add_help=False)
    export = subcommands.add_parser("export-peft", help="write an adapter of train.py as a peft adapter folder",
                                 description="Write ADAPTER_DIR (an output folder of train.py) as a peft "
                                             "adapter folder. Refuses what peft cannot reproduce: v1 with "
                                             "--head-token cls or a template, prefix without "
                                             "--prefix-position-shift, full fine-tuning.")
    export.add_argument("adapter_dir", help="output folder of train.py")
    export.add_argument("out_dir", help="folder to write adapter_config.json + adapter_model.safetensors to")
    export.add_argument("--model", help="base model folder or id (default: the one in the adapter's config)")
    export.add_argument("--overwrite", action="store_true",
                        help="replace a peft adapter already in OUT_DIR (never a training run or other files)")
    add_debug_flag(export)
    export.set_defaults(run=export_peft_command)
    from .training.report import plot_arguments

    plot = plot_arguments(subcommands.add_parser(
        "plot", help="draw dev metrics and train loss per epoch of runs into a PNG (needs matplotlib)",
        description="Draw dev metrics and train loss per epoch of one or more train.py runs, one line per run, "
                    "into a PNG. Needs matplotlib (pip install matplotlib)."))
    plot.set_defaults(run=plot_command)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command they were given to (`ptuning plot: error: ...`), not by `ptuning`
        subcommands.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


# Commands that are whole programs of their own: everything after the command's name is theirs.
PROGRAMS = {"train": "train the model of a task (train.py)", "predict": "predict with a trained adapter (predict.py)"}


def main(argv=None) -> int:
    """Behind the one error boundary (errors.py): `ptuning COMMAND: message` and a status per error kind."""
    words = sys.argv[1:] if argv is None else list(argv)
    if words and words[0] in PROGRAMS:
        if words[0] == "train":
            from .commands.train import main as program
        else:
            from .commands.predict import main as program
        return program(words[1:], prog=f"ptuning {words[0]}")
    prog = "ptuning" + (f" {words[0]}" if words and not words[0].startswith("-") else "")
    return run_main(prog, lambda argv: (lambda args: args.run(args))(parse_args(argv)), words)


if __name__ == "__main__":
    sys.exit(main())
