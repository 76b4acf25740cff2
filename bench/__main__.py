"""Run every benchmark: ``python -m bench`` (from the repository root, with the project venv).

    python -m bench                       # all: data, startup, check, fixtures, isolation, timeouts
    python -m bench data check            # only these
    python -m bench --quick               # small sizes, results in a temp dir (smoke test)

Full run: about 30 minutes on the 2-core dev machine (the data benchmark, 5 rounds, is ~15).
Results: ``bench/results/*.json`` (``--quick``: a temp dir, printed at the end). Every
PostgreSQL server is started by the benchmark itself and stopped at the end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent

FULL: dict[str, list[str]] = {
    "data": ["--rounds", "5"],  # what docs/performance.md shows
    "startup": [],
    "check": [],
    "fixtures": [],
    "isolation": [],
    "timeouts": [],
}
QUICK: dict[str, list[str]] = {
    "data": ["--scale", "0.05", "--rounds", "1"],
    "startup": ["--plugins", "20", "--repeat", "2"],
    "check": ["--tables", "50", "--repeat", "1", "--cli-repeat", "1"],
    "fixtures": ["--n", "30", "--clones", "3", "--big-tables", "50"],
    "isolation": ["--n", "20"],
    "timeouts": ["--repeat", "1"],
}
OUT: dict[str, str] = {
    "data": "data-{backend}.json",
    "startup": "startup.json",
    "check": "check.json",
    "fixtures": "fixtures.json",
    "isolation": "isolation.json",
    "timeouts": "timeouts.json",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("which", nargs="*", help=f"any of {', '.join(FULL)} (default: all)")
    p.add_argument("--quick", action="store_true", help="small sizes; results in a temp dir")
    args = p.parse_args(argv)
    which = args.which or list(FULL)
    unknown = [w for w in which if w not in FULL]
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(FULL)}")
    out_dir = Path(tempfile.mkdtemp(prefix="sqlmosaic-bench-")) if args.quick else RESULTS
    failed = []
    for name in which:
        extra = (QUICK if args.quick else FULL)[name]
        cmd = [
            sys.executable,
            "-m",
            f"bench.run_{name}",
            *extra,
            "--out",
            str(out_dir / OUT[name]),
        ]
        print(f"\n[bench] {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        code = subprocess.call(cmd, cwd=REPO)
        print(
            f"[bench] {name}: exit {code} after {time.perf_counter() - started:.0f}s",
            file=sys.stderr,
        )
        if code:
            failed.append(name)
    print(f"[bench] results in {out_dir}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
