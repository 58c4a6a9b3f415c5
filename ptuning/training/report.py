"""See a run: learning curves from metrics.jsonl as a PNG, and the same numbers live in TensorBoard.

Both are optional extras, imported only inside the function that needs them: matplotlib
(`pip install matplotlib`) and tensorboard (`pip install tensorboard`). A run folder is an
output folder of train.py; its metrics.jsonl holds one JSON object per epoch:
`{"epoch", "train_loss", <dev metrics>..., "seconds", "samples_per_s"}`.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path

from ..errors import DataError, OptionError, WriteError, os_reason

METRICS_FILE = "metrics.jsonl"   # adapters/files.py's METRICS, kept literal: this module imports no training code
NOT_DEV_METRICS = ("epoch", "step", "train_loss", "seconds", "samples_per_s", "loss", "learning_rate")
PANEL_INCHES, DPI = (5.0, 4.0), 100
MAX_COLUMNS, LEGEND_INCHES = 4, 0.5  # panels per row; room above them for the runs' legend


class ReportError(DataError):
    """A run folder or its metrics.jsonl cannot be plotted; the message names the file (and line)."""


def read_run_metrics(run_dir: str | Path) -> list[dict]:
    """The epoch records of one run. Bad JSON stops with file:line, except a torn last line (no
    final newline: a write cut off, or a copy taken mid-write), skipped with a warning since the
    epochs before it are good."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise ReportError(f"{run_dir}: run folder not found")
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: not a folder; pass the output folder of train.py (it holds {METRICS_FILE})")
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise ReportError(f"{path}: not found; is {run_dir} an output folder of train.py that finished an epoch?")
    text = path.read_text(encoding="utf-8", errors="replace")
    numbered = [(number, line) for number, line in enumerate(text.split("\n"), 1) if line.strip()]
    records = []
    for number, line in numbered:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            if number == numbered[-1][0] and not text.endswith("\n"):   # every whole record ends in "\n"
                warnings.warn(f"{path}:{number}: last line is cut off ({error.msg}); skipped", stacklevel=2)
                continue
            raise ReportError(f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno})") from None
        if not isinstance(record, dict) or not isinstance(record.get("epoch"), (int, float)):
            raise ReportError(f"{path}:{number}: expected an object with a numeric \"epoch\", got {line[:60]!r}")
        records.append(record)
    if not records:
        raise ReportError(f"{path}: no epoch records (empty file)")
    if all("loss" in record for record in records):  # only --logging-steps' lines: no epoch has ended
        raise ReportError(f"{path}: no epoch has finished yet (only step logs); plot the run after its first epoch")
    return records


def dev_metric_names(records: list[dict]) -> list[str]:
    """Numeric keys other than epoch, loss and speed, in the order the run wrote them."""
    names = {}
    for record in records:
        for key, value in record.items():
            if key not in NOT_DEV_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool):
                names[key] = None
    return list(names)


def run_labels(run_dirs: list[Path]) -> list[str]:
    """Folder names; the paths as given where two runs share a folder name (runs/a/seed1, runs/b/seed1)."""
    names = [path.resolve().name for path in run_dirs]
    return [str(path) if names.count(name) > 1 else name for path, name in zip(run_dirs, names)]


