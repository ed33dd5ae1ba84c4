"""Benchmark: how the size of each pwrite changes the cost of writing a new file through the page cache.

Writes --gb of data into a fresh preallocated file (as the skill engine's writer does) with pwrite calls of
each --sizes, round after round, in a new random order each round so that neither the machine's slow
minutes nor the run before favour one size. Prints the median wall and kernel time of each size and its
ratio to the fastest. (Linux sizes the page-cache folios it allocates by the write: large writes ask for
large folios, whose cost on a VM depends on how the host backs the memory.)

    python benchmarks/page_cache_writes.py --dir /tmp --gb 2 --rounds 7
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

import numpy as np


def write_file(path: Path, total: int, piece: int) -> tuple[float, float]:
    """Wall and kernel seconds to pwrite `total` bytes into a new preallocated file, `piece` bytes per call."""
    buf = memoryview(np.full(piece, 7, dtype=np.uint8))
    path.unlink(missing_ok=True)
    os.sync()  # no run pays for another's writeback
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.posix_fallocate(fd, 0, total)
        wall0, sys0 = time.perf_counter(), os.times().system
        done = 0
        while done < total:
            done += os.pwrite(fd, buf[: total - done], done)
        return time.perf_counter() - wall0, os.times().system - sys0
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("/tmp"), help="where the file is written (the disk under test)")
    ap.add_argument("--gb", type=float, default=2.0, help="GiB per file")
    ap.add_argument("--sizes", default="64,256,512,1024,2048,4096", help="KiB per pwrite call")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    total = int(args.gb * 2**30)
    pieces = [int(s) * 1024 for s in args.sizes.split(",")]
    path = args.dir / f"past-page-cache-writes-{os.getpid()}"
    runs: dict[int, list[tuple[float, float]]] = {p: [] for p in pieces}
    order = random.Random(0)
    for _ in range(args.rounds):
        for p in order.sample(pieces, len(pieces)):
            runs[p].append(write_file(path, total, p))
    medians = {p: statistics.median(w for w, _ in r) for p, r in runs.items()}
    best = min(medians.values())
    print(f"{args.gb:g} GiB per file, {args.rounds} rounds, in {args.dir}")
    print("| KiB per pwrite | wall, median (s) | wall, min-max (s) | kernel, median (s) | vs. fastest |")
    print("|---:|---:|---:|---:|---:|")
    for p, r in runs.items():
        walls = [w for w, _ in r]
        print(f"| {p // 1024} | {medians[p]:.2f} | {min(walls):.2f}-{max(walls):.2f} | "
              f"{statistics.median(k for _, k in r):.2f} | {medians[p] / best:.1f}x |")


if __name__ == "__main__":
    main()
