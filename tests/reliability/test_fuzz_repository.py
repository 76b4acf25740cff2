"""Hypothesis over ``Repository.list/get/add/update`` and the cursor codec: whatever a caller
passes, only typed sqlmosaic errors escape (InvalidQueryError, NotFoundError, ConflictError),
never a driver error, a bare Python exception or a generic RepositoryError (HTTP 500).

Derandomized and bounded (``max_examples``), on both backends, inside savepoints of the test's
isolated session (a failed statement is rolled back with its example).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_tasks import Project, ProjectRepository, Task, TaskRepository
from sqlmosaic import OPERATORS, ConflictError, InvalidQueryError, NotFoundError

#: Errors a caller may see; anything else (a RepositoryError "database error", a TypeError,
#: an OverflowError, a driver error) is a 500 and fails the test.
TYPED = (InvalidQueryError, NotFoundError, ConflictError)
FUZZ = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_ZONES = [None, dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(dt.timedelta(hours=-12))]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(),
    st.decimals(),
    st.text(max_size=12),
    st.sampled_from(["\x00", "a\x00b", "%", "_", "open", "t"]),
    st.datetimes(timezones=st.sampled_from(_ZONES)),
    st.sampled_from(
        [dt.datetime.min.replace(tzinfo=_ZONES[2]), dt.datetime.max.replace(tzinfo=_ZONES[3])]
    ),
    st.dates(),
    st.uuids(),
    st.binary(max_size=4),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4))
FIELDS = [
    "id",
    "project_id",
    "title",
    "status",
    "priority",
    "assignee_id",
    "created_at",
    "idempotency_key",
    "nope",
]
KEYS = st.builds(
    lambda f, op: f if op is None else f"{f}__{op}",
    st.sampled_from(FIELDS),
    st.sampled_from([None, *OPERATORS, "bogus"]),
)
SORTS = st.one_of(
    st.none(),
    st.sampled_from(["title", "-priority", "", "-", "nope"]),
    st.lists(
        st.one_of(
            st.sampled_from(["id", "-priority", "title", "-created_at", "assignee_id", "nope"]),
            st.integers(),
            st.none(),
        ),
        max_size=3,
    ),
)
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["dt", "d", "dec", "uuid", "x"]), inner, max_size=2),
    ),
    max_leaves=8,
)


def _cursor(specs: Any, values: Any) -> str:
    raw = json.dumps({"s": specs, "v": values}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CURSORS = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.builds(_cursor, st.just(["id"]), st.lists(JSONISH, min_size=1, max_size=1)),
    st.builds(_cursor, st.just(["title", "id"]), st.lists(JSONISH, min_size=2, max_size=2)),
    st.builds(
        _cursor,
        st.just(["-priority", "id"]),
        st.lists(
            st.one_of(JSONISH, st.builds(lambda s: {"dt": s}, st.text(max_size=30))),
            min_size=2,
            max_size=2,
        ),
    ),
)


@pytest.fixture
async def seeded_task(mosaic_session: AsyncSession) -> int:
    project = await ProjectRepository(mosaic_session).add(Project(name="fuzz"))
    assert project.id is not None
    task = await TaskRepository(mosaic_session).add(Task(project_id=project.id, title="t"))
    assert task.id is not None
    return task.id


@asynccontextmanager
async def _savepoint(session: AsyncSession) -> AsyncIterator[None]:
    savepoint = await session.begin_nested()
    try:
        yield
    finally:
        # also when a failed flush deactivated it: the session needs the explicit rollback
        await savepoint.rollback()


async def _typed(session: AsyncSession, call: Callable[[], Any]) -> None:
    async with _savepoint(session):
        with suppress(TYPED):
            await call()


@FUZZ
@given(
    where=st.dictionaries(KEYS, VALUES, max_size=3),
    order_by=SORTS,
    limit=st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=3), st.booleans()),
    offset=st.one_of(
        st.integers(),
        st.integers(min_value=2**31 - 2, max_value=2**64),
        st.floats(),
        st.text(max_size=2),
    ),
    after=CURSORS,
)
async def test_list_raises_only_typed_errors(
    mosaic_session: AsyncSession,
    where: dict[str, Any],
    order_by: Any,
    limit: Any,
    offset: Any,
    after: Any,
) -> None:
    repo = TaskRepository(mosaic_session)
    await _typed(
        mosaic_session,
        lambda: repo.list(where=where, order_by=order_by, limit=limit, offset=offset, after=after),
    )


@FUZZ
@given(key=st.one_of(SCALARS, st.tuples(SCALARS), st.tuples(SCALARS, SCALARS)))
async def test_get_raises_only_typed_errors(mosaic_session: AsyncSession, key: Any) -> None:
    repo = TaskRepository(mosaic_session)
    await _typed(mosaic_session, lambda: repo.get(key))
    await _typed(mosaic_session, lambda: repo.delete(key))


@FUZZ
@given(values=st.dictionaries(st.sampled_from(FIELDS), SCALARS, min_size=1, max_size=3))
async def test_update_raises_only_typed_errors(
    mosaic_session: AsyncSession, seeded_task: int, values: dict[str, Any]
) -> None:
    repo = TaskRepository(mosaic_session)
    await _typed(mosaic_session, lambda: repo.update(seeded_task, values))
    await _typed(mosaic_session, lambda: repo.update_where(values, where={"id": seeded_task}))


@FUZZ
@given(
    title=SCALARS,
    priority=SCALARS,
    status=SCALARS,
)
async def test_add_raises_only_typed_errors(
    mosaic_session: AsyncSession, seeded_task: int, title: Any, priority: Any, status: Any
) -> None:
    repo = TaskRepository(mosaic_session)
    project_id = (await repo.get(seeded_task)).project_id

    async def add() -> None:
        # table models do not validate on construction: the values reach the repository as is
        task = Task(project_id=project_id, title=title, priority=priority, status=status)
        await repo.add(task)

    await _typed(mosaic_session, add)
