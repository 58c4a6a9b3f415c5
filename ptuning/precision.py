"""Mixed precision, one path for the CPU and CUDA: which precision a run uses, its autocast and
GradScaler, and the dtype the frozen backbone is stored in.

    fp32   everything in float32
    bf16   matrix products in bfloat16 under `torch.autocast`; no loss scaling (bf16 has fp32's range)
    fp16   the same in float16, with a `torch.amp.GradScaler` (fp16 gradients underflow without it)
    auto   bf16 where the device computes it natively, else fp16 on a GPU, else fp32 (`resolve`)

What stays fp32 whatever the precision, as on a GPU with transformers + peft: the trainable
weights (prompts, prefixes, heads, and every weight of full fine-tuning: AdamW's master weights),
LayerNorm and the residual stream (`encoder.LayerNorm`), the attention softmax of the written-out
path, and the loss (the task families call `.float()`). Saved adapters are fp32.
"""
from __future__ import annotations

import contextlib
import platform
import warnings
from pathlib import Path

import torch

from .errors import OptionError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices in hardware: x86 AVX512-BF16 or AMX (Intel Cooper
    Lake, Sapphire Rapids and later; AMD Zen 4 and later), or an Arm core with the BF16 extension
    (Neoverse V1/N2, Graviton 3). Without them oneDNN emulates bf16, slower than fp32."""
    return _torch_says("_is_avx512_bf16_supported", "_is_amx_tile_supported") or "bf16" in _arm_features()


def cpu_has_fp16() -> bool:
    """True when this CPU computes fp16 in hardware (x86 AVX512-FP16 or AMX-FP16, Arm FP16 arithmetic)."""
    return _torch_says("_is_amx_fp16_supported") or "avx512_fp16" in _cpu_flags() or "asimdhp" in _arm_features()


def _torch_says(*checks: str) -> bool:
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)  # private, so looked up


def _cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo (x86 `flags`, Arm `Features`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _arm_features() -> set[str]:
    return _cpu_flags() if platform.machine().lower() in ("aarch64", "arm64") else set()


def resolve(requested: str, device: torch.device) -> str:
    """The precision a run on `device` uses for `--precision requested` (fp32, bf16 or fp16).

    `auto`: bf16 where the device has it natively (a CUDA GPU with bf16, `cpu_has_bf16()`), fp16 on a
    GPU without bf16, fp32 on other CPUs. bf16 on a GPU without it is refused; on a CPU without native
    bf16 it runs (emulated, slowly), as fp16 does on every CPU: what is asked for is done.
    """
    if requested not in PRECISIONS:
        raise OptionError(f"--precision {requested!r}: choose one of {', '.join(PRECISIONS)}")
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if requested == "auto":
            return "bf16" if bf16 else "fp16"
        if requested == "bf16" and not bf16:
            raise OptionError("--precision bf16: this GPU has no bf16; use fp16 or fp32")
        return requested
    if requested == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    native = {"bf16": cpu_has_bf16, "fp16": cpu_has_fp16}.get(requested)
    if native is not None and not native():
        warnings.warn(f"--precision {requested}: this CPU has no {requested} instructions, so it is emulated and "
                      f"slower than fp32{'; bf16 is fast here' if cpu_has_bf16() else ''}", stacklevel=2)
    return requested


def device_and_precision(requested: str, device: str | torch.device | None = None) -> tuple[torch.device, str]:
    """(device, resolved precision): the first CUDA GPU if there is one, else the CPU."""
    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    return device, resolve(requested, device)


def autocast_for(device: torch.device, precision: str):
    """(autocast context factory, GradScaler or None) for a resolved precision, on any device."""
    if precision == "fp32":
        return contextlib.nullcontext, None
    dtype = HALF[precision]
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    return (lambda: torch.autocast(device.type, dtype=dtype)), scaler


def storage_dtype(precision: str, full_fine_tuning: bool) -> torch.dtype:
    """The dtype the backbone is stored in: half precision when it is frozen (prompt methods), fp32
    when every weight trains (AdamW updates fp32 master weights; autocast casts them per product)."""
    return torch.float32 if full_fine_tuning else HALF.get(precision, torch.float32)
