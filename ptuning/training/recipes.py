"""Per-method default hyperparameters: what `train.py` uses for any option left unset.

`ptuning` is the P-tuning guide's recipe (20 tokens, MLP 128, lr 1e-3, batch 32, 20 epochs,
weight decay 0.01). The others are the recipes measured in BENCHMARKS.md.
"""
RECIPES = {
    "ptuning": dict(lr=1e-3, epochs=20, warmup_ratio=0.0, num_virtual_tokens=20, encoder_hidden_size=128,
                    reparam="mlp", head_token="cls"),
    "prompt": dict(lr=1e-2, epochs=20, warmup_ratio=0.06, num_virtual_tokens=20, reparam="none", head_token="cls"),
    "prefix": dict(lr=1e-2, epochs=20, warmup_ratio=0.06, num_virtual_tokens=20, prefix_projection=False,
                   prefix_dropout=0.0),
    "full": dict(lr=3e-5, epochs=10, warmup_ratio=0.06),
}
# Token classification (NER) on top of the above, for unset options. The budget of the comparison
# in BENCHMARKS.md (bench/ner.py, after ../shared/bench/anchor_ner_cpu.py): batch 16, 6% warm-up,
# weight decay 0.01; full fine-tuning at lr 5e-5 (HF run_ner's default). v2 (searched at that budget,
# BENCHMARKS.md): 64 virtual tokens at lr 5e-2; 16 tokens at the anchor's lr 1e-2 learn too slowly.
# NER needs fewer epochs than the GLUE recipes: 14k sentences give ~880 steps an epoch.
TOKEN_RECIPES = {
    "ptuning": dict(lr=1e-2, epochs=5, batch_size=16, warmup_ratio=0.06, num_virtual_tokens=16),
    "prompt": dict(lr=1e-2, epochs=5, batch_size=16, warmup_ratio=0.06, num_virtual_tokens=16),
    "prefix": dict(lr=5e-2, epochs=5, batch_size=16, warmup_ratio=0.06, num_virtual_tokens=64),
    "full": dict(lr=5e-5, epochs=3, batch_size=16, warmup_ratio=0.06),
}
# Extractive QA (SQuAD) on top of the above, for unset options. SQuAD has ~88k questions, so far fewer
# epochs than GLUE's. Full fine-tuning: HF run_qa.py's documented SQuAD v1.1 run (lr 3e-5, batch 12,
# 2 epochs). P-tuning v2: the P-tuning-v2 repo's SQuAD v1.1 script (run_squad_roberta.sh: batch 8,
# lr 5e-3, 16 virtual tokens, 30 epochs). Short CPU runs learn faster at a higher lr (BENCHMARKS.md:
# 64 tokens at 5e-2). v1 keeps the GLUE recipes: neither source has a v1 SQuAD run to follow.
QA_RECIPES = {
    "prefix": dict(lr=5e-3, epochs=30, batch_size=8, num_virtual_tokens=16),
    "full": dict(lr=3e-5, epochs=2, batch_size=12),
}
# A task family's recipes by its head kind (tasks/__init__.py); GLUE's sequence head takes RECIPES alone.
FAMILY_RECIPES = {"token": TOKEN_RECIPES, "span": QA_RECIPES}
COMMON = dict(batch_size=32, weight_decay=0.01, max_grad_norm=1.0, grad_accum=1, seed=42)
