"""The training loop, plain and top to bottom: batches → loss → AdamW step → dev metrics → checkpoint.

No callbacks, no trainer object. `fit` is the whole story; the helpers above it are its steps.
"""
from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices  # where fused AdamW runs

from ..adapters import files
from ..errors import StateError, TrainingStopped  # noqa: F401 - re-exported
from ..inference import to_device
from ..text.batches import EncodedSet, batch_order, make_batch
from ..parallel import all_reduce_gradients, all_sum, gather_objects, world
from ..options import between, check, not_negative, option, positive, sane_size
from ..precision import autocast_for  # noqa: F401 - re-exported: one AMP path for CPU and CUDA


MAX_SEED = 2**32 - 1  # batch_order draws from seed * 1000 + epoch: far inside torch's int64 seeds


@dataclass
class TrainConfig:
    """How to train; saved in every adapter's config. Each field is also train.py's option of the same
    name (`options.option`); `recipe=True` fields left unset take the recipe's value."""
    lr: float = option(1e-3, "peak learning rate", recipe=True, checks=[positive()], group="training")
    epochs: int = option(20, "passes over the training set", recipe=True, group="training")
    batch_size: int = option(32, "examples per optimizer step (with --grad-accum 1)", recipe=True,
                             checks=[sane_size()], group="training")
    weight_decay: float = option(0.01, "AdamW's, on every weight but biases and LayerNorms",
                                 checks=[not_negative()], group="training")
    warmup_ratio: float = option(0.0, "share of steps with a linear warm-up", recipe=True,
                                 checks=[between(0, 1)], group="training")
    max_grad_norm: float = option(1.0, "gradient clipping, 0 = off", checks=[not_negative()], group="training")
    grad_accum: int = option(1, "batches per optimizer step", group="training")
    seed: int = option(42, "the run's randomness: prompt init, batches, dropout",
                       checks=[between(0, MAX_SEED, f"{{flag}} must be between 0 and {MAX_SEED}, not {{value}}")],
                       group="training")
    eval_batch_size: int = option(64, cli=False)
    save_steps: int = option(0, "also save the resumable state every N optimizer steps (0: after each epoch)",
                             checks=[not_negative()], group="training")
    logging_steps: int = option(50, "log the train loss (mean since the last log) and learning rate every N "
                                "optimizer steps, in metrics.jsonl and TensorBoard, against the step (0: only the "
                                "epochs' records)", checks=[not_negative()], group="training")
    group_by_length: bool = option(True, "batches of similar lengths, less padding; --no-group-by-length: random "
                                   "batches (HF Trainer's default)", negatable=True, group="training")
    log_seconds: float = option(5.0, cli=False)  # a progress line in a log this often
    stop_after_steps: int = option(0, "testing aid: save state after N steps and stop, like a killed run",
                                   hidden=True, group="training")

    def __post_init__(self):
        check(self)

    @staticmethod
    def extra_problems(values: dict) -> list[str]:
        counts = [values.get(name) for name in ("batch_size", "epochs", "grad_accum")]
        if any(count is not None and count < 1 for count in counts):
            return ["--batch-size, --epochs and --grad-accum must be at least 1"]
        return []


