"""The start's warm-up on PostgreSQL: it never waits behind a migration's table lock, holds no
lock past its own repository, and warms the read replicas too. (Found by a review: each test
failed before the warm-up got its lock timeout, a transaction per repository and the replica
pass.)"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from cache_hits import selects
from sqlalchemy import text
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.ext.asyncio import AsyncConnection

from sqlmosaic import Mosaic, MosaicSettings, create_engine

pytestmark = pytest.mark.parametrize("mosaic_backend", ["postgresql"], indirect=True)

WAITING_ON_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


async def _blocked(start: asyncio.Task[Any], observer: AsyncConnection) -> bool:
    """Whether ``start`` ends up waiting on a lock (True) or finishes (False); no time limit:
    one of the two happens."""
    while not start.done():
        waiting = (await observer.execute(WAITING_ON_A_LOCK)).scalar()
        await observer.commit()
        if waiting:
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.mark.parametrize("warm", [False, True], ids=["default", "warm_up"])
async def test_start_does_not_wait_for_a_running_migrations_lock(
    mosaic_fresh_url: str, warm: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A migration is altering ``membership`` while a host starts: the start finishes while the
    lock is still held (the default start reads no table; the warm-up gives up on that table
    after its lock timeout and says so)."""
    settings = MosaicSettings.load(database_url=mosaic_fresh_url, warm_up=warm)
    engine = create_engine(settings)
    host = Mosaic(settings)
    try:
        async with engine.connect() as migration:
            await migration.begin()
            await migration.execute(text("ALTER TABLE membership ADD COLUMN note text"))
            with caplog.at_level(logging.INFO, logger="sqlmosaic.host"):
                # a guard against hanging the run if the start waited for the lock, not a
                # speed limit: the lock is released only after the start has finished
                await asyncio.wait_for(host.start(), timeout=120)
            await migration.rollback()
        locked = [r.getMessage() for r in caplog.records if "were locked" in r.getMessage()]
        assert locked == (
            [
                "warm-up on the primary: 1 repositories skipped, their tables were locked "
                "(a migration running?): accounts.memberships"
            ]
            if warm
            else []
        )
    finally:
        await host.stop()
        await engine.dispose()


async def test_a_waiting_warm_up_does_not_block_ddl_on_tables_it_already_read(
    mosaic_fresh_url: str,
) -> None:
    """One migration holds ``task`` (last in key order), so the warm-up waits there; a second
    DDL on ``membership`` (read earlier), with the lock timeout ``mosaic db upgrade`` sets,
    must not fail because of the warm-up. (It failed, 55P03, when the warm-up read every table
    in one transaction with no lock timeout.)"""
    settings = MosaicSettings.load(database_url=mosaic_fresh_url, warm_up=True)
    engine = create_engine(settings)
    host = Mosaic(settings)
    try:
        async with engine.connect() as first, engine.connect() as second:
            await first.begin()
            await first.execute(text("ALTER TABLE task ADD COLUMN note text"))
            start = asyncio.create_task(host.start())
            await _blocked(start, second)  # waits there (up to its lock timeout) or finished
            sqlstate = None
            await second.begin()
            await second.execute(text("SET LOCAL lock_timeout = '500ms'"))
            try:
                await second.execute(text("ALTER TABLE membership ADD COLUMN note2 text"))
            except Exception as exc:
                sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", "?")
            await second.rollback()
            await first.rollback()
            await start
        assert sqlstate is None, f"DDL on membership failed (SQLSTATE {sqlstate})"
    finally:
        await host.stop()
        await engine.dispose()


async def test_warm_up_serves_a_replicas_first_read_from_the_statement_cache(
    mosaic_fresh_url: str,
) -> None:
    """Read-only units of work run on a replica's engine, which has a statement cache of its
    own. (The "replica" is the same database through its own engine: what routing sees.)"""
    settings = MosaicSettings.load(
        database_url=mosaic_fresh_url, read_replica_urls=mosaic_fresh_url, warm_up=True
    )
    host = await Mosaic(settings).start()
    try:
        (replica,) = host.database.replica_engines
        with selects(replica) as seen:
            async with host.unit_of_work(read_only=True) as uow:
                await uow.repository("accounts.teams").get_or_none(1)
                await uow.repository("accounts.teams").list()
        assert [hit for _, hit in seen] == [CacheStats.CACHE_HIT] * 2
    finally:
        await host.stop()
