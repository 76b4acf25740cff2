"""A COMMIT whose answer never arrives: "outcome unknown", never "not applied, retry".

The proxy relays the COMMIT, lets the server answer it (so the row IS committed) and then drops
the client's connection. The unit of work must say CommitOutcomeUnknownError (not
DatabaseUnavailableError, which a web host turns into 503 + Retry-After: a client obeying that
for a POST wrote twice, 10 of 10, in issue 12).
"""

from __future__ import annotations

import pytest
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_tasks import Project, ProjectRepository, Task, TaskService
from sqlmosaic import (
    CommitOutcomeUnknownError,
    Database,
    DatabaseUnavailableError,
    MosaicSettings,
    Retry,
)

from .proxy import PgProxy

pytestmark = pytest.mark.mosaic_backends("postgresql")


async def _count(url: str, name: str) -> int:
    async with Database(MosaicSettings.load(database_url=url)) as db, db.session() as session:
        stmt = select(func.count()).select_from(Project).where(Project.name == name)
        return int((await session.exec(stmt)).one())


async def test_a_cut_commit_is_outcome_unknown(
    mosaic_backend: str, mosaic_fresh_url: str, proxy: PgProxy, proxied_url: str
) -> None:
    async with Database(MosaicSettings.load(database_url=proxied_url)) as db:
        proxy.cut_next_commit()
        with pytest.raises(CommitOutcomeUnknownError) as info:
            async with db.transaction() as session:
                await ProjectRepository(session).add(Project(name="cut"))
        assert not isinstance(info.value, DatabaseUnavailableError)
        assert proxy.commits_cut == 1
        # the engine still works afterwards (the broken connection was discarded)
        async with db.transaction() as session:
            await ProjectRepository(session).add(Project(name="after"))
    # the server did commit: a blind retry would have written the row twice
    assert await _count(mosaic_fresh_url, "cut") == 1
    assert await _count(mosaic_fresh_url, "after") == 1


async def test_a_cut_commit_is_never_retried(
    mosaic_backend: str, mosaic_fresh_url: str, proxy: PgProxy, proxied_url: str
) -> None:
    """The retry policy (serialization failures, deadlocks) never runs a unit again after an
    unknown outcome."""
    attempts = 0

    async def unit(session: object) -> None:
        nonlocal attempts
        attempts += 1
        await ProjectRepository(session).add(Project(name=f"once {attempts}"))  # type: ignore[arg-type]

    async with Database(MosaicSettings.load(database_url=proxied_url)) as db:
        proxy.cut_next_commit()
        with pytest.raises(CommitOutcomeUnknownError):
            await db.run(unit, retry=Retry(attempts=5))
    assert attempts == 1


async def test_a_connection_lost_before_commit_is_unavailable_not_unknown(
    mosaic_backend: str, proxy: PgProxy, proxied_url: str
) -> None:
    """Lost before COMMIT was sent: nothing was applied, DatabaseUnavailableError (retry)."""

    async def unit(session: AsyncSession) -> None:
        await ProjectRepository(session).add(Project(name="lost"))
        proxy.drop_all()
        await ProjectRepository(session).add(Project(name="lost 2"))

    async with Database(MosaicSettings.load(database_url=proxied_url)) as db:
        with pytest.raises(DatabaseUnavailableError) as info:
            await db.run(unit)
        assert not isinstance(info.value, CommitOutcomeUnknownError)


RETRIED_WRITES = 10


async def test_an_idempotency_key_makes_a_retried_write_exactly_once(
    mosaic_backend: str, mosaic_fresh_url: str, proxy: PgProxy, proxied_url: str
) -> None:
    """The documented recipe (docs/reliability.md): a unique key column and an upsert that does
    nothing on conflict. Every create's COMMIT is cut; the client retries with the same key
    until it gets an answer; each key ends with exactly one row."""
    async with Database(MosaicSettings.load(database_url=proxied_url)) as db:
        async with db.transaction() as session:
            project = await ProjectRepository(session).add(Project(name="idempotent"))
        assert project.id is not None
        outcomes = []
        for n in range(RETRIED_WRITES):
            key = f"request-{n}"
            proxy.cut_next_commit()
            tries = 0
            while True:
                tries += 1
                try:
                    task = await db.run(
                        lambda s, key=key: TaskService(s).create_task(
                            project.id, f"t{key}", idempotency_key=key
                        )
                    )
                except CommitOutcomeUnknownError:
                    continue  # the recipe: retry with the SAME key
                outcomes.append((key, tries, task.id))
                break
    assert proxy.commits_cut == RETRIED_WRITES
    assert all(tries == 2 for _, tries, _ in outcomes)
    async with (
        Database(MosaicSettings.load(database_url=mosaic_fresh_url)) as db,
        db.session() as session,
    ):
        rows = (await session.exec(select(Task.idempotency_key, Task.id))).all()
    assert sorted(rows) == sorted((key, task_id) for key, _, task_id in outcomes)