@contextlib.contextmanager
def stop_requests():
    """SIGINT/SIGTERM set a flag instead of killing mid-step; the loop finishes the step, saves, stops."""
    received = []
    handler = lambda signum, frame: received.append(signum)  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def make_optimizer(model, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over what trains; biases and LayerNorm weights get no decay (as HF Trainer)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith("bias") or "norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, fused=fused_available(decay + no_decay) or None)


def fused_available(params) -> bool:
    """torch's fused AdamW (one kernel for every tensor's update) runs where torch has it for the
    parameters' device and dtype: CUDA and, since torch 2.4, the CPU; floating-point tensors only."""
    return bool(params) and all(p.device.type in _get_fused_kernels_supported_devices() and p.is_floating_point()
                                for p in params)


def linear_schedule(optimizer, total_steps: int, warmup_ratio: float):
    warmup = math.ceil(total_steps * warmup_ratio)
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Progress:
    """Where the epoch stands: a bar, step, loss, samples/s, and the training time left in the epoch and
    in the run (at this process's pace so far; the evaluations after each epoch are not counted).

    On a terminal one line is redrawn in place (`\\r`), twice a second at most; in a log (the stream is
    not a terminal) a plain line every `every_seconds` and at the end of each epoch, never a `\\r`.
    Plain code rather than tqdm: one dependency fewer, and the same line works under torchrun.
    """

    WIDTH = 20  # characters of the bar

    def __init__(self, steps_per_epoch: int, epochs: int, first_step: int, every_seconds: float,
                 enabled: bool = True, stream=None):
        self.per_epoch, self.epochs, self.first_step = max(steps_per_epoch, 1), epochs, first_step
        self.stream = stream or sys.stderr
        self.tty, self.enabled = self.stream.isatty(), enabled
        self.every = min(every_seconds, 0.5) if self.tty else every_seconds
        self.start_time, self.last, self.live = time.perf_counter(), 0.0, False  # this process's pace

    def update(self, step: int, mean_loss, samples: int, seconds: float) -> None:
        """`step`: optimizer steps done in the run; `mean_loss()` is called only when a line is shown."""
        epoch, in_epoch = (step - 1) // self.per_epoch, (step - 1) % self.per_epoch + 1
        now = time.perf_counter()
        if not self.enabled or (now - self.last < self.every and in_epoch < self.per_epoch):
            return
        self.last = now
        per_step = (now - self.start_time) / max(step - self.first_step, 1)
        filled = self.WIDTH * in_epoch // self.per_epoch
        line = (f"epoch {epoch + 1}/{self.epochs} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                f"{in_epoch}/{self.per_epoch}  loss {mean_loss():.4f}  {samples / max(seconds, 1e-9):.1f} samples/s  "
                f"left: epoch {clock((self.per_epoch - in_epoch) * per_step)}, "
                f"run {clock((self.per_epoch * self.epochs - step) * per_step)}")
        self.show(line)

    def evaluating(self, epoch: int, count: int) -> None:
        """A line while the dev set is scored (NER's takes about a minute on a CPU)."""
        if self.enabled:
            self.show(f"epoch {epoch}/{self.epochs} evaluating {count} dev examples ...")

    def show(self, line: str) -> None:
        if self.tty:
            print("\r\033[K" + line, end="", file=self.stream, flush=True)  # \033[K: clear the rest of the line
            self.live = True
        else:
            print(line, file=self.stream, flush=True)

    def done(self) -> None:
        """End the live line (before the epoch's summary or an error message)."""
        if self.live:
            print(file=self.stream, flush=True)
            self.live = False


def clock(seconds: float) -> str:
    """h:mm:ss, or m:ss under an hour."""
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"


@dataclass(frozen=True)
class Scoring:
    """What `fit` asks of the task family (tasks/__init__.py): the loss it trains with, `loss(outputs, batch,
    reduction="sum")` summing the rows' losses, and `evaluate(model, data, batch_size, pad_id, device,
    autocast, metric_names)` giving dev metrics, of which the first (higher is better) picks the best epoch."""
    loss: Callable
    evaluate: Callable
    metric_names: tuple[str, ...]


def fit(model, train_set: EncodedSet, dev_set: EncodedSet, cfg: TrainConfig, run_folder: files.RunFolder,
        scoring: Scoring, on_log: Callable[[dict], None] | None = None):
    """Train, evaluate on dev after every epoch, keep the best adapter. Returns the epoch records.

    The model trains where it is (its device) in the precision its adapter config records
    (`run_folder.config.precision`: fp32, or bf16/fp16 under autocast); `scoring` is the task's.
    Every record metrics.jsonl gets also goes to `on_log(record)`, if given, on the writing process
    (e.g. `TensorBoardReporter.log`): an epoch's (`is_epoch_record`: its train loss, dev metrics, seconds)
    and, every `cfg.logging_steps`, a step log (`step`, fractional `epoch`, `loss`, `learning_rate`, as
    HF Trainer's log_history). The model is put in training mode here (loaders return eval mode).

    The resumable state is saved at the start, after every epoch (and every `save_steps`), and
    when SIGINT/SIGTERM arrive; `run_folder.resume` continues from it exactly (same batches, same RNG).
    """
    out_dir, meta, resume = Path(run_folder.path), run_folder.config, run_folder.resume
    device, pad_id = next(model.parameters()).device, model.encoder.config.pad_token_id
    loss, main_metric = scoring.loss, scoring.metric_names[0]
    autocast, scaler = autocast_for(device, meta.precision or "fp32")
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay)
    steps_per_epoch = math.ceil(math.ceil(len(train_set) / cfg.batch_size) / cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs
    scheduler = linear_schedule(optimizer, total_steps, cfg.warmup_ratio)
    trainable = [p for p in model.parameters() if p.requires_grad]
    lengths = [len(e.ids) for e in train_set.encoded]

    rank, size = world()
    writer = rank == 0  # one process writes files and prints
    say = print if writer else (lambda *args, **kwargs: None)
    torch.manual_seed(cfg.seed + rank)
    # Where the run stands; saved as the resumable state.
    run = dict(epoch=0, batch_in_epoch=0, best=-math.inf, loss_sum=0.0, seen=0, seconds=0.0,
               log_loss=0.0, log_seen=0)  # log_*: the train loss since the last step log (--logging-steps)
    records = []
    if resume:
        state = files.load_state(out_dir)
        files.load_adapter_weights(model, state["trainable"], str(out_dir / files.STATE))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        rngs = state.get("rng_per_rank", [state["rng"]])
        torch.set_rng_state(rngs[rank] if len(rngs) == size else rngs[0])
        cuda_rngs = state.get("cuda_rng_per_rank")  # dropout on the GPU draws from the CUDA generator
        if device.type == "cuda" and cuda_rngs and len(cuda_rngs) == size:
            torch.cuda.set_rng_state(cuda_rngs[rank], device)
        run = {k: state.get(k, run[k]) for k in run}  # a state older than step logs has no log_*
        # Drop what the run wrote after this state: a half-finished epoch's record, later step logs.
        kept = [r for r in read_metrics(out_dir) if (r["epoch"] <= run["epoch"] if is_epoch_record(r)
                                                     else r["step"] <= scheduler.last_epoch)]
        if writer:
            rewrite_metrics(out_dir, kept)
        records = [r for r in kept if is_epoch_record(r)]

    # First optimizer step whose loss or gradients were not finite, kept on the device: reading
    # it every step would synchronise with the GPU, so it is read before anything is saved. Under fp16's
    # loss scaling, gradients that overflow are the scaler's to handle (it skips the step and lowers the
    # scale); a loss that is not finite is not: the forward pass itself went bad, as in fp32.
    bad_step = torch.full((), -1, device=device)

    def check_finite():  # before every write: never save NaN weights
        if (step := int(bad_step)) >= 0:
            raise TrainingStopped(f"step {step}: {'the loss is' if scaler else 'loss or gradients are'} not finite; "
                                  f"stopped. The last good checkpoint in {out_dir} is kept. Try a lower --lr" +
                                  (" or --precision bf16/fp32." if scaler else " or --precision fp32."))
        if scaler is not None and scaler.get_scale() < 1.0:  # below 1 the gradients overflow at their own size
            raise TrainingStopped(f"step {scheduler.last_epoch}: the gradients overflow at every loss scale (the "
                                  f"scale fell to {scaler.get_scale():.3g}); stopped. The last good checkpoint in "
                                  f"{out_dir} is kept. Try a lower --lr or --precision bf16/fp32.")
        # The optimizer step itself can overflow (a huge --lr) with finite gradients: check what it wrote.
        if not all(torch.isfinite(p).all() for p in trainable):
            raise TrainingStopped(f"step {scheduler.last_epoch}: the trained weights are not finite after the "
                                  f"optimizer step; stopped. The last good checkpoint in {out_dir} is kept. "
                                  "Try a lower --lr.")

    def save_state(**where):
        check_finite()
        run.update(where)
        rngs = gather_objects(torch.get_rng_state())  # each process's dropout stream
        cuda_rngs = gather_objects(torch.cuda.get_rng_state(device)) if device.type == "cuda" else None
        if not writer:
            return
        state = {**run, "rng": rngs[0], "rng_per_rank": rngs, "optimizer": optimizer.state_dict(),
                 "adapter_config": meta.to_dict(),  # what run this is: --resume compares (train.py)
                 "scheduler": scheduler.state_dict(),
                 "trainable": {k: v.detach().cpu().clone() for k, v in model.trainable_state_dict().items()}}
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        if cuda_rngs is not None:
            state["cuda_rng_per_rank"] = cuda_rngs
        files.save_state(out_dir, state)

    if not resume:
        save_state()  # resumable from the very first step
    progress = Progress(steps_per_epoch, cfg.epochs, scheduler.last_epoch, cfg.log_seconds, enabled=writer)
    with stop_requests() as signals:
        for epoch in range(run["epoch"], cfg.epochs):
            model.train()
            batches = batch_order(lengths, cfg.batch_size, cfg.seed, epoch,
                                  chunk_batches=50 if cfg.group_by_length else 1)  # 1: sorted within a random batch only
            loss_sum = torch.zeros((), device=device) + run["loss_sum"]  # this process's, on device: no sync
            log_loss, log_seen = torch.zeros((), device=device) + run["log_loss"], run["log_seen"]
            seen, seconds, tick = run["seen"], run["seconds"], time.perf_counter()
            for b in range(run["batch_in_epoch"], len(batches)):
                indices = batches[b]
                mine = indices[rank::size]  # this process's slice of the global batch
                if mine:
                    batch = to_device(make_batch(train_set, mine, pad_id), device)
                    with autocast():
                        outputs = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
                    # Sum over my rows / the global batch size: summing across processes gives the mean.
                    batch_loss = loss(outputs, batch, reduction="sum") / len(indices)
                    (scaler.scale(batch_loss / cfg.grad_accum) if scaler else batch_loss / cfg.grad_accum).backward()
                    summed = batch_loss.detach() * len(indices)  # the batch's share of both running sums
                    loss_sum += summed
                    log_loss += summed
                seen += len(indices)
                log_seen += len(indices)
                if (b + 1) % cfg.grad_accum and b + 1 < len(batches):
                    continue
                all_reduce_gradients(trainable)
                if scaler is not None:
                    scaler.unscale_(optimizer)
                norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.max_grad_norm or math.inf)
                step = scheduler.last_epoch + 1
                # a non-finite loss makes its gradients non-finite too; the epoch's sum keeps it (summed
                # over the processes, so that all of them stop at the same step)
                finite = torch.isfinite(norm) if scaler is None else \
                    torch.isfinite(all_sum(loss_sum))
                bad_step = torch.where((bad_step < 0) & ~finite, step, bad_step)
                if scaler is not None:
                    scaler.step(optimizer)  # skips the step when gradients overflowed
                    scaler.update()
                else:
                    try:
                        optimizer.step()
                    except RuntimeError as err:  # a huge --lr: the update itself overflows float32
                        if "overflow" not in str(err):
                            raise
                        raise TrainingStopped(f"step {step}: the optimizer's update is not finite (overflow); "
                                              f"stopped. The last good checkpoint in {out_dir} is kept. Try a "
                                              "lower --lr.") from None
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                elapsed = seconds + time.perf_counter() - tick
                progress.update(step, lambda: (loss_sum * size / max(seen, 1)).item(), seen, elapsed)
                if cfg.logging_steps and step % cfg.logging_steps == 0:  # every process: all_sum gathers
                    window_loss = (all_sum(log_loss) / max(log_seen, 1)).item()
                    if not math.isfinite(window_loss):
                        check_finite()  # stops a run whose loss went bad, naming the step, before it is logged
                    log = {"step": step, "epoch": round(step / steps_per_epoch, 4),
                           "loss": round(window_loss, 5) if math.isfinite(window_loss) else None,  # fp16 overflow
                           "learning_rate": float(f"{scheduler.get_last_lr()[0]:.6g}")}
                    log_loss.zero_()
                    log_seen = 0
                    if writer:
                        files.append_jsonl(out_dir / files.METRICS, log)
                        if on_log is not None:
                            on_log(log)
                if size > 1:  # every process must stop at the same step, or the others wait forever
                    stop = all_sum(torch.tensor(float(len(signals)))) > 0
                    if stop and not signals:
                        signals.append(signal.SIGTERM)
                if (cfg.save_steps and step % cfg.save_steps == 0) or step == cfg.stop_after_steps or signals:
                    save_state(epoch=epoch, batch_in_epoch=b + 1, loss_sum=loss_sum.item(), seen=seen,
                               seconds=elapsed, log_loss=log_loss.item(), log_seen=log_seen)
                if signals:
                    progress.done()
                    raise TrainingStopped(f"stopped by signal {signals[0]} after step {step}; state saved in "
                                          f"{out_dir}: continue with --resume", exit_code=128 + signals[0])
                if step == cfg.stop_after_steps:
                    progress.done()
                    return records  # as if killed right after this save
            progress.done()
            train_seconds = seconds + time.perf_counter() - tick
            train_loss = (all_sum(loss_sum) / max(seen, 1)).item()
            check_finite()  # before the dev pass: NaN logits there would be blamed on the data (QA's spans)
            progress.evaluating(epoch + 1, len(dev_set))
            dev = scoring.evaluate(model, dev_set, cfg.eval_batch_size, pad_id, device, autocast, scoring.metric_names)
            progress.done()
            record = {"epoch": epoch + 1, "step": scheduler.last_epoch, "train_loss": round(train_loss, 5),
                      **{k: round(v, 5) for k, v in dev.items()},
                      "seconds": round(train_seconds, 2), "samples_per_s": round(seen / max(train_seconds, 1e-9), 1)}
            improved = dev[main_metric] > run["best"]
            check_finite()
            if improved and writer:
                files.save_adapter(out_dir, model, dataclasses.replace(meta, best_epoch=epoch + 1, dev_metrics=dev))
            records.append(record)
            if writer:
                files.append_jsonl(out_dir / files.METRICS, record)
                if on_log is not None:
                    on_log(record)
            save_state(epoch=epoch + 1, batch_in_epoch=0, loss_sum=0.0, seen=0, seconds=0.0,
                       best=max(run["best"], dev[main_metric]), log_loss=log_loss.item(), log_seen=log_seen)
            dev_text = "  ".join(f"{k} {record[k]:.4f}" for k in dev)  # as metrics.jsonl and the last line have it
            say(f"epoch {epoch + 1}/{cfg.epochs}  train loss {train_loss:.4f}  dev {dev_text}  "
                  f"{train_seconds:.0f}s ({record['samples_per_s']} samples/s){'  *best' if improved else ''}",
                  flush=True)
    return records


