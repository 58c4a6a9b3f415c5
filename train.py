"""Train P-tuning (v1), prompt tuning, P-tuning v2 (prefix) or full fine-tuning: `python train.py --help`.

The story of a run, top to bottom, is ptuning/commands/train.py; this file runs it from a checkout, as the
`ptuning train` command does where the package is installed.

    python train.py --task mrpc --model minilm --method prefix    # P-tuning v2 on MRPC, offline checkpoint
"""
import sys

from ptuning.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
