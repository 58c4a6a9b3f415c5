"""Predict with an adapter trained by train.py: `python predict.py --help`.

What a prediction does, top to bottom, is ptuning/commands/predict.py; this file runs it from a checkout, as the
`ptuning predict` command does where the package is installed.

    python predict.py --adapter runs/mrpc-prefix "The cat sat." "A cat was sitting."
"""
import sys

from ptuning.commands.predict import main

if __name__ == "__main__":
    sys.exit(main())
