"""Per-test overhead of sqlmosaic's test isolation, on PostgreSQL (and SQLite for comparison).

    python -m bench.run_fixtures                 # N = 300 isolated sessions, 30 clones
    python -m bench.run_fixtures --n 1000 --clones 50 --big-tables 500

Measured, each as the pytest plugin's fixtures do it (``sqlmosaic.testing``), medians over N:

* ``savepoint``: check out a pooled connection of the session engine
  (``sqlmosaic.create_engine``), ``BEGIN`` the outer transaction, build the session factory
  bound to it (``join_transaction_mode="create_savepoint"``), open and close a session,
  ``ROLLBACK``, return the connection: the whole per-test cost of ``mosaic_session``.
  ``savepoint + unit of work`` adds a body: one ``transaction(session)`` that inserts a user
  (a SAVEPOINT / RELEASE inside the outer transaction), for scale.
* ``clone``: a fresh database cloned from the migrated template (``CREATE DATABASE ...
  TEMPLATE``) and dropped again, through pytest-postgresql's ``DatabaseJanitor`` as
  ``mosaic_fresh_url`` does; ``clone + connect`` also opens an engine on it and runs one query.
  The template holds the reference host's migrations (accounts + tasks); ``--big-tables`` adds a
  template with that many generated tables (``bench/_gen.py``, ``create_all``).
* SQLite: the same savepoint session on a file, and the fresh copy of a template file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _stats(values: list[float]) -> dict[str, float]:
    """Seconds in, milliseconds out."""
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values) * 1000, 3),
        "min_ms": round(min(values) * 1000, 3),
        "max_ms": round(max(values) * 1000, 3),
        "p90_ms": round(sorted(values)[int(len(values) * 0.9) - 1] * 1000, 3),
    }


async def _timed(n: int, fn: Callable[[int], Awaitable[None]], warmup: int = 10) -> list[float]:
    for i in range(warmup):
        await fn(-1 - i)
    times = []
    for i in range(n):
        t = time.perf_counter()
        await fn(i)
        times.append(time.perf_counter() - t)
    return times


async def savepoint_overhead(url: str, n: int, **engine_options: Any) -> dict[str, Any]:
    from mosaic_accounts.models import User
    from mosaic_accounts.repositories import UserRepository
    from sqlmosaic import MosaicSettings, create_engine, create_session_factory, transaction

    engine = create_engine(MosaicSettings.load(database_url=url), **engine_options)
    try:

        async def isolated(i: int, body: bool) -> None:
            async with engine.connect() as connection:
                outer = await connection.begin()
                factory = create_session_factory(
                    connection, join_transaction_mode="create_savepoint"
                )
                async with factory() as session:
                    if body:
                        async with transaction(session):
                            await UserRepository(session).add(
                                User(email=f"u{i}@example.com", name="U")
                            )
                await outer.rollback()

        plain_factory = create_session_factory(engine)

        async def plain(i: int) -> None:
            """The same unit of work without isolation (it commits; cleaned up afterwards)."""
            async with plain_factory() as session, transaction(session):
                await UserRepository(session).add(User(email=f"plain{i}@example.com", name="P"))

        empty = await _timed(n, lambda i: isolated(i, False))
        with_uow = await _timed(n, lambda i: isolated(i, True))
        async with engine.connect() as connection:
            left = (await connection.exec_driver_sql('SELECT count(*) FROM "user"')).scalar()
        if left:
            raise AssertionError(f"isolation leaked {left} rows")
        baseline = await _timed(n, plain)
        async with engine.begin() as connection:
            await connection.exec_driver_sql('DELETE FROM "user"')
    finally:
        await engine.dispose()
    return {
        "savepoint": _stats(empty),
        "savepoint_with_unit_of_work": _stats(with_uow),
        "unit_of_work_without_isolation": _stats(baseline),
    }


def _migrate(url: str) -> float:
    """Upgrade ``url`` to the reference host's heads (alembic.ini of the repository)."""
    from sqlmosaic.migrations import alembic_config, upgrade

    cfg = alembic_config(REPO / "alembic.ini", url=url)
    t = time.perf_counter()
    asyncio.run(upgrade(cfg))
    return time.perf_counter() - t


def clone_overhead(server: Any, template: str, clones: int, prefix: str) -> dict[str, Any]:
    from pytest_postgresql.janitor import DatabaseJanitor
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    def janitor(name: str) -> DatabaseJanitor:
        return DatabaseJanitor(
            user=server["user"],
            host=server["host"],
            port=server["port"],
            password=server["password"],
            dbname=name,
            template_dbname=template,
        )

    async def first_query(url: str) -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    bare: list[float] = []
    connected: list[float] = []
    for i in range(clones + 3):
        name = f"{prefix}_{i}"
        t = time.perf_counter()
        with janitor(name):
            pass
        if i >= 3:
            bare.append(time.perf_counter() - t)
        name = f"{prefix}_c{i}"
        t = time.perf_counter()
        with janitor(name):
            asyncio.run(first_query(server["url"](name)))
        if i >= 3:
            connected.append(time.perf_counter() - t)

    async def sql_only(strategy: str = "") -> tuple[list[float], list[float]]:
        """CREATE DATABASE ... TEMPLATE, then DROP DATABASE, on one open admin connection."""
        import asyncpg

        conn = await asyncpg.connect(server["url"]("postgres", ""))
        creates, drops = [], []
        try:
            for i in range(clones + 3):
                t = time.perf_counter()
                await conn.execute(
                    f'CREATE DATABASE "{prefix}_s{i}" TEMPLATE "{template}" {strategy}'
                )
                t2 = time.perf_counter()
                await conn.execute(f'DROP DATABASE "{prefix}_s{i}"')
                if i >= 3:
                    creates.append(t2 - t)
                    drops.append(time.perf_counter() - t2)
        finally:
            await conn.close()
        return creates, drops

    creates, drops = asyncio.run(sql_only())
    # PostgreSQL 15+ copies through the WAL by default; FILE_COPY copies the files after a
    # checkpoint (cheaper for small templates, when few buffers are dirty)
    file_copy, _ = asyncio.run(sql_only("STRATEGY FILE_COPY"))
    return {
        "clone": _stats(bare),
        "clone_and_connect": _stats(connected),
        "create_database_sql": _stats(creates),
        "create_database_file_copy_sql": _stats(file_copy),
        "drop_database_sql": _stats(drops),
    }