def plot_runs(run_dirs, out_png: str | Path, metrics: list[str] | None = None) -> Path:
    """One panel per dev metric and one for train loss, one line per run; written to `out_png`.

    `metrics` picks dev metrics (default: every one the runs logged). Returns the PNG's path.
    """
    from ..adapters.files import check_write_target  # the one rule of what a command may write

    run_dirs = [Path(run_dir) for run_dir in ([run_dirs] if isinstance(run_dirs, (str, Path)) else run_dirs)]
    if not run_dirs:
        raise ReportError("no run folder given")
    check_write_target(out_png, "-o", inputs=[run_dir / METRICS_FILE for run_dir in run_dirs])
    existing = Path(os.path.realpath(out_png))  # an existing file is replaced if it is a picture or named as one
    if existing.is_file() and existing.suffix.lower() != ".png" and existing.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        raise OptionError(f"-o {out_png} would replace {existing.name}, which is not a PNG picture; give another "
                          "name (curves.png)")
    if Path(out_png).suffix.lower() != ".png":  # savefig writes a PNG whatever the name says
        raise OptionError(f"-o {out_png}: the picture is a PNG; give a name ending in .png (curves.png)")
    runs = [read_run_metrics(run_dir) for run_dir in run_dirs]
    available = dev_metric_names([record for records in runs for record in records])
    unknown = [name for name in metrics or () if name not in available]
    if unknown:
        raise ReportError(f"metric(s) {', '.join(unknown)} not in the runs' {METRICS_FILE}; "
                          f"they logged: {', '.join(available) or 'none'}")
    # A metric some runs log in percent (QA's F1 and exact match, 0-100) and others as a fraction (NER's F1,
    # 0-1) gets a panel per scale: on one axis the fractions would be a flat line at the bottom.
    in_percent = [{name for name in available if any(isinstance(r.get(name), (int, float)) and math.isfinite(r[name])
                                                     and abs(r[name]) > 1 for r in records)} for records in runs]
    panels = []
    for name in metrics or available:
        scales = {name in percent for percent, records in zip(in_percent, runs) if any(name in r for r in records)}
        panels += [(name, percent) for percent in sorted(scales)] if len(scales) > 1 else [(name, None)]
    panels.append(("train_loss", None))
    columns = min(len(panels), MAX_COLUMNS)   # NER logs 8 dev metrics: a grid, not a 5000-pixel strip
    rows = -(-len(panels) // columns)
    figure = new_figure(columns, rows)
    grid = figure.subplots(rows, columns, squeeze=False)
    axes = list(grid.flat)[:len(panels)]
    for spare in list(grid.flat)[len(panels):]:
        spare.set_visible(False)
    for number, (records, label) in enumerate(zip(runs, run_labels(run_dirs))):
        colour = f"C{number % 10}"   # one colour per run in every panel (each axis would restart its cycle)
        for axis, (name, percent) in zip(axes, panels):
            points = [(r["epoch"], r[name]) for r in records if isinstance(r.get(name), (int, float))
                      and math.isfinite(r[name])]
            if points and percent in (None, name in in_percent[number]):
                axis.plot(*zip(*points), marker="o", markersize=3, label=label, color=colour)
        steps = [(r["epoch"], r["loss"]) for r in records if isinstance(r.get("loss"), (int, float))
                 and math.isfinite(r["loss"])]   # --logging-steps: the loss between the epochs, faint
        if steps:
            axes[-1].plot(*zip(*steps), linewidth=0.8, alpha=0.5, color=colour)
    from matplotlib.ticker import MaxNLocator   # present: new_figure imported matplotlib

    for axis, (name, percent) in zip(axes, panels):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole numbers
        epochs = {r["epoch"] for records in runs for r in records}
        if len(epochs) == 1:   # one epoch: matplotlib's locator would tick 0.945 ... 1.050 around it
            axis.set_xticks(sorted(epochs))
        scale = {None: "", True: " (in %)", False: " (0 to 1)"}[percent]
        axis.set_title("train loss" if name == "train_loss" else f"dev {name}{scale}")
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    # One legend for the figure, naming every run: a run need not appear in the first panel (an NER run
    # logs no accuracy), and runs of different tasks share a panel only when they share a metric name.
    handles = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    figure.legend(list(handles.values()), list(handles), loc="upper center", ncol=min(len(handles), 4),
                  fontsize="small", frameon=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow notes: the error below says it
            figure.tight_layout(rect=(0, 0, 1, 1 - LEGEND_INCHES / figure.get_figheight()))
            return save_png(figure, Path(out_png))
    except (ValueError, OverflowError) as error:  # values matplotlib cannot lay out (e.g. near 1e308)
        files = ", ".join(str(Path(run_dir) / METRICS_FILE) for run_dir in run_dirs)
        raise ReportError(f"{files}: values too large to draw ({error}); plot other --metrics or other runs") from None


def new_figure(columns: int, rows: int = 1):
    try:
        from matplotlib.figure import Figure   # no pyplot: no global backend switch, no window; PNG via Agg
    except ImportError:
        raise ReportError("plotting needs matplotlib: pip install matplotlib") from None
    return Figure(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows + LEGEND_INCHES), dpi=DPI)


def save_png(figure, out_png: Path) -> Path:
    """Written to a temporary name and renamed: a reader never sees half a PNG."""
    out_png.parent.mkdir(parents=True, exist_ok=True)
    temporary = out_png.with_name(f".{out_png.name}.tmp")
    try:
        figure.savefig(temporary, format="png", dpi=DPI)
        os.replace(temporary, out_png)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise WriteError(f"{out_png}: cannot write ({os_reason(error)})") from None  # an OS refusal: status 4
    except BaseException:  # matplotlib could not draw it: nothing half-written is left behind
        temporary.unlink(missing_ok=True)
        raise
    return out_png


class TensorBoardReporter:
    """metrics.jsonl's records as TensorBoard scalars against the optimizer step, as Trainer logs them:
    a step log's train/loss and train/learning_rate; an epoch's dev/<metric>, train/epoch_loss,
    train/epoch and speed/<key> (a record without a step, from an older run: against its epoch)."""

    def __init__(self, log_dir: str | Path):
        self.writer = require_tensorboard()(log_dir=str(log_dir))

    def log(self, record: dict) -> None:
        step = int(record["step"] if isinstance(record.get("step"), int) else record["epoch"])
        for key, value in record.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            self.writer.add_scalar(scalar_tag(key), value, global_step=step)
        self.writer.flush()   # a crash later still leaves this record readable

    def close(self) -> None:
        self.writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def require_tensorboard():
    """torch's SummaryWriter, or a ReportError saying what to install (train.py asks before training)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ReportError("logging to TensorBoard needs tensorboard: pip install tensorboard") from None
    return SummaryWriter


def scalar_tag(key: str) -> str:
    train = {"loss": "train/loss", "learning_rate": "train/learning_rate", "train_loss": "train/epoch_loss",
             "epoch": "train/epoch"}
    return train.get(key) or (f"speed/{key}" if key in NOT_DEV_METRICS else f"dev/{key}")


def plot_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="output folder(s) of train.py")
    parser.add_argument("-o", "--output", default="curves.png", help="PNG to write (default: curves.png)")
    parser.add_argument("--metrics", help="comma-separated dev metrics to draw (default: all the runs logged)")
    return parser


def cli_plot(argv: list[str] | None = None) -> int:
    """`ptuning plot RUN_DIR [RUN_DIR ...] -o curves.png`: dev metrics and train loss per epoch."""
    from ..options import Parser

    parser = plot_arguments(Parser(prog="ptuning plot", description="Draw dev metrics and train loss per epoch "
                                   "of one or more runs (one line per run) into a PNG. Needs matplotlib."))
    args = parser.parse_args(argv)
    metrics = [name.strip() for name in args.metrics.split(",") if name.strip()] if args.metrics else None
    try:
        path = plot_runs(args.run_dirs, args.output, metrics)
    except ReportError as error:
        print(f"ptuning plot: {error}", file=sys.stderr)
        return 1
    except OptionError as error:  # an output the command may not write (adapters.files.check_write_target)
        print(f"ptuning plot: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
