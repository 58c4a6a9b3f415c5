"""Train P-tuning (v1), prompt tuning, P-tuning v2 (prefix) or full fine-tuning on a GLUE, SQuAD or NER task.

The whole story of a run, top to bottom: `python train.py` in a checkout, `ptuning train` where the
package is installed (the same code).

    python train.py --task mrpc                                   # the P-tuning guide's run (roberta-large)
    python train.py --task mrpc --model minilm --method prefix    # offline checkpoint, P-tuning v2
    python train.py --task squad --model minilm --method prefix   # extractive QA (SQuAD v1.1; squad_v2)
    python train.py --task mrpc --dry-run                         # parameter counts only, no weights needed
    python train.py --task conll2003 --model minilm --method prefix  # NER (token classification)

A GLUE task whose files are missing is downloaded into the data folder first (--no-download: don't).
Options left unset take the recipe of the method and task family (listed at the end of --help).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch

from ptuning import tasks
from ptuning.adapters import files
from ptuning.config import EncoderConfig
from ptuning.errors import OptionError, WriteError, os_reason, run_main
from ptuning.fast import compile_layers
from ptuning.model import load_model, parameter_report
from ptuning.parallel import barrier, init_distributed
from ptuning.precision import device_and_precision, storage_dtype
from ptuning.text.tokenizer import Tokenizer
from ptuning.training.loop import Scoring, fit
from ptuning.training.report import ReportError, TensorBoardReporter, require_tensorboard
from ptuning.training.run import dry_run, method_config, parse_args, prefix_start_ids, train_config
from ptuning.weights import resolve_model_dir


def run(argv=None, prog: str = "train.py") -> int:
    # 1. Options: parsed and checked; --resume takes the run's own settings for the ones not given.
    args = parse_args(argv, prog, __doc__)
    family = tasks.family_for(args.task)  # the task family: data, head, loss, metrics (ptuning/tasks/)
    out_dir = Path(args.output_dir)
    if int(os.environ.get("RANK", "0")) == 0 and not args.dry_run:
        files.recover_replaced(out_dir)  # a kill during an earlier --overwrite: the run it replaced, put back
    state = files.adopt_run_settings(args, out_dir) if args.resume else None
    method = method_config(args)
    if args.dry_run:
        print(dry_run(args, method, family))
        return 0
    device, precision = device_and_precision(args.precision)
    device, rank = init_distributed(device)
    say = print if rank == 0 else (lambda *a, **k: None)  # one process prints
    if args.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for determinism
        torch.use_deterministic_algorithms(True)
    if args.report_to == "tensorboard":  # checked before hours of training, not after the first epoch
        try:
            require_tensorboard()
        except ReportError as err:
            raise OptionError(f"--report-to tensorboard: {err}") from None
    model_dir = resolve_model_dir(args.model)
    files.check_output_dir(out_dir, args, model_dir)
    family.check_fit(args, method, EncoderConfig.from_json(model_dir))

    # 2. Data: the family reads its files (or the user's); labels and metrics come with them.
    train_examples, dev_examples, label_names, metric_names = family.load(args)
    train_examples = train_examples[:args.max_train_samples] if args.max_train_samples else train_examples
    dev_examples = dev_examples[:args.max_dev_samples] if args.max_dev_samples else dev_examples
    num_labels = 1 if label_names is None else len(label_names)

    # 3. Model: the frozen backbone in half precision for prompt methods; what trains stays fp32.
    options = family.encode_options(args)  # the family's own settings (cloze: the verbalizer), for data and head
    model = load_model(model_dir, method, lambda c: tasks.make_head(family, c, method, num_labels, options),
                       dtype=storage_dtype(precision, method.is_full), fused=args.attention == "sdpa",
                       seed=args.seed).to(device)
    if args.compile:  # in place: parameter names, and so checkpoints, stay as they are
        compile_layers(model.encoder)
    tokenizer = Tokenizer.from_folder(model_dir, model.encoder.config, method.positions_used, method.template,
                                      args.max_length)
    train_set = family.encode(tokenizer, train_examples, label_names, **options)
    dev_set = family.encode(tokenizer, dev_examples, label_names, **options)
    if method.prefix_init == "text":  # a resumed run then loads its trained prefixes over these
        method.prefix_text = method.prefix_text or family.PREFIX_TEXT  # recorded in adapter_config.json
        model.init_prefix_from_tokens(prefix_start_ids(tokenizer, method.prefix_text, method.num_virtual_tokens))
    say(f"{args.model}: {parameter_report(model)}")
    say(f"train {len(train_set)} examples ({train_set.truncated} truncated), dev {len(dev_set)} "
        f"({dev_set.truncated} truncated); {device}, {precision}")

    # 4. What the adapter folder records: enough to rebuild the model, and to tell this run from another.
    cfg = train_config(args)
    data = {"max_train_samples": args.max_train_samples, "max_dev_samples": args.max_dev_samples,
            "train_sha256": files.data_fingerprint(train_set)}  # what it trains on, by content
    if args.train_file:  # the user's files, and how the family read them (columns, tag column, ...)
        data.update(train_file=str(Path(args.train_file).resolve()), dev_file=str(Path(args.dev_file).resolve()),
                    **{k: v for k, v in vars(args).items() if k in {f.name for f in dataclasses.fields(family.Options)}})
    meta = files.AdapterConfig(
        method, num_labels, base_model_path=str(model_dir.resolve()), base_model=args.model,
        fingerprint=files.weights_fingerprint(model_dir), model_files=files.model_file_hashes(model_dir),
        task=tasks.recorded_task(args),
        label_names=list(label_names) if label_names else None, metrics=list(metric_names),
        max_length=args.max_length, train=dataclasses.asdict(cfg), precision=precision, data=data,
        task_options=options or None)
    if state is not None:  # the same run: the same base model and the same training data, by content
        files.check_same_run(state, meta, out_dir, model_dir)
        files.check_epochs_left(args, state, out_dir)

    # 5. Train: every epoch evaluated on dev, the best adapter kept, the state resumable.
    barrier()  # every process has checked and loaded before the first one writes
    started = time.perf_counter()
    scoring = Scoring(family.training_loss(train_set), family.evaluate, metric_names)
    with files.run_lock(out_dir) if rank == 0 else contextlib.nullcontext():  # one writer a run folder
        if rank == 0 and not args.resume:  # a run that ended while this one loaded is not written over
            files.check_output_dir(out_dir, args, model_dir)
        with files.replacing_run(out_dir, enabled=args.overwrite and rank == 0):
            if rank == 0:
                out_dir.mkdir(parents=True, exist_ok=True)
                files.remove_stale_temporaries(out_dir)
            barrier()
            # Made after the old run (with --overwrite) has been moved aside, inside the new run's folder.
            reporter = TensorBoardReporter(out_dir / "tensorboard") if args.report_to == "tensorboard" and rank == 0 \
                else None
            try:
                records = fit(model, train_set, dev_set, cfg, files.RunFolder(out_dir, meta, args.resume), scoring,
                              on_log=reporter.log if reporter else None)
            except OSError as err:  # disk full, read-only folder: files already written stay intact
                raise WriteError(f"cannot write to {out_dir}: {os_reason(err)}. Files already there are intact "
                                 "(every write goes to a temporary name first).") from err
            finally:
                if reporter is not None:
                    reporter.close()

    # 6. Report.
    if records:
        main = metric_names[0]
        best = max(records, key=lambda r: r[main])
        say(f"done in {time.perf_counter() - started:.0f}s: best epoch {best['epoch']} ({main} {best[main]:.4f}), "
            f"last epoch {records[-1][main]:.4f}; adapter in {out_dir}")
    return 0


def main(argv=None, prog: str = "train.py") -> int:
    """Behind the one error boundary: a user's mistake prints `train.py: message`, status per errors.py."""
    return run_main(prog, lambda argv: run(argv, prog), argv)


if __name__ == "__main__":
    sys.exit(main())
