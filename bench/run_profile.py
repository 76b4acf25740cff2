"""Diagnostics behind docs/performance.md: client CPU per op, Python calls per op, profiles.

    python -m bench.run_profile --backend sqlite --op get --stacks sa_orm,sqlmosaic
    python -m bench.run_profile --op page --stacks sqlmodel_async,sqlmosaic --profile-dir /tmp/p
    python -m bench.run_profile --op insert_one --stacks sa_orm,sqlmosaic,sqlmosaic_client_timeout

Runs one op of ``run_data`` in a loop for a few stacks (interleaved rounds, 20,000 rows in the
table), and reports per stack: wall-clock throughput, this process's CPU time per op (steady on
a busy machine) and, from one extra cProfile'd round, Python function calls per op (a
deterministic measure of how much Python a stack runs). ``--profile-dir`` keeps the profiles
(``pstats`` files; compare two with ``--diff A B``).

Extra diagnostic variants (not in ``run_data``):

* ``sqlmosaic_client_timeout``: the ``sqlmosaic`` stack with ``command_timeout=60`` (asyncpg then
  arms a timer per statement), to price that opt-in client-side timeout.
* ``sqlmosaic_with_listener``: the ``sqlmosaic`` stack with a no-op ``before_cursor_execute``
  listener on its engine, to price SQLAlchemy's per-statement event dispatch (which sqlmosaic's
  engines avoid: they install no connection event listener).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench._db import Admin, postgres_database, sqlite_database
from bench._schema import make_rows
from bench.stacks import DbTarget, Stack, discover

VARIANTS = ("sqlmosaic_client_timeout", "sqlmosaic_with_listener")
OPS = ("get", "page", "insert_one", "update", "concurrent_get", "bulk_insert")


def _variant(name: str) -> Stack:
    if name == "sqlmosaic_client_timeout":
        from sqlalchemy.ext.asyncio import AsyncEngine

        from bench.stacks._base import POOL_SIZE
        from bench.stacks.sqlmosaic import SQLITE_BUSY_TIMEOUT, Sqlmosaic
        from sqlmosaic import MosaicSettings, create_engine

        class ClientTimeout(Sqlmosaic):
            def create_engine(self, db: DbTarget) -> AsyncEngine:
                settings = MosaicSettings.load(
                    database_url=db.sa_url,
                    pool_size=POOL_SIZE,
                    max_overflow=0,
                    sqlite_busy_timeout=SQLITE_BUSY_TIMEOUT,
                    command_timeout=60,
                )
                return create_engine(settings, pool_pre_ping=False)

        ClientTimeout.name = name
        return ClientTimeout()
    if name == "sqlmosaic_with_listener":
        from sqlalchemy import event

        from bench.stacks.sqlmosaic import Sqlmosaic

        class WithListener(Sqlmosaic):
            async def on_setup(self) -> None:
                await super().on_setup()
                event.listen(self.engine.sync_engine, "before_cursor_execute", _noop)

        WithListener.name = name
        return WithListener()
    raise SystemExit(f"unknown variant {name!r}")


def _noop(*_args: Any) -> None:
    pass


async def _run_op(stack: Stack, op: str, n: int, ids: list[int], rng: random.Random) -> None:
    if op == "get":
        for _ in range(n):
            await stack.get(rng.choice(ids))
    elif op == "page":
        for _ in range(n):
            await stack.page(rng.randrange(4_900))
    elif op == "update":
        for _ in range(n):
            await stack.update(rng.choice(ids), 1_000_000 + rng.randrange(10**6))
    elif op == "insert_one":
        for row in make_rows(n, prefix=f"p{rng.random()}"):
            await stack.insert_one(row)
    elif op == "concurrent_get":

        async def worker() -> None:
            for _ in range(max(1, n // 64)):
                await stack.get(rng.choice(ids))

        await asyncio.gather(*(worker() for _ in range(64)))
    elif op == "bulk_insert":
        await stack.bulk_insert(make_rows(n, prefix=f"b{rng.random()}"))


async def main_async(args: argparse.Namespace) -> None:
    names = [s for s in args.stacks.split(",") if s]
    plain = {n for n in names if n not in VARIANTS}
    found = {cls.name: cls for cls in discover(plain)} if plain else {}
    db_cm = postgres_database(args.pg_url) if args.backend == "postgres" else sqlite_database(None)
    async with db_cm as db:
        admin = Admin(db)
        await admin.open()
        stacks = [found[n]() if n in found else _variant(n) for n in names]
        for stack in stacks:
            await stack.setup(db)
        try:
            await stacks[0].bulk_insert(make_rows(20_000))
            await admin.settle()
            ids = await admin.ids()
            rng = random.Random(1)
            wall: dict[str, list[float]] = {s.name: [] for s in stacks}
            cpu: dict[str, list[float]] = {s.name: [] for s in stacks}
            for stack in stacks:  # warm-up
                await _run_op(stack, args.op, max(20, args.n // 10), ids, rng)
            for rnd in range(args.rounds):
                for stack in stacks if rnd % 2 == 0 else stacks[::-1]:
                    gc.collect()
                    t, c = time.perf_counter(), time.process_time()
                    await _run_op(stack, args.op, args.n, ids, rng)
                    wall[stack.name].append(args.n / (time.perf_counter() - t))
                    cpu[stack.name].append((time.process_time() - c) / args.n * 1e6)
            calls: dict[str, float] = {}
            for stack in stacks:
                gc.collect()
                prof = cProfile.Profile()
                prof.enable()
                await _run_op(stack, args.op, args.n, ids, rng)
                prof.disable()
                stats = pstats.Stats(prof)
                calls[stack.name] = stats.total_calls / args.n  # type: ignore[attr-defined]
                if args.profile_dir:
                    prof.dump_stats(
                        f"{args.profile_dir}/{args.backend}-{args.op}-{stack.name}.prof"
                    )
        finally:
            for stack in stacks:
                await stack.teardown()
            await admin.close()
    ref = names[0]
    print(f"\n{args.backend} {args.op}: n={args.n} x {args.rounds} rounds (ratios vs {ref})")
    print(f"{'stack':<22} {'ops/s':>9} {'x ref':>6} {'cpu us/op':>10} {'x ref':>6} {'calls/op':>9}")
    for name in names:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        wr = w / statistics.median(wall[ref])
        cr = statistics.median(cpu[ref]) / c
        print(f"{name:<22} {w:>9,.0f} {wr:>6.2f} {c:>10,.1f} {cr:>6.2f} {calls[name]:>9,.0f}")


def diff(a: str, b: str, top: int) -> None:
    """Functions whose own time grew most from profile ``a`` to profile ``b``."""

    def load(path: str) -> dict[str, tuple[int, float]]:
        raw: dict[Any, Any] = pstats.Stats(path).stats  # type: ignore[attr-defined]
        return {
            f"{fn.split('site-packages/')[-1]}:{line}({name})": (v[1], v[2])
            for (fn, line, name), v in raw.items()
        }

    pa, pb = load(a), load(b)
    keys = sorted(pa.keys() | pb.keys(), key=lambda k: pa.get(k, (0, 0))[1] - pb.get(k, (0, 0))[1])
    print(f"own time b - a (s), calls a -> b; a={a} b={b}")
    for k in keys[:top]:
        (ca, ta), (cb, tb) = pa.get(k, (0, 0.0)), pb.get(k, (0, 0.0))
        print(f"{tb - ta:+8.3f}  {ca:>7} -> {cb:<7} {k}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.run_profile", description=__doc__.split("\n")[0]
    )
    p.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    p.add_argument("--op", choices=OPS, default="get")
    p.add_argument("--stacks", default="sa_orm,sqlmosaic", help="first one is the reference")
    p.add_argument("--n", type=int, default=2_000, help="ops per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pg-url", help="existing server (default: a throwaway one)")
    p.add_argument("--profile-dir", help="keep the cProfile stats here")
    p.add_argument("--diff", nargs=2, metavar=("A", "B"), help="compare two saved profiles")
    p.add_argument("--top", type=int, default=30)
    args = p.parse_args(argv)
    if args.diff:
        diff(args.diff[0], args.diff[1], args.top)
        return 0
    if args.profile_dir:
        Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
