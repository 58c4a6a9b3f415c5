"""`python -m ptuning train|predict|export-peft|plot ...`: the `ptuning` command without installing it."""
import sys

from .cli import main

sys.exit(main())
