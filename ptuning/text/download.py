"""Fetch a GLUE task into the data folder when its files are missing.

The URLs are those of GLUE's own `download_glue_data.py` (data/README.md lists them). Standard
library only. A download goes into a hidden scratch folder inside the data folder, is checked
(length, zip checksums, row counts where known), and only then renamed into place: a failed or
interrupted download leaves no half-written task folder behind.
"""
from __future__ import annotations

import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

GLUE_URL = "https://dl.fbaipublicfiles.com/glue/data/"
SENTEVAL_URL = "https://dl.fbaipublicfiles.com/senteval/senteval_data/"
URL_VARIABLE = "PTUNING_GLUE_URL"   # a mirror (or a test server) holding every file flat in one folder
GET_GLUE = "data/README.md explains how to get GLUE (python data/download_glue.py)"
TIMEOUT_SECONDS = 60
CHUNK_BYTES = 1 << 16


class DownloadError(DataError):
    """A task's files are missing and could not be fetched; the message names the URL or file."""


# Where each data set is looked for, in this order: --data-dir, the variable, <default_root>/<name>.
# train.py's default root is data/ beside it (in the repository, git-ignored); tests use the same.
DATA_VARIABLES = {"glue": "GLUE_DIR", "conll2003": "CONLL_DIR", "squad": "SQUAD_DIR"}
_REPOSITORY = Path(__file__).resolve().parents[2]
# data/ beside train.py in a checkout (git-ignored); ./data where the package is installed without one.
DATA_ROOT = _REPOSITORY / "data" if (_REPOSITORY / "train.py").is_file() else Path("data")


DATA_TITLES = {"glue": "GLUE", "conll2003": "CoNLL-2003", "squad": "SQuAD"}


def data_dir(name: str, given: str | Path | None, default_root: str | Path | None = None) -> Path:
    """The folder of data set `name` ("glue", "conll2003", "squad"): `given`, else $GLUE_DIR /
    $CONLL_DIR / $SQUAD_DIR, else `default_root/name` (default: DATA_ROOT). It need not exist yet
    (GLUE is fetched into it)."""
    if given:
        return Path(given)
    return Path(os.environ.get(DATA_VARIABLES[name]) or Path(default_root or DATA_ROOT) / name)


def existing_data_dir(name: str, given: str | Path | None = None, default_root: str | Path | None = None,
                      how_to: str = "") -> Path:
    """`data_dir`, which must exist; if it does not, the error names the setting it came from
    (--data-dir, the variable, or the default), so the user knows what to change."""
    default_root = default_root or DATA_ROOT
    folder = data_dir(name, given, default_root)
    if folder.is_dir():
        return folder
    variable = DATA_VARIABLES[name]
    default = Path(default_root) / name
    source = ("the --data-dir argument" if given else f"${variable}" if os.environ.get(variable) else
              f"the default {default}" + ("" if default.is_absolute() else f" under {Path.cwd()}") +
              f", as neither --data-dir nor ${variable} is set")
    raise DataError(f"{folder}: {DATA_TITLES[name]} folder not found (taken from {source}). Pass --data-dir, "
                    f"set {variable}, or {how_to}")


@dataclass(frozen=True)
class Source:
    folder: str                      # folder under the GLUE root, as the readers expect it
    archive: str | None              # zip on GLUE's server; None for MRPC (built from SentEval's files)
    rows: dict[str, int | None]      # files a task needs -> data rows (header excluded) where known
    headerless: tuple[str, ...] = ()  # files without a header row (CoLA train/dev)