def _create_big_template(url: str, tables: int, work: Path) -> int:
    """A database with ``tables`` generated tables (create_all of the merged metadata)."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from bench._gen import TABLES_PER_PLUGIN, generate

    gen = generate(work / "gen", max(1, tables // TABLES_PER_PLUGIN))
    import importlib

    from sqlmosaic import load_plugins

    sys.path.insert(0, str(gen.root))
    try:
        modules = [importlib.import_module(m) for m in gen.modules]
    finally:  # out of the path again: later migrations must not discover these plugins
        sys.path.remove(str(gen.root))
    plugins = load_plugins(plugins=dict(zip(gen.names, modules, strict=True)), discover=False)
    merged = plugins.metadata

    async def create() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(merged.create_all)
        finally:
            await engine.dispose()

    asyncio.run(create())
    return len(merged.tables)


def sqlite_overhead(n: int, clones: int, work: Path) -> dict[str, Any]:
    from sqlmosaic.testing._template import copy_sqlite, remove_sqlite, seal_sqlite

    template = work / "template.db"
    _migrate(f"sqlite+aiosqlite:///{template}")
    seal_sqlite(template)
    db = work / "work.db"
    copy_sqlite(template, db)
    result = asyncio.run(savepoint_overhead(f"sqlite+aiosqlite:///{db}", n))
    copies = []
    for i in range(clones + 3):
        target = work / f"copy_{i}.db"
        t = time.perf_counter()
        copy_sqlite(template, target)
        remove_sqlite(target)
        if i >= 3:
            copies.append(time.perf_counter() - t)
    return {**result, "copy_template_file": _stats(copies)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.run_fixtures", description=__doc__.split("\n")[0]
    )
    p.add_argument("--n", type=int, default=300, help="isolated sessions measured")
    p.add_argument("--clones", type=int, default=30, help="template clones measured")
    p.add_argument("--big-tables", type=int, default=500, help="0: skip the big template")
    p.add_argument("--no-sqlite", action="store_true")
    p.add_argument("--out", default=str(RESULTS_DIR / "fixtures.json"))
    args = p.parse_args(argv)

    from bench.run_data import machine_info
    from sqlmosaic.testing._pgserver import running_postgres

    started = time.perf_counter()
    results: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="sqlmosaic-fixtures-"))
    try:
        print("[fixtures] starting a throwaway PostgreSQL server ...", file=sys.stderr)
        with running_postgres() as pg:
            server = {
                "user": pg.user,
                "host": pg.host,
                "port": pg.port,
                "password": pg.password,
                "url": lambda name, driver="asyncpg": pg.url(name, driver=driver),
            }
            import asyncpg

            async def admin(*sql: str) -> None:
                conn = await asyncpg.connect(pg.url("postgres", driver=""))
                try:
                    for statement in sql:
                        await conn.execute(statement)
                finally:
                    await conn.close()

            asyncio.run(admin("CREATE DATABASE fx_template"))
            migrate_s = _migrate(pg.url("fx_template"))
            asyncio.run(admin("CREATE DATABASE fx_work TEMPLATE fx_template"))
            pg_results = asyncio.run(savepoint_overhead(pg.url("fx_work"), args.n))
            no_ping = asyncio.run(
                savepoint_overhead(pg.url("fx_work"), args.n, pool_pre_ping=False)
            )
            pg_results["savepoint_no_pre_ping"] = no_ping["savepoint"]
            pg_results["template_migrate_seconds"] = round(migrate_s, 3)
            pg_results.update(clone_overhead(server, "fx_template", args.clones, "fx_clone"))
            if args.big_tables:
                asyncio.run(admin("CREATE DATABASE fx_big"))
                tables = _create_big_template(pg.url("fx_big"), args.big_tables, work)
                big = clone_overhead(server, "fx_big", args.clones, "fx_bigclone")
                for key, value in big.items():
                    pg_results[f"{key}_{tables}_tables"] = value
            results["postgres"] = pg_results
        if not args.no_sqlite:
            results["sqlite"] = sqlite_overhead(args.n, args.clones, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "machine": {**machine_info(), "loadavg": os.getloadavg()},
        "config": {"n": args.n, "clones": args.clones, "big_tables": args.big_tables},
        "results": results,
    }
    print("\n== per-test overhead (ms: median, p90) ==")
    for backend, r in results.items():
        for name, s in r.items():
            if isinstance(s, dict):
                print(f"{backend:<9} {name:<36} {s['median_ms']:>9.2f} {s['p90_ms']:>9.2f}")
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"[fixtures] wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
