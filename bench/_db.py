"""Fresh databases per run, schema creation, and the runner's untimed admin connection."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bench._schema import metadata
from bench.stacks import DbTarget


async def _create_schema(db: DbTarget) -> None:
    engine = create_async_engine(db.sa_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


@asynccontextmanager
async def postgres_database(pg_url: str | None, *, keep: bool = False) -> AsyncIterator[DbTarget]:
    """A new database ``bench_<time>_<pid>`` with the schema, dropped afterwards.

    On the server of ``pg_url`` (any database URL there; needs CREATEDB), or, without it, on a
    throwaway server from ``sqlmosaic.testing._pgserver`` (imported lazily).
    """
    server: Any = None
    if pg_url is None:
        from sqlmosaic.testing._pgserver import start_postgres

        print("[bench] starting a throwaway PostgreSQL server ...", file=sys.stderr)
        server = await asyncio.to_thread(start_postgres)
        pg_url = str(server.url("postgres", driver=""))
    try:
        base = make_url(pg_url)
        dbname = f"bench_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}"
        maintenance = base.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(maintenance)
        try:
            await conn.execute(f'CREATE DATABASE "{dbname}"')
        finally:
            await conn.close()
        target_url = base.set(database=dbname)
        db = DbTarget(
            backend="postgres",
            sa_url=target_url.set(drivername="postgresql+asyncpg").render_as_string(
                hide_password=False
            ),
            raw_dsn=target_url.set(drivername="postgresql").render_as_string(hide_password=False),
        )
        try:
            await _create_schema(db)
            admin = await asyncpg.connect(db.raw_dsn)
            try:
                # The runner vacuums/analyzes between phases; autovacuum kicking in mid-measurement
                # would only add noise.
                await admin.execute("ALTER TABLE item SET (autovacuum_enabled = false)")
            finally:
                await admin.close()
            yield db
        finally:
            if not keep:
                conn = await asyncpg.connect(maintenance)
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
                finally:
                    await conn.close()
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)


def _new_sqlite_file(path: str | None) -> tuple[Path, str | None]:
    tmpdir = None
    if path is None:
        tmpdir = tempfile.mkdtemp(prefix="sqlmosaic-bench-")
        path = str(Path(tmpdir) / "bench.db")
    file = Path(path)
    if file.exists():
        raise SystemExit(f"{file} exists; give a path to a new file")
    with sqlite3.connect(file) as conn:
        conn.execute("PRAGMA journal_mode=WAL")  # persistent, applies to every connection
    conn.close()
    return file, tmpdir


def _remove_sqlite_file(file: Path, tmpdir: str | None) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{file}{suffix}").unlink(missing_ok=True)
    if tmpdir is not None:
        shutil.rmtree(tmpdir, ignore_errors=True)


@asynccontextmanager
async def sqlite_database(path: str | None, *, keep: bool = False) -> AsyncIterator[DbTarget]:
    """A new SQLite file (WAL journal) with the schema, deleted afterwards."""
    file, tmpdir = _new_sqlite_file(path)
    db = DbTarget(backend="sqlite", sa_url=f"sqlite+aiosqlite:///{file}", raw_dsn=str(file))
    try:
        await _create_schema(db)
        yield db
    finally:
        if not keep:
            _remove_sqlite_file(file, tmpdir)


class Admin:
    """Untimed housekeeping between measurements (never goes through a benchmarked stack)."""

    def __init__(self, db: DbTarget) -> None:
        self.db = db
        self._pg: asyncpg.Connection | None = None
        self._lite: aiosqlite.Connection | None = None
        self.can_checkpoint = True

    async def open(self) -> None:
        if self.db.backend == "postgres":
            self._pg = await asyncpg.connect(self.db.raw_dsn)
        else:
            self._lite = await aiosqlite.connect(self.db.raw_dsn, isolation_level=None)

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._lite is not None:
            await self._lite.close()

    async def _exec(self, sql: str) -> None:
        if self._pg is not None:
            await self._pg.execute(sql)
        else:
            assert self._lite is not None
            await self._lite.execute(sql)

    async def _fetch(self, sql: str) -> list[tuple[Any, ...]]:
        if self._pg is not None:
            return [tuple(r) for r in await self._pg.fetch(sql)]
        assert self._lite is not None
        return [tuple(r) for r in await self._lite.execute_fetchall(sql)]

    async def reset(self) -> None:
        """Empty the table; new ids start at 1 again."""
        if self._pg is not None:
            await self._exec("TRUNCATE item RESTART IDENTITY")
        else:
            await self._exec("DELETE FROM item")  # INTEGER PRIMARY KEY restarts at max(id)+1 = 1
        await self.settle()

    async def settle(self) -> None:
        """Vacuum/analyze and flush so background work does not land in the next measurement."""
        if self._pg is not None:
            await self._exec("VACUUM ANALYZE item")
            if self.can_checkpoint:
                try:
                    await self._exec("CHECKPOINT")
                except asyncpg.InsufficientPrivilegeError:
                    self.can_checkpoint = False
        else:
            await self._exec("ANALYZE item")
            await self._exec("PRAGMA wal_checkpoint(TRUNCATE)")

    async def count(self) -> int:
        return int((await self._fetch("SELECT count(*) FROM item"))[0][0])

    async def ids(self) -> list[int]:
        return [int(r[0]) for r in await self._fetch("SELECT id FROM item ORDER BY id")]

    async def count_qty(self, qty: int) -> int:
        return int((await self._fetch(f"SELECT count(*) FROM item WHERE qty = {int(qty)}"))[0][0])

    async def server_info(self) -> dict[str, str]:
        if self._pg is not None:
            names = ("server_version", "fsync", "synchronous_commit", "shared_buffers", "jit")
            return {n: str((await self._fetch(f"SHOW {n}"))[0][0]) for n in names}
        journal = str((await self._fetch("PRAGMA journal_mode"))[0][0])
        return {"sqlite_version": sqlite3.sqlite_version, "journal_mode": journal}