SPLITS = ("train.tsv", "dev.tsv")
# Row counts of the GLUE release, checked by our tests on the real files (data/README.md).
# QQP, MNLI and QNLI are not checked here: we have never counted those files ourselves.
SOURCES = {
    "cola": Source("CoLA", "CoLA.zip", {"train.tsv": 8551, "dev.tsv": 1043}, headerless=SPLITS),
    "sst2": Source("SST-2", "SST-2.zip", {"train.tsv": 67349, "dev.tsv": 872}),
    "mrpc": Source("MRPC", None, {"train.tsv": 3668, "dev.tsv": 408}),
    "stsb": Source("STS-B", "STS-B.zip", {"train.tsv": 5749, "dev.tsv": 1500}),
    "qqp": Source("QQP", "QQP-clean.zip", {"train.tsv": None, "dev.tsv": None}),
    "mnli": Source("MNLI", "MNLI.zip", {"train.tsv": None, "dev_matched.tsv": None, "dev_mismatched.tsv": None}),
    "qnli": Source("QNLI", "QNLIv2.zip", {"train.tsv": None, "dev.tsv": None}),
    "rte": Source("RTE", "RTE.zip", {"train.tsv": 2490, "dev.tsv": 277}),
    "wnli": Source("WNLI", "WNLI.zip", {"train.tsv": 635, "dev.tsv": 71}),
}
# MRPC is Microsoft's corpus, which GLUE did not re-host: its script fetched the SentEval copy
# and split GLUE's dev set off the train file by the sentence-pair ids in mrpc_dev_ids.tsv.
MRPC_FILES = ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt", "mrpc_dev_ids.tsv")


def task_source(task_name: str) -> Source:
    """The download recipe of a task; "SST-2", "sst2" and "Sst-2" all name the same one."""
    key = task_name.lower().replace("-", "")
    if key not in SOURCES:
        raise DownloadError(f"unknown GLUE task {task_name!r}; known: {', '.join(SOURCES)}")
    return SOURCES[key]


def missing_files(folder: Path, source: Source) -> list[str]:
    return [name for name in source.rows if not (folder / name).is_file()]


