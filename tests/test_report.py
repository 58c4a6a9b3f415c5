"""Learning curves from metrics.jsonl as a PNG, and epoch records as TensorBoard scalars."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ptuning.training.report import (DPI, LEGEND_INCHES, MAX_COLUMNS, PANEL_INCHES, ReportError, TensorBoardReporter, cli_plot, plot_runs,
                            read_run_metrics)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_run(folder: Path, seed: int = 0, epochs: int = 6, metrics=("accuracy", "f1")) -> Path:
    """A metrics.jsonl as train.py writes it for MRPC: loss falls, dev scores rise, with noise."""
    folder.mkdir(parents=True)
    lines = []
    for epoch in range(1, epochs + 1):
        wobble = ((seed * 7 + epoch * 3) % 5 - 2) / 100
        record = {"epoch": epoch, "train_loss": round(0.65 / epoch ** 0.5 + wobble / 4, 5)}
        record.update({name: round(0.68 + 0.15 * (1 - 0.7 ** epoch) + wobble + 0.05 * index, 5)
                       for index, name in enumerate(metrics)})
        record.update({"seconds": 41.3 + epoch, "samples_per_s": 88.8})
        lines.append(json.dumps(record))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def read_png(path: Path):
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return data, matplotlib.image.imread(str(path))


def test_one_run_draws_a_panel_per_dev_metric_and_train_loss(tmp_path):
    run = write_run(tmp_path / "mrpc_v2")
    out = plot_runs([run], tmp_path / "curves.png")
    data, image = read_png(out)
    assert len(data) > 10_000
    # accuracy, f1, train loss: three panels side by side, under a strip for the runs' legend.
    assert image.shape[:2] == ((PANEL_INCHES[1] + LEGEND_INCHES) * DPI, 3 * PANEL_INCHES[0] * DPI)
    assert image[..., :3].std() > 0.05   # lines drawn, not a blank canvas
    assert not list(tmp_path.glob(".*.tmp"))


def test_many_metrics_wrap_into_rows(tmp_path):
    """NER logs 8 dev metrics: panels wrap into rows of MAX_COLUMNS, not one strip thousands of pixels wide."""
    names = ("f1", "precision", "recall", "f1_LOC", "f1_MISC", "f1_ORG", "f1_PER", "exact")
    image = read_png(plot_runs(write_run(tmp_path / "ner", metrics=names), tmp_path / "ner.png"))[1]
    rows = -(-(len(names) + 1) // MAX_COLUMNS)
    assert image.shape[:2] == ((rows * PANEL_INCHES[1] + LEGEND_INCHES) * DPI, MAX_COLUMNS * PANEL_INCHES[0] * DPI)


def test_several_runs_in_one_plot(tmp_path):
    runs = [write_run(tmp_path / f"mrpc_seed{seed}", seed) for seed in range(3)]
    one = read_png(plot_runs(runs[:1], tmp_path / "one.png"))[1]
    three = read_png(plot_runs(runs, tmp_path / "three.png"))[1]
    assert one.shape == three.shape and (one != three).any()   # more lines, same canvas


def test_metrics_pick_the_panels(tmp_path):
    run = write_run(tmp_path / "run")
    image = read_png(plot_runs(run, tmp_path / "f1.png", metrics=["f1"]))[1]
    assert image.shape[1] == 2 * PANEL_INCHES[0] * DPI
    with pytest.raises(ReportError, match="metric.s. mcc not in the runs' metrics.jsonl; they logged: accuracy, f1"):
        plot_runs(run, tmp_path / "x.png", metrics=["mcc"])


def test_runs_sharing_a_folder_name_are_labelled_by_path(tmp_path):
    from ptuning.training.report import run_labels

    paths = [tmp_path / "a" / "seed1", tmp_path / "b" / "seed1", tmp_path / "c" / "seed2"]
    assert run_labels(paths) == [str(paths[0]), str(paths[1]), "seed2"]


@pytest.mark.parametrize("kind, message", [
    ("missing", "run folder not found"),
    ("a file", "not a folder; pass the output folder of train.py"),
    ("no metrics", r"metrics.jsonl: not found; is .* an output folder of train.py"),
])
def test_bad_run_folders_are_named(tmp_path, kind, message):
    folder = tmp_path / "run"
    if kind == "a file":
        folder.write_text("x")
    elif kind == "no metrics":
        folder.mkdir()
    with pytest.raises(ReportError, match=message) as error:
        plot_runs([folder], tmp_path / "out.png")
    assert str(folder) in str(error.value)
    assert not (tmp_path / "out.png").exists()


def test_empty_metrics_file_is_named(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text("\n")
    with pytest.raises(ReportError, match=r"run[/\\]metrics.jsonl: no epoch records \(empty file\)"):
        plot_runs([tmp_path / "run"], tmp_path / "out.png")


def test_bad_json_names_file_and_line(tmp_path):
    run = write_run(tmp_path / "run", epochs=3)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:-5]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ReportError, match=r"run[/\\]metrics.jsonl:2: not valid JSON"):
        read_run_metrics(run)
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 0.5}\n[1, 2]\n')
    with pytest.raises(ReportError, match=r"metrics.jsonl:2: expected an object with a numeric \"epoch\""):
        read_run_metrics(run)


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path):
    run = write_run(tmp_path / "run", epochs=4)
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text + '{"epoch": 5, "train_lo')   # a write cut off
    with pytest.warns(UserWarning, match=r"metrics.jsonl:5: last line is cut off"):
        records = read_run_metrics(run)
    assert [record["epoch"] for record in records] == [1, 2, 3, 4]
    # The same bad line *with* its newline was written whole: an error, not a skip.
    (run / "metrics.jsonl").write_text(text + '{"epoch": 5, "train_lo\n')
    with pytest.raises(ReportError, match="metrics.jsonl:5: not valid JSON"):
        read_run_metrics(run)


def test_missing_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ReportError, match=r"pip install matplotlib"):
        plot_runs([write_run(tmp_path / "run")], tmp_path / "out.png")


def test_cli_plot_parses_and_reports(tmp_path, capsys):
    runs = [write_run(tmp_path / "a"), write_run(tmp_path / "b", seed=1)]
    out = tmp_path / "plots" / "curves.png"
    assert cli_plot([str(runs[0]), str(runs[1]), "-o", str(out), "--metrics", "accuracy"]) == 0
    assert read_png(out)[1].shape[1] == 2 * PANEL_INCHES[0] * DPI
    assert f"wrote {out}" in capsys.readouterr().out
    assert cli_plot([str(tmp_path / "nope"), "-o", str(out)]) == 1
    assert capsys.readouterr().err == f"ptuning plot: {tmp_path / 'nope'}: run folder not found\n"
    with pytest.raises(SystemExit):   # argparse: at least one RUN_DIR
        cli_plot(["-o", str(out)])


def test_tensorboard_scalars_read_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = write_run(tmp_path / "run", epochs=3)
    records = read_run_metrics(run)
    with TensorBoardReporter(tmp_path / "tb") as reporter:
        for record in records:
            reporter.log(record)
        reporter.log({"step": 7, "epoch": 1.75, "loss": 0.25, "learning_rate": 0.005})  # a step log
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["dev/accuracy", "dev/f1", "speed/samples_per_s", "speed/seconds",
                                                "train/epoch", "train/epoch_loss", "train/learning_rate",
                                                "train/loss"]
    for tag, key in (("dev/accuracy", "accuracy"), ("dev/f1", "f1"), ("train/epoch_loss", "train_loss")):
        logged = events.Scalars(tag)
        assert [event.step for event in logged] == [1, 2, 3]   # records without a step: against the epoch
        assert [event.value for event in logged] == pytest.approx([record[key] for record in records], rel=1e-6)
    (loss,), (lr,) = events.Scalars("train/loss"), events.Scalars("train/learning_rate")
    assert (loss.step, loss.value, lr.step) == (7, 0.25, 7) and lr.value == pytest.approx(0.005)


def test_missing_tensorboard_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ReportError, match="pip install tensorboard"):
        TensorBoardReporter(tmp_path / "tb")


# --- the commands: `ptuning plot`, `train.py --report-to tensorboard` -----------------------------

def test_ptuning_plot_command(tmp_path, capsys):
    from ptuning.cli import main

    runs = [write_run(tmp_path / "mrpc-ptuning"), write_run(tmp_path / "mrpc-prefix", seed=2)]
    out = tmp_path / "curves.png"
    assert main(["plot", *map(str, runs), "-o", str(out)]) == 0
    assert read_png(out)[1].shape[1] == 3 * PANEL_INCHES[0] * DPI and f"wrote {out}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stopped:   # bad input: status 3 (ptuning/errors.py)
        main(["plot", str(tmp_path / "nope"), "-o", str(out)])
    assert stopped.value.code == 3 and capsys.readouterr().err == f"ptuning plot: {tmp_path / 'nope'}: run folder not found\n"


def tiny_train_args(tmp_path, minilm_dir, glue_dir, *extra):
    from test_predict import make_tiny_bert, train_args

    model_dir = make_tiny_bert(tmp_path / "model", minilm_dir)
    return train_args(model_dir, tmp_path / "run", glue_dir, "--epochs", "2", *extra)


def test_train_reports_to_tensorboard_each_epoch_and_every_logging_steps(tmp_path, minilm_dir, glue_dir, one_thread):
    import sys

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from conftest import REPO

    sys.path.insert(0, str(REPO))
    import train

    assert train.main(tiny_train_args(tmp_path, minilm_dir, glue_dir, "--report-to", "tensorboard",
                                      "--logging-steps", "1")) == 0
    records = read_run_metrics(tmp_path / "run")
    epochs, logs = [r for r in records if "train_loss" in r], [r for r in records if "loss" in r]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/learning_rate", "dev/accuracy", "dev/f1"} <= set(events.Tags()["scalars"])
    logged = events.Scalars("dev/f1")  # against the optimizer step, as Trainer logs evaluations
    assert [event.step for event in logged] == [r["step"] for r in epochs] == [2, 4]
    assert [event.value for event in logged] == pytest.approx([record["f1"] for record in epochs], rel=1e-6)
    losses = events.Scalars("train/loss")
    assert [event.step for event in losses] == [r["step"] for r in logs] == [1, 2, 3, 4]
    assert [event.value for event in losses] == pytest.approx([r["loss"] for r in logs], rel=1e-6)


def test_a_resumed_run_goes_on_writing_its_tensorboard_scalars(tmp_path, minilm_dir, glue_dir, one_thread):
    """--resume takes the run's own settings for options not given: a run that reported to TensorBoard
    keeps doing so (epoch 2's scalars were missing)."""
    import sys

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from conftest import REPO

    sys.path.insert(0, str(REPO))
    import train

    argv = tiny_train_args(tmp_path, minilm_dir, glue_dir)  # --epochs 2
    assert train.main([*argv, "--epochs", "1", "--report-to", "tensorboard"]) == 0
    assert train.main([*argv, "--resume"]) == 0
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert [event.step for event in events.Scalars("dev/f1")] == [2, 4]


def test_train_without_tensorboard_stops_before_training(tmp_path, monkeypatch, capsys):
    import builtins
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO))
    import train
    from ptuning.errors import OptionError

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith(("torch.utils.tensorboard", "tensorboard")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    # A model that does not exist: the refusal must come before anything is loaded or written.
    with pytest.raises(SystemExit) as stopped:
        train.main(["--task", "mrpc", "--model", str(tmp_path / "no-model"), "--output-dir", str(tmp_path / "run"),
                    "--report-to", "tensorboard"])
    assert stopped.value.code == OptionError.exit_code
    assert re.match(r"train.py: --report-to tensorboard: .*pip install tensorboard", capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_a_run_stopped_before_its_first_epoch_and_a_name_not_png_are_refused(tmp_path):
    """A run interrupted mid-epoch holds only --logging-steps lines: nothing to draw per epoch, said so
    (matplotlib failed on the empty grid). And -o names a PNG: savefig would write one into "curves.txt"."""
    from ptuning.errors import OptionError

    run = tmp_path / "stopped"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 50, "epoch": 0.43, "loss": 0.64, "learning_rate": 0.009}\n')
    with pytest.raises(ReportError, match="no epoch has finished yet"):
        plot_runs([run], tmp_path / "curves.png")
    for name in ("curves.txt", "curves"):
        with pytest.raises(OptionError, match="give a name ending in .png"):
            plot_runs([write_run(tmp_path / f"run_{name}")], tmp_path / name)
        assert not (tmp_path / name).exists()


def test_a_metric_in_percent_and_as_a_fraction_gets_a_panel_per_scale(tmp_path):
    """SQuAD logs F1 in percent (0-100), NER as a fraction (0-1): one axis would flatten the NER run, so
    "f1" is drawn in two panels; "exact" (SQuAD's only) and the train loss keep one each."""
    ner = write_run(tmp_path / "ner", metrics=("f1",))
    qa = tmp_path / "squad"
    qa.mkdir()
    (qa / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "train_loss": 4 - e, "f1": 10.0 * e,
                                                          "exact": 6.0 * e}) + "\n" for e in (1, 2, 3)))
    image = read_png(plot_runs([ner, qa], tmp_path / "both.png"))[1]
    assert image.shape[1] == 4 * PANEL_INCHES[0] * DPI   # f1 (0 to 1), f1 (in %), exact, train loss
    alone = read_png(plot_runs([qa], tmp_path / "qa.png"))[1]
    assert alone.shape[1] == 3 * PANEL_INCHES[0] * DPI   # one scale: one panel per metric
