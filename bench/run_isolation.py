"""Per-test cost of sqlmosaic's test isolation, measured THROUGH pytest and the shipped plugin.

    python -m bench.run_isolation                  # N = 300 tests per kind, both backends
    python -m bench.run_isolation --n 100 --backends sqlite

``bench.run_fixtures`` times the fixture steps in a loop of its own; this one runs real pytest
sessions (a generated test file, the installed ``sqlmosaic.testing`` plugin, the reference
host's ``alembic.ini``) and reads pytest's own setup + call + teardown durations of every test:

* ``bare``: ``async def test(i): pass`` (what pytest and pytest-asyncio cost anyway);
* ``isolated``: the same test taking ``mosaic_session`` (outer transaction, savepoint session,
  rollback), the isolation every database test of an app pays;
* ``isolated + unit of work``: adds one ``transaction(mosaic_session)`` inserting a row.

Per-test overhead = median(isolated) - median(bare), in the configurations that matter: plain,
``--mosaic-asyncio-debug`` (debug-mode loops, what this repository runs with), and debug plus
``--mosaic-detect-blocking`` (blockbuster; this repository's own setting). The first test of a
kind pays session set-up (server start, migrated template) and is left out of the medians.
Target (the benchmarks issue): isolation overhead at most 5 ms with the debug mode on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_MS = 5.0

CONFIGS: dict[str, list[str]] = {
    "plain": [],
    "asyncio debug": ["--mosaic-asyncio-debug"],
    "asyncio debug + detect blocking": ["--mosaic-asyncio-debug", "--mosaic-detect-blocking"],
}

TEST_FILE = """
import os

import pytest
from mosaic_accounts.models import User
from sqlmosaic import transaction

N = int(os.environ["BENCH_ISOLATION_N"])


@pytest.mark.parametrize("i", range(N))
async def test_bare(i):
    pass


@pytest.mark.parametrize("i", range(N))
async def test_isolated(i, mosaic_session):
    pass


@pytest.mark.parametrize("i", range(N))
async def test_isolated_uow(i, mosaic_session):
    async with transaction(mosaic_session):
        mosaic_session.add(User(email=f"u{i}@example.com", name="u"))
"""

CONFTEST = """
import json
import os
from collections import defaultdict

_durations = defaultdict(float)


def pytest_runtest_logreport(report):
    _durations[report.nodeid] += report.duration


def pytest_sessionfinish(session, exitstatus):
    with open(os.environ["BENCH_ISOLATION_OUT"], "w") as f:
        json.dump(dict(_durations), f)
"""

INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
mosaic_plugins = accounts tasks
"""


def _kind(nodeid: str) -> str:
    name = nodeid.split("::", 1)[1].split("[", 1)[0]
    return {
        "test_bare": "bare",
        "test_isolated": "isolated",
        "test_isolated_uow": "isolated + unit of work",
    }[name]


def run_pytest(work: Path, backend: str, flags: list[str], n: int) -> dict[str, list[float]]:
    out = work / "durations.json"
    env = {**os.environ, "BENCH_ISOLATION_N": str(n), "BENCH_ISOLATION_OUT": str(out)}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-c",
        str(work / "pytest.ini"),
        "--rootdir",
        str(REPO),
        f"--mosaic-backends={backend}",
        *flags,
        str(work / "test_isolation_bench.py"),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"pytest failed ({proc.returncode}) for {backend} {flags}")
    durations: dict[str, float] = json.loads(out.read_text())
    by_kind: dict[str, list[float]] = {}
    for nodeid, seconds in durations.items():
        by_kind.setdefault(_kind(nodeid), []).append(seconds * 1000)
    # the first test of each kind pays one-off session work (server, template, first compile)
    return {kind: values[1:] for kind, values in by_kind.items()}


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1], 3),
        "min_ms": round(ordered[0], 3),
        "max_ms": round(ordered[-1], 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run_isolation", description=__doc__)
    p.add_argument("--n", type=int, default=300, help="tests per kind in each pytest run")
    p.add_argument("--backends", default="postgresql,sqlite")
    p.add_argument("--out", default=str(RESULTS_DIR / "isolation.json"))
    args = p.parse_args(argv)
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="sqlmosaic-bench-isolation-") as tmp:
        work = Path(tmp)
        (work / "test_isolation_bench.py").write_text(TEST_FILE)
        (work / "conftest.py").write_text(CONFTEST)
        (work / "pytest.ini").write_text(INI)
        for backend in args.backends.split(","):
            for config, flags in CONFIGS.items():
                by_kind = run_pytest(work, backend, flags, args.n)
                row = {kind: _stats(values) for kind, values in by_kind.items()}
                overhead = row["isolated"]["median_ms"] - row["bare"]["median_ms"]
                row["overhead_ms"] = round(overhead, 3)
                results[f"{backend} / {config}"] = row
                print(
                    f"[isolation] {backend:<10} {config:<32} bare "
                    f"{row['bare']['median_ms']:.2f} ms, isolated "
                    f"{row['isolated']['median_ms']:.2f} ms, + unit of work "
                    f"{row['isolated + unit of work']['median_ms']:.2f} ms -> overhead "
                    f"{overhead:.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    out = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "loadavg": os.getloadavg(),
        "config": {"n": args.n, "target_ms": TARGET_MS},
        "results": results,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"[isolation] wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
