"""A server that stopped answering: seconds until the caller gets the error, teardown included.

    python -m bench.run_timeouts                  # command_timeout 2 s, 5 repeats per case
    python -m bench.run_timeouts --timeout 1 --repeat 3 --pg-url postgresql://postgres@127.0.0.1:5432/postgres

A throwaway PostgreSQL server (or ``--pg-url``), with the reliability suite's asyncio TCP proxy
(``tests/reliability/proxy.py``) in between. Each repeat warms one pooled connection, then the
proxy turns into a black hole (sockets open, nothing relayed) and a unit of work runs
``SELECT 1``; the figure is the time from the statement to the error reaching the caller, i.e.
including the broken connection's teardown. Cases:

* ``sqlmosaic``: ``Database`` with ``command_timeout`` (the issue's ``MOSAIC_COMMAND_TIMEOUT=2``):
  the typed ``DatabaseUnavailableError``;
* ``sqlalchemy``: a plain ``create_async_engine`` with the same asyncpg ``command_timeout``, and
  ``session.begin()``: what sqlmosaic did before issue 12 (about twice the timeout);
* ``sqlmosaic_default``: no ``command_timeout`` (the default); the caller's own
  ``asyncio.timeout(T)`` (a host's request timeout) is the bound;
* ``sqlalchemy_default``: the same with a plain engine.

Target (issue 12): the configured timeout is the bound the caller sees, +- 0.5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from sqlmosaic import Database, MosaicSettings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from reliability.proxy import pg_proxy  # the test suite's fault-injecting proxy

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TOLERANCE = 0.5


async def _until_error(proxy: Any, hung: Callable[[], Awaitable[None]]) -> float:
    """Seconds from the start of ``hung()`` (which hangs the proxy) to the error it raises."""
    started = time.perf_counter()
    try:
        await hung()
    except Exception as exc:
        elapsed = time.perf_counter() - started
        print(f"  {type(exc).__name__}: {elapsed:.3f} s", file=sys.stderr)
        return elapsed
    finally:
        proxy.resume()
    raise AssertionError("no error from a hung server")


async def _mosaic(url: str, seconds: float, default: bool) -> Callable[[Any], Awaitable[float]]:
    settings = MosaicSettings.load(
        database_url=url, command_timeout=None if default else seconds, pool_size=1
    )
    db = await Database(settings).connect()

    async def once(proxy: Any) -> float:
        async with db.session() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]

        async def hung() -> None:
            async with asyncio.timeout(seconds if default else None), db.transaction() as s:
                proxy.hang()
                await s.exec(text("SELECT 1"))  # type: ignore[call-overload]

        return await _until_error(proxy, hung)

    once.close = db.dispose  # type: ignore[attr-defined]
    return once


async def _plain(url: str, seconds: float, default: bool) -> Callable[[Any], Awaitable[float]]:
    connect_args = {} if default else {"command_timeout": seconds}
    engine = create_async_engine(url, pool_size=1, connect_args=connect_args)
    factory = async_sessionmaker(engine)

    async def once(proxy: Any) -> float:
        async with factory() as session:
            await session.execute(text("SELECT 1"))

        async def hung() -> None:
            async with (
                asyncio.timeout(seconds if default else None),
                factory() as s,
                s.begin(),
            ):
                proxy.hang()
                await s.execute(text("SELECT 1"))

        return await _until_error(proxy, hung)

    once.close = engine.dispose  # type: ignore[attr-defined]
    return once


CASES = {
    "sqlmosaic": (_mosaic, False),
    "sqlalchemy": (_plain, False),
    "sqlmosaic_default": (_mosaic, True),
    "sqlalchemy_default": (_plain, True),
}


async def run(pg_url: str | None, seconds: float, repeat: int) -> dict[str, Any]:
    server = None
    if pg_url is None:
        from sqlmosaic.testing._pgserver import start_postgres

        server = await asyncio.to_thread(start_postgres)
        pg_url = server.url("postgres")
    try:
        base = make_url(pg_url).set(drivername="postgresql+asyncpg")
        assert base.host is not None
        assert base.port is not None
        results: dict[str, Any] = {}
        for name, (build, default) in CASES.items():
            print(f"[bench] {name}", file=sys.stderr)
            times = []
            for _ in range(repeat):
                async with pg_proxy(base.host, base.port) as proxy:
                    url = base.set(host="127.0.0.1", port=proxy.port)
                    once = await build(url.render_as_string(hide_password=False), seconds, default)
                    try:
                        times.append(await once(proxy))
                    finally:
                        await once.close()  # type: ignore[attr-defined]
            results[name] = {
                "median_s": round(statistics.median(times), 3),
                "max_s": round(max(times), 3),
                "runs_s": [round(t, 3) for t in times],
                "within_target": all(abs(t - seconds) <= TOLERANCE for t in times),
            }
        return results
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run_timeouts", description=__doc__)
    p.add_argument("--timeout", type=float, default=2.0, help="command_timeout, seconds")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--pg-url")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "timeouts.json")
    args = p.parse_args(argv)
    results = asyncio.run(run(args.pg_url, args.timeout, args.repeat))
    report = {
        "command_timeout_s": args.timeout,
        "tolerance_s": TOLERANCE,
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        "cases": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
