"""P-tuning v1 and v2 on a hand-written BERT/RoBERTa encoder.

text (text/tables.py, tasks/) → ids (text/tokenizer.py) → batches (text/batches.py) → encoder
(+ prompts / prefixes) → head → loss, metrics (tasks/) → training (training/) → adapter folder
(adapters/). See README.md for the map of modules.
"""
