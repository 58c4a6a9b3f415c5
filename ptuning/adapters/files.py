"""Adapter checkpoints: only what trained, beside a JSON that says how to rebuild the rest.

    OUT/adapter_config.json        base model, its fingerprint, method, labels, hyperparameters
    OUT/adapter_model.safetensors  trainable tensors only (prompt/prefix encoder, head)
    OUT/training_state.pt          optimizer, schedule, RNG, position in the run (for --resume)
    OUT/metrics.jsonl              one line per epoch

Every file is written to a temporary name and renamed: a crash mid-write leaves the old one.
The weights and the config are one unit: the config records the weights' sha256, checked on load,
and while a new pair replaces the old one the old weights stay beside it (PREVIOUS), so a kill at
any moment leaves a loadable pair: the old one (old config, PREVIOUS) or the new one.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import contextlib
import errno
import glob
import math
import shutil
import socket
import string
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import AdapterError, OptionError, StateError, TrainingStopped, WriteError  # noqa: F401 - re-exported
from ..model import MethodConfig
from ..precision import device_and_precision

ADAPTER_CONFIG, ADAPTER_WEIGHTS, STATE, METRICS = (
    "adapter_config.json", "adapter_model.safetensors", "training_state.pt", "metrics.jsonl")
PREVIOUS = ".adapter_model.previous.safetensors"  # the old weights while a new pair replaces the old one


@dataclass
class AdapterConfig:
    """adapter_config.json of a train.py run: how to rebuild the model around the adapter's tensors.

    Read and written only here (`read_adapter`, `save_adapter`); unknown keys are ignored.
    """
    method: MethodConfig                   # how prompts enter and which head token: MethodConfig's fields
    num_labels: int                        # the head's width (1: a regression score)
    base_model_path: str | None = None     # the base model folder, resolved when training
    base_model: str | None = None          # --model as given: a folder, a hub id or "minilm"
    fingerprint: str | None = None         # `weights_fingerprint` of the base; checked when loading
    task: str | None = None                # task name; None: the user's own table
    label_names: list[str] | None = None   # names of the label ids; None: a regression score
    metrics: list[str] | None = None       # dev metrics; the first selected the best epoch
    max_length: int | None = None          # --max-length; None: what the positions allow
    train: dict | None = None              # the TrainConfig the run used
    precision: str | None = None           # fp32 | bf16 | fp16
    best_epoch: int | None = None          # the epoch these tensors come from
    dev_metrics: dict | None = None        # that epoch's dev metrics
    source: str | None = None              # "peft": converted from a peft folder (adapters/peft.py)
    peft_config: dict | None = None        # that folder's own adapter_config.json
    task_options: dict | None = None       # the task family's own options (QA: doc_stride, n_best, ...)
    data: dict | None = None               # --train-file/--dev-file resolved, --max-train/dev-samples, train_sha256
    weights_sha256: str | None = None      # sha256 of adapter_model.safetensors: the pair is one unit
    model_files: dict | None = None        # sha256 of the base's config.json and tokenizer files, by name

    @classmethod
    def from_dict(cls, raw: dict, source: str) -> "AdapterConfig":
        """From parsed JSON, every field checked for type and range; `source` (the file) starts each message.

        The one validation layer for this file kind: whatever reads an adapter_config.json comes here.
        """
        if not isinstance(raw, dict):
            raise AdapterError(f"{source}: expected a JSON object, found {type(raw).__name__}")
        for name in ("method", "num_labels"):
            if name not in raw:
                raise AdapterError(f"{source}: field {name!r} is missing")
        if not isinstance(raw["method"], dict):
            raise AdapterError(f"{source}: field 'method' must be an object of method settings, "
                               f"not {raw['method']!r}")
        try:
            method = MethodConfig(**raw["method"])
        except (TypeError, ValueError) as err:
            raise AdapterError(f"{source}: bad method ({err})") from None
        known = {f.name for f in fields(cls)} - {"method"}
        values = {k: v for k, v in raw.items() if k in known}
        for name, check in FIELD_CHECKS.items():
            value = values.get(name)
            problem = None if value is None else check(value)
            if problem:
                raise AdapterError(f"{source}: field {name!r} {problem}, not {value!r}")
        config = cls(method=method, **values)
        names = config.label_names
        if names is not None and len(names) != config.num_labels:
            raise AdapterError(f"{source}: field 'label_names' has {len(names)} names but 'num_labels' is "
                               f"{config.num_labels}")
        if config.task is not None:
            from ..tasks import families  # here, not at the top: tasks import model code that imports us
            if config.task not in families():
                raise AdapterError(f"{source}: field 'task' {config.task!r} is not a known task "
                                   f"({', '.join(families())})")
        return config

    def to_dict(self) -> dict:
        return asdict(self)  # the method becomes its dict of fields


def _count(smallest):
    return lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= smallest \
        else f"must be an integer of at least {smallest}"


def _text(v):
    return None if isinstance(v, str) else "must be text"


def _texts(v):
    return None if isinstance(v, list) and all(isinstance(x, str) for x in v) else "must be a list of texts"


def _mapping(v):
    return None if isinstance(v, dict) else "must be an object"


FIELD_CHECKS = {
    "num_labels": _count(1), "max_length": _count(1), "best_epoch": _count(0),
    "base_model_path": _text, "base_model": _text, "fingerprint": _text, "task": _text, "source": _text,
    "weights_sha256": _text, "label_names": _texts, "metrics": _texts,
    "precision": lambda v: None if v in ("fp32", "bf16", "fp16") else "must be fp32, bf16 or fp16",
    "train": _mapping, "dev_metrics": _mapping, "peft_config": _mapping, "data": _mapping, "model_files": _mapping,
}


@dataclass
class RunFolder:
    """A run folder that `fit` writes: where it is, the adapter config its adapters are saved with (which
    also records the run's precision), and whether a run already there is continued (--resume)."""
    path: Path
    config: AdapterConfig
    resume: bool = False


def atomic_write(path: str | Path, write) -> None:
    """`write(tmp_path)` writes the file; it only replaces `path` once complete. The file gets the mode
    a plain `open` would give it (0644 under the usual umask): mkstemp's 0600 is for the temporary alone.

    A symbolic link is followed: the file it points to is replaced, the link stays. A path that is not a
    regular file (/dev/stdout, a named pipe, a device) is written in place, as a shell's `>` would:
    renaming a temporary over it would replace the device or pipe with a plain file."""
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file() and not path.is_dir():
        write(str(path))
        return
    remove_dead_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    try:
        try:
            write(tmp)
        except Exception as err:
            failure = write_failure(err, path)
            if failure is None or failure is err:
                raise
            raise failure from err
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_dead_temporaries(path: Path) -> None:
    """The temporaries of `path` whose writer is gone (killed mid-write: `.NAME.PID.XXXX.tmp`)."""
    for stale in path.parent.glob(glob.escape(f".{path.name}.") + "*.tmp"):
        pid = stale.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def current_umask() -> int:
    """The process's umask: from /proc on Linux, else by setting it and setting it back at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path, obj) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2) + "\n"))


def append_jsonl(path, obj) -> None:
    """Rewrites the file with one more line (small files), so a reader never sees half a line."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    atomic_write(path, lambda tmp: Path(tmp).write_text(old + json_line(obj)))


def json_line(obj) -> str:
    """One line of strict JSON: a value that is not finite (Pearson's r of constant predictions is NaN)
    is null, as JSON has no NaN (json.dumps would write the bare token NaN, which strict readers refuse)."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return [clean(v) for v in value] if isinstance(value, (list, tuple)) else value
    return json.dumps(clean(obj), allow_nan=False) + "\n"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


# Whole-file hashes of base weights, by (path, size, mtime): hashing 1.4 GB once per process is enough.
_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def weights_fingerprint(model_dir: str | Path) -> str:
    """The identity of a checkpoint: sha256 over every byte of each weight file (a change anywhere shows).

    Cached in memory per process by path, size and modification time.
    """
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _FINGERPRINTS:
            _FINGERPRINTS[key] = file_sha256(path)
        digest.update(f"{path.name}:{stat.st_size}:{_FINGERPRINTS[key]}".encode())
    return digest.hexdigest()[:16]


# What besides the weights decides a base model's outputs: its config and its tokenizer's files.
MODEL_FILES = ("config.json", "tokenizer.json", "vocab.txt", "vocab.json", "merges.txt")


def model_file_hashes(model_dir: str | Path) -> dict[str, str]:
    """sha256 of each of the base model's MODEL_FILES that it has, by name."""
    return {name: file_sha256(Path(model_dir) / name) for name in MODEL_FILES if (Path(model_dir) / name).is_file()}


def check_model_files(config: AdapterConfig, model_dir: str | Path, where: str, names=MODEL_FILES) -> None:
    """The base model's config and tokenizer files (`names` of them: config.json alone where no tokenizer
    is read) are those the adapter was trained with (the weights' fingerprint does not see an edited
    config.json: another activation or eps changes every output)."""
    if not config.model_files:
        return  # an adapter from before they were recorded
    now = {name: sha for name, sha in model_file_hashes(model_dir).items() if name in names}
    recorded = {name: sha for name, sha in config.model_files.items() if name in names}
    missing = sorted(set(recorded) - set(now))
    if missing:
        raise AdapterError(f"{where} was trained with the base model's {', '.join(missing)}, missing from {model_dir}")
    changed = sorted(name for name in set(recorded) | set(now) if recorded.get(name) != now.get(name))
    if changed:
        raise AdapterError(f"{where} was trained on a base model whose {', '.join(changed)} differ(s) from "
                           f"{Path(model_dir) / changed[0]}; use the base model it was trained with")


def data_fingerprint(data) -> str:
    """sha256 of an encoded set's token ids, token types and labels: what a run trains on, by content."""
    digest = hashlib.sha256()
    for encoded, label in zip(data.encoded, data.labels):
        digest.update(json.dumps([encoded.ids, encoded.type_ids, label]).encode())
    return digest.hexdigest()[:16]


def save_adapter(out_dir: str | Path, model, config: AdapterConfig) -> None:
    """adapter_model.safetensors (what trains) and adapter_config.json, which records the weights' sha256."""
    out_dir = Path(out_dir)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in model.trainable_state_dict().items()}
    if any(not torch.isfinite(t).all() for t in tensors.values()):
        raise FloatingPointError("refusing to save an adapter with non-finite weights")
    weights, previous = out_dir / ADAPTER_WEIGHTS, out_dir / PREVIOUS
    if weights.is_file():  # the old pair stays loadable until the new config lands: its weights beside it
        previous.unlink(missing_ok=True)
        os.link(weights, previous)
    digest = []

    def write_weights(tmp):
        save_file(tensors, tmp, metadata={"format": "pt"})
        digest.append(file_sha256(tmp))
    atomic_write(weights, write_weights)       # now: old config, new weights, PREVIOUS = old weights
    write_json(out_dir / ADAPTER_CONFIG, {**config.to_dict(), "weights_sha256": digest[0]})  # the new pair
    previous.unlink(missing_ok=True)


