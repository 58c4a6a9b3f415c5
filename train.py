"""Train P-tuning (v1), prompt tuning, P-tuning v2 (prefix) or full fine-tuning: `python train.py --help`.

The story of a run, top to bottom, is ptuning/commands/train.py; this file runs it from a checkout, as the
`ptuning train` command does where the package is installed.

    python train.py --task mrpc --model minilm --method prefix    # P-tuning v2 on MRPC, offline checkpoint
"""
import sys

try:
    from ptuning.commands.train import main
except KeyboardInterrupt:  # Ctrl-C while torch imports: the same one line as later, not a traceback
    print("train.py: interrupted (Ctrl-C); nothing was written", file=sys.stderr)
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main())
