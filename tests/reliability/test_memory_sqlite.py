"""In-memory SQLite (``sqlite+aiosqlite://``): one connection IS the database.

Every session shares that one connection, so two units of work running at once shared one
transaction: a rollback in one erased the other's committed row, and 1,000 concurrent increments
ended at 1 (issue 12). sqlmosaic's in-memory engines hand the connection to one session at a time
(a pool of exactly one connection: the next session waits until the previous one is done) and
refuse, with a typed error, a second session in a task that already holds it (it would wait on
itself forever).
"""

from __future__ import annotations

import asyncio
import gc

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from mosaic_tasks import Project, ProjectRepository, Task, TaskRepository
from sqlmosaic import ConfigurationError, Database, MosaicSettings, create_engine

UNITS = 1000


async def _memory_db() -> Database:
    # units queue for the one connection: under a loaded CI machine (debug loop, blocking
    # detection) 1,000 of them took longer than the default 30 s pool timeout
    settings = MosaicSettings.load(database_url="sqlite+aiosqlite://", pool_timeout=600)
    db = await Database(settings).connect()
    async with db.engine.begin() as conn:
        await conn.run_sync(Task.metadata.create_all)
    return db


async def test_concurrent_increments_on_an_in_memory_database_are_all_kept() -> None:
    db = await _memory_db()
    try:
        async with db.transaction() as session:
            project = await ProjectRepository(session).add(Project(name="p"))
            assert project.id is not None
            counter = await TaskRepository(session).add(Task(project_id=project.id, title="c"))
            task_id = counter.id
        assert task_id is not None

        async def increment(session: object) -> None:
            tasks = TaskRepository(session)  # type: ignore[arg-type]
            task = await tasks.get(task_id)
            await asyncio.sleep(0)  # let every other unit run between read and write
            await tasks.update(task, {"priority": task.priority + 1})

        # the collector's pauses (thousands of tasks) would land in the debug loop's
        # slow-callback check: keep them out, as tests/core/test_sqlite_concurrency.py does
        gc.freeze()
        gc.disable()
        try:
            units = []
            for i in range(UNITS):
                units.append(asyncio.create_task(db.run(increment)))
                if i % 50 == 49:
                    await asyncio.sleep(0)
            await asyncio.gather(*units)
        finally:
            gc.enable()  # no gc.unfreeze(): see tests/core/test_sqlite_concurrency.py
        async with db.session() as session:
            assert (await TaskRepository(session).get(task_id)).priority == UNITS
    finally:
        await db.dispose()


async def test_a_rollback_never_erases_another_units_committed_row() -> None:
    db = await _memory_db()
    try:
        first_wrote = asyncio.Event()
        second_committed = asyncio.Event()

        async def write_then_fail() -> None:
            async with db.transaction() as session:
                await ProjectRepository(session).add(Project(name="rolled back"))
                first_wrote.set()
                # give the other unit every chance to run (and commit) meanwhile
                for _ in range(50):
                    await asyncio.sleep(0)
                raise RuntimeError("boom")

        async def failing_unit() -> None:
            with pytest.raises(RuntimeError):
                await write_then_fail()

        async def committing_unit() -> None:
            await first_wrote.wait()
            async with db.transaction() as session:
                await ProjectRepository(session).add(Project(name="kept"))
            second_committed.set()

        await asyncio.gather(failing_unit(), committing_unit())
        assert second_committed.is_set()
        async with db.session() as session:
            names = [p.name for p in (await ProjectRepository(session).list()).items]
        assert names == ["kept"]
    finally:
        await db.dispose()


async def test_a_second_session_in_the_same_task_is_refused_not_deadlocked() -> None:
    db = await _memory_db()
    try:
        async with db.transaction() as outer:
            await ProjectRepository(outer).add(Project(name="outer"))
            with pytest.raises(ConfigurationError, match="in-memory SQLite") as info:
                async with db.transaction() as inner:
                    await ProjectRepository(inner).count()
            assert info.value.setting == "DATABASE_URL"
        async with db.session() as session:  # the outer unit committed; nothing was lost
            assert await ProjectRepository(session).count() == 1
    finally:
        await db.dispose()


async def test_in_memory_engine_keeps_one_database_across_sessions() -> None:
    engine: AsyncEngine = create_engine(MosaicSettings.load(database_url="sqlite+aiosqlite://"))
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        for i in range(3):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:i)"), {"i": i})
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM t")) == 3
    finally:
        await engine.dispose()