def read_adapter(adapter_dir: str | Path) -> tuple[AdapterConfig, dict[str, torch.Tensor]]:
    adapter_dir = Path(adapter_dir)
    config_path, weights_path = adapter_dir / ADAPTER_CONFIG, adapter_dir / ADAPTER_WEIGHTS
    for path in (config_path, weights_path):
        if not path.is_file():
            aside = next(iter(set_aside(adapter_dir)), None)
            hint = (f" (a run killed while --overwrite replaced it left the earlier run in {aside}: train.py "
                    "puts it back at its next start, or move it back yourself)") if aside else ""
            raise AdapterError(f"{path}: missing; is {adapter_dir} an output folder of train.py?{hint}")
    config = AdapterConfig.from_dict(read_json(config_path, AdapterError), str(config_path))
    if config.weights_sha256 is not None and file_sha256(weights_path) != config.weights_sha256:
        previous = adapter_dir / PREVIOUS  # a run killed while it replaced the pair: the config's own weights
        if previous.is_file() and file_sha256(previous) == config.weights_sha256:
            weights_path = previous
        else:
            raise AdapterError(f"{weights_path}: not the weights {config_path} describes (sha256 differs: "
                               "swapped, or edited); retrain, or restore the pair")
    try:
        tensors = load_file(weights_path)
    except Exception as err:
        raise AdapterError(f"{weights_path}: cannot read ({err})") from None
    bad = [name for name, tensor in tensors.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        raise AdapterError(f"{weights_path}: tensor {bad[0]!r} holds NaN or infinite values")
    return config, tensors


def read_json(path: Path, error=AdapterError):
    """A JSON file's value; `error` names the file for unreadable bytes, bad UTF-8 or bad JSON."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not valid UTF-8 (byte {err.object[err.start]:#04x} at offset {err.start})") from None
    if not text.strip():
        raise error(f"{path}: file is empty; expected a JSON object")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise error(f"{path}: not valid JSON ({err})") from None


def load_adapter_weights(model, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Copy adapter tensors into `model`; names and shapes must match what trains there."""
    own = dict(model.named_parameters())
    wanted = set(model.trainable_names())
    missing, unexpected = sorted(wanted - set(tensors)), sorted(set(tensors) - set(own))
    wrong = [f"{k}: adapter {tuple(t.shape)}, model {tuple(own[k].shape)}"
             for k, t in tensors.items() if k in own and own[k].shape != t.shape]
    if missing or unexpected or wrong:
        raise AdapterError(f"{source}: adapter does not fit the model: missing {missing}, "
                           f"unexpected {unexpected}, wrong shape {wrong}")
    with torch.no_grad():
        for k, t in tensors.items():
            own[k].copy_(t)


def save_state(out_dir: str | Path, state: dict) -> None:
    atomic_write(Path(out_dir) / STATE, lambda tmp: torch.save(state, tmp))


def write_failure(err: Exception, path) -> OSError | None:
    """The OSError behind a writer's own error, or None when `err` is not a failed write. torch reports a full
    disk as a RuntimeError ("PytorchStreamWriter failed writing file", or "unexpected pos N vs M" when a
    short write goes unnoticed until the next record), safetensors as its SafetensorError ("I/O error: No
    space left on device (os error 28)")."""
    if isinstance(err, OSError):
        return err
    text = str(err)
    code = re.search(r"\(os error (\d+)\)", text)
    if code:
        return OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path))
    if isinstance(err, RuntimeError) and any(s in text for s in ("failed writing", "write failed", "unexpected pos")):
        full = shutil.disk_usage(Path(path).parent).free < (1 << 20)
        return OSError(errno.ENOSPC if full else errno.EIO, "No space left on device" if full else
                       f"write failed ({text.strip().splitlines()[-1][:200]})", str(path))
    return None


