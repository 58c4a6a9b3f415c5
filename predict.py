"""Predict with an adapter trained by train.py: `python predict.py --help`.

What a prediction does, top to bottom, is ptuning/commands/predict.py; this file runs it from a checkout, as the
`ptuning predict` command does where the package is installed.

    python predict.py --adapter runs/mrpc-prefix "The cat sat." "A cat was sitting."
"""
import sys

try:
    from ptuning.commands.predict import main
except KeyboardInterrupt:  # Ctrl-C while torch imports: the same one line as later, not a traceback
    print("predict.py: interrupted (Ctrl-C); nothing was written", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main())
