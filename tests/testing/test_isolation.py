"""The plugin's fixtures, in this very session, on PostgreSQL and SQLite.

"Gone after the test" is checked by ``after_test``: requested FIRST, it is set up before the
mosaic fixtures and torn down after them (after the rollback, the fresh database's drop), and
runs the test's checks then, on a new connection; a failing check is a teardown error. No test
depends on another having run (xdist may split them).
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import sqlmosaic
from mosaic_accounts import AccountsService, User, UserRepository
from sqlmosaic import ConflictError, Mosaic, MosaicSettings, create_engine
from sqlmosaic.migrations import alembic_config, heads
from sqlmosaic.testing import SQLCounterFactory, template_builds

pytestmark = pytest.mark.postgres

COUNT_USERS = 'SELECT count(*) FROM "user"'
Check = Callable[[], Awaitable[None]]


async def _scalar(conn: AsyncConnection | AsyncSession, sql: str, **params: Any) -> Any:
    if isinstance(conn, AsyncSession):
        conn = await conn.connection()
    return (await conn.execute(text(sql), params)).scalar_one()


async def _outside(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    """Run ``sql`` on ANOTHER connection of the engine: what the rest of the world sees."""
    async with engine.connect() as other:
        return await _scalar(other, sql, **params)


@pytest_asyncio.fixture(loop_scope="session")
async def after_test(mosaic_engine: AsyncEngine) -> AsyncIterator[list[Check]]:
    checks: list[Check] = []
    yield checks
    assert checks, "after_test requested but no check registered"
    for check in checks:
        await check()


async def _no_users(engine: AsyncEngine) -> None:
    assert await _outside(engine, COUNT_USERS) == 0


# --------------------------------------------------------------------------- isolation


@pytest.mark.parametrize("run", ["first", "second"])
async def test_committed_unit_of_work_leaves_nothing(
    after_test: list[Check],
    run: str,
    mosaic_backend: str,
    mosaic_session: AsyncSession,
    mosaic_engine: AsyncEngine,
) -> None:
    after_test.append(lambda: _no_users(mosaic_engine))
    # Nothing from another run, although each commits the same unique email.
    assert await _scalar(mosaic_session, COUNT_USERS) == 0
    user = await AccountsService(mosaic_session).register("isolation@example.com", "Iso")
    assert user.id is not None
    assert not mosaic_session.in_transaction() or mosaic_session.in_nested_transaction()
    assert await _scalar(mosaic_session, COUNT_USERS) == 1
    # "Committed" for the code under test, invisible outside the test's outer transaction.
    assert await _outside(mosaic_engine, COUNT_USERS) == 0


async def test_failed_unit_rolls_back_only_its_savepoint(
    mosaic_backend: str, mosaic_session: AsyncSession
) -> None:
    service = AccountsService(mosaic_session)
    await service.register("dup@example.com", "One")
    with pytest.raises(ConflictError):
        await service.register("dup@example.com", "Two")
    assert await _scalar(mosaic_session, COUNT_USERS) == 1
    await service.register("other@example.com", "Three")  # the session is still usable
    assert await _scalar(mosaic_session, COUNT_USERS) == 2


async def test_database_is_migrated_by_alembic(
    mosaic_backend: str, mosaic_session: AsyncSession
) -> None:
    ini = Path(__file__).parents[2] / "alembic.ini"
    expected = await asyncio.to_thread(lambda: heads(alembic_config(ini)))  # reads files
    assert await _scalar(mosaic_session, "SELECT version_num FROM alembic_version") in expected
    assert mosaic_session.bind is not None


async def test_url_and_engine_match_the_backend(
    mosaic_backend: str,
    mosaic_url: str,
    mosaic_engine: AsyncEngine,
    mosaic_settings: MosaicSettings,
) -> None:
    url = make_url(mosaic_url)
    assert (
        url.drivername
        == {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}[mosaic_backend]
    )
    assert mosaic_engine.dialect.name == mosaic_backend
    assert mosaic_settings.database_url == mosaic_url
    if mosaic_backend == "sqlite":  # sqlmosaic.create_engine's listeners are installed
        assert await _outside(mosaic_engine, "PRAGMA foreign_keys") == 1


def test_template_built_once_per_session(
    mosaic_backend: str, mosaic_url: str, request: pytest.FixtureRequest
) -> None:
    # However many tests ran before (and whatever the backend order), exactly one build.
    assert template_builds(request.config)[mosaic_backend] == 1


# --------------------------------------------------------------------------- host


async def test_host_runs_on_the_isolated_factory(
    after_test: list[Check],
    mosaic_backend: str,
    mosaic_host: Mosaic,
    mosaic_session: AsyncSession,
    mosaic_engine: AsyncEngine,
) -> None:
    after_test.append(lambda: _no_users(mosaic_engine))
    assert mosaic_host.running
    assert {"accounts", "tasks"} <= set(mosaic_host.plugins.names)
    assert mosaic_host.engine is mosaic_engine
    async with mosaic_host.unit_of_work() as uow:
        await uow.repository(UserRepository).add(User(email="host@example.com", name="H"))
    assert await _scalar(mosaic_session, COUNT_USERS) == 1  # same outer transaction
    assert await _outside(mosaic_engine, COUNT_USERS) == 0


# --------------------------------------------------------------------------- in-test plugin

_NOTE_TABLE = "mosaic_testing_note"


class _NoteBase(SQLModel, registry=registry(metadata=MetaData())):  # not SQLModel.metadata
    pass


class Note(_NoteBase, table=True):
    __tablename__ = _NOTE_TABLE

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id")
    body: str = Field(max_length=100)


class NoteRepository(sqlmosaic.Repository[Note]):
    model = Note
    name = "notes"


notes_plugin = types.SimpleNamespace(
    mosaic_name="notes",
    mosaic_models=sqlmosaic.hookimpl(lambda: [Note]),
    mosaic_repositories=sqlmosaic.hookimpl(lambda: [NoteRepository]),
    mosaic_requires=sqlmosaic.hookimpl(lambda: ["accounts"]),
)


async def _tables(conn: AsyncConnection) -> list[str]:
    return await conn.run_sync(lambda sync: inspect(sync).get_table_names())


@pytest.mark.mosaic_plugins(notes_plugin)
async def test_marker_plugin_table_exists_inside_the_test_only(
    after_test: list[Check],
    mosaic_backend: str,
    mosaic_host: Mosaic,
    mosaic_connection: AsyncConnection,
    mosaic_engine: AsyncEngine,
) -> None:
    async def table_is_gone() -> None:
        async with mosaic_engine.connect() as conn:
            assert _NOTE_TABLE not in await _tables(conn)

    after_test.append(table_is_gone)
    assert "notes" in mosaic_host.plugins.names
    assert _NOTE_TABLE in await _tables(mosaic_connection)
    async with mosaic_host.unit_of_work() as uow:
        user = await uow.repository(UserRepository).add(User(email="n@example.com", name="N"))
        assert user.id is not None
        await uow.repository("notes.notes").add(Note(user_id=user.id, body="hello"))
    assert await _scalar(mosaic_connection, f"SELECT count(*) FROM {_NOTE_TABLE}") == 1
    async with mosaic_engine.connect() as other:  # the DDL is not committed
        assert _NOTE_TABLE not in await _tables(other)


async def test_marker_plugins_are_per_test(
    mosaic_backend: str, mosaic_host: Mosaic, mosaic_connection: AsyncConnection
) -> None:
    assert "notes" not in mosaic_host.plugins.names
    assert _NOTE_TABLE not in await _tables(mosaic_connection)


# --------------------------------------------------------------------------- counter


async def test_sql_counter_counts_statements_not_transaction_control(
    mosaic_backend: str, mosaic_session: AsyncSession, mosaic_sql_counter: SQLCounterFactory
) -> None:
    service = AccountsService(mosaic_session)
    with mosaic_sql_counter() as sql:
        await service.register("count@example.com", "C")
    assert sql.count == 1, sql
    assert sql.statements[0].lstrip().upper().startswith("INSERT INTO")
    if mosaic_backend == "postgresql":
        assert "RETURNING" in sql.statements[0]
    assert any(s.startswith("SAVEPOINT") for s in sql.all_statements)
    assert any(s.startswith("RELEASE SAVEPOINT") for s in sql.all_statements)

    with mosaic_sql_counter() as two:
        await _scalar(mosaic_session, COUNT_USERS)
        await _scalar(mosaic_session, "SELECT count(*) FROM team")
    assert two.count == 2
    await _scalar(mosaic_session, COUNT_USERS)
    assert two.count == 2  # stopped listening when the block ended


# --------------------------------------------------------------------------- fresh / empty


async def test_fresh_url_is_a_separate_migrated_database_dropped_after(
    after_test: list[Check],
    mosaic_backend: str,
    mosaic_fresh_url: str,
    mosaic_url: str,
    mosaic_engine: AsyncEngine,
) -> None:
    assert mosaic_fresh_url != mosaic_url
    name = make_url(mosaic_fresh_url).database
    assert name

    async def dropped() -> None:
        if mosaic_backend == "postgresql":
            sql = "SELECT count(*) FROM pg_database WHERE datname = :n"
            assert await _outside(mosaic_engine, sql, n=name) == 0
        else:
            assert not await asyncio.to_thread(Path(name).exists)

    after_test.append(dropped)
    engine = create_engine(MosaicSettings.load(database_url=mosaic_fresh_url))
    try:
        async with engine.begin() as conn:  # really committed, in that database
            await conn.execute(
                text(
                    'INSERT INTO "user" (email, name, is_active, created_at) '
                    "VALUES ('fresh@example.com', 'F', true, CURRENT_TIMESTAMP)"
                )
            )
        assert await _outside(engine, COUNT_USERS) == 1
        assert await _outside(engine, "SELECT count(*) FROM alembic_version") == 1
    finally:
        await engine.dispose()
    assert await _outside(mosaic_engine, COUNT_USERS) == 0


async def test_empty_url_has_no_tables(mosaic_backend: str, mosaic_empty_url: str) -> None:
    engine = create_engine(MosaicSettings.load(database_url=mosaic_empty_url))
    try:
        async with engine.connect() as conn:
            assert await _tables(conn) == []
    finally:
        await engine.dispose()


@pytest.mark.mosaic_backends("sqlite")
def test_only_sqlite(mosaic_backend: str) -> None:
    assert mosaic_backend == "sqlite"