# training_state.pt: each key the loop reads, and its type.
STATE_KEYS = {"epoch": int, "batch_in_epoch": int, "best": float, "loss_sum": float, "seen": int, "seconds": float,
              "optimizer": dict, "scheduler": dict, "trainable": dict, "rng": torch.Tensor}


def load_state(out_dir: str | Path) -> dict:
    """The resumable state, loaded with weights_only=True (no code runs) and checked key by key."""
    path = Path(out_dir) / STATE
    if not path.is_file():
        raise StateError(f"{path}: missing; nothing to resume (run without --resume)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors alike: the file is not a state of ours
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StateError(f"{path}: not a training state of train.py, or damaged ({reason[:200]}); "
                         "start a new run (--overwrite)") from None
    if not isinstance(state, dict):
        raise StateError(f"{path}: not a training state of train.py (a {type(state).__name__})")
    for key, kind in STATE_KEYS.items():
        value = state.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else \
            isinstance(value, kind) and not isinstance(value, bool)
        if not ok:
            problem = "is missing" if key not in state else f"is a {type(value).__name__}, expected {kind.__name__}"
            raise StateError(f"{path}: key {key!r} {problem}; not a training state of train.py, or damaged")
    if not all(isinstance(t, torch.Tensor) for t in state["trainable"].values()):
        raise StateError(f"{path}: key 'trainable' must map names to tensors")
    bad = next((name for name, t in state["trainable"].items() if t.is_floating_point() and not torch.isfinite(t).all()),
               None)
    if bad is not None:  # resumed, it would train on and stop blaming the learning rate
        raise StateError(f"{path}: tensor {bad!r} holds NaN or infinite values; the state is damaged: start a new "
                         "run (--overwrite), or train again from the adapter")
    for key in ("epoch", "batch_in_epoch", "seen"):
        if state[key] < 0:
            raise StateError(f"{path}: key {key!r} is {state[key]}, negative; the state is damaged")
    if not (math.isfinite(state["loss_sum"]) and math.isfinite(state["seconds"]) and state["seconds"] >= 0):
        raise StateError(f"{path}: key 'loss_sum' or 'seconds' is not a finite number; the state is damaged")
    if not (isinstance(state["best"], float) and (math.isfinite(state["best"]) or state["best"] == -math.inf)):
        raise StateError(f"{path}: key 'best' is {state['best']!r}")
    return state


# --- what a run folder holds, and replacing one safely --------------------------------------------

RUN_FILES = {ADAPTER_CONFIG, ADAPTER_WEIGHTS, STATE, METRICS}
RUN_EXTRAS = {"curves.png", "tensorboard"}  # what a run may also hold: `ptuning plot -o`, --report-to tensorboard


def foreign_files(run_dir: Path) -> list[str]:
    """Names in `run_dir` that are not a ptuning run's files (so --overwrite must not delete them)."""
    foreign = []
    for entry in sorted(run_dir.iterdir()):
        name = entry.name
        ours = name in RUN_FILES or name in RUN_EXTRAS or (name.startswith(".") and name.endswith(".tmp")) \
            or name.startswith("events.out.tfevents.") or name == PREVIOUS
        if not ours:
            foreign.append(name + ("/" if entry.is_dir() else ""))
    return foreign


def remove_stale_temporaries(run_dir: Path) -> list[str]:
    """Delete `.NAME.XXXX.tmp` files a killed writer left (atomic_write's names): they were never renamed.
    A pair left half-replaced (old config, new weights, PREVIOUS) is put back to the old pair."""
    removed = []
    previous = run_dir / PREVIOUS
    if previous.is_file():
        try:
            config = read_json(run_dir / ADAPTER_CONFIG)
            pair_is_whole = file_sha256(run_dir / ADAPTER_WEIGHTS) == config.get("weights_sha256")
        except (AdapterError, OSError, AttributeError):
            pair_is_whole = True  # nothing to put back
        if not pair_is_whole and file_sha256(previous) == config.get("weights_sha256"):
            os.replace(previous, run_dir / ADAPTER_WEIGHTS)
        previous.unlink(missing_ok=True)
        removed.append(PREVIOUS)
    for path in run_dir.glob(".*.tmp"):
        if path.is_file() and path.name[1:].split(".")[0] in {n.split(".")[0] for n in RUN_FILES}:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


# Files no command may write over as its output: a run's, an adapter's, a model's (by name or kind).
PROTECTED_NAMES = RUN_FILES | set(MODEL_FILES) | {"tokenizer_config.json", "special_tokens_map.json",
                                                  "model.safetensors.index.json"}
PROTECTED_SUFFIXES = (".safetensors", ".pt", ".bin", ".tfevents")


def check_write_target(path: str | Path, option: str, inputs=(), folders=()) -> Path:
    """Whether a command may write its output file at `path` (`option` names it in the error, exit 2):
    never over one of its `inputs`, a run's, an adapter's or a model's file, a folder, or into one of
    `folders` (the adapter and model folders the command reads). Every command writing a file asks here.
    A folder at `path` is a WriteError (status 4, as the operating system would refuse it); the rest
    OptionError (status 2)."""
    target = Path(os.path.realpath(path))  # a symbolic link: what it points to is what would be written
    resolved = target
    if target.is_dir():  # the operating system's refusal, as opening it would be (status 4)
        raise WriteError(f"{option} {path} is a folder; give a file name")
    for given in inputs:
        if given is not None and Path(given).resolve() == resolved:
            raise OptionError(f"{option} {path} is an input of this command; write elsewhere")
    if target.name in PROTECTED_NAMES or target.name.endswith(PROTECTED_SUFFIXES) or "tensorboard" in resolved.parts:
        raise OptionError(f"{option} {path} would replace a file of a run, adapter or model ({target.name}); "
                          "write elsewhere")
    for folder in folders:
        if folder and (Path(folder).resolve() == resolved.parent or Path(folder).resolve() == resolved):
            raise OptionError(f"{option} {path} is inside {folder}, a folder of the adapter or base model; write "
                              "the output elsewhere")
    return target


def lock_path(run_dir: Path) -> Path:
    """Beside the run folder, not in it (--overwrite moves the old folder aside, the lock stays); keyed on
    the real path, so that a symbolic link to the folder meets the same lock."""
    run_dir = Path(os.path.realpath(run_dir))
    return run_dir.parent / f".{run_dir.name}.lock"


@contextlib.contextmanager
def run_lock(run_dir: Path):
    """One train.py writes a run folder at a time: the lock file holds the writer's pid and host. A lock
    whose process is gone (a killed run) is stale and taken over; a live one refuses the second run."""
    path, me = lock_path(Path(run_dir)), f"{os.getpid()} {socket.gethostname()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            holder = _live_holder(path)
            if holder:
                raise OptionError(f"{run_dir} is being written by another train.py ({holder}); wait for it to "
                                  f"end, or choose another --output-dir (if no such run is alive: delete {path})")
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as file:
            file.write(me)
        if path.read_text() == me:  # not taken over in between by another run clearing the same stale lock
            break
    try:
        yield
    finally:
        if path.is_file() and path.read_text() == me:
            path.unlink(missing_ok=True)


def _live_holder(path: Path) -> str | None:
    """'pid N on HOST' of a lock's process while it runs; None for a stale lock (its process is gone)."""
    try:
        pid_text, host = path.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None  # half-written by a process killed at once: stale
    if host != socket.gethostname():
        return f"pid {pid} on {host}"  # another machine's process cannot be asked: taken as alive
    return f"pid {pid}" if _alive(pid) else None


@contextlib.contextmanager
def replacing_run(run_dir: Path, enabled: bool = True):
    """--overwrite: set the old run aside, train a new one in its place, delete the old one at the end.

    If the new run fails before saving its first whole adapter, the old run is put back as it was.
    Called only after every check has passed and the model has loaded. A folder given through a symbolic
    link is replaced where it really is (the link stays a link).
    """
    run_dir = Path(os.path.realpath(run_dir))
    if not enabled or not run_dir.is_dir() or not any(run_dir.iterdir()):
        yield
        return
    aside = Path(tempfile.mkdtemp(dir=run_dir.parent, prefix=aside_prefix(run_dir)))
    aside.rmdir()
    os.replace(run_dir, aside)
    try:
        yield
    except BaseException as err:
        if not whole_adapter(run_dir):  # nothing usable came of the new run: the old one back
            shutil.rmtree(run_dir, ignore_errors=True)
            os.replace(aside, run_dir)
            if isinstance(err, TrainingStopped):  # its "continue with --resume" would continue the old run
                raise TrainingStopped(f"{str(err).split(';')[0]}, before the new run saved an adapter: {run_dir} "
                                      "holds the run it was replacing, as it was", exit_code=err.exit_code) from None
        else:  # the new run has a saved adapter (and a state to --resume): it replaces the old one
            shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def aside_prefix(run_dir: Path) -> str:
    """The name --overwrite gives a run it sets aside, beside it: `.NAME.replaced.XXXX`."""
    return f".{run_dir.name}.replaced."


def set_aside(run_dir: Path) -> list[Path]:
    """The runs --overwrite set aside from `run_dir` (at its real path) and has not put back or deleted."""
    run_dir = Path(os.path.realpath(run_dir))
    return list(run_dir.parent.glob(glob.escape(aside_prefix(run_dir)) + "*"))


def whole_adapter(run_dir: Path) -> bool:
    """Both files of an adapter, the config naming these weights: a run that can be loaded. (A kill between
    the weights' rename and the config's leaves weights alone, which are not one.)"""
    try:
        read_adapter(run_dir)
    except Exception:  # any reason it cannot be read is a reason not to trust it over an older run
        return False
    return True


def holds_a_run(folder: Path) -> bool:
    """A whole adapter, or a state to --resume: something of a run worth keeping."""
    return whole_adapter(folder) or (folder / STATE).is_file()


def recover_replaced(run_dir: Path) -> None:
    """A run killed outright (SIGKILL) while --overwrite replaced another leaves the old one aside
    (`.NAME.replaced.XXXX`, no `except` ran): put the newest such run back where the new run never saved a
    whole adapter, and delete what is left aside. Under the run lock: while another train.py writes the
    folder, its aside is its own and nothing is touched."""
    run_dir = Path(os.path.realpath(run_dir))
    asides = set_aside(run_dir)
    if not asides:
        return
    try:
        with run_lock(run_dir):
            asides.sort(key=lambda p: p.lstat().st_ctime, reverse=True)  # ctime: when it was set aside
            keep = not whole_adapter(run_dir)
            for aside in asides:
                if aside.is_symlink() or not aside.is_dir():  # a link set aside by an older version: just a link
                    aside.unlink(missing_ok=True)
                elif keep and holds_a_run(aside):
                    if run_dir.exists():
                        shutil.rmtree(run_dir)
                    os.replace(aside, run_dir)
                    keep = False
                else:
                    shutil.rmtree(aside, ignore_errors=True)
    except OptionError:  # another train.py holds the lock: it is writing this folder now
        return


# --- the rules of a run folder: which folder, may it be written, and is it the same run ---------------

def output_dir_from_template(template: str, **fields) -> str:
    """`template` with {task} and {method} filled; a ValueError names what is wrong with it."""
    for _, name, _, _ in string.Formatter().parse(template):  # raises ValueError on an unclosed brace
        if name is not None and name not in fields:
            shown = "{" + name + "}" if name else "{}"
            raise ValueError(f"unknown field {shown}; the template may use {', '.join('{' + f + '}' for f in fields)}")
    return template.format(**fields)


def check_output_dir(out_dir: Path, args, model_dir: Path | None) -> None:
    """Refuse an --output-dir whose replacement would delete what the user owns."""
    blocker = next((p for p in (out_dir, *out_dir.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise WriteError(f"--output-dir {out_dir}: {blocker} is a file, not a folder")
    owned = [("--model", model_dir), ("--data-dir", args.data_dir), ("--train-file", args.train_file),
             ("--dev-file", args.dev_file)]
    for option, path in owned:
        if path is None:
            continue
        path = Path(path).resolve()
        if path == out_dir.resolve() or out_dir.resolve() in path.parents:
            raise OptionError(f"--output-dir {out_dir} holds {option} {path}; choose an empty or new folder")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    foreign = foreign_files(out_dir)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
        raise OptionError(f"--output-dir {out_dir} holds files that are not a ptuning run's ({shown}); "
                          "--overwrite only ever replaces a run of train.py: choose another --output-dir")
    if not (args.resume or args.overwrite):
        raise OptionError(f"{out_dir} already holds a run; pass --resume to continue it or --overwrite to replace it")
    here = Path.cwd().resolve()
    if args.overwrite and (here == out_dir.resolve() or out_dir.resolve() in here.parents):
        raise OptionError(f"--overwrite sets {out_dir} aside while it trains the new run, but it is the current "
                          "folder (or holds it): run train.py from outside it")


# Settings that may differ when a run is resumed: a longer schedule, and how often it saves or logs. Left
# unset, --resume takes the run's own, except ONE_START_ONLY's: they were meant for the start that gave them.
RESUMABLE_CHANGES = ("epochs", "stop_after_steps", "save_steps", "log_seconds", "eval_batch_size", "logging_steps")
ONE_START_ONLY = ("stop_after_steps",)


def recorded_settings(state: dict, out_dir: Path) -> dict:
    """The options a run's state records, by option name (empty for a state older than that record):
    everything that decides the training set and its batches (a different value would resume at batch k
    of another batch list), and how the family read its files."""
    previous = state.get("adapter_config")
    if previous is None:
        return {}
    old = AdapterConfig.from_dict(previous, str(out_dir / STATE))
    data = old.data or {}
    settings = {"task": old.task, "model": old.base_model, **(old.train or {}), **old.method.to_dict(),
                "max_length": old.max_length,
                **{k: data.get(k) for k in ("train_file", "dev_file", "max_train_samples", "max_dev_samples")},
                **{k: v for k, v in data.items() if k not in ("train_sha256",)},  # how the user's files were read
                **(old.task_options or {})}  # what the family made of its options (a cloze run's verbalizer)
    if old.precision is not None:  # the remaining steps round as the first ones did (fp16: its GradScaler too)
        settings["precision"] = old.precision
    return settings


def take_run_settings(args) -> None:
    """--resume, before the options are checked: those not given take the run's recorded values, so that
    its task (and with it the task family, its options and recipes), method and files are the run's, not
    the defaults (a bare --resume of a SQuAD run was checked as MRPC). A state that cannot be read is left
    to adopt_run_settings, which says what is wrong with it."""
    try:
        out_dir = Path(output_dir_from_template(args.output_dir, task=args.task, method=args.method))
        args.resume_state = load_state(out_dir)
        settings = recorded_settings(args.resume_state, out_dir)
    except (ValueError, OSError):  # StateError and AdapterError are ValueErrors
        return
    for name, value in settings.items():
        if hasattr(args, name) and name not in args.given and name not in ONE_START_ONLY and \
                not (name == "task" and value is None):  # a user's own table: --task named no GLUE task
            setattr(args, name, value)


def adopt_run_settings(args, out_dir: Path) -> dict:
    """--resume: options not given take the run's values; given ones must match it (--epochs may grow).

    Returns the run's resumable state (validated by `load_state`).
    """
    state = vars(args).pop("resume_state", None) or load_state(out_dir)  # parse_args read it already
    settings = recorded_settings(state, out_dir)
    if not settings:  # a state saved before runs recorded their settings: nothing to compare
        return state
    differences = []
    for name, value in settings.items():
        if not hasattr(args, name):
            continue
        if name in RESUMABLE_CHANGES:  # the run's own unless given: --epochs 40 lengthens it, none keeps it
            if name not in args.given and name not in ONE_START_ONLY:
                setattr(args, name, value)
            continue
        if name == "task" and value is None:  # a run on the user's own table: --task only named a GLUE-like one
            continue
        if name not in args.given:
            setattr(args, name, value)
        elif same_setting(name, getattr(args, name), value) is False:
            differences.append(f"--{name.replace('_', '-')} {getattr(args, name)} (the run used {shown(value)})")
    # A run that wrote TensorBoard scalars goes on writing them (its folder says so; nothing else records it).
    if hasattr(args, "report_to") and "report_to" not in args.given and (out_dir / "tensorboard").is_dir():
        args.report_to = "tensorboard"
    if differences:
        raise OptionError(f"--resume: {out_dir} holds a different run: " + "; ".join(differences) +
                          ". Continue it with its own settings, or start a new run in another --output-dir")
    return state


def check_epochs_left(args, state: dict, out_dir: Path) -> None:
    """--resume --epochs N: something must be left to train (after the checks that it is the same run)."""
    done, partial = state.get("epoch", 0), bool(state.get("batch_in_epoch", 0))
    if "epochs" in args.given and isinstance(done, int) and args.epochs < done + 1:
        trained = f"{done} epoch{'s' if done != 1 else ''}" + (f" and part of epoch {done + 1}" if partial else "")
        raise OptionError(f"--resume --epochs {args.epochs}: {out_dir} has already trained {trained}; give "
                          f"--epochs {done + 1} or more to train on, or leave --epochs out to finish the run as planned")


def check_same_run(state: dict, meta: AdapterConfig, out_dir: Path, model_dir: Path) -> None:
    """--resume: the base model (weights, config, tokenizer) and the training data are the run's, by content;
    a changed train file at the same path, or an edited config.json, is another run."""
    previous = state.get("adapter_config") or {}
    if previous.get("fingerprint") not in (None, meta.fingerprint):
        raise OptionError(f"--resume: {out_dir} was trained on other base weights than {model_dir} "
                          f"(fingerprint {previous['fingerprint']} vs {meta.fingerprint})")
    if previous.get("model_files"):
        try:
            check_model_files(AdapterConfig.from_dict(previous, str(out_dir / STATE)), model_dir,
                              f"--resume: {out_dir}")
        except AdapterError as err:
            raise OptionError(str(err)) from None
    recorded = (previous.get("data") or {}).get("train_sha256")
    if recorded is not None and recorded != (meta.data or {}).get("train_sha256"):
        raise OptionError(f"--resume: the training data differ from those {out_dir} was trained on (a train file "
                          "changed at its path, or options that choose other rows); resume with the same data, "
                          "or start a new run in another --output-dir")
    check_best_adapter(state, out_dir)


def check_best_adapter(state: dict, out_dir: Path) -> None:
    """--resume: the best adapter so far (what predict.py reads) is there and is this run's, as the state
    records it; a resumed run that does not improve on it leaves it as it is, so a hand-edited, broken or
    deleted adapter_config.json would stay behind a run that "succeeded"."""
    previous = state.get("adapter_config")
    if previous is None or not math.isfinite(state.get("best", -math.inf)):  # no epoch has saved one yet
        return
    path = out_dir / ADAPTER_CONFIG
    if not path.is_file():
        raise StateError(f"--resume: {path} is missing, but the run saved its best adapter there; the state cannot "
                         "rebuild it (it holds the last step's weights): start a new run (--overwrite)")
    try:  # the pair predict.py reads: the config, and the weights it names by sha256
        saved = read_adapter(out_dir)[0].to_dict()
    except AdapterError as err:
        raise StateError(f"--resume: {err}") from None
    mine = AdapterConfig.from_dict(previous, str(out_dir / STATE)).to_dict()
    # What may differ: the epoch it was saved at, its scores and weights, what --resume may change, and where
    # the base model lies (its content is checked by fingerprint).
    # How the options were written may differ too (a verbalizer given as a file, then as text): of `data`, the
    # training set's content is compared.
    volatile = ("best_epoch", "dev_metrics", "weights_sha256", "train", "base_model", "base_model_path", "data")
    differ = [k for k in sorted(set(mine) | set(saved)) if k not in volatile and mine.get(k) != saved.get(k)]
    train = lambda c: {k: v for k, v in (c.get("train") or {}).items() if k not in RESUMABLE_CHANGES}  # noqa: E731
    differ += ["train"] if train(mine) != train(saved) else []
    for key in ("train_sha256", "max_train_samples", "max_dev_samples"):  # what it trained on and was scored on
        if (mine.get("data") or {}).get(key) != (saved.get("data") or {}).get(key):
            differ.append(f"data ({key})")
    if differ:
        raise StateError(f"--resume: {path} is not the run training_state.pt records ({', '.join(differ)} differ): "
                         "edited by hand, or copied from another run; restore it, or start a new run (--overwrite)")


def shown(value) -> str:
    """A recorded setting as the command line writes it ({label: [words]}: label=word|word,...; None: unset)."""
    if value is None:
        return "none: it was left unset"
    if isinstance(value, dict):
        return ",".join(f"{k}={'|'.join(v) if isinstance(v, list) else v}" for k, v in value.items())
    return str(value)


def same_setting(name: str, given, recorded) -> bool:
    if name == "precision":  # `auto` is what it resolves to on this machine
        return device_and_precision(given)[1] == recorded
    if name == "verbalizer" and given is not None and recorded is not None:  # a cloze task's: text, file or record
        from ..tasks.cloze import parse_verbalizer  # labels in order: the order gives their ids
        return list(parse_verbalizer(given).items()) == list(parse_verbalizer(recorded).items())
    if name in ("train_file", "dev_file", "model") and given is not None and recorded is not None:
        return Path(str(given)).resolve() == Path(str(recorded)).resolve() or str(given) == str(recorded)
    if name == "template" and isinstance(given, str) and isinstance(recorded, str):  # pieces between spaces
        return given.split() == recorded.split()
    return given == recorded
