"""Speed tricks that leave what is computed unchanged; the plain path is the reference.

`dropout`: the same Bernoulli mask as `F.dropout`, drawn cheaper on the CPU (tested in
tests/test_encoder.py). `compile_layers`: torch.compile over the encoder's layers, in place (the
modules and their parameter names stay; bench/speed.py measures it beside the eager path).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """`F.dropout`, with a cheaper random mask on the CPU.

    On a CPU, drawing the mask costs more than the elementwise work around it: `bernoulli_`
    draws one 32-bit number per element (17% of a MiniLM training step, more than attention).
    Here one 64-bit draw makes four 16-bit numbers, each kept if it is at or above p·2^16:
    the same Bernoulli(1 - p) mask, with p rounded to a multiple of 2^-16. Other devices keep
    `F.dropout` (CUDA's fused kernel is cheap already).
    """
    if not training or not 0.0 < p < 1.0 or x.device.type != "cpu":
        return F.dropout(x, p, training)
    n = x.numel()
    bits = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
    keep = bits.view(torch.int16)[:n].view(x.shape) >= round(p * 65536) - 32768
    return x * keep.to(x.dtype).mul_(1.0 / (1.0 - p))


def compile_layers(encoder) -> None:
    """torch.compile every layer (fuses the elementwise work between matmuls). The layers share
    one compiled code, so compiling costs the same for 6 layers or 24; shapes stay dynamic."""
    # Variants per layer: train/eval x padded/unpadded x last layer (one query) or not.
    config = torch._dynamo.config
    name = "recompile_limit" if hasattr(config, "recompile_limit") else "cache_size_limit"  # torch < 2.6
    setattr(config, name, max(getattr(config, name), 16))
    for layer in encoder.layers:
        layer.compile(dynamic=True)