def ensure_glue_task(task_name: str, data_dir: str | Path, allow_download: bool = True,
                     progress: bool = True, base_url: str | None = None) -> Path:
    """The task's folder under `data_dir`, downloaded first if its train/dev files are missing.

    `base_url` (or $PTUNING_GLUE_URL) replaces GLUE's and SentEval's servers by one folder that
    holds every file flat (the zips and MRPC's three files). `allow_download=False` only checks.
    """
    source = task_source(task_name)
    data_dir = Path(data_dir)
    blocker = next((p for p in (data_dir, *data_dir.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:   # a file where the GLUE root (or a folder above it) should be: a wrong path
        raise DownloadError(f"{data_dir}: not a folder ({blocker} is a file); the GLUE root holds the task "
                            f"folders (MRPC/, RTE/, ...); {GET_GLUE}")
    folder = data_dir / source.folder
    # A file where a folder should be (the data folder, a parent, the task folder): say so, not "File exists".
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise DownloadError(f"{blocker} is a file, not a folder: the GLUE data folder must be a folder "
                            f"(--data-dir or $GLUE_DIR); {GET_GLUE}")
    missing = missing_files(folder, source)
    if not missing:
        return folder
    if folder.exists():   # copied by hand, or another tool's layout: never overwrite a user's files
        raise DownloadError(f"{folder / missing[0]}: file not found, but {folder} exists; add the file, or "
                            f"delete the folder to fetch the task again; {GET_GLUE}")
    if not allow_download:
        raise DownloadError(f"{folder / missing[0]}: file not found, and downloading is off "
                            f"(--no-download); {GET_GLUE}")
    created = [p for p in (data_dir, *data_dir.parents) if not p.exists()]  # made here, removed if it fails
    data_dir.mkdir(parents=True, exist_ok=True)
    base = base_url or os.environ.get(URL_VARIABLE)
    try:
        with tempfile.TemporaryDirectory(prefix=".download-", dir=data_dir) as scratch:
            if source.archive is None:
                built = download_mrpc(Path(scratch), base, progress)
            else:
                built = download_zip(source.archive, Path(scratch), base, progress)
            check_rows(built, source, source.archive or "MRPC")
            try:
                os.rename(built, folder)   # atomic on one file system: the folder appears whole or not at all
            except OSError:
                if missing_files(folder, source):   # not another process (a torchrun rank) finishing first
                    raise
    except DownloadError as err:  # say where the files go, and how to point at a copy elsewhere
        raise DownloadError(f"{err}. The task's folder {source.folder}/ belongs in {data_dir}; or point "
                            f"--data-dir or ${DATA_VARIABLES['glue']} at a GLUE root that has it") from None
    finally:
        for path in created:  # folders this call made and that stayed empty: nothing is left behind
            try:
                path.rmdir()
            except OSError:
                break
    return folder


def url_of(name: str, base: str | None, default_base: str) -> str:
    return (base.rstrip("/") + "/" if base else default_base) + name


def download_zip(archive_name: str, scratch: Path, base: str | None, progress: bool) -> Path:
    url = url_of(archive_name, base, GLUE_URL)
    archive = scratch / archive_name
    fetch(url, archive, progress)
    try:
        with zipfile.ZipFile(archive) as bundle:
            broken = bundle.testzip()   # CRC of every member: a damaged download stops here
            if broken:
                raise DownloadError(f"{url}: {broken} is corrupt in the zip (nothing was written)")
            bundle.extractall(scratch / "unpacked")
    except zipfile.BadZipFile:
        raise DownloadError(f"{url}: not a zip file (a proxy page?); nothing was written") from None
    except (zlib.error, EOFError) as error:   # a member that does not even decompress
        raise DownloadError(f"{url}: the zip is corrupt ({error}); nothing was written") from None
    # The zip holds one folder (e.g. QNLI/); take the shallowest one with a train.tsv.
    found = sorted((scratch / "unpacked").rglob("train.tsv"), key=lambda path: len(path.parts))
    if not found:
        raise DownloadError(f"{url}: the zip holds no train.tsv (nothing was written)")
    return found[0].parent


def download_mrpc(scratch: Path, base: str | None, progress: bool) -> Path:
    """GLUE's MRPC: SentEval's train file split by GLUE's dev ids, and the test pairs numbered."""
    urls = {name: url_of(name, base, GLUE_URL if name.endswith(".tsv") else SENTEVAL_URL) for name in MRPC_FILES}
    for name, url in urls.items():
        fetch(url, scratch / name, progress)

    def rows(name: str) -> list[list[str]]:   # utf-8-sig: the train file starts with a BOM
        lines = (scratch / name).read_text(encoding="utf-8-sig").split("\n")
        fields = [(number, line.strip().split("\t")) for number, line in enumerate(lines, 1) if line.strip()]
        width = 2 if name.endswith(".tsv") else 5
        for number, row in fields:
            if len(row) != width:
                raise DownloadError(f"{urls[name]}: line {number} has {len(row)} fields, expected {width} "
                                    "(nothing was written)")
        return [row for _, row in fields]

    dev_ids = {tuple(row) for row in rows("mrpc_dev_ids.tsv")}
    header, *pairs = rows("msr_paraphrase_train.txt")
    train, dev = [header], [header]
    for row in pairs:
        (dev if (row[1], row[2]) in dev_ids else train).append(row)
    test = [["index", "#1 ID", "#2 ID", "#1 String", "#2 String"]]
    test += [[str(index), *row[1:]] for index, row in enumerate(rows("msr_paraphrase_test.txt")[1:])]
    folder = scratch / "MRPC"
    folder.mkdir()
    for name, table in (("train", train), ("dev", dev), ("test", test)):
        (folder / f"{name}.tsv").write_text("".join("\t".join(row) + "\n" for row in table), encoding="utf-8")
    return folder


def check_rows(folder: Path, source: Source, origin: str) -> None:
    """Every needed file is there and, where GLUE's count is known, has exactly that many rows."""
    for name, expected in source.rows.items():
        path = folder / name
        if not path.is_file():
            raise DownloadError(f"{origin}: has no {name} (nothing was written)")
        lines = [line for line in path.read_bytes().split(b"\n") if line.strip()]
        count = len(lines) - (0 if name in source.headerless else 1)
        if expected is not None and count != expected:
            raise DownloadError(f"{origin}: {name} has {count} data rows, GLUE's has {expected}; the download "
                                "is incomplete or not GLUE's (nothing was written)")


def fetch(url: str, destination: Path, progress: bool) -> None:
    """Stream `url` to `destination`, refusing a body shorter or longer than its Content-Length."""
    received, expected, bar = 0, None, None
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, open(destination, "wb") as file:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            bar = ProgressBar(url, expected, progress)
            while chunk := response.read(CHUNK_BYTES):
                file.write(chunk)
                received += len(chunk)
                bar.update(received)
            bar.done(received)
            bar = None
    except urllib.error.HTTPError as error:   # before URLError: it is one
        error.close()   # an HTTPError is also the response, holding the connection's socket
        raise DownloadError(offline_message(url, f"HTTP {error.code} {error.reason}")) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:   # no network, DNS, timeout, cut
        raise DownloadError(offline_message(url, getattr(error, "reason", None) or error)) from None
    finally:
        if bar is not None:   # stopped half-way (error, Ctrl-C): end the live line before the message
            bar.interrupted()
    if expected is not None and received != expected:
        raise DownloadError(f"{url}: received {received} of {expected} bytes (nothing was written)")


def offline_message(url: str, reason) -> str:
    mirror = os.environ.get(URL_VARIABLE)
    if mirror:  # the user chose the server: the network is not the first suspect
        return (f"could not download {url} ({reason}); the server comes from ${URL_VARIABLE}={mirror}: check "
                f"it, or unset {URL_VARIABLE} to use GLUE's own servers. Without a network, {GET_GLUE}, run it "
                "where there is one and copy the task's folder over")
    return (f"could not download {url} ({reason}). Is the network reachable from here? If not, "
            f"{GET_GLUE}, run it where there is a network and copy the task's folder over")


def size_text(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "size unknown"
    if num_bytes < 1e3:
        return f"{num_bytes} bytes"
    return f"{num_bytes / 1e6:.1f} MB" if num_bytes >= 1e6 else f"{num_bytes / 1e3:.0f} KB"


class ProgressBar:
    """A live line on a terminal; on a log (stderr not a terminal) one plain line per file, no `\\r`."""

    def __init__(self, url: str, total: int | None, enabled: bool):
        self.name, self.total, self.enabled = url.rsplit("/", 1)[-1], total, enabled
        self.tty, self.last, self.start, self.width = sys.stderr.isatty(), 0.0, time.perf_counter(), 0
        if enabled and not self.tty:
            print(f"downloading {url} ({size_text(total)})", file=sys.stderr, flush=True)

    def update(self, received: int) -> None:
        now = time.perf_counter()
        if not (self.enabled and self.tty) or now - self.last < 0.1:
            return
        self.last = now
        share = f"{100 * received // self.total:3d}% " if self.total else ""
        self.live(f"{self.name}  {share}{size_text(received)}", end="")

    def live(self, line: str, end: str) -> None:
        print("\r" + line.ljust(self.width), end=end, file=sys.stderr, flush=True)   # ljust: cover a longer last line
        self.width = len(line)

    def done(self, received: int) -> None:
        if not self.enabled:
            return
        seconds = time.perf_counter() - self.start
        line = f"{self.name}  {size_text(received)} in {seconds:.1f}s"
        if self.tty:
            self.live(line, end="\n")
        else:
            print(f"  {line}", file=sys.stderr, flush=True)

    def interrupted(self) -> None:
        if self.enabled and self.tty and self.width:
            print(file=sys.stderr, flush=True)
