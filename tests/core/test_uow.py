"""Units of work: commit, rollback, SAVEPOINTs, cancellation, read-only, isolation and retries.

Tests that need real commits seen by other connections (cancellation, serialization failures)
use ``fresh_engine`` (a brand-new migrated database); the others run in the plugin's isolated
session, where a commit is a savepoint release.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_accounts import AccountsService, Team, TeamRepository, User, UserRepository
from mosaic_tasks import Project, ProjectRepository, Task, TaskRepository
from sqlmosaic import (
    ConfigurationError,
    ConflictError,
    Database,
    Mosaic,
    MosaicSettings,
    NotFoundError,
    RepositoryError,
    RetriesExhaustedError,
    Retry,
    create_engine,
    create_session_factory,
    is_retryable,
    run_in_transaction,
    transaction,
    transactional,
)

pg_only = pytest.mark.mosaic_backends("postgresql")


async def emails(factory: async_sessionmaker[AsyncSession]) -> list[str]:
    async with factory() as session:
        page = await UserRepository(session).list(order_by="email", limit=1000)
        return [u.email for u in page.items]


async def assert_no_leaked_warnings() -> None:
    """Collect the young garbage and fail on any warning it raises (a connection that was never
    returned, a coroutine never awaited, an unclosed transport).

    Young generations only: a full collection of the whole test process blocks the loop for
    longer than asyncio debug mode's slow-callback limit (in any thread: it holds the GIL).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect(1)
    assert [str(w.message) for w in caught] == []


# --------------------------------------------------------------------------- commit / rollback


