"""Warm-up at ``Mosaic.start()``: which first reads come from the statement cache, and what it
never does (write, fail the start, read a table that is not there). Both backends, on a
brand-new migrated database of the first-party plugins."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cache_hits import selects, start_logged
from sqlalchemy import literal_column, select, text
from sqlalchemy.engine.interfaces import CacheStats

import mosaic_accounts.plugin
from sqlmosaic import (
    Database,
    Mosaic,
    MosaicSettings,
    Repository,
    create_engine,
    create_session_factory,
    transaction,
)
from sqlmosaic._warm import warm_up

KEPT_TEAM = text("INSERT INTO team (name, created_at) VALUES ('kept', CURRENT_TIMESTAMP)")


def _key_for(repo: type[Repository[Any]]) -> Any:
    size = len(repo.primary_key())
    return 1 if size == 1 else (1,) * size


async def _first_reads(host: Mosaic) -> dict[str, list[CacheStats]]:
    """Each repository's first ``get`` and first default page after start, as a request runs
    them; returns their cache stats by repository key."""
    out: dict[str, list[CacheStats]] = {}
    for key, repo in sorted(host.plugins.repositories.items()):
        with selects(host.database.engine) as seen:
            async with host.database.session() as session, transaction(session):
                await repo(session).get_or_none(_key_for(repo))
                await repo(session).list()
        assert len(seen) == 2, (key, seen)  # one SELECT each, nothing else
        out[key] = [hit for _, hit in seen]
    return out


@pytest.mark.parametrize("warm", [True, False], ids=["warm_up", "default"])
async def test_first_reads_after_start_come_from_the_statement_cache(
    mosaic_fresh_url: str, warm: bool
) -> None:
    host = Mosaic(MosaicSettings.load(database_url=mosaic_fresh_url, warm_up=warm))
    await host.start()
    try:
        keys = sorted(host.plugins.repositories)
        assert len(keys) >= 6
        stats = await _first_reads(host)
    finally:
        await host.stop()
    # with the warm-up every model's first get and first page were compiled at start; without
    # it (the default) each is compiled by the request that first runs it
    expected = CacheStats.CACHE_HIT if warm else CacheStats.CACHE_MISS
    assert stats == {key: [expected] * 2 for key in keys}


async def test_the_statement_cache_is_sized_for_the_statements_warmed(
    mosaic_fresh_url: str,
) -> None:
    """SQLAlchemy's statement cache is an LRU (500 entries by default): a cache smaller than
    what the warm-up compiles evicts the first repositories' statements before any request.
    ``MOSAIC_QUERY_CACHE_SIZE=4`` shows it on the first-party plugins (6 repositories, 12
    statements); the host's own size (4 per repository, at least 500) keeps them all."""
    settings = MosaicSettings.load(database_url=mosaic_fresh_url, warm_up=True, query_cache_size=4)
    host = await Mosaic(settings).start()
    try:
        stats = await _first_reads(host)
    finally:
        await host.stop()
    first = sorted(stats)[0]
    assert stats[first] == [CacheStats.CACHE_MISS] * 2  # evicted


async def test_a_host_sizes_the_statement_cache_by_its_repositories(
    mosaic_fresh_url: str,
) -> None:
    """Database.size_statement_cache(n): room for 4 statements per repository. With 300
    repositories (1,200 entries), the first of 1,000 distinct statements run afterwards is still
    cached; with SQLAlchemy's default 500 it has been evicted."""

    async def first_still_cached(database: Database) -> CacheStats:
        await database.connect()
        try:
            async with database.engine.connect() as conn:
                for i in range(1000):
                    await conn.execute(select(literal_column(str(i)).label(f"c{i}")))
                with selects(database.engine) as seen:
                    await conn.execute(select(literal_column("0").label("c0")))
            return seen[0][1]
        finally:
            await database.dispose()

    sized = Database(MosaicSettings.load(database_url=mosaic_fresh_url))
    sized.size_statement_cache(300)
    assert await first_still_cached(sized) == CacheStats.CACHE_HIT
    default = Database(MosaicSettings.load(database_url=mosaic_fresh_url))
    assert await first_still_cached(default) == CacheStats.CACHE_MISS