def is_epoch_record(record: dict) -> bool:
    """An epoch's record in metrics.jsonl (train loss and dev metrics), not a step log (--logging-steps:
    `step`, `epoch`, `loss`, `learning_rate`)."""
    return "loss" not in record


def read_metrics(out_dir) -> list[dict]:
    """metrics.jsonl's records; a torn last line (a write cut short) is dropped, anything else bad is an error."""
    path = Path(out_dir) / files.METRICS
    if not path.exists():
        return []
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise StateError(f"{path}: not valid UTF-8 (byte at offset {err.start}); not a metrics file of train.py")
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if number == len(lines):  # torn last line: the epoch it describes is re-run from the state
                break
            raise StateError(f"{path}:{number}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("epoch"), int):
            step_log = isinstance(record, dict) and "loss" in record and isinstance(record.get("step"), int)
            if not step_log:
                raise StateError(f"{path}:{number}: expected an object with an integer 'epoch' (or a step log "
                                 "with an integer 'step')")
        records.append({k: math.nan if v is None else v for k, v in record.items()})  # null: written for NaN
    return records


def rewrite_metrics(out_dir, records) -> None:
    text = "".join(files.json_line(r) for r in records)
    files.atomic_write(Path(out_dir) / files.METRICS, lambda tmp: Path(tmp).write_text(text))