async def test_commit_is_seen_by_other_connections(
    mosaic_fresh_url: str, fresh_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with fresh_factory() as session, transaction(session):
        await UserRepository(session).add(User(email="commit@example.com", name="C"))
    # a brand-new engine (other connections, other pool) sees the committed row
    other = create_engine(MosaicSettings.load(database_url=mosaic_fresh_url))
    try:
        assert await emails(create_session_factory(other)) == ["commit@example.com"]
    finally:
        await other.dispose()


async def test_rollback_on_exception_leaves_the_database_as_it_was(
    fresh_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with fresh_factory() as session, transaction(session):
        users = UserRepository(session)
        user = await users.add(User(email="keep@example.com", name="Before"))
        user_id = user.id

    class Boom(Exception):
        pass

    async def change_everything_then_fail() -> None:
        async with fresh_factory() as session, transaction(session):
            users = UserRepository(session)
            await users.update(user_id, {"name": "After"})
            await users.add(User(email="gone@example.com", name="Gone"))
            await users.delete_where(where={"email": "keep@example.com"})
            raise Boom

    with pytest.raises(Boom):
        await change_everything_then_fail()
    assert await emails(fresh_factory) == ["keep@example.com"]
    async with fresh_factory() as session:
        assert (await UserRepository(session).get(user_id)).name == "Before"


async def test_database_errors_leave_the_unit_translated(
    mosaic_session: AsyncSession, seed: Any
) -> None:
    with pytest.raises(ConflictError) as info:
        async with transaction(mosaic_session):
            await UserRepository(mosaic_session).add(User(email="u0@example.com", name="Dup"))
    assert info.value.kind == "unique"
    # the session was rolled back and can run the next unit
    async with transaction(mosaic_session):
        assert await UserRepository(mosaic_session).count() == 3


# --------------------------------------------------------------------------- nested: SAVEPOINT


async def test_nested_failure_caught_by_the_outer_code_undoes_only_the_inner_work(
    mosaic_session: AsyncSession, mosaic_sql_counter: Any
) -> None:
    users = UserRepository(mosaic_session)
    with mosaic_sql_counter() as sql:
        async with transaction(mosaic_session):
            await users.add(User(email="outer-a@example.com", name="A"))
            caught: list[ConflictError] = []
            try:
                async with transaction(mosaic_session):
                    await users.add(User(email="inner@example.com", name="Inner"))
                    await users.add(User(email="outer-a@example.com", name="Duplicate"))
            except ConflictError as exc:
                caught.append(exc)
            await users.add(User(email="outer-c@example.com", name="C"))
    assert [e.kind for e in caught] == ["unique"]
    words = [s.split(None, 1)[0].upper() for s in sql.all_statements]
    assert "SAVEPOINT" in words
    assert "ROLLBACK" in words  # ROLLBACK TO SAVEPOINT for the inner unit only
    page = await users.list(order_by="email")
    assert [u.email for u in page.items] == ["outer-a@example.com", "outer-c@example.com"]


async def test_nested_success_is_kept_and_an_uncaught_inner_failure_undoes_everything(
    fresh_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with fresh_factory() as session, transaction(session):
        users = UserRepository(session)
        await users.add(User(email="a@example.com", name="A"))
        async with transaction(session):
            await users.add(User(email="b@example.com", name="B"))

    async def inner_failure_not_caught() -> None:
        async with fresh_factory() as session, transaction(session):
            users = UserRepository(session)
            await users.add(User(email="c@example.com", name="C"))
            async with transaction(session):
                await users.get(424242)

    with pytest.raises(NotFoundError):
        await inner_failure_not_caught()
    assert await emails(fresh_factory) == ["a@example.com", "b@example.com"]


async def test_nested_units_cannot_change_isolation_or_read_only(
    mosaic_session: AsyncSession,
) -> None:
    async with transaction(mosaic_session):
        with pytest.raises(ConfigurationError) as info:
            async with transaction(mosaic_session, read_only=True):
                pass
        assert info.value.setting == "isolation_level"
        with pytest.raises(ConfigurationError):
            async with transaction(mosaic_session, isolation_level="SERIALIZABLE"):
                pass


async def test_isolation_after_the_session_began_is_refused(mosaic_session: AsyncSession) -> None:
    await UserRepository(mosaic_session).count()  # the session has begun its transaction
    with pytest.raises(ConfigurationError):
        async with transaction(mosaic_session, isolation_level="SERIALIZABLE"):
            pass
    assert mosaic_session.in_transaction()  # the caller's transaction was left alone


async def test_read_only_after_a_read_in_the_same_session_works_and_refuses_writes(
    mosaic_fresh_url: str,
) -> None:
    """The ordinary endpoint pattern: a dependency read through the request's session (the
    transaction has begun), then the endpoint runs a read-only unit of work on it."""
    engine = single_connection_engine(mosaic_fresh_url)
    factory = create_session_factory(engine)
    try:
        async with factory() as session:
            users = UserRepository(session)
            assert await users.count() == 0  # the dependency's read: the session has begun
            async with transaction(session, read_only=True):
                assert await users.count() == 0
            with pytest.raises(RepositoryError):
                async with transaction(session, read_only=True):
                    await users.add(User(email="ro@example.com", name="RO"))
        async with factory() as session:
            await UserRepository(session).count()
            session.add(User(email="pending@example.com", name="P"))
            with pytest.raises(ConfigurationError, match="pending changes"):
                async with transaction(session, read_only=True):
                    pass
            await session.rollback()
        async with factory() as session, transaction(session):  # the connection writes again
            await UserRepository(session).add(User(email="rw@example.com", name="RW"))
        assert await emails(factory) == ["rw@example.com"]
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- cancellation


@pytest.mark.parametrize("cancels", [1, 20], ids=["cancelled-once", "cancelled-repeatedly"])
async def test_cancelled_unit_commits_nothing_and_releases_its_connection(
    fresh_engine: AsyncEngine, fresh_factory: async_sessionmaker[AsyncSession], cancels: int
) -> None:
    """Cancelled repeatedly, too: anyio (Starlette, FastAPI) re-delivers cancellation on every
    loop iteration, and the rollback must still complete."""
    inside = asyncio.Event()
    session = fresh_factory()

    async def unit() -> None:
        async with transaction(session):
            await UserRepository(session).add(User(email="cancel@example.com", name="X"))
            inside.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(unit())
    await asyncio.wait_for(inside.wait(), 10)
    for _ in range(cancels):  # again and again while the rollback is under way
        task.cancel()
        await asyncio.sleep(0)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not session.in_transaction()
    assert fresh_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await emails(fresh_factory) == []
    # the same session runs the next unit (on SQLite: the write lock was released too)
    async with transaction(session):
        await UserRepository(session).add(User(email="after@example.com", name="Y"))
    await session.close()
    assert await emails(fresh_factory) == ["after@example.com"]
    await assert_no_leaked_warnings()


async def test_non_database_errors_from_the_block_keep_their_type(
    mosaic_session: AsyncSession,
) -> None:
    """A TimeoutError or OSError from user code (an HTTP call, a file) is not a database error."""

    async def unit(error: Exception) -> None:
        async with transaction(mosaic_session):
            await UserRepository(mosaic_session).add(User(email="t@example.com", name="T"))
            raise error

    for error in (TimeoutError("http call"), PermissionError("file")):
        with pytest.raises(type(error)) as caught:
            await unit(error)
        assert caught.value is error
        assert await UserRepository(mosaic_session).count(where={"email": "t@example.com"}) == 0


async def test_cancelled_unit_inside_database_transaction_helper(
    fresh_engine: AsyncEngine, mosaic_fresh_url: str
) -> None:
    inside = asyncio.Event()
    async with Database(MosaicSettings.load(database_url=mosaic_fresh_url)) as db:

        async def unit() -> None:
            async with db.transaction() as session:
                await UserRepository(session).add(User(email="c@example.com", name="X"))
                inside.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(unit())
        await asyncio.wait_for(inside.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert await emails(db.session_factory) == []
    await assert_no_leaked_warnings()


@pg_only
async def test_cancelled_while_a_statement_runs_on_postgresql(
    fresh_engine: AsyncEngine, fresh_factory: async_sessionmaker[AsyncSession]
) -> None:
    """Cancel the task while PostgreSQL executes its statement: rolled back, server idle."""
    session = fresh_factory()

    async def unit() -> None:
        async with transaction(session):
            await UserRepository(session).add(User(email="mid@example.com", name="X"))
            await session.exec(text("SELECT pg_sleep(30)"))

    task = asyncio.create_task(unit())
    async with fresh_engine.connect() as watcher:
        for _ in range(200):
            running = (
                await watcher.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'"
                )
            ).scalar_one()
            await watcher.rollback()
            if running:
                break
            await asyncio.sleep(0.05)
        assert running == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the server-side statement is gone (cancelled or disconnected)
            running = (
                await watcher.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'"
                )
            ).scalar_one()
            await watcher.rollback()
            if not running:
                break
            await asyncio.sleep(0.05)
        assert running == 0
    assert not session.in_transaction()
    assert await emails(fresh_factory) == []
    async with transaction(session):
        await UserRepository(session).add(User(email="next@example.com", name="Y"))
    await session.close()
    assert await emails(fresh_factory) == ["next@example.com"]
    assert fresh_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    await assert_no_leaked_warnings()


@pytest.mark.mosaic_backends("sqlite")
async def test_cancelled_while_a_statement_runs_on_sqlite_releases_the_write_lock(
    fresh_engine: AsyncEngine,
    fresh_factory: async_sessionmaker[AsyncSession],
    mosaic_fresh_url: str,
    mosaic_backend: str,
) -> None:
    """A unit cancelled while aiosqlite runs its statement must not keep the write lock.

    (SQLAlchemy used to invalidate the connection: closed with the statement's cursor still
    open, SQLite kept a zombie connection holding the transaction and its lock, and every
    other writer got "database is locked" until the garbage collector freed that cursor.)
    """
    session = fresh_factory()
    slow_query = text(  # about a second or two: still running when the task is cancelled
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 8000000) "
        "SELECT sum(x) FROM c"
    )

    async def unit() -> None:
        async with transaction(session):  # BEGIN IMMEDIATE: holds the write lock
            await UserRepository(session).add(User(email="mid@example.com", name="X"))
            await session.exec(slow_query)

    task = asyncio.create_task(unit())
    await asyncio.sleep(0.3)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fresh_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    other = create_engine(MosaicSettings.load(database_url=mosaic_fresh_url, sqlite_busy_timeout=1))
    try:  # another engine writes at once (before: "database is locked" after the timeout)
        other_factory = create_session_factory(other)
        async with other_factory() as writer, transaction(writer):
            await UserRepository(writer).add(User(email="other@example.com", name="O"))
        assert await emails(other_factory) == ["other@example.com"]
    finally:
        await other.dispose()
    async with transaction(session):
        await UserRepository(session).add(User(email="next@example.com", name="Y"))
    await session.close()
    assert await emails(fresh_factory) == ["next@example.com", "other@example.com"]
    await assert_no_leaked_warnings()


@pytest.mark.mosaic_backends("sqlite")
async def test_cancelled_read_only_unit_on_sqlite_resets_query_only_without_a_warning(
    mosaic_fresh_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelling a read-only unit (an HTTP client going away) is routine: the reset of
    ``PRAGMA query_only`` must finish anyway, quietly, and leave the pooled connection writable."""
    engine = single_connection_engine(mosaic_fresh_url)
    factory = create_session_factory(engine)
    slow_query = text(  # still running when the task is cancelled
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 8000000) "
        "SELECT sum(x) FROM c"
    )
    inside = asyncio.Event()

    async def unit() -> None:
        async with factory() as session, transaction(session, read_only=True):
            await UserRepository(session).count()
            inside.set()
            await session.exec(slow_query)

    try:
        caplog.set_level("WARNING")
        task = asyncio.create_task(unit())
        await asyncio.wait_for(inside.wait(), 10)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert [r.getMessage() for r in caplog.records if r.levelno >= 30] == []
        # the same (only) pooled connection writes again: query_only was switched off
        async with factory() as session, transaction(session):
            await UserRepository(session).add(User(email="w@example.com", name="W"))
        assert await emails(factory) == ["w@example.com"]
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- @transactional


@transactional
async def register(session: AsyncSession, email: str, *, fail: bool = False) -> User:
    user = await UserRepository(session).add(User(email=email, name="Registered"))
    if fail:
        raise ValueError("after the insert")
    return user


async def test_transactional_with_a_session_parameter(mosaic_session: AsyncSession) -> None:
    user = await register(mosaic_session, "param@example.com")
    assert user.id is not None
    assert not mosaic_session.in_transaction()  # committed
    with pytest.raises(ValueError, match="after the insert"):
        await register(session=mosaic_session, email="rolled@example.com", fail=True)
    assert [u.email for u in (await UserRepository(mosaic_session).list()).items] == [
        "param@example.com"
    ]


async def test_transactional_with_self_session(mosaic_session: AsyncSession) -> None:
    service = AccountsService(mosaic_session)
    owner = await service.register("Owner@Example.com", "Owner")
    assert owner.email == "owner@example.com"
    owner_id = owner.id
    assert owner_id is not None
    team = await service.create_team("core", owner_id)
    members = await TeamRepository(mosaic_session).members(team.id or 0)
    assert [m.id for m in members] == [owner_id]
    # (a rollback expires every object of the session: keep plain ids, not ORM attributes)
    with pytest.raises(NotFoundError):
        await service.create_team("orphans", 424242)  # nothing written
    with pytest.raises(ConflictError):
        await service.create_team("core", owner_id)  # duplicate team name: rolled back
    teams = await TeamRepository(mosaic_session).list()
    assert [t.name for t in teams.items] == ["core"]


async def test_nested_transactional_methods_use_savepoints(mosaic_session: AsyncSession) -> None:
    class Onboarding:
        def __init__(self, session: AsyncSession) -> None:
            self.session = session
            self.accounts = AccountsService(session)

        @transactional
        async def onboard(self, emails: list[str]) -> list[str]:
            done = []
            for email in emails:
                try:
                    await self.accounts.register(email, "New")
                    done.append(email)
                except ConflictError:
                    continue  # only that registration is undone
            return done

    done = await Onboarding(mosaic_session).onboard(["a@x.io", "b@x.io", "a@x.io", "c@x.io"])
    assert done == ["a@x.io", "b@x.io", "c@x.io"]
    assert await UserRepository(mosaic_session).count() == 3


async def test_transactional_without_a_session_is_a_configuration_error() -> None:
    @transactional
    async def no_session(value: int) -> int:
        return value

    with pytest.raises(ConfigurationError) as info:
        await no_session(1)
    assert info.value.setting == "session"
    assert "no_session" in str(info.value)


# --------------------------------------------------------------------------- read_only


def single_connection_engine(url: str) -> AsyncEngine:
    """One pooled connection: the next unit of work is guaranteed to reuse it."""
    return create_engine(MosaicSettings.load(database_url=url, pool_size=1, max_overflow=0))


async def test_read_only_unit_cannot_write_and_the_next_unit_can(
    mosaic_fresh_url: str, mosaic_backend: str
) -> None:
    engine = single_connection_engine(mosaic_fresh_url)
    factory = create_session_factory(engine)
    try:
        async with factory() as session, transaction(session, read_only=True):
            assert await UserRepository(session).count() == 0  # reading is fine
        with pytest.raises(RepositoryError) as info:
            async with factory() as session, transaction(session, read_only=True):
                await UserRepository(session).add(User(email="ro@example.com", name="RO"))
        assert not isinstance(info.value, ConflictError)
        if mosaic_backend == "postgresql":
            assert "25006" in str(info.value)  # read_only_sql_transaction
        assert await emails(factory) == []
        # the same (only) pooled connection writes again: nothing of read_only was left on it
        async with factory() as session, transaction(session):
            await UserRepository(session).add(User(email="rw@example.com", name="RW"))
            if mosaic_backend == "sqlite":
                flag = (await session.exec(text("PRAGMA query_only"))).one()
                assert tuple(flag) == (0,)
            else:
                flag = (await session.exec(text("SHOW transaction_read_only"))).one()
                assert tuple(flag) == ("off",)
        assert await emails(factory) == ["rw@example.com"]
    finally:
        await engine.dispose()


async def test_read_only_is_enforced_in_the_isolated_test_session(
    mosaic_session: AsyncSession, seed: Any
) -> None:
    users = UserRepository(mosaic_session)

    async def read_then_write() -> None:
        async with transaction(mosaic_session, read_only=True):
            assert await users.count() == 3
            await users.update(seed.user_ids[0], {"name": "Changed"})

    with pytest.raises(RepositoryError):
        await read_then_write()
    async with transaction(mosaic_session, read_only=True):
        assert (await users.get(seed.user_ids[0])).name == "User 0"
    async with transaction(mosaic_session):  # and the test's transaction still writes
        await users.update(seed.user_ids[0], {"name": "Written"})
    assert (await users.get(seed.user_ids[0])).name == "Written"


async def test_read_only_unit_of_work_on_the_host(mosaic_host: Mosaic, seed: Any) -> None:
    with pytest.raises(RepositoryError):
        async with mosaic_host.unit_of_work(read_only=True) as uow:
            await uow.repository(UserRepository).add(User(email="h@example.com", name="H"))
    async with mosaic_host.unit_of_work() as uow:
        await uow.repository(UserRepository).add(User(email="h@example.com", name="H"))
        assert await uow.repository("accounts.users").count() == 4


# --------------------------------------------------------------------------- isolation level


@pg_only
async def test_isolation_level_applies_to_one_unit_only(
    fresh_factory: async_sessionmaker[AsyncSession],
) -> None:
    async def level(session: AsyncSession) -> str:
        return str((await session.exec(text("SHOW transaction_isolation"))).one()[0])

    async with fresh_factory() as session:
        async with transaction(session, isolation_level="SERIALIZABLE"):
            assert await level(session) == "serializable"
        async with transaction(session, isolation_level="REPEATABLE READ"):
            assert await level(session) == "repeatable read"
        async with transaction(session):
            assert await level(session) == "read committed"


async def test_isolation_level_is_accepted_on_both_backends(
    fresh_factory: async_sessionmaker[AsyncSession], mosaic_session: AsyncSession
) -> None:
    async with fresh_factory() as session, transaction(session, isolation_level="SERIALIZABLE"):
        await UserRepository(session).add(User(email="iso@example.com", name="I"))
    assert await emails(fresh_factory) == ["iso@example.com"]
    # joined to the test's outer transaction it cannot apply, and is not an error
    async with transaction(mosaic_session, isolation_level="SERIALIZABLE"):
        await UserRepository(mosaic_session).add(User(email="iso@example.com", name="I"))


# --------------------------------------------------------------------------- retries


async def seed_counter(factory: async_sessionmaker[AsyncSession]) -> int:
    """A committed task whose ``priority`` serves as a counter; returns its id."""
    async with factory() as session, transaction(session):
        project = await ProjectRepository(session).add(Project(name="counter"))
        assert project.id is not None
        task = await TaskRepository(session).add(Task(project_id=project.id, title="counter"))
        assert task.id is not None
        return task.id


async def counter_value(factory: async_sessionmaker[AsyncSession], task_id: int) -> int:
    async with factory() as session:
        return (await TaskRepository(session).get(task_id)).priority


@pg_only
async def test_retry_recovers_from_a_real_serialization_failure(mosaic_fresh_url: str) -> None:
    """Two SERIALIZABLE units read then write the same row; one fails with 40001, is retried."""
    async with Database(MosaicSettings.load(database_url=mosaic_fresh_url)) as db:
        task_id = await seed_counter(db.session_factory)
        has_read = {"a": asyncio.Event(), "b": asyncio.Event()}
        attempts = {"a": 0, "b": 0}
        failures: list[BaseException] = []

        def bump(me: str, other: str) -> Any:
            async def body(session: AsyncSession) -> int:
                attempts[me] += 1
                tasks = TaskRepository(session)
                current = (await tasks.get(task_id)).priority
                if attempts[me] == 1:  # both read before either writes: a conflict is certain
                    has_read[me].set()
                    await asyncio.wait_for(has_read[other].wait(), 10)
                try:
                    return (await tasks.update(task_id, {"priority": current + 1})).priority
                except RepositoryError as exc:
                    failures.append(exc)
                    raise

            return db.run(body, retry=Retry(attempts=5), isolation_level="SERIALIZABLE")

        results = await asyncio.gather(bump("a", "b"), bump("b", "a"))
    assert sorted(results) == [1, 2]
    assert sorted(attempts.values()) == [1, 2]
    assert len(failures) == 1
    assert failures[0].__cause__ is not None
    assert is_retryable(failures[0].__cause__)
    assert "40001" in str(failures[0])


@pg_only
async def test_transactional_retry_on_the_same_session(mosaic_fresh_url: str) -> None:
    async with Database(MosaicSettings.load(database_url=mosaic_fresh_url)) as db:
        task_id = await seed_counter(db.session_factory)

        class Counter:
            def __init__(self, session: AsyncSession) -> None:
                self.session = session
                self.attempts = 0

            @transactional(retry=Retry(attempts=3), isolation_level="REPEATABLE READ")
            async def increment(self) -> int:
                self.attempts += 1
                tasks = TaskRepository(self.session)
                current = (await tasks.get(task_id)).priority
                if self.attempts == 1:  # another connection commits after our snapshot
                    async with db.transaction() as other:
                        await TaskRepository(other).update(task_id, {"priority": 10})
                return (await tasks.update(task_id, {"priority": current + 1})).priority

        async with db.session() as session:
            counter = Counter(session)
            assert await counter.increment() == 11
            assert counter.attempts == 2
        assert await counter_value(db.session_factory, task_id) == 11


@pg_only
async def test_retries_exhausted(mosaic_fresh_url: str) -> None:
    async with Database(MosaicSettings.load(database_url=mosaic_fresh_url)) as db:
        task_id = await seed_counter(db.session_factory)
        attempts = 0

        async def always_conflicting(session: AsyncSession) -> None:
            nonlocal attempts
            attempts += 1
            tasks = TaskRepository(session)
            current = (await tasks.get(task_id)).priority  # the snapshot is taken here
            async with db.transaction() as other:  # a concurrent writer commits first
                await TaskRepository(other).update(task_id, {"priority": 100 + attempts})
            await tasks.update(task_id, {"priority": current + 1})

        with pytest.raises(RetriesExhaustedError) as info:
            await db.run(
                always_conflicting, retry=Retry(attempts=2), isolation_level="SERIALIZABLE"
            )
        assert info.value.attempts == 2
        assert attempts == 2
        assert "2 attempts" in str(info.value)
        cause = info.value.__cause__
        assert isinstance(cause, RepositoryError)
        assert cause.__cause__ is not None
        assert is_retryable(cause.__cause__)
        assert await counter_value(db.session_factory, task_id) == 102


async def test_non_retryable_errors_are_not_retried(
    mosaic_session_factory: async_sessionmaker[AsyncSession], mosaic_session: AsyncSession
) -> None:
    await UserRepository(mosaic_session).add(User(email="taken@example.com", name="T"))
    await mosaic_session.commit()
    calls = 0

    async def duplicate(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        await UserRepository(session).add(User(email="taken@example.com", name="T"))

    with pytest.raises(ConflictError):
        await run_in_transaction(mosaic_session_factory, duplicate, retry=Retry(attempts=5))
    assert calls == 1

    async def user_bug(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        raise KeyError("not a database error")

    with pytest.raises(KeyError):
        await run_in_transaction(mosaic_session_factory, user_bug, retry=Retry(attempts=5))
    assert calls == 2


def test_retry_policy_validation_and_backoff() -> None:
    with pytest.raises(ConfigurationError):
        Retry(attempts=0)
    with pytest.raises(ConfigurationError):
        Retry(base_delay=-1)
    policy = Retry(attempts=10, base_delay=0.1, max_delay=0.5)
    for attempt in range(2, 10):
        cap = min(0.5, 0.1 * 2 ** (attempt - 2))
        assert all(0 <= policy.delay(attempt) <= cap for _ in range(50))


# --------------------------------------------------------------------------- the host


async def test_host_unit_of_work_and_run(mosaic_host: Mosaic) -> None:
    async with mosaic_host.unit_of_work() as uow:
        users = uow.repository(UserRepository)
        assert uow.repository("accounts.users").session is uow.session
        await users.add(User(email="host@example.com", name="Host"))
        await uow.repository(TeamRepository).add(Team(name="host team"))

    async def second_unit() -> None:
        async with mosaic_host.unit_of_work() as uow:
            await uow.repository(TeamRepository).add(Team(name="second team"))
            await uow.repository(TeamRepository).add(Team(name="host team"))

    with pytest.raises(ConflictError):
        await second_unit()

    async def read(uow: Any) -> list[str]:
        page = await uow.repository("accounts.teams").list(order_by="name")
        return [t.name for t in page.items]

    assert await mosaic_host.run(read, read_only=True) == ["host team"]


@pg_only
async def test_an_object_read_before_the_unit_is_reread_with_for_update(
    mosaic_fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    """The endpoint pattern on PostgreSQL (READ COMMITTED): a dependency reads a row, another
    request commits a change to it, then the service's unit of work changes the row. A plain
    ``get`` in the unit hands back the object read before (the identity map): its change would
    overwrite the other commit. ``get(pk, for_update=True)`` reads the row again, locked, and
    refreshes that same object, so the change builds on the committed value."""
    other_engine = create_engine(MosaicSettings.load(database_url=mosaic_fresh_url))
    factory, others = create_session_factory(fresh_engine), create_session_factory(other_engine)
    try:
        async with factory() as session, transaction(session):
            team_id = (await TeamRepository(session).add(Team(name="a"))).id
        async with factory() as session:
            team = await TeamRepository(session).get(team_id)  # the dependency's read
            async with others() as other, transaction(other):
                (await TeamRepository(other).get(team_id)).name = "b"
            async with transaction(session):
                again = await TeamRepository(session).get(team_id, for_update=True)
                assert again is team
                assert team.name == "b"
                team.name = team.name + "!"
        async with other_engine.connect() as conn:
            assert await conn.scalar(text("SELECT name FROM team")) == "b!"
    finally:
        await other_engine.dispose()
