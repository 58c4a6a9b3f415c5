"""P-tuning v1 and v2 on a hand-written BERT/RoBERTa encoder.

text (data) → ids (tokenizer) → batches → encoder (+ prompts / prefixes) → head → loss, metrics
(training) → adapter checkpoint. See README.md for the map of modules.
"""
