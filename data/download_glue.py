#!/usr/bin/env python3
"""Download GLUE into data/glue/, in the layout GLUE's own download script wrote.

    python data/download_glue.py                  # all nine tasks
    python data/download_glue.py mrpc rte         # some of them
    python data/download_glue.py --data-dir /big/disk/glue mnli

A thin caller of `ptuning.text.download` (standard library only; train.py calls the same code when
a task is missing). $PTUNING_GLUE_URL points it at a mirror. The files are third-party data: do
not commit them (data/glue/ is git-ignored). data/README.md describes the layout.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout, installed or not
from ptuning.text.download import SOURCES, DownloadError, ensure_glue_task, missing_files  # noqa: E402

ALL_TASKS = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]


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

    for task in tasks:
        folder = args.data_dir / SOURCES[task].folder
        if folder.exists() and not missing_files(folder, SOURCES[task]):
            print(f"{task}: {folder} exists, skipped (delete it to fetch again)")
            continue
        print(f"{task}:", flush=True)
        try:
            ensure_glue_task(task, args.data_dir)
        except DownloadError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    print(f"done: {args.data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
