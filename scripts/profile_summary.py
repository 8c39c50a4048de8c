"""Where the service's threads spend a py-spy profile: shares by thread and stage.

Puts each sample of py-spy's raw profiles (``--format raw``, with ``--idle`` or ``--gil``) of a
``tweetcls serve`` process in one stage by the frames of its stack (:data:`STAGES`, first
match). How the profiles are taken: docs/results.md, *Serving levers*::

    python scripts/profile_summary.py idle.txt gil.txt --json profile.json
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from _bench_common import host_info, print_table, write_json

#: (thread, stage, frames that all appear in the stack), first match wins.
STAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("model", "ONNX Runtime run", ("MicroBatcher._work", "Session.run")),
    ("model", "tokenize", ("MicroBatcher._work", "Encoder.__call__")),
    ("model", "clean text", ("MicroBatcher._work", "clean_text")),
    ("model", "bookkeeping", ("MicroBatcher._work", "after_batch")),
    ("model", "other", ("MicroBatcher._work",)),
    ("model", "waiting for a batch", ("concurrent/futures/thread.py",)),
    ("request log", "writing", ("RequestLog._write_loop", "RequestLog._insert")),
    ("request log", "waiting", ("RequestLog",)),
    ("event loop", "HTTP path", ("_run_module_as_main", "run_asgi")),
    ("event loop", "batcher", ("_run_module_as_main", "MicroBatcher")),
    ("event loop", "loop (idle included)", ("_run_module_as_main",)),
    ("thread pool", "anyio workers", ("anyio/",)),
)


def stage_of(stack: str) -> tuple[str, str]:
    """The ``(thread, stage)`` of one collapsed stack; ``("other", "")`` when none matches."""
    for thread, stage, frames in STAGES:
        if all(frame in stack for frame in frames):
            return thread, stage
    return "other", ""


def summarize(path: Path) -> list[dict]:
    """One row per ``(thread, stage)`` of the profile at ``path``: samples, their share of all
    samples and of the thread's."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            counts[stage_of(stack)] += int(count)
    total = sum(counts.values())
    threads = Counter()
    for (thread, _), count in counts.items():
        threads[thread] += count
    return [
        {"profile": path.name, "thread": thread, "stage": stage, "samples": count}
        | {"share": count / total, "share_of_thread": count / threads[thread]}
        for (thread, stage), count in sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1]))
    ]


def main(argv: list[str] | None = None) -> list[dict]:
    """Print the summary of each profile, write ``--json``; return the rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", type=Path, help="py-spy --format raw files")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = [row for path in args.profiles for row in summarize(path)]
    print_table(rows, "profile thread stage samples:d share:.3f share_of_thread:.3f")
    if args.json is not None:
        write_json(args.json, {"profiles": [p.name for p in args.profiles]} | host_info(), rows)
    return rows


if __name__ == "__main__":
    main()
