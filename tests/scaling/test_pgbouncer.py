"""sqlmosaic through a real PgBouncer 1.18 in transaction pooling mode (no prepared statements
forwarded): repositories, units of work (read-only, SAVEPOINTs, retries) and migrations.

``MOSAIC_PGBOUNCER=true`` turns asyncpg's and SQLAlchemy's statement caches off and gives each
prepared statement a unique name; without it the same traffic fails (first test).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_accounts import User, UserRepository
from mosaic_tasks import Project, ProjectRepository, Task, TaskRepository
from sqlmosaic import (
    ConfigurationError,
    Database,
    Mosaic,
    MosaicSettings,
    PgBouncerSettingError,
    RepositoryError,
    Retry,
    create_engine,
    is_retryable,
    transaction,
)
from sqlmosaic.testing._pgbouncer import PgBouncer

from .conftest import through

pytestmark = pytest.mark.parametrize("mosaic_backend", ["postgresql"], indirect=True)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bounced_url(pgbouncer: PgBouncer, mosaic_fresh_url: str) -> str:
    """A fresh migrated database on the test server, reached through PgBouncer."""
    return through(pgbouncer, mosaic_fresh_url)


def settings(url: str, **overrides: Any) -> MosaicSettings:
    return MosaicSettings.load(database_url=url, pgbouncer=True, **overrides)


async def same_statement_in_turns(url: str, *, pgbouncer: bool) -> list[str]:
    """Client A runs a statement, client B takes the server connection A just used (PgBouncer
    hands out the most recently used one first) and holds it, then A runs the same statement
    again: on the other server connection. Returns the errors A saw."""
    engine = create_engine(MosaicSettings.load(database_url=url, pgbouncer=pgbouncer))
    errors: list[str] = []
    try:
        async with engine.connect() as a, engine.connect() as b:
            for _round in range(3):
                try:
                    await a.execute(text("SELECT CAST(:x AS int) + 1"), {"x": 1})
                    await a.commit()
                except Exception as exc:
                    errors.append(str(exc).splitlines()[0])
                    await a.rollback()
                await b.execute(text("SELECT 1"))  # B's transaction holds a server connection
                try:
                    await a.execute(text("SELECT CAST(:x AS int) + 1"), {"x": 2})
                    await a.commit()
                except Exception as exc:
                    errors.append(str(exc).splitlines()[0])
                    await a.rollback()
                await b.commit()
    finally:
        await engine.dispose()
    return errors


async def test_without_the_setting_cached_statements_break(bounced_url: str) -> None:
    """The negative control: the default statement cache reuses a statement prepared on a server
    connection the next transaction does not get."""
    errors = await same_statement_in_turns(bounced_url, pgbouncer=False)
    assert errors, "expected 'prepared statement ... does not exist' without MOSAIC_PGBOUNCER"
    assert all("prepared statement" in error for error in errors), errors


async def test_without_the_setting_a_repository_says_to_set_it(bounced_url: str) -> None:
    """The same traffic through repositories and units of work: not a bare "database error",
    but :class:`PgBouncerSettingError` telling the user to set ``MOSAIC_PGBOUNCER``."""
    database = Database(MosaicSettings.load(database_url=bounced_url, pgbouncer=False))
    seen: list[PgBouncerSettingError] = []
    async with database:
        async with database.transaction() as session:
            await UserRepository(session).add(User(email="bounced@example.com", name="B"))
        async with database.engine.connect() as other:
            for _round in range(3):
                for holder_turn in (False, True):
                    if holder_turn:
                        # another client takes the server connection just used: the next unit
                        # runs on the other one, where the cached statement was never prepared
                        await other.execute(text("SELECT 1"))
                    try:
                        async with database.transaction(read_only=True) as session:
                            await UserRepository(session).count()
                    except PgBouncerSettingError as exc:
                        seen.append(exc)
                await other.commit()
    assert seen, "expected PgBouncerSettingError without MOSAIC_PGBOUNCER"
    for error in seen:
        assert error.setting == "MOSAIC_PGBOUNCER"
        assert "MOSAIC_PGBOUNCER=1" in str(error)
        assert "SQLSTATE" in str(error)
        assert "bounced@" not in str(error)


async def test_with_the_setting_the_same_traffic_works(bounced_url: str) -> None:
    assert await same_statement_in_turns(bounced_url, pgbouncer=True) == []


def test_statement_timeout_is_refused_behind_pgbouncer(mosaic_backend: str) -> None:
    url = "postgresql+asyncpg://app:secret@127.0.0.1:6432/app"
    with pytest.raises(ConfigurationError) as info:
        create_engine(settings(url, statement_timeout=5))
    assert info.value.setting == "MOSAIC_STATEMENT_TIMEOUT"
    assert "secret" not in str(info.value)


async def test_repository_crud_through_transaction_pooling(bounced_url: str) -> None:
    async with Mosaic(settings(bounced_url)) as mosaic:
        async with mosaic.unit_of_work() as uow:
            users = uow.repository(UserRepository)
            ann = await users.add(User(email="ann@example.com", name="Ann"))
            more = await users.add_many(
                [User(email=f"u{i}@example.com", name=f"U{i}") for i in range(5)]
            )
            project = await uow.repository(ProjectRepository).add(Project(name="p"))
            assert project.id is not None
            copied = await uow.repository(TaskRepository).copy_many(
                [{"project_id": project.id, "title": f"t{i}", "priority": i % 3} for i in range(7)]
            )
            assert copied == 7
        assert ann.id is not None

        async def reader(n: int) -> int:
            async with mosaic.unit_of_work(read_only=True) as uow:
                users = uow.repository(UserRepository)
                got = await users.get(ann.id)
                assert got.email == "ann@example.com"
                page = await users.list(order_by="email", limit=3)
                assert [u.email for u in page.items] == [
                    "ann@example.com",
                    "u0@example.com",
                    "u1@example.com",
                ]
                return await users.count() + n * 0

        # 20 concurrent units on 2 server connections: every statement is prepared anew
        assert await asyncio.gather(*(reader(n) for n in range(20))) == [6] * 20

        async with mosaic.unit_of_work() as uow:
            users = uow.repository(UserRepository)
            await users.update(ann.id, {"name": "Ann B"})
            await users.upsert(User(email="ann@example.com", name="Ann C"), conflict=["email"])
            await users.delete(more[0].id)
            assert await uow.repository(TaskRepository).count(where={"priority": 1}) == 2
        async with mosaic.unit_of_work(read_only=True) as uow:
            users = uow.repository(UserRepository)
            assert (await users.get(ann.id)).name == "Ann C"
            assert await users.count() == 5


async def test_read_only_and_savepoints_through_transaction_pooling(bounced_url: str) -> None:
    async with Database(settings(bounced_url)) as db:
        with pytest.raises(RepositoryError) as info:
            async with db.transaction(read_only=True) as session:
                await UserRepository(session).add(User(email="ro@example.com", name="RO"))
        assert "25006" in str(info.value)
        async with db.transaction() as session:
            users = UserRepository(session)
            await users.add(User(email="kept@example.com", name="Kept"))
            with pytest.raises(RepositoryError):  # noqa: PT012 - the SAVEPOINT is the subject
                async with transaction(session):
                    await users.add(User(email="gone@example.com", name="Gone"))
                    await users.add(User(email="kept@example.com", name="Dup"))
        async with db.transaction(read_only=True) as session:
            rows = await UserRepository(session).list(order_by="email")
            assert [u.email for u in rows.items] == ["kept@example.com"]
            flag = (await session.exec(text("SHOW transaction_read_only"))).one()
            assert tuple(flag) == ("on",)


async def test_serialization_retry_through_transaction_pooling(bounced_url: str) -> None:
    """Two SERIALIZABLE units read then write the same row; the loser is retried (40001)."""
    async with Database(settings(bounced_url)) as db:
        async with db.transaction() as session:
            project = await ProjectRepository(session).add(Project(name="counter"))
            assert project.id is not None
            task = await TaskRepository(session).add(
                Task(project_id=project.id, title="counter", priority=0)
            )
        task_id = task.id
        has_read = {"a": asyncio.Event(), "b": asyncio.Event()}
        attempts = {"a": 0, "b": 0}
        failures: list[BaseException] = []

        def bump(me: str, other: str) -> Any:
            async def body(session: AsyncSession) -> int:
                attempts[me] += 1
                tasks = TaskRepository(session)
                current = (await tasks.get(task_id)).priority
                if attempts[me] == 1:
                    has_read[me].set()
                    await asyncio.wait_for(has_read[other].wait(), 30)
                try:
                    return (await tasks.update(task_id, {"priority": current + 1})).priority
                except RepositoryError as exc:
                    failures.append(exc)
                    raise

            return db.run(body, retry=Retry(attempts=5), isolation_level="SERIALIZABLE")

        results = await asyncio.gather(bump("a", "b"), bump("b", "a"))
    assert sorted(results) == [1, 2]
    assert len(failures) == 1
    assert failures[0].__cause__ is not None
    assert is_retryable(failures[0].__cause__)


def test_concurrent_migrations_through_transaction_pooling(
    pgbouncer: PgBouncer, mosaic_empty_url: str
) -> None:
    """The migration run is one transaction holding pg_advisory_xact_lock with SET LOCAL
    timeouts: transaction-scoped, so it works through transaction pooling. Three processes
    migrate one empty database through PgBouncer: exactly one applies, two find nothing to do."""
    url = through(pgbouncer, mosaic_empty_url)
    argv = [str(Path(sys.executable).parent / "mosaic"), "db", "upgrade", "--database-url", url]
    env = {**os.environ, "COLUMNS": "200", "MOSAIC_PGBOUNCER": "true"}
    procs = [
        subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    done = [out for out, _ in outputs if "Done:" in out]
    idle = [out for out, _ in outputs if "Nothing to do" in out]
    assert (len(done), len(idle)) == (1, 2), outputs
