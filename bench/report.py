"""What every benchmark script ends with: name the device, print the result, optionally keep it."""
import platform
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{cpu_model()} ({platform.machine()}), {torch.get_num_threads()} threads"


def cpu_model() -> str:
    """The CPU's model name as Linux reports it (e.g. "AMD EPYC 9654"), else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def publish(text: str, write: bool) -> None:
    """Print `text`; with `write`, append it to BENCHMARKS.md."""
    print(text)
    if write:
        with open(BENCHMARKS, "a") as f:
            f.write(text)
