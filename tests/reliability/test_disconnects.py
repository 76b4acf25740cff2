"""Broken pooled connections never fail a unit of work, with no round trip per checkout.

The shipped PostgreSQL engine has no ``pool_pre_ping`` (three round trips before every unit of
work on asyncpg). Instead (``sqlmosaic._liveness``): a pooled connection the driver saw closed
is replaced at checkout for free, one idle longer than ``pool_ping_after`` is pinged first, and
``run_in_transaction`` / ``Database.run`` / ``@transactional`` run a unit once more when its
connection broke before COMMIT. Each test warms the pool first (every connection used), then
breaks every pooled connection, then counts failed units of work: always 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_tasks import Project, ProjectRepository
from sqlmosaic import Database, DatabaseUnavailableError, MosaicSettings
from sqlmosaic.testing._pgserver import start_postgres

from .proxy import PgProxy

pytestmark = pytest.mark.mosaic_backends("postgresql")

POOL = 4


async def _warm(db: Database, n: int = POOL) -> list[int]:
    """Make the pool hold ``n`` used connections; their backend pids."""
    barrier = asyncio.Barrier(n)

    async def hold(session: AsyncSession) -> int:
        connection = await session.connection()
        pid = int(await connection.scalar(text("SELECT pg_backend_pid()")))
        await barrier.wait()  # all n checked out at once: n distinct connections
        return pid

    pids = await asyncio.gather(*(db.run(hold) for _ in range(n)))
    assert len(set(pids)) == n
    return pids


def _settings(url: str, **extra: Any) -> MosaicSettings:
    return MosaicSettings.load(database_url=url, pool_size=POOL, max_overflow=0, **extra)


async def _units_of_work(db: Database, tag: str) -> list[BaseException]:
    """Every way a host runs database work, ``POOL`` of each at once; the failures."""

    async def in_block(n: int) -> None:
        async with db.transaction() as session:
            await ProjectRepository(session).add(Project(name=f"{tag} block {n}"))

    async def in_run(n: int) -> None:
        await db.run(lambda s: ProjectRepository(s).add(Project(name=f"{tag} run {n}")))

    async def plain_read(n: int) -> None:
        async with db.session() as session:
            await ProjectRepository(session).list(limit=1)

    calls: list[Callable[[int], Awaitable[None]]] = [in_block, in_run, plain_read]
    results = await asyncio.gather(
        *(call(n) for call in calls for n in range(POOL)), return_exceptions=True
    )
    return [r for r in results if isinstance(r, BaseException)]


async def _count(db: Database, prefix: str) -> int:
    async with db.session() as session:
        stmt = select(func.count()).select_from(Project).where(Project.name.startswith(prefix))  # type: ignore[attr-defined]
        return int((await session.exec(stmt)).one())


async def test_terminated_backends_fail_no_unit_of_work(
    mosaic_backend: str, mosaic_fresh_url: str
) -> None:
    async with Database(_settings(mosaic_fresh_url)) as db:
        pids = await _warm(db)
        admin = create_async_engine(mosaic_fresh_url, poolclass=NullPool)
        try:
            async with admin.connect() as conn:
                for pid in pids:  # waits (up to 60 s) until the backend has exited
                    killed = await conn.scalar(
                        text("SELECT pg_terminate_backend(:pid, 60000)"), {"pid": pid}
                    )
                    assert killed is True
        finally:
            await admin.dispose()
        assert await _units_of_work(db, "killed") == []
        assert await _count(db, "killed") == 2 * POOL
        assert not set(await _warm(db)) & set(pids)  # every pooled connection was replaced


async def test_a_server_restart_fails_no_unit_of_work() -> None:
    """On a private server (the shared test server must not restart under other tests)."""
    pg = await asyncio.to_thread(start_postgres)
    try:
        url = pg.url()
        async with Database(_settings(url)) as db:
            async with db.transaction() as session:
                connection = await session.connection()
                await connection.run_sync(lambda c: Project.metadata.create_all(c))
            pids = await _warm(db)
            await asyncio.to_thread(pg.restart)
            assert await _units_of_work(db, "restart") == []
            assert await _count(db, "restart") == 2 * POOL
            assert not set(await _warm(db)) & set(pids)
    finally:
        await asyncio.to_thread(pg.stop)


async def test_a_connection_broken_unseen_is_retried_by_run(
    mosaic_backend: str, proxy: PgProxy, proxied_url: str
) -> None:
    """The backend is gone but the client has not seen it (no FIN yet): the checkout check
    cannot know, the first statement fails, and the unit runs again on a fresh connection."""
    attempts = 0

    async def unit(session: AsyncSession) -> Project:
        nonlocal attempts
        attempts += 1
        return await ProjectRepository(session).add(Project(name="unseen"))

    async with Database(_settings(proxied_url)) as db:
        await _warm(db)
        proxy.sever()
        project = await db.run(unit)
        assert attempts == 2
        assert project.id is not None
        assert await _count(db, "unseen") == 1


async def test_a_connection_lost_twice_is_not_retried_again(
    mosaic_backend: str, proxy: PgProxy, proxied_url: str
) -> None:
    """One extra attempt only: a database that keeps dropping connections is unavailable."""
    attempts = 0

    async def unit(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        await session.connection()  # checked out (asyncpg sends BEGIN with the first statement)
        proxy.sever()
        await ProjectRepository(session).add(Project(name="never"))

    async with Database(_settings(proxied_url)) as db:
        await _warm(db)
        with pytest.raises(DatabaseUnavailableError):
            await db.run(unit)
    assert attempts == 2


@pytest.mark.parametrize("ping_after", [0.0, None])
async def test_an_idle_connection_is_pinged_past_the_threshold(
    mosaic_backend: str, proxy: PgProxy, proxied_url: str, ping_after: float | None
) -> None:
    """``async with db.transaction()`` cannot run its block again: for a connection broken
    unseen, only the idle ping protects it. ``pool_ping_after=0`` pings every checkout (the
    block succeeds); ``None`` never pings (the block fails: the check has a cost and a limit)."""
    async with Database(_settings(proxied_url, pool_ping_after=ping_after)) as db:
        await _warm(db)
        proxy.sever()

        async def block() -> None:
            async with db.transaction() as session:
                await ProjectRepository(session).add(Project(name="pinged"))

        if ping_after is None:
            with pytest.raises(DatabaseUnavailableError):
                await block()
        else:
            await block()
            assert await _count(db, "pinged") == 1
