"""Benchmark: import the Maven CRM export into a fresh embedded PostgreSQL, twice.

    .venv/bin/python bench/bench_import.py [FOLDER] [--repeat N]

Prints the wall time of the first import (everything created: 85 accounts, 7 products, 35 reps,
8,800 deals with their stage history) and of the second (nothing changes: the idempotent path that
compares every row), median of N fresh databases. The server runs in a temporary directory that is
removed afterwards. Server start-up and migrations are not timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm.db import make_engine
from crm.importer import import_export
from crm.migrate import upgrade
from embedded.postgres import start_postgres

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "maven-crm"


def run_once(folder: Path) -> tuple[float, float, int]:
    """(first import s, second import s, deals) on a brand-new database."""
    with tempfile.TemporaryDirectory(prefix="flowstate-bench-") as tmp:
        server = start_postgres(Path(tmp))
        try:
            upgrade(server.url)
            engine = make_engine(server.url)
            try:
                t0 = time.perf_counter()
                first = import_export(engine, folder)
                t1 = time.perf_counter()
                second = import_export(engine, folder)
                t2 = time.perf_counter()
            finally:
                engine.dispose()
        finally:
            server.stop()
    assert not second.changed, "second import changed something"
    return t1 - t0, t2 - t1, first.deals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--repeat", type=int, default=3, help="fresh databases to average over")
    args = parser.parse_args()
    firsts, seconds = [], []
    deals = 0
    for i in range(args.repeat):
        first, second, deals = run_once(args.folder)
        firsts.append(first)
        seconds.append(second)
        print(f"run {i + 1}: first import {first:.3f} s, second import {second:.3f} s", flush=True)
    print(
        f"import of {args.folder} ({deals} deals), median of {args.repeat}: "
        f"first {statistics.median(firsts):.3f} s ({deals / statistics.median(firsts):,.0f} deals/s), "
        f"second (unchanged) {statistics.median(seconds):.3f} s"
    )


if __name__ == "__main__":
    main()
