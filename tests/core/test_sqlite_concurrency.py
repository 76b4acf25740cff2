"""1,000 concurrent read-modify-write units of work lose no increment.

On SQLite through aiosqlite, pysqlite's default transaction handling lost 787 of 1,000 such
increments without an error (field notes); sqlmosaic's engine begins every writing unit of work
with ``BEGIN IMMEDIATE``, so the read and the write of one unit cannot interleave with another
writer. On PostgreSQL the same workload holds with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_tasks import Project, ProjectRepository, Task, TaskRepository
from sqlmosaic import Database, MosaicSettings, transaction

UNITS = 1000
#: PostgreSQL's row lock queues the units one behind another (four round trips each); 200 keep
#: 190+ of them waiting on the lock at once, what the test is about, at a fifth of the time.
PG_UNITS = 200


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Keep the cyclic garbage collector's pauses out of the event loop's callbacks.

    Under asyncio debug mode (which fails a test on any callback over the slow-callback limit)
    the thousands of tasks, each with its creation traceback, made generation-2 collections of
    0.1-0.36 s here, inside whichever callback happened to allocate: a pause of the collector,
    not of the code under test. Reference counting still frees almost everything meanwhile.
    """
    gc.freeze()  # objects that existed before are not scanned by a later collection either
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        # No gc.unfreeze(): it would also unfreeze what sqlmosaic's pytest plugin froze after
        # collection (every module and test item), and each later full collection of the run
        # would scan all of it again (~50 s of collector time in a whole-suite run).


async def run_concurrently(n: int, unit: Callable[[], Awaitable[Any]]) -> None:
    """Start ``n`` units (in batches, so that no single loop step creates all the tasks in
    debug mode) and wait for all of them; every unit is pending at once."""
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(unit()))
        if i % 50 == 49:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)


async def make_counter(db: Database) -> int:
    """A committed task whose ``priority`` is the counter."""
    async with db.transaction() as session:
        project = await ProjectRepository(session).add(Project(name="counters"))
        assert project.id is not None
        task = await TaskRepository(session).add(Task(project_id=project.id, title="counter"))
        assert task.id is not None
        return task.id


@pytest.mark.mosaic_backends("sqlite")
async def test_sqlite_concurrent_increments_are_all_kept(
    mosaic_fresh_url: str, mosaic_backend: str
) -> None:
    settings = MosaicSettings.load(database_url=mosaic_fresh_url)
    async with Database(settings) as db:  # sqlmosaic.create_engine: file database, WAL
        task_id = await make_counter(db)
        peak_connections = 0

        async def increment(session: AsyncSession) -> None:
            nonlocal peak_connections
            tasks = TaskRepository(session)
            task = await tasks.get(task_id)  # read ...
            peak_connections = max(peak_connections, db.engine.pool.checkedout())  # type: ignore[attr-defined]
            await asyncio.sleep(0)  # ... let every other unit run ...
            await tasks.update(task, {"priority": task.priority + 1})  # ... then write

        started = time.monotonic()
        with no_gc_pauses():
            await run_concurrently(UNITS, lambda: db.run(increment))
        elapsed = time.monotonic() - started

        async with db.session() as session:
            final = (await TaskRepository(session).get(task_id)).priority
    print(
        f"SQLite: {UNITS} concurrent increments in {elapsed:.2f}s, peak pool use {peak_connections}"
    )
    assert final == UNITS
    # the units really competed: several pooled connections were in use at the same time
    assert peak_connections > 1


@pytest.mark.mosaic_backends("postgresql")
async def test_postgres_concurrent_increments_with_select_for_update(
    mosaic_fresh_url: str, mosaic_backend: str
) -> None:
    settings = MosaicSettings.load(database_url=mosaic_fresh_url)
    async with Database(settings) as db:
        task_id = await make_counter(db)
        peak_connections = 0

        async def increment() -> None:
            nonlocal peak_connections
            async with db.session() as session, transaction(session):
                task = await session.get(Task, task_id, with_for_update=True)  # row lock
                assert task is not None
                peak_connections = max(peak_connections, db.engine.pool.checkedout())  # type: ignore[attr-defined]
                await asyncio.sleep(0)
                await TaskRepository(session).update(task, {"priority": task.priority + 1})

        started = time.monotonic()
        with no_gc_pauses():
            await run_concurrently(PG_UNITS, increment)
        elapsed = time.monotonic() - started
        async with db.session() as session:
            final = (await TaskRepository(session).get(task_id)).priority
    print(
        f"PostgreSQL: {PG_UNITS} concurrent increments in {elapsed:.2f}s, "
        f"peak pool {peak_connections}"
    )
    assert final == PG_UNITS
    assert peak_connections > 1
