"""Engines built by ``sqlmosaic.create_engine`` and the ``Database`` lifecycle, on real servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from mosaic_accounts import Team, TeamRepository, User, UserRepository
from sqlmosaic import (
    ConfigurationError,
    Database,
    DatabaseUnavailableError,
    MosaicSettings,
    create_engine,
    create_session_factory,
    transaction,
)
from sqlmosaic._engine import SQLITE_BEGIN_OPTION, DeferredBeginConnection


@pytest.fixture
async def pg_engine(mosaic_pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(
        MosaicSettings.load(
            database_url=mosaic_pg_url,
            application_name="billing-worker",
            statement_timeout=1.5,
            pool_size=1,
            max_overflow=0,
        )
    )
    yield engine
    await engine.dispose()


@pytest.fixture
async def sqlite_engine(mosaic_sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(
        MosaicSettings.load(database_url=mosaic_sqlite_url, sqlite_busy_timeout=2.5)
    )
    yield engine
    await engine.dispose()


# --------------------------------------------------------------------------- PostgreSQL


async def test_postgres_engine_options(pg_engine: AsyncEngine) -> None:
    # no ping per checkout (three round trips on asyncpg): the liveness check instead
    assert pg_engine.pool._pre_ping is False  # type: ignore[attr-defined]
    assert pg_engine.sync_engine.hide_parameters is True
    async with pg_engine.connect() as conn:
        name = await conn.scalar(
            text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
        )
        assert name == "billing-worker"
        assert await conn.scalar(text("SHOW statement_timeout")) == "1500ms"


async def test_default_application_name_and_timeouts(mosaic_pg_url: str) -> None:
    engine = create_engine(MosaicSettings.load(database_url=mosaic_pg_url))
    try:
        async with engine.connect() as conn:
            name = await conn.scalar(
                text("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
            )
            # no timeout unless configured (as SQLAlchemy and asyncpg): no startup parameter
            # (PgBouncer refuses unknown ones), no client-side timer per statement
            assert await conn.scalar(text("SHOW statement_timeout")) == "0"
            raw = await conn.get_raw_connection()
            assert raw.driver_connection._config.command_timeout is None  # type: ignore[union-attr]
        assert name == "sqlmosaic"
    finally:
        await engine.dispose()


async def test_checkout_replaces_a_connection_the_server_closed(
    pg_engine: AsyncEngine, mosaic_pg_url: str
) -> None:
    async with pg_engine.connect() as conn:
        first_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
    # the server kills the pooled (idle) connection behind the pool's back
    admin = create_engine(MosaicSettings.load(database_url=mosaic_pg_url))
    try:
        async with admin.connect() as conn:
            # waits (up to 60 s) until the backend has exited: killed while idle in the pool
            killed = await conn.scalar(
                text("SELECT pg_terminate_backend(:pid, 60000)"), {"pid": first_pid}
            )
            assert killed
    finally:
        await admin.dispose()
    async with pg_engine.connect() as conn:  # no error: the checkout noticed and reconnected
        second_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
    assert second_pid != first_pid


async def test_parameters_are_hidden_in_driver_errors(pg_engine: AsyncEngine) -> None:
    secret = "zq-hidden-parameter-4411"
    async with pg_engine.connect() as conn:
        with pytest.raises(sa_exc.DBAPIError) as info:
            await conn.execute(
                text("SELECT length(:v) / 0"), {"v": secret}
            )  # division by zero: the message itself does not echo the value
    assert "[SQL parameters hidden due to hide_parameters=True]" in str(info.value)
    assert secret not in str(info.value)


# --------------------------------------------------------------------------- SQLite


async def test_sqlite_connection_pragmas(sqlite_engine: AsyncEngine) -> None:
    async with sqlite_engine.connect() as conn:
        assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
        assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
        assert await conn.scalar(text("PRAGMA busy_timeout")) == 2500
        assert await conn.scalar(text("PRAGMA synchronous")) == 1  # NORMAL
        assert await conn.scalar(text("SELECT 'ABC' LIKE '%b%'")) == 0  # case-sensitive LIKE


@pytest.mark.mosaic_backends("sqlite")
async def test_sqlite_units_of_work_begin_immediate(
    mosaic_fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    """A unit of work holds the write lock from its first statement, a read included (BEGIN
    IMMEDIATE); a read-only unit (BEGIN DEFERRED, query_only) leaves other writers alone."""
    impatient = create_engine(
        MosaicSettings.load(database_url=mosaic_fresh_url, sqlite_busy_timeout=0)
    )
    insert = "INSERT INTO team (name, created_at) VALUES (:name, '2026-01-01 00:00:00')"
    factory = create_session_factory(fresh_engine)
    try:
        async with factory() as session, transaction(session):
            await UserRepository(session).count()
            async with impatient.connect() as other:
                with pytest.raises(sa_exc.OperationalError, match="locked"):
                    await other.execute(text(insert), {"name": "blocked"})
        async with factory() as session, transaction(session, read_only=True):
            await UserRepository(session).count()
            connection = await session.connection()
            assert await connection.scalar(text("PRAGMA query_only")) == 1
            async with impatient.begin() as other:
                await other.execute(text(insert), {"name": "not blocked"})
        async with fresh_engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA query_only")) == 0
            names = (await conn.execute(text("SELECT name FROM team"))).scalars().all()
            assert names == ["not blocked"]
    finally:
        await impatient.dispose()


@pytest.mark.mosaic_backends("sqlite")
async def test_sqlite_stale_read_before_a_unit_of_work_is_refused_not_lost(
    mosaic_fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    """The endpoint pattern: a dependency reads a row through the session, another request
    commits a change to it, then the service changes the object it read in a unit of work on
    the same session. The session's reads began its transaction (one snapshot), so the stale
    write is refused with a retryable error instead of overwriting the other commit; rerun in a
    fresh session, it sees the committed value. (Reads outside a transaction would lose it.)"""
    other_engine = create_engine(MosaicSettings.load(database_url=mosaic_fresh_url))
    factory, others = create_session_factory(fresh_engine), create_session_factory(other_engine)
    try:
        async with factory() as session, transaction(session):
            await TeamRepository(session).add(Team(name="a"))
        async with factory() as session:
            team = (await TeamRepository(session).list()).items[0]  # the dependency's read
            team_id = team.id
            async with others() as other, transaction(other):
                (await TeamRepository(other).get(team_id)).name = "b"
            with pytest.raises(DatabaseUnavailableError):
                async with transaction(session):
                    team.name = team.name + "!"  # based on the stale "a"
        async with factory() as session, transaction(session):  # the retry, fresh
            team = await TeamRepository(session).get(team_id)
            team.name = team.name + "!"
        async with other_engine.connect() as conn:
            assert await conn.scalar(text("SELECT name FROM team")) == "b!"
    finally:
        await other_engine.dispose()


@pytest.mark.mosaic_backends("sqlite")
async def test_sqlite_begin_travels_with_the_first_statement(
    fresh_engine: AsyncEngine,
) -> None:
    """No engine event listener (SQLAlchemy's per-statement dispatch stays off); an empty
    transaction sends nothing; the mode set on one checkout does not leak to the next."""
    assert not fresh_engine.sync_engine._has_events
    async with fresh_engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection._conn  # type: ignore[union-attr]
        assert isinstance(raw, DeferredBeginConnection)
        await conn.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        await conn.begin()
        assert raw.mosaic_pending_begin == "BEGIN IMMEDIATE"
        assert not raw.in_transaction
        await conn.rollback()  # nothing was sent, nothing to end
        assert raw.mosaic_pending_begin is None
        await conn.begin()
        await conn.execute(text("SELECT 1"))
        assert raw.in_transaction
        assert raw.mosaic_pending_begin is None
        await conn.commit()
    async with fresh_engine.connect() as conn:  # same pooled connection, default mode again
        assert (await conn.get_raw_connection()).driver_connection._conn is raw  # type: ignore[union-attr]
        await conn.begin()
        assert raw.mosaic_pending_begin == "BEGIN DEFERRED"
        await conn.rollback()
    with pytest.raises(ValueError, match="DEFERRED or IMMEDIATE"):
        async with fresh_engine.connect() as conn:
            await conn.execution_options(**{SQLITE_BEGIN_OPTION: "EXCLUSIVE; DROP"})


@pytest.mark.mosaic_backends("sqlite")
async def test_a_busy_begin_immediate_is_tried_again_never_skipped(
    mosaic_fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    impatient = create_engine(
        MosaicSettings.load(database_url=mosaic_fresh_url, sqlite_busy_timeout=0)
    )
    insert = text("INSERT INTO team (name, created_at) VALUES (:name, '2026-01-01 00:00:00')")
    try:
        async with fresh_engine.connect() as holder, impatient.connect() as conn:
            await holder.execute(insert, {"name": "holder"})  # holds the write lock
            await conn.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            await conn.begin()
            with pytest.raises(sa_exc.OperationalError, match="locked"):
                await conn.execute(text("SELECT 1"))
            await holder.rollback()
            await conn.execute(insert, {"name": "inside"})  # BEGIN IMMEDIATE first, again
            raw = (await conn.get_raw_connection()).driver_connection._conn  # type: ignore[union-attr]
            assert raw.in_transaction
            await conn.rollback()
        async with fresh_engine.connect() as check:
            assert await check.scalar(text("SELECT count(*) FROM team")) == 0
    finally:
        await impatient.dispose()


@pytest.mark.mosaic_backends("sqlite")
async def test_engine_level_begin_mode(fresh_engine: AsyncEngine) -> None:
    immediate = fresh_engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    async with immediate.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection._conn  # type: ignore[union-attr]
        await conn.begin()
        assert raw.mosaic_pending_begin == "BEGIN IMMEDIATE"
        await conn.rollback()
    async with fresh_engine.connect() as conn:  # the base engine keeps DEFERRED
        await conn.begin()
        raw = (await conn.get_raw_connection()).driver_connection._conn  # type: ignore[union-attr]
        assert raw.mosaic_pending_begin == "BEGIN DEFERRED"
        await conn.rollback()


async def test_in_memory_database_survives_a_cancelled_statement() -> None:
    """The one connection of an in-memory database is the database: a cancellation must not
    make SQLAlchemy close it (that would drop every table)."""
    engine = create_engine(MosaicSettings.load(database_url="sqlite+aiosqlite://"))
    slow = text(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
        "SELECT count(*) FROM c"
    )
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            await conn.exec_driver_sql("INSERT INTO t VALUES (1)")

        async def run_slow() -> None:
            async with engine.connect() as conn:
                await conn.execute(slow)

        task = asyncio.create_task(run_slow())
        await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM t")) == 1
    finally:
        await engine.dispose()


async def test_sqlite_in_memory_database() -> None:
    engine = create_engine(MosaicSettings.load(database_url="sqlite+aiosqlite://"))
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            await conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        async with engine.connect() as conn:  # one shared connection: the table is still there
            assert await conn.scalar(text("SELECT count(*) FROM t")) == 1
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- Database


async def test_database_connects_and_disposes_several_times(mosaic_url: str) -> None:
    db = Database(MosaicSettings.load(database_url=mosaic_url))
    assert not db.connected
    with pytest.raises(ConfigurationError):
        _ = db.engine
    engines = []
    for _ in range(3):
        await db.connect()
        assert await db.connect() is db  # idempotent
        engines.append(db.engine)
        async with db.transaction(read_only=True) as session:
            assert await UserRepository(session).count() >= 0
        await db.dispose()
        assert not db.connected
        with pytest.raises(ConfigurationError):
            _ = db.session_factory
    assert len({id(e) for e in engines}) == 3  # a new engine each time
    await db.dispose()  # disposing twice is harmless


async def test_get_db_session_yields_a_session_and_closes_it(mosaic_url: str) -> None:
    async with Database(MosaicSettings.load(database_url=mosaic_url)) as db:
        pool: Any = db.engine.pool
        sessions = db.get_db_session()
        session = await anext(sessions)
        assert await UserRepository(session).count() >= 0
        assert session.in_transaction()
        assert pool.checkedout() == 1
        with pytest.raises(StopAsyncIteration):
            await anext(sessions)  # the dependency's teardown: closes the session
        assert not session.in_transaction()
        assert pool.checkedout() == 0

        # an error in the request handler still closes it (nothing is committed)
        sessions = db.get_db_session()
        session = await anext(sessions)
        await UserRepository(session).add(User(email="never@example.com", name="N"))
        with pytest.raises(RuntimeError):
            await sessions.athrow(RuntimeError("handler failed"))
        assert pool.checkedout() == 0
        async with db.session() as check:
            assert await UserRepository(check).count(where={"email": "never@example.com"}) == 0


async def test_two_databases_side_by_side(mosaic_pg_url: str, mosaic_sqlite_url: str) -> None:
    pg = Database(MosaicSettings.load(database_url=mosaic_pg_url))
    lite = Database(MosaicSettings.load(database_url=mosaic_sqlite_url))
    async with pg, lite:
        assert pg.engine is not lite.engine
        assert (pg.engine.dialect.name, lite.engine.dialect.name) == ("postgresql", "sqlite")
        async with pg.transaction(read_only=True) as a, lite.transaction(read_only=True) as b:
            assert await UserRepository(a).count() >= 0
            assert await UserRepository(b).count() >= 0
        await lite.dispose()
        async with pg.session() as session:  # the other one is unaffected
            assert await UserRepository(session).count() >= 0
    assert not pg.connected
    assert not lite.connected


async def test_injected_engine_is_not_disposed(mosaic_engine: AsyncEngine, mosaic_url: str) -> None:
    db = Database(MosaicSettings.load(database_url=mosaic_url), engine=mosaic_engine)
    async with db:
        assert db.engine is mosaic_engine
    async with mosaic_engine.connect() as conn:  # still usable after db.dispose()
        assert await conn.scalar(text("SELECT 1")) == 1


async def test_database_repr_masks_the_password(mosaic_pg_url: str) -> None:
    url = make_url(mosaic_pg_url).set(password="s3cret-pw-zq")
    db = Database(MosaicSettings.load(database_url=url.render_as_string(hide_password=False)))
    async with db:  # the server trusts local connections: the password is not checked
        assert "s3cret-pw-zq" not in repr(db)
        assert "***" in repr(db)
        assert "s3cret-pw-zq" not in str(db.describe())
