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
COMMON = dict(batch_size=32, weight_decay=0.01, max_grad_norm=1.0, grad_accum=1, seed=42)
