"""What every benchmark script ends with: name the device, print the result, optionally keep it."""
import platform
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def publish(text: str, write: bool) -> None:
    """Print `text`; with `write`, append it to BENCHMARKS.md."""
    print(text)
    if write:
        with open(BENCHMARKS, "a") as f:
            f.write(text)
