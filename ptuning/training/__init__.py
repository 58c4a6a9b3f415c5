"""The training loop (loop.py), its torchrun helpers (parallel.py) and per-method defaults (recipes.py)."""
