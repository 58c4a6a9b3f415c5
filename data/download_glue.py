#!/usr/bin/env python3
"""Download GLUE into data/glue/, in the layout GLUE's own download script wrote.

    python data/download_glue.py                  # all nine tasks
    python data/download_glue.py mrpc rte         # some of them
    python data/download_glue.py --data-dir /big/disk/glue mnli

Standard library only, and never imported by the library. The files are third-party data:
do not commit them (data/glue/ is git-ignored). data/README.md describes the layout.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

# The URLs of GLUE's download_glue_data.py: task -> (zip, folder the reader expects).
GLUE_URL = "https://dl.fbaipublicfiles.com/glue/data/"
ZIPS = {
    "cola": ("CoLA.zip", "CoLA"),
    "sst2": ("SST-2.zip", "SST-2"),
    "stsb": ("STS-B.zip", "STS-B"),
    "qqp": ("QQP-clean.zip", "QQP"),
    "mnli": ("MNLI.zip", "MNLI"),
    "qnli": ("QNLIv2.zip", "QNLI"),
    "rte": ("RTE.zip", "RTE"),
    "wnli": ("WNLI.zip", "WNLI"),
}
# MRPC is Microsoft's corpus, which GLUE did not re-host: its script fetched the SentEval copy
# and split GLUE's dev set off the train file by the sentence-pair ids in mrpc_dev_ids.tsv.
MRPC_TRAIN = "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt"
MRPC_TEST = "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt"
MRPC_DEV_IDS = GLUE_URL + "mrpc_dev_ids.tsv"
ALL_TASKS = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]


class DownloadError(Exception):
    pass


def fetch(url: str, destination: Path) -> None:
    print(f"  {url}", flush=True)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as file:
            shutil.copyfileobj(response, file)
    except (urllib.error.URLError, OSError) as error:   # no network, DNS, HTTP 404, timeout
        reason = getattr(error, "reason", error)
        raise DownloadError(f"could not download {url}: {reason}") from None


def download_zip(task: str, data_dir: Path, scratch: Path) -> None:
    archive_name, folder = ZIPS[task]
    archive = scratch / archive_name
    fetch(GLUE_URL + archive_name, archive)
    try:
        zipfile.ZipFile(archive).extractall(scratch / task)
    except zipfile.BadZipFile:
        raise DownloadError(f"{GLUE_URL + archive_name} is not a zip file (a proxy page?)") from None
    # The zip holds one folder (e.g. QNLI/); take the shallowest one with a train.tsv.
    extracted = min((scratch / task).rglob("train.tsv"), key=lambda path: len(path.parts)).parent
    shutil.move(str(extracted), data_dir / folder)


def download_mrpc(data_dir: Path, scratch: Path) -> None:
    for url in (MRPC_TRAIN, MRPC_TEST, MRPC_DEV_IDS):
        fetch(url, scratch / url.rsplit("/", 1)[1])

    def read(name: str) -> list[str]:   # utf-8-sig: the train file starts with a BOM
        return (scratch / name).read_text(encoding="utf-8-sig").splitlines()

    dev_ids = {tuple(line.strip().split("\t")) for line in read("mrpc_dev_ids.tsv") if line.strip()}
    header, *rows = read("msr_paraphrase_train.txt")
    train, dev = [header], [header]
    for row in rows:
        label, id1, id2, text_1, text_2 = row.strip().split("\t")
        (dev if (id1, id2) in dev_ids else train).append("\t".join((label, id1, id2, text_1, text_2)))
    test = ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"]
    for index, row in enumerate(read("msr_paraphrase_test.txt")[1:]):
        _, id1, id2, text_1, text_2 = row.strip().split("\t")
        test.append("\t".join((str(index), id1, id2, text_1, text_2)))
    folder = data_dir / "MRPC"
    folder.mkdir()
    for name, lines in (("train", train), ("dev", dev), ("test", test)):
        (folder / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download GLUE into data/glue/.")
    parser.add_argument("tasks", nargs="*", default=ALL_TASKS,
                        help=f"tasks to fetch (default: all): {' '.join(ALL_TASKS)}")
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parent / "glue",
                        help="where the task folders go (default: data/glue next to this script)")
    args = parser.parse_args(argv)
    tasks = [name.lower().replace("-", "") for name in args.tasks]   # "SST-2" -> "sst2"
    unknown = [name for name in tasks if name not in ALL_TASKS]
    if unknown:
        parser.error(f"unknown task(s) {' '.join(unknown)}; choose from {' '.join(ALL_TASKS)}")

    args.data_dir.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        folder = args.data_dir / ("MRPC" if task == "mrpc" else ZIPS[task][1])
        if folder.exists():
            print(f"{task}: {folder} exists, skipped (delete it to fetch again)")
            continue
        print(f"{task}:")
        try:
            with tempfile.TemporaryDirectory(dir=args.data_dir) as scratch:
                if task == "mrpc":
                    download_mrpc(args.data_dir, Path(scratch))
                else:
                    download_zip(task, args.data_dir, Path(scratch))
        except DownloadError as error:
            print(f"error: {error}\nIs the network reachable from here? If not, download the "
                  "files on a machine where it is and copy the task folders by hand (e.g. "
                  f"{args.data_dir}/RTE/train.tsv); data/README.md lists the URLs and the layout.",
                  file=sys.stderr)
            return 1
    print(f"done: {args.data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
