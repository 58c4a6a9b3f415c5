"""The programs: a training run (train.py) and a prediction (predict.py), top to bottom; `ptuning train` and
`ptuning predict` (cli.py) and the scripts in a checkout run these."""
