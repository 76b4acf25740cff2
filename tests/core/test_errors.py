"""Database errors come out of repositories and units of work as typed sqlmosaic errors.

Conflicts name the constraint (PostgreSQL) or the table/columns (SQLite) and never carry bound
values; a server that is gone, an exhausted pool and a hung statement are all
``DatabaseUnavailableError``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_accounts import (
    Membership,
    MembershipRepository,
    Team,
    TeamRepository,
    User,
    UserRepository,
)
from mosaic_tasks import Task, TaskRepository
from sqlmosaic import (
    ConflictError,
    Database,
    DatabaseUnavailableError,
    MosaicError,
    MosaicSettings,
    RepositoryError,
    create_engine,
    create_session_factory,
    is_retryable,
    transaction,
)

pg_only = pytest.mark.mosaic_backends("postgresql")
sqlite_only = pytest.mark.mosaic_backends("sqlite")

SECRET_EMAIL = "zq-7731-do-not-print@secret.example"


def assert_value_free(err: BaseException, *values: str) -> None:
    text_forms = [str(err), repr(err), *map(str, err.args)]
    for value in values:
        for form in text_forms:
            assert value not in form, form


# --------------------------------------------------------------------------- conflicts


async def test_duplicate_email_is_a_unique_conflict(
    mosaic_session: AsyncSession, mosaic_backend: str
) -> None:
    users = UserRepository(mosaic_session)
    await users.add(User(email=SECRET_EMAIL, name="First"))
    with pytest.raises(ConflictError) as info:
        await users.add(User(email=SECRET_EMAIL, name="Second"))
    err = info.value
    assert err.kind == "unique"
    if mosaic_backend == "postgresql":
        assert err.constraint == "ix_user_email"
        assert err.table == "user"
        assert "ix_user_email" in str(err)
    else:
        assert (err.table, err.columns) == ("user", ("email",))
        assert "user(email)" in str(err)
    assert_value_free(err, SECRET_EMAIL, "zq-7731")
    assert isinstance(err.__cause__, sa_exc.IntegrityError)  # the original is kept for logs
    assert "parameters hidden" in str(err.__cause__)


async def test_unique_conflict_on_update_and_upsert(
    mosaic_session: AsyncSession, mosaic_backend: str
) -> None:
    users = UserRepository(mosaic_session)
    await users.add(User(email=SECRET_EMAIL, name="First"))
    other = await users.add(User(email="other@example.com", name="Other"))
    other_id = other.id
    await mosaic_session.commit()
    with pytest.raises(ConflictError) as info:
        await users.update(other_id, {"email": SECRET_EMAIL})
    assert info.value.kind == "unique"
    assert_value_free(info.value, SECRET_EMAIL)
    await mosaic_session.rollback()
    with pytest.raises(ConflictError) as info:  # conflict target is the pk: email still clashes
        await users.upsert({"id": other_id, "email": SECRET_EMAIL, "name": "X"})
    assert info.value.kind == "unique"
    assert_value_free(info.value, SECRET_EMAIL)


async def test_foreign_key_violation(
    mosaic_session: AsyncSession, seed: Any, mosaic_backend: str
) -> None:
    tasks = TaskRepository(mosaic_session)
    with pytest.raises(ConflictError) as info:
        await tasks.add(Task(project_id=seed.project_id, title="orphan", assignee_id=987654321))
    err = info.value
    assert err.kind == "foreign_key"
    if mosaic_backend == "postgresql":
        assert (err.constraint, err.table) == ("fk_task_assignee_id_user", "task")
        assert "fk_task_assignee_id_user" in str(err)
    else:  # SQLite does not say which foreign key failed
        assert str(err) == "foreign key constraint violated"
    assert_value_free(err, "987654321")


async def test_check_constraint_violation(
    mosaic_session: AsyncSession, seed: Any, mosaic_backend: str
) -> None:
    team = await TeamRepository(mosaic_session).add(Team(name="checked"))
    assert team.id is not None
    with pytest.raises(ConflictError) as info:
        await MembershipRepository(mosaic_session).add(
            Membership(team_id=team.id, user_id=seed.user_ids[0], role="zq-overlord")
        )
    err = info.value
    assert err.kind == "check"
    assert err.constraint == "ck_membership_role"
    if mosaic_backend == "postgresql":
        assert err.table == "membership"
    assert_value_free(err, "zq-overlord")


async def test_not_null_violation_names_the_column(mosaic_session: AsyncSession, seed: Any) -> None:
    with pytest.raises(ConflictError) as info:
        await UserRepository(mosaic_session).update(seed.user_ids[0], {"name": None})
    assert info.value.kind == "not_null"
    assert (info.value.table, info.value.columns) == ("user", ("name",))


async def test_conflict_inside_a_unit_of_work_rolls_back_and_stays_typed(
    mosaic_session: AsyncSession,
) -> None:
    users = UserRepository(mosaic_session)

    async def register_twice() -> None:
        async with transaction(mosaic_session):
            await users.add(User(email=SECRET_EMAIL, name="A"))
            await users.add(User(email=SECRET_EMAIL, name="B"))

    with pytest.raises(ConflictError):
        await register_twice()
    assert await users.count() == 0


# --------------------------------------------------------------------------- unavailable


@pytest.fixture
async def gone_server_engine(refused_port: Callable[[], int]) -> AsyncIterator[AsyncEngine]:
    """An engine pointed at a PostgreSQL port nobody listens on."""
    engine = create_engine(
        MosaicSettings.load(
            database_url=f"postgresql+asyncpg://app:pw@127.0.0.1:{refused_port()}/app",
            connect_timeout=2,
        )
    )
    yield engine
    await engine.dispose()


async def test_server_that_is_gone(gone_server_engine: AsyncEngine) -> None:
    factory = create_session_factory(gone_server_engine)
    async with factory() as session:
        users = UserRepository(session)
        with pytest.raises(DatabaseUnavailableError):
            await users.get(1)
        with pytest.raises(DatabaseUnavailableError):  # a plugin's own query method, too
            await users.get_by_email("a@example.com")
        with pytest.raises(DatabaseUnavailableError):
            async with transaction(session):
                await users.count()
        with pytest.raises(DatabaseUnavailableError):  # beginning the unit itself fails
            async with transaction(session, isolation_level="SERIALIZABLE"):
                pass


async def test_connection_killed_mid_transaction(mosaic_pg_url: str) -> None:
    engine = create_engine(MosaicSettings.load(database_url=mosaic_pg_url))
    admin = create_engine(MosaicSettings.load(database_url=mosaic_pg_url))
    try:
        async with create_session_factory(engine)() as session:

            async def unit_whose_connection_dies() -> None:
                async with transaction(session):
                    users = UserRepository(session)
                    await users.count()
                    pid = (await session.exec(text("SELECT pg_backend_pid()"))).one()[0]
                    async with admin.connect() as conn:
                        await conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
                    await users.count()

            with pytest.raises(DatabaseUnavailableError) as info:
                await unit_whose_connection_dies()
            assert "lost the database connection" in str(info.value)
            async with transaction(session):  # a new connection serves the next unit
                assert await UserRepository(session).count() >= 0
    finally:
        await admin.dispose()
        await engine.dispose()


@sqlite_only
async def test_sqlite_file_that_cannot_be_opened(tmp_path: Path, mosaic_backend: str) -> None:
    missing = tmp_path / "no-such-dir" / "app.db"
    engine = create_engine(MosaicSettings.load(database_url=f"sqlite+aiosqlite:///{missing}"))
    try:
        async with create_session_factory(engine)() as session:
            with pytest.raises(DatabaseUnavailableError) as info:
                await UserRepository(session).count()
        assert "SQLITE_CANTOPEN" in str(info.value)
    finally:
        await engine.dispose()


async def test_pool_timeout(mosaic_url: str) -> None:
    engine = create_engine(
        MosaicSettings.load(database_url=mosaic_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    )
    factory = create_session_factory(engine)
    try:
        async with engine.connect() as held:  # the only connection of the pool
            await held.exec_driver_sql("SELECT 1")
            async with factory() as session:
                started = time.monotonic()
                with pytest.raises(DatabaseUnavailableError) as info:
                    await UserRepository(session).count()
                waited = time.monotonic() - started
            assert waited >= 0.15  # it waited for the pool (a lower bound: load cannot break it)
            assert "pooled connection" in str(info.value)
            assert isinstance(info.value.__cause__, sa_exc.TimeoutError)
        async with factory() as session:  # returned: the pool serves again
            assert await UserRepository(session).count() >= 0
    finally:
        await engine.dispose()


class SleepyUsers(UserRepository):
    """An in-test repository with its own query method (translated like the generic ones)."""

    async def sleep(self, seconds: float) -> None:
        await self.session.exec(text("SELECT pg_sleep(:s)").bindparams(s=seconds))


@pg_only
async def test_hung_statement_hits_command_timeout(mosaic_pg_url: str) -> None:
    engine = create_engine(MosaicSettings.load(database_url=mosaic_pg_url, command_timeout=0.3))
    factory = create_session_factory(engine)
    try:
        async with factory() as session:
            with pytest.raises(DatabaseUnavailableError):  # at the repository boundary
                await SleepyUsers(session).sleep(5)
            await session.rollback()
            with pytest.raises(DatabaseUnavailableError) as info:
                async with transaction(session):
                    await SleepyUsers(session).sleep(5)
            # The client's timeout fired (a finished 5 s sleep raises nothing): no stopwatch,
            # which a loaded machine would make flaky.
            assert "did not answer in time" in str(info.value)
            assert isinstance(info.value.__cause__, TimeoutError)
            # rolled back; the same session works again (a new connection if the old was lost)
            async with transaction(session):
                assert await UserRepository(session).count() >= 0
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


@pg_only
async def test_statement_timeout_is_a_typed_error_and_the_unit_rolls_back(
    mosaic_pg_url: str,
) -> None:
    engine = create_engine(MosaicSettings.load(database_url=mosaic_pg_url, statement_timeout=0.2))
    factory = create_session_factory(engine)
    try:
        async with factory() as session:

            async def insert_then_hang() -> None:
                async with transaction(session):
                    await UserRepository(session).add(User(email="slow@example.com", name="Slow"))
                    await SleepyUsers(session).sleep(5)

            with pytest.raises(DatabaseUnavailableError) as info:  # a finished sleep: no error
                await insert_then_hang()
            assert "statement_timeout" in str(info.value)
            async with transaction(session):  # the insert before the timeout was rolled back
                assert not await UserRepository(session).exists(where={"email": "slow@example.com"})
    finally:
        await engine.dispose()


@sqlite_only
async def test_sqlite_write_lock_held_past_busy_timeout(
    mosaic_fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    impatient = create_engine(
        MosaicSettings.load(database_url=mosaic_fresh_url, sqlite_busy_timeout=0.2)
    )
    try:
        async with fresh_engine.connect() as holder:
            await holder.exec_driver_sql(  # an uncommitted write holds the write lock
                "INSERT INTO team (name, created_at) VALUES ('lock', '2026-01-01 00:00:00')"
            )
            async with create_session_factory(impatient)() as session:
                started = time.monotonic()
                with pytest.raises(DatabaseUnavailableError) as info:
                    async with transaction(session):  # BEGIN IMMEDIATE waits 0.2 s, gives up
                        await UserRepository(session).add(User(email="x@example.com", name="X"))
                assert time.monotonic() - started >= 0.15  # waited out the busy timeout
            assert "SQLITE_BUSY" in str(info.value)
            assert info.value.__cause__ is not None
            assert is_retryable(info.value.__cause__)  # a unit of work with Retry runs again
            await holder.rollback()
    finally:
        await impatient.dispose()


async def test_translation_keeps_sqlmosaic_errors_and_ignores_others(
    mosaic_session: AsyncSession,
) -> None:
    class Custom(UserRepository):
        async def explode(self) -> None:
            raise KeyError("not a database error")

        async def refuse(self) -> None:
            raise ConflictError("already typed", kind="unique")

    repo = Custom(mosaic_session)
    with pytest.raises(KeyError):
        await repo.explode()
    with pytest.raises(ConflictError, match="already typed"):
        await repo.refuse()


async def test_other_database_errors_are_repository_errors(
    mosaic_session: AsyncSession, mosaic_backend: str
) -> None:
    class Broken(UserRepository):
        async def bad_sql(self) -> None:
            await self.session.exec(text('SELECT no_such_column FROM "user"'))

    with pytest.raises(RepositoryError) as info:
        await Broken(mosaic_session).bad_sql()
    assert type(info.value) is RepositoryError
    assert isinstance(info.value, MosaicError)
    if mosaic_backend == "postgresql":
        assert "42703" in str(info.value)  # undefined_column
    else:
        assert "SQLite error 1" in str(info.value)  # SQLITE_ERROR
    await mosaic_session.rollback()


async def test_errors_raised_by_asyncio_cancellation_are_not_translated(
    mosaic_session: AsyncSession,
) -> None:
    async def slow() -> None:
        async with transaction(mosaic_session):
            await UserRepository(mosaic_session).count()
            await asyncio.sleep(30)

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_unmigrated_database_says_to_apply_the_migrations(
    mosaic_empty_url: str, mosaic_backend: str
) -> None:
    db = Database(MosaicSettings.load(database_url=mosaic_empty_url))
    async with db, db.session() as session:
        with pytest.raises(RepositoryError) as caught:
            await UserRepository(session).get(1)
    assert type(caught.value) is RepositoryError
    assert str(caught.value) == (
        "table 'user' does not exist: apply the migrations ('mosaic db upgrade')"
    )
