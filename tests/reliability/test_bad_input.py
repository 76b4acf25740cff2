"""Issue 12's list of inputs that reached HTTP 500: each is now an InvalidQueryError naming the
field, decided before any SQL (the statement counter sees none), on both backends."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_tasks import Project, ProjectRepository, Task, TaskRepository
from sqlmosaic import InvalidQueryError
from sqlmosaic.testing import SQLCounterFactory

PLUS_14 = dt.timezone(dt.timedelta(hours=14))


def _cursor(specs: Any, values: Any) -> str:
    raw = json.dumps({"s": specs, "v": values}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


DEEP = base64.urlsafe_b64encode(b"[" * 100_000 + b"]" * 100_000).decode().rstrip("=")[:16000]

LIST_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("int32 filter", {"where": {"priority": 2**31}}, "priority"),
    ("int64 filter", {"where": {"id": 2**63}}, "id"),
    ("negative int32", {"where": {"priority__lt": -(2**31) - 1}}, "priority"),
    ("int in list", {"where": {"id__in": [1, 2**40]}}, "id"),
    ("NUL", {"where": {"title": "\x00"}}, "title"),
    ("NUL like", {"where": {"title__like": "a\x00"}}, "title"),
    (
        "datetime not in UTC",
        {"where": {"created_at__gt": dt.datetime(1, 1, 1, tzinfo=PLUS_14)}},
        "created_at",
    ),
    ("str for int", {"where": {"priority": "2"}}, "priority"),
    ("bool for int", {"where": {"priority": True}}, "priority"),
    ("int for text", {"where": {"title": 5}}, "title"),
    ("cursor true", {"order_by": ["id"], "after": _cursor(["id"], [True])}, "after"),
    ("cursor null", {"order_by": ["id"], "after": _cursor(["id"], [None])}, "after"),
    ("cursor str id", {"order_by": ["id"], "after": _cursor(["id"], ["x"])}, "after"),
    ("cursor int64", {"order_by": ["id"], "after": _cursor(["id"], [2**63])}, "after"),
    ("cursor deep json", {"order_by": ["id"], "after": DEEP}, "after"),
    ("cursor too long", {"after": "A" * 20000}, "after"),
    ("offset over int32", {"offset": 2**31}, "offset"),
    ("str limit", {"limit": "5"}, "limit"),
    ("float limit", {"limit": 1.5}, "limit"),
    ("bool limit", {"limit": True}, "limit"),
    ("str offset", {"offset": "1"}, "offset"),
    ("non-str sort key", {"order_by": [5]}, "order_by"),
    ("None sort key", {"order_by": [None]}, "order_by"),
    ("too many in", {"where": {"id__in": list(range(1001))}}, "id"),
]


@pytest.mark.parametrize(("case", "kwargs", "field"), LIST_CASES, ids=[c[0] for c in LIST_CASES])
async def test_bad_list_input_is_invalid_query_before_sql(
    mosaic_session: AsyncSession,
    mosaic_sql_counter: SQLCounterFactory,
    case: str,
    kwargs: dict[str, Any],
    field: str,
) -> None:
    repo = TaskRepository(mosaic_session)
    with mosaic_sql_counter() as counter, pytest.raises(InvalidQueryError) as info:
        await repo.list(**kwargs)
    assert info.value.field == field, (case, str(info.value))
    assert counter.count == 0


@pytest.mark.parametrize("key", [2**31, -(2**31) - 1, 2**63, 2**70])
async def test_an_integer_key_out_of_range_is_invalid_not_a_500(
    mosaic_session: AsyncSession, mosaic_sql_counter: SQLCounterFactory, key: int
) -> None:
    repo = TaskRepository(mosaic_session)
    with mosaic_sql_counter() as counter:
        for call in (repo.get, repo.get_or_none, repo.delete):
            with pytest.raises(InvalidQueryError) as info:
                await call(key)
            assert info.value.field == "pk"
        with pytest.raises(InvalidQueryError):
            await repo.update(key, {"title": "x"})
    assert counter.count == 0


async def test_update_values_are_checked_before_sql(
    mosaic_session: AsyncSession, mosaic_sql_counter: SQLCounterFactory
) -> None:
    project = await ProjectRepository(mosaic_session).add(Project(name="p"))
    assert project.id is not None
    task = await TaskRepository(mosaic_session).add(Task(project_id=project.id, title="t"))
    with mosaic_sql_counter() as counter:
        for values, field in [
            ({"priority": 2**31}, "priority"),
            ({"title": "a\x00"}, "title"),
            ({"priority": "high"}, "priority"),
        ]:
            with pytest.raises(InvalidQueryError) as info:
                await TaskRepository(mosaic_session).update(task.id, values)
            assert info.value.field == field
    assert counter.count == 0


async def test_a_bool_sort_key_pages_by_keyset(mosaic_session: AsyncSession) -> None:
    """``column > True`` is refused by SQLAlchemy; a cursor over a boolean sort key is bound
    with the column's type instead (users sorted by is_active, then id)."""
    from mosaic_accounts import User, UserRepository

    users = UserRepository(mosaic_session)
    await users.add_many(
        [User(email=f"b{i}@example.com", name=f"b{i}", is_active=i % 2 == 0) for i in range(5)]
    )
    seen: list[int] = []
    page = await users.list(order_by=["-is_active"], limit=2)
    while True:
        seen.extend(u.id for u in page.items if u.id is not None)
        if page.next_cursor is None:
            break
        page = await users.list(order_by=["-is_active"], limit=2, after=page.next_cursor)
    assert len(seen) == len(set(seen)) == await users.count()


async def test_a_write_the_database_refuses_as_data_is_a_400(mosaic_session: AsyncSession) -> None:
    """Values that reach the database on a write (add is not checked before SQL) and that it
    refuses as data (PostgreSQL SQLSTATE class 22, sqlite3 binding/overflow errors) are
    InvalidQueryError, never a generic 500."""
    project = await ProjectRepository(mosaic_session).add(Project(name="w"))
    assert project.id is not None
    bad: dict[str, Any] = {"priority": 2**63}  # beyond 64 bits: both backends refuse it
    with pytest.raises(InvalidQueryError):
        async with mosaic_session.begin_nested():
            await TaskRepository(mosaic_session).add(Task(project_id=project.id, title="t", **bad))