async def test_warm_up_skips_missing_tables_and_writes_nothing(mosaic_fresh_url: str) -> None:
    """A database whose migrations are not all applied: the tables that are there are warmed,
    the others skipped, and the database is exactly as it was."""
    host = Mosaic(MosaicSettings.load(database_url=mosaic_fresh_url))
    repositories = (await asyncio.to_thread(host.load)).repositories  # reads package metadata
    engine = create_engine(MosaicSettings.load(database_url=mosaic_fresh_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE comment"))
            await conn.execute(KEPT_TEAM)
            before = await _snapshot(conn)
        with selects(engine) as seen:
            warmed = await warm_up(create_session_factory(engine), repositories)
        assert warmed == sorted(k for k in repositories if k != "comments.comments")
        statements = [s for s, _ in seen]
        assert not [s for s in statements if "FROM comment" in s]
        # a get and a page per warmed repository, and the table lists (once per database)
        assert len([s for s in statements if "LIMIT" in s]) == len(warmed)
        async with engine.connect() as conn:
            assert await _snapshot(conn) == before
    finally:
        await engine.dispose()


async def test_a_failing_table_is_skipped_with_one_warning_not_the_start(
    mosaic_fresh_url: str, mosaic_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A table that does not match its model (a column dropped by hand): its SELECT fails; the
    warm-up skips that repository, warms the others and says so once (no SQL, no values); the
    host starts and serves."""
    settings = MosaicSettings.load(database_url=mosaic_fresh_url, warm_up=True)
    engine = create_engine(settings)
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE project DROP COLUMN description"))
        await conn.execute(KEPT_TEAM)
    await engine.dispose()

    host = Mosaic(settings)
    with caplog.at_level(logging.DEBUG, logger="sqlmosaic.host"):
        await host.start()
    try:
        error = "ProgrammingError" if mosaic_backend == "postgresql" else "OperationalError"
        others = len(host.plugins.repositories) - 1
        assert [
            (r.levelno, r.getMessage()) for r in caplog.records if "warm-up" in r.getMessage()
        ] == [
            (
                logging.WARNING,
                f"warm-up on the primary: 1 repositories not warmed, the first "
                f"tasks.projects ({error})",
            ),
            (logging.DEBUG, f"warm-up on the primary: {others} repositories"),
        ]
        async with host.database.session() as session, transaction(session):
            teams = await host.repository("accounts.teams", session).list()
        assert [t.name for t in teams.items] == ["kept"]
    finally:
        await host.stop()


async def _snapshot(conn: Any) -> list[tuple[str, int]]:
    """Every table of the database with its row count."""

    def names(sync: Any) -> list[str]:
        from sqlalchemy import inspect

        return sorted(inspect(sync).get_table_names())

    tables = await conn.run_sync(names)
    counts = []
    for name in tables:
        counts.append((name, (await conn.execute(text(f'SELECT count(*) FROM "{name}"'))).scalar()))
    return counts


async def test_a_host_whose_database_cannot_be_opened_still_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The warm-up cannot connect (a SQLite file in a directory that does not exist): the start
    goes on, as it does without the warm-up, and says why at INFO only. (A PostgreSQL server
    that refuses the password: ``tests/reliability/test_auth.py``, one warning in all.)"""
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'app.sqlite'}"  # no password to mask
    host = Mosaic(MosaicSettings.load(database_url=url, warm_up=True))
    with caplog.at_level(logging.DEBUG, logger="sqlmosaic.host"):
        await host.start()
    try:
        assert host.running
        messages = [
            (r.levelno, r.getMessage()) for r in caplog.records if "warm-up" in r.getMessage()
        ]
        assert messages == [
            (
                logging.INFO,
                f"warm-up: no connection to {url} (OperationalError); its repositories are "
                "not warmed",
            ),
            (logging.DEBUG, "warm-up on the primary: 0 repositories"),
        ]
    finally:
        await host.stop()


@pytest.mark.mosaic_allow_blocking  # the other process's connection: sqlite3, on purpose
async def test_the_warm_up_takes_no_write_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another process holds SQLite's write lock (a migration, another worker) while the host
    starts: the warm-up only reads, so it waits for nothing (with no busy timeout, any wait for
    the lock would fail at once and be logged)."""
    path = tmp_path / "locked.sqlite"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")  # as sqlmosaic's engine leaves a database
    writer.execute("CREATE TABLE team (id INTEGER PRIMARY KEY, name TEXT, created_at TEXT)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO team (name) VALUES ('uncommitted')")
    settings = MosaicSettings.load(
        database_url=f"sqlite+aiosqlite:///{path}", warm_up=True, sqlite_busy_timeout=0
    )
    host = Mosaic(settings, plugins={"accounts": mosaic_accounts.plugin}, discover=False)
    try:
        messages = await start_logged(host, caplog)
        assert messages == ["warm-up on the primary: 1 repositories"]  # the one table there
        writer.execute("COMMIT")
    finally:
        writer.close()
        await host.stop()
