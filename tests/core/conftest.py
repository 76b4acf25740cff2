"""Fixtures for the core database tests (repository, unit of work, engine, errors, concurrency).

The shared ones (``mosaic_*``) come from the shipped pytest plugin ``sqlmosaic.testing.plugin``.
These add: an engine and session factory on a brand-new migrated database (real commits across
connections) and seed rows of the first-party models. A test module restricts itself to one
backend with ``pytest.mark.parametrize("mosaic_backend", ["postgresql"], indirect=True)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_accounts import User, UserRepository
from mosaic_tasks import Project, ProjectRepository, Task, TaskRepository
from sqlmosaic import MosaicSettings, create_engine, create_session_factory


@pytest.fixture
async def fresh_engine(mosaic_fresh_url: str) -> AsyncIterator[AsyncEngine]:
    """``sqlmosaic.create_engine`` on a brand-new migrated database (dropped afterwards)."""
    engine = create_engine(MosaicSettings.load(database_url=mosaic_fresh_url))
    yield engine
    await engine.dispose()


@pytest.fixture
def fresh_factory(fresh_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(fresh_engine)


@dataclass
class Seed:
    """Ids of rows inserted for a test (plain ints: no ORM object outlives its session state)."""

    user_ids: list[int]
    project_id: int
    task_ids: list[int]


async def seed_rows(session: AsyncSession, *, users: int = 3, tasks: int = 0) -> Seed:
    """Insert users ``u0..`` and a project with ``tasks`` tasks (priority ``i % 3``); flush only."""
    user_objs = await UserRepository(session).add_many(
        [User(email=f"u{i}@example.com", name=f"User {i}") for i in range(users)]
    )
    project = await ProjectRepository(session).add(Project(name="seed project"))
    assert project.id is not None
    task_objs = await TaskRepository(session).add_many(
        [Task(project_id=project.id, title=f"task {i:03d}", priority=i % 3) for i in range(tasks)]
    )
    return Seed(
        user_ids=[u.id for u in user_objs if u.id is not None],
        project_id=project.id,
        task_ids=[t.id for t in task_objs if t.id is not None],
    )


@pytest.fixture
def seeder() -> Callable[..., Awaitable[Seed]]:
    """``await seeder(session, users=..., tasks=...)``: insert seed rows on any session."""
    return seed_rows


@pytest.fixture
async def seed(mosaic_session: AsyncSession) -> Seed:
    """Three users and a project with 20 tasks, committed in the test's isolated session (a
    savepoint release: the test's outer rollback still removes them)."""
    rows = await seed_rows(mosaic_session, users=3, tasks=20)
    await mosaic_session.commit()
    return rows
