"""Every Repository method on PostgreSQL and SQLite, with the statements each one sends.

Each test runs inside the plugin's rolled-back outer transaction (``mosaic_session``), on the
first-party models migrated by the real Alembic migrations.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_accounts import (
    Membership,
    MembershipRepository,
    Team,
    TeamRepository,
    User,
    UserRepository,
)
from mosaic_tasks import TaskRepository
from sqlmosaic import ConflictError, Filter, InvalidQueryError, NotFoundError, Repository

Counter = Callable[[], AbstractContextManager[Any]]


async def warm(session: AsyncSession) -> None:
    """Begin the session's transaction first, so that counters see only the method's SQL."""
    await session.connection()


def first_word(statement: str) -> str:
    return statement.lstrip().split(None, 1)[0].upper()


# --------------------------------------------------------------------------- get


async def test_get_returns_the_row(mosaic_session: AsyncSession, seed: Any) -> None:
    users = UserRepository(mosaic_session)
    user = await users.get(seed.user_ids[1])
    assert (user.id, user.email) == (seed.user_ids[1], "u1@example.com")


async def test_get_missing_raises_not_found_naming_model_and_key(
    mosaic_session: AsyncSession, seed: Any
) -> None:
    with pytest.raises(NotFoundError) as info:
        await UserRepository(mosaic_session).get(987654)
    assert info.value.model == "User"
    assert info.value.key == 987654
    assert "User" in str(info.value)
    assert "987654" in str(info.value)


async def test_get_by_composite_primary_key(mosaic_session: AsyncSession, seed: Any) -> None:
    team = await TeamRepository(mosaic_session).add(Team(name="core"))
    assert team.id is not None
    memberships = MembershipRepository(mosaic_session)
    await memberships.add(Membership(team_id=team.id, user_id=seed.user_ids[0], role="owner"))
    found = await memberships.get((team.id, seed.user_ids[0]))
    assert found.role == "owner"
    with pytest.raises(NotFoundError) as info:
        await memberships.get((team.id, seed.user_ids[1]))
    assert info.value.model == "Membership"
    assert info.value.key == (team.id, seed.user_ids[1])


async def test_get_or_none(mosaic_session: AsyncSession, seed: Any) -> None:
    users = UserRepository(mosaic_session)
    assert await users.get_or_none(987654) is None
    found = await users.get_or_none(seed.user_ids[0])
    assert found is not None
    assert found.email == "u0@example.com"


# --------------------------------------------------------------------------- list


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"priority": 1}, [1, 4, 7, 10, 13, 16, 19]),
        ({"priority__eq": 2}, [2, 5, 8, 11, 14, 17]),
        ({"priority__ne": 0}, [i for i in range(20) if i % 3]),
        ({"priority__lt": 1}, [0, 3, 6, 9, 12, 15, 18]),
        ({"priority__le": 1}, [i for i in range(20) if i % 3 <= 1]),
        ({"priority__gt": 1}, [2, 5, 8, 11, 14, 17]),
        ({"priority__ge": 1}, [i for i in range(20) if i % 3 >= 1]),
        ({"title__in": ["task 003", "task 011", "nope"]}, [3, 11]),
        ({"priority__not_in": [0, 1]}, [2, 5, 8, 11, 14, 17]),
        ({"title__like": "k 01"}, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]),
        ({"title__ilike": "TASK 00"}, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        ({"title__like": "TASK 00"}, []),  # like is case-sensitive on both backends
        ({"assignee_id__is_null": True}, list(range(20))),
        ({"assignee_id__is_null": False}, []),
        ({"priority__ge": 1, "title__in": ["task 001", "task 003", "task 005"]}, [1, 5]),
    ],
    ids=lambda v: str(v) if isinstance(v, dict) else "",
)
async def test_list_filters_with_each_operator(
    mosaic_session: AsyncSession, seed: Any, where: dict[str, Any], expected: list[int]
) -> None:
    page = await TaskRepository(mosaic_session).list(where=where, order_by="title", limit=100)
    assert [t.title for t in page.items] == [f"task {i:03d}" for i in expected]


async def test_list_accepts_filter_objects(mosaic_session: AsyncSession, seed: Any) -> None:
    tasks = TaskRepository(mosaic_session)
    page = await tasks.list(
        Filter("priority", "gt", 0), Filter("title", "le", "task 005"), order_by="-title"
    )
    assert [t.title for t in page.items] == ["task 005", "task 004", "task 002", "task 001"]


async def test_list_order_limit_offset(mosaic_session: AsyncSession, seed: Any) -> None:
    tasks = TaskRepository(mosaic_session)
    page = await tasks.list(order_by=["-priority", "title"], limit=3, offset=2)
    assert [t.title for t in page.items] == ["task 008", "task 011", "task 014"]
    assert page.sort == ("-priority", "title", "id")
    assert (page.limit, page.offset, page.total) == (3, 2, None)
    everything = await tasks.list(order_by="title", limit=1000)
    assert len(everything) == 20
    assert everything.next_cursor is None


async def test_list_default_limit(mosaic_session: AsyncSession, seeder: Any) -> None:
    await seeder(mosaic_session, users=0, tasks=TaskRepository.default_limit + 5)
    page = await TaskRepository(mosaic_session).list()
    assert len(page) == TaskRepository.default_limit
    assert page.next_cursor is not None


@pytest.mark.parametrize("limit", [0, -1, TaskRepository.max_limit + 1, 10**9])
async def test_list_limit_outside_the_cap_is_rejected_before_sql(
    mosaic_session: AsyncSession, mosaic_sql_counter: Counter, limit: int
) -> None:
    await warm(mosaic_session)
    with mosaic_sql_counter() as n, pytest.raises(InvalidQueryError) as info:
        await TaskRepository(mosaic_session).list(limit=limit)
    assert info.value.field == "limit"
    assert str(TaskRepository.max_limit) in str(info.value)
    assert n.count == 0


@pytest.mark.parametrize("sort", ["-priority", "priority", "title", "-created_at", "-id"])
@pytest.mark.parametrize("limit", [1, 4, 7, 20])
async def test_keyset_pagination_walks_every_row_once(
    mosaic_session: AsyncSession, seed: Any, sort: str, limit: int
) -> None:
    """Ties on the sort field (priority i % 3) are broken by the primary key; no row is lost."""
    tasks = TaskRepository(mosaic_session)
    everything = (await tasks.list(order_by=sort, limit=1000)).items
    name = sort.lstrip("-")
    expected = sorted(everything, key=lambda t: t.id or 0)
    expected.sort(key=lambda t: getattr(t, name), reverse=sort.startswith("-"))
    assert [t.id for t in everything] == [t.id for t in expected]

    walked: list[int | None] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await tasks.list(order_by=sort, limit=limit, after=cursor)
        pages += 1
        assert len(page) <= limit
        walked.extend(t.id for t in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(page) == limit
    assert walked == [t.id for t in expected]
    assert pages == max(1, -(-20 // limit))


async def test_keyset_pagination_with_filters_and_total(
    mosaic_session: AsyncSession, seed: Any
) -> None:
    tasks = TaskRepository(mosaic_session)
    first = await tasks.list(
        where={"priority__ne": 2}, order_by="-priority", limit=5, with_total=True
    )
    assert first.total == 14
    assert [t.priority for t in first.items] == [1, 1, 1, 1, 1]
    second = await tasks.list(
        where={"priority__ne": 2},
        order_by="-priority",
        limit=5,
        after=first.next_cursor,
        with_total=True,
    )
    assert second.total == 14  # the total ignores the cursor: it counts every matching row
    assert [t.priority for t in second.items] == [1, 1, 0, 0, 0]
    assert {t.id for t in first.items}.isdisjoint({t.id for t in second.items})


async def test_open_for_user_keyset_through_a_custom_method(
    mosaic_session: AsyncSession, seed: Any
) -> None:
    tasks = TaskRepository(mosaic_session)
    user_id = seed.user_ids[0]
    assigned = await tasks.update_where({"assignee_id": user_id}, where={"title__le": "task 009"})
    assert assigned == 10
    seen: list[int] = []
    cursor = None
    while True:
        page = await tasks.open_for_user(user_id, limit=3, after=cursor)
        seen.extend(t.priority for t in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted((i % 3 for i in range(10)), reverse=True)


async def test_list_with_total(mosaic_session: AsyncSession, seed: Any) -> None:
    page = await TaskRepository(mosaic_session).list(
        where={"priority": 0}, order_by="title", limit=2, with_total=True
    )
    assert page.total == 7
    assert [t.title for t in page.items] == ["task 000", "task 003"]
    assert page.next_cursor is not None


async def test_count_and_exists(mosaic_session: AsyncSession, seed: Any) -> None:
    tasks = TaskRepository(mosaic_session)
    assert await tasks.count() == 20
    assert await tasks.count(where={"priority": 2}) == 6
    assert await tasks.count(Filter("title", "like", "99")) == 0
    assert await tasks.exists(where={"title": "task 019"}) is True
    assert await tasks.exists(where={"title": "task 020"}) is False
    assert await tasks.exists() is True


# --------------------------------------------------------------------------- bad input


BAD_LIST_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown sort field", {"order_by": "nope"}, "nope"),
    ("unknown filter field", {"where": {"nope": 1}}, "nope"),
    ("hidden column as sort", {"order_by": "-password_hash"}, "password_hash"),
    ("hidden column as filter", {"where": {"password_hash__is_null": False}}, "password_hash"),
    ("hidden column via like", {"where": {"password_hash__like": "$2b$"}}, "password_hash"),
    ("unknown operator", {"where": {"email__regex": ".*"}}, "email"),
    ("empty operator", {"where": {"email__": "x"}}, "email"),
    ("in without a list", {"where": {"id__in": 3}}, "id"),
    ("like without a string", {"where": {"email__like": 3}}, "email"),
    ("is_null without a bool", {"where": {"email__is_null": "yes"}}, "email"),
    ("sort named twice", {"order_by": ["name", "-name"]}, "name"),
    ("limit over the cap", {"limit": 1001}, "limit"),
    ("negative offset", {"offset": -1}, "offset"),
    ("bad cursor", {"after": "not-a-cursor!!"}, "after"),
    ("cursor that is not JSON", {"after": "bm90IGpzb24"}, "after"),
    ("offset with cursor", {"after": "x", "offset": 3}, "after"),
]


@pytest.mark.parametrize(
    ("label", "kwargs", "field"), BAD_LIST_CALLS, ids=[c[0] for c in BAD_LIST_CALLS]
)
async def test_bad_list_input_is_rejected_before_any_sql(
    mosaic_session: AsyncSession,
    mosaic_sql_counter: Counter,
    label: str,
    kwargs: dict[str, Any],
    field: str,
) -> None:
    users = UserRepository(mosaic_session)
    await warm(mosaic_session)
    with mosaic_sql_counter() as n, pytest.raises(InvalidQueryError) as info:
        await users.list(**kwargs)
    assert info.value.field == field, label
    assert n.count == 0


@pytest.mark.parametrize("method", ["count", "exists", "delete_where"])
async def test_bad_filters_rejected_before_sql_in_every_method(
    mosaic_session: AsyncSession, mosaic_sql_counter: Counter, method: str
) -> None:
    users = UserRepository(mosaic_session)
    await warm(mosaic_session)
    with mosaic_sql_counter() as n, pytest.raises(InvalidQueryError) as info:
        await getattr(users, method)(where={"password_hash": "x"})
    assert info.value.field == "password_hash"
    with mosaic_sql_counter() as n2, pytest.raises(InvalidQueryError):
        await users.update_where({"name": "x"}, where={"name__nope": "x"})
    assert n.count == n2.count == 0


async def test_error_message_lists_allowed_fields_not_hidden_ones(
    mosaic_session: AsyncSession,
) -> None:
    with pytest.raises(InvalidQueryError) as info:
        await UserRepository(mosaic_session).list(order_by="secret")
    message = str(info.value)
    assert "email" in message
    assert "password_hash" not in message


async def test_cursor_from_another_sort_is_rejected(
    mosaic_session: AsyncSession, seed: Any, mosaic_sql_counter: Counter
) -> None:
    tasks = TaskRepository(mosaic_session)
    page = await tasks.list(order_by="-priority", limit=2)
    assert page.next_cursor is not None
    for other_sort in ("priority", "title", None):
        with mosaic_sql_counter() as n, pytest.raises(InvalidQueryError) as info:
            await tasks.list(order_by=other_sort, limit=2, after=page.next_cursor)
        assert info.value.field == "after"
        assert n.count == 0


@pytest.mark.parametrize("order", ["assignee_id", "-assignee_id"])
async def test_cursor_on_a_nullable_sort_field_pages_through_nulls(
    mosaic_session: AsyncSession, seed: Any, order: str
) -> None:
    """next_cursor used to be handed out for a nullable sort, then refused on the next page."""
    tasks = TaskRepository(mosaic_session)
    some = seed.task_ids[::3]
    await tasks.update_where({"assignee_id": seed.user_ids[0]}, where={"id__in": some[:3]})
    await tasks.update_where({"assignee_id": seed.user_ids[1]}, where={"id__in": some[3:]})
    everything = (await tasks.list(order_by=order, limit=100)).items
    assert {t.assignee_id for t in everything} == {None, *seed.user_ids[:2]}
    seen: list[Any] = []
    page = await tasks.list(order_by=order, limit=3)
    while True:
        seen.extend(t.id for t in page.items)
        if page.next_cursor is None:
            break
        page = await tasks.list(order_by=order, limit=3, after=page.next_cursor)
    assert seen == [t.id for t in everything]
    # NULLs sort after every value on both backends
    nulls_at_end = order == "assignee_id"
    keys = [t.assignee_id is None for t in everything]
    assert keys == sorted(keys, reverse=not nulls_at_end)


async def test_like_and_ilike_match_wildcards_literally(mosaic_session: AsyncSession) -> None:
    users = UserRepository(mosaic_session)
    names = ["100% sure", "100 sure", "a_b", "axb", "A_B upper", "back\\slash", "back/slash"]
    await users.add_many([User(email=f"w{i}@example.com", name=n) for i, n in enumerate(names)])

    async def names_for(op: str, value: str) -> list[str]:
        page = await users.list(where={f"name__{op}": value}, order_by="email")
        return [u.name for u in page.items]

    assert await names_for("like", "%") == ["100% sure"]
    assert await names_for("like", "0% s") == ["100% sure"]
    assert await names_for("like", "_") == ["a_b", "A_B upper"]
    assert await names_for("like", "a_b") == ["a_b"]
    assert await names_for("ilike", "a_b") == ["a_b", "A_B upper"]
    assert await names_for("ilike", "%") == ["100% sure"]
    assert await names_for("like", "\\") == ["back\\slash"]
    assert await names_for("like", "/") == ["back/slash"]
    assert await names_for("like", "%%") == []


async def test_explicit_allow_lists_never_expose_hidden_columns(
    mosaic_session: AsyncSession, seed: Any
) -> None:
    class NarrowUsers(Repository[User]):
        filter_fields = frozenset({"email", "password_hash"})
        sort_fields = frozenset()

    repo = NarrowUsers(mosaic_session)
    assert repo.allowed_filters() == {"email"}
    assert repo.allowed_sorts() == frozenset()
    assert len(await repo.list(where={"email": "u0@example.com"})) == 1
    with pytest.raises(InvalidQueryError) as info:
        await repo.list(where={"password_hash__is_null": True})
    assert info.value.field == "password_hash"
    with pytest.raises(InvalidQueryError) as info:
        await repo.list(where={"name": "User 0"})
    assert info.value.field == "name"
    with pytest.raises(InvalidQueryError) as info:
        await repo.list(order_by="email")
    assert info.value.field == "email"


# --------------------------------------------------------------------------- writes


async def test_add_assigns_the_primary_key(mosaic_session: AsyncSession) -> None:
    user = await UserRepository(mosaic_session).add(User(email="new@example.com", name="New"))
    assert isinstance(user.id, int)
    row = (await mosaic_session.exec(select(User).where(col(User.id) == user.id))).one()
    assert row.email == "new@example.com"


async def test_add_many_returns_each_object_with_its_own_key(
    mosaic_session: AsyncSession,
) -> None:
    users = UserRepository(mosaic_session)
    added = await users.add_many(
        [User(email=f"m{i}@example.com", name=f"M{i}") for i in range(300)]
    )
    assert len({u.id for u in added}) == 300
    mosaic_session.expunge_all()
    stored = {u.email: u.id for u in (await mosaic_session.exec(select(User))).all()}
    assert all(stored[u.email] == u.id for u in added)
    assert await users.add_many([]) == []


async def test_update_an_instance(mosaic_session: AsyncSession, seed: Any) -> None:
    users = UserRepository(mosaic_session)
    user = await users.get(seed.user_ids[0])
    updated = await users.update(user, {"name": "Renamed", "is_active": False})
    assert updated is user
    mosaic_session.expunge_all()
    again = await users.get(seed.user_ids[0])
    assert (again.name, again.is_active) == ("Renamed", False)


async def test_update_by_primary_key(mosaic_session: AsyncSession, seed: Any) -> None:
    users = UserRepository(mosaic_session)
    loaded = await users.get(seed.user_ids[1])
    updated = await users.update(seed.user_ids[1], {"name": "By Key"})
    assert updated.name == "By Key"
    assert loaded.name == "By Key"  # the identity-map object is refreshed, not left stale
    assert loaded is updated


async def test_update_missing_and_invalid(mosaic_session: AsyncSession, seed: Any) -> None:
    users = UserRepository(mosaic_session)
    with pytest.raises(NotFoundError) as info:
        await users.update(987654, {"name": "x"})
    assert (info.value.model, info.value.key) == ("User", 987654)
    with pytest.raises(InvalidQueryError) as bad:
        await users.update(seed.user_ids[0], {"nope": 1})
    assert bad.value.field == "nope"
    with pytest.raises(InvalidQueryError) as empty:
        await users.update(seed.user_ids[0], {})
    assert empty.value.field == "values"


async def test_update_where_and_its_guard(
    mosaic_session: AsyncSession, seed: Any, mosaic_sql_counter: Counter
) -> None:
    tasks = TaskRepository(mosaic_session)
    loaded = await tasks.get(seed.task_ids[2])
    assert await tasks.update_where({"status": "done"}, where={"priority": 2}) == 6
    assert loaded.status == "done"  # synchronized into the identity map
    assert await tasks.count(where={"status": "done"}) == 6
    with mosaic_sql_counter() as n, pytest.raises(InvalidQueryError) as info:
        await tasks.update_where({"status": "open"})
    assert info.value.field == "where"
    assert n.count == 0
    assert await tasks.update_where({"status": "open"}, allow_all=True) == 20
    assert await tasks.count(where={"status": "open"}) == 20


async def test_upsert_on_primary_key(mosaic_session: AsyncSession, seed: Any) -> None:
    users = UserRepository(mosaic_session)
    user_id = seed.user_ids[0]
    updated = await users.upsert({"id": user_id, "email": "u0@example.com", "name": "Upserted"})
    assert (updated.id, updated.name) == (user_id, "Upserted")
    inserted = await users.upsert({"id": 424242, "email": "pk@example.com", "name": "PK"})
    assert inserted.id == 424242
    assert await users.count() == 4


async def test_upsert_on_a_unique_column(mosaic_session: AsyncSession, seed: Any) -> None:
    users = UserRepository(mosaic_session)
    created = await users.upsert(
        {"email": "fresh@example.com", "name": "Fresh"}, conflict=["email"]
    )
    assert created.id is not None
    assert created.id not in seed.user_ids
    merged = await users.upsert(
        {"email": "u1@example.com", "name": "Merged", "is_active": False}, conflict=["email"]
    )
    assert merged.id == seed.user_ids[1]
    assert (merged.name, merged.is_active) == ("Merged", False)
    assert await users.count() == 4


async def test_upsert_update_list_limits_the_overwritten_columns(
    mosaic_session: AsyncSession, seed: Any
) -> None:
    users = UserRepository(mosaic_session)
    row = await users.upsert(
        {"email": "u2@example.com", "name": "Ignored", "is_active": False},
        conflict=["email"],
        update=["is_active"],
    )
    assert (row.id, row.name, row.is_active) == (seed.user_ids[2], "User 2", False)


async def test_upsert_do_nothing_returns_the_existing_row(
    mosaic_session: AsyncSession, seed: Any
) -> None:
    users = UserRepository(mosaic_session)
    row = await users.upsert(
        {"email": "u0@example.com", "name": "Nope"}, conflict=["email"], update=[]
    )
    assert (row.id, row.name) == (seed.user_ids[0], "User 0")
    new = await users.upsert(
        {"email": "n@example.com", "name": "New"}, conflict=["email"], update=[]
    )
    assert new.id not in seed.user_ids
    assert new.name == "New"


async def test_upsert_with_a_model_instance(mosaic_session: AsyncSession, seed: Any) -> None:
    users = UserRepository(mosaic_session)
    before = await users.get(seed.user_ids[0])
    created_at, is_active = before.created_at, before.is_active
    await users.update(before, {"password_hash": "kept-hash", "is_active": False})
    row = await users.upsert(User(email="u0@example.com", name="From Model"), conflict=["email"])
    assert (row.id, row.name) == (seed.user_ids[0], "From Model")
    # Only the fields the caller set are overwritten: defaults never clobber the existing row.
    assert row.password_hash == "kept-hash"
    assert row.is_active is False
    assert row.created_at == created_at
    assert is_active is True


async def test_upsert_refreshes_a_loaded_object(mosaic_session: AsyncSession, seed: Any) -> None:
    users = UserRepository(mosaic_session)
    loaded = await users.get(seed.user_ids[0])
    row = await users.upsert({"email": "u0@example.com", "name": "Fresh Name"}, conflict=["email"])
    assert row is loaded
    assert loaded.name == "Fresh Name"


async def test_upsert_and_delete_with_a_composite_primary_key(
    mosaic_session: AsyncSession, seed: Any
) -> None:
    team = await TeamRepository(mosaic_session).add(Team(name="composite"))
    assert team.id is not None
    memberships = MembershipRepository(mosaic_session)
    key = {"team_id": team.id, "user_id": seed.user_ids[0]}
    first = await memberships.upsert({**key, "role": "member"})
    assert first.role == "member"
    second = await memberships.upsert({**key, "role": "owner"})  # conflict on (team_id, user_id)
    assert second.role == "owner"
    assert await memberships.count() == 1
    await memberships.delete((team.id, seed.user_ids[0]))
    assert await memberships.get_or_none((team.id, seed.user_ids[0])) is None
    with pytest.raises(NotFoundError):
        await memberships.delete((team.id, seed.user_ids[0]))
    with pytest.raises(InvalidQueryError) as info:
        await memberships.delete(team.id)  # half a key
    assert info.value.field == "pk"


async def test_upsert_rejects_bad_names(mosaic_session: AsyncSession) -> None:
    users = UserRepository(mosaic_session)
    with pytest.raises(InvalidQueryError) as info:
        await users.upsert({"email": "x@example.com", "name": "X"}, conflict=["nope"])
    assert info.value.field == "nope"
    with pytest.raises(InvalidQueryError) as info:
        await users.upsert({"name": "X"}, conflict=["email"])
    assert info.value.field == "email"
    with pytest.raises(InvalidQueryError) as info:
        await users.upsert(
            {"email": "x@example.com", "name": "X"}, conflict=["email"], update=["n"]
        )
    assert info.value.field == "n"


async def test_delete_instance_and_primary_key(mosaic_session: AsyncSession, seed: Any) -> None:
    users = UserRepository(mosaic_session)
    await users.delete(await users.get(seed.user_ids[0]))
    loaded = await users.get(seed.user_ids[1])
    await users.delete(seed.user_ids[1])  # by key, while the object is in the identity map
    assert loaded not in mosaic_session
    assert await users.get_or_none(seed.user_ids[0]) is None
    assert await users.get_or_none(seed.user_ids[1]) is None
    assert await users.count() == 1
    with pytest.raises(NotFoundError) as info:
        await users.delete(seed.user_ids[1])
    assert (info.value.model, info.value.key) == ("User", seed.user_ids[1])


async def test_delete_where_and_its_guard(mosaic_session: AsyncSession, seed: Any) -> None:
    tasks = TaskRepository(mosaic_session)
    assert await tasks.delete_where(where={"priority": 0}) == 7
    assert await tasks.delete_where(where={"priority": 0}) == 0
    with pytest.raises(InvalidQueryError) as info:
        await tasks.delete_where()
    assert info.value.field == "where"
    assert await tasks.delete_where(allow_all=True) == 13
    assert await tasks.count() == 0


async def test_copy_many_loads_rows_with_model_defaults(
    mosaic_session: AsyncSession, seed: Any, mosaic_sql_counter: Counter
) -> None:
    users = UserRepository(mosaic_session)
    rows: list[Any] = [{"email": f"c{i}@example.com", "name": f"C{i}"} for i in range(200)]
    rows.append(User(email="model@example.com", name="Model", is_active=False))
    await warm(mosaic_session)
    with mosaic_sql_counter() as n:
        assert await users.copy_many(rows) == 201
    assert n.count <= 1  # PostgreSQL COPY is not a cursor statement; SQLite: one executemany
    assert await users.count() == 204
    assert await users.count(where={"is_active": False}) == 1
    page = await users.list(where={"email__like": "c1"}, limit=1)
    assert page.items[0].created_at is not None


# --------------------------------------------------------------------------- statement counts


async def test_statement_counts(
    mosaic_session: AsyncSession, seed: Any, mosaic_sql_counter: Counter, mosaic_backend: str
) -> None:
    users = UserRepository(mosaic_session)
    counts: dict[str, tuple[int, list[str]]] = {}

    async def measure(label: str, call: Any) -> Any:
        with mosaic_sql_counter() as n:
            result = await call
        counts[label] = (n.count, [first_word(s) for s in n.statements])
        return result

    with mosaic_sql_counter() as add_sql:
        user = await users.add(User(email="count@example.com", name="Count"))
    assert user.id is not None
    counts["add"] = (add_sql.count, [first_word(s) for s in add_sql.statements])
    if mosaic_backend == "postgresql":  # the key comes back in the same statement
        assert "RETURNING" in add_sql.statements[0]
    # (SQLite: the same single INSERT; pysqlite hands back the key as lastrowid)
    await measure("get (in identity map)", users.get(user.id))
    mosaic_session.expunge_all()
    await measure("get (not loaded)", users.get(user.id))
    await measure(
        "add_many 500",
        users.add_many([User(email=f"b{i}@example.com", name=f"B{i}") for i in range(500)]),
    )
    await measure("list + total", users.list(where={"name__like": "B1"}, with_total=True))
    await measure("update by pk", users.update(user.id, {"name": "Counted"}))
    await measure(
        "upsert", users.upsert({"email": "count@example.com", "name": "U"}, conflict=["email"])
    )
    await measure(
        "upsert do-nothing (new row)",
        users.upsert({"email": "dn@example.com", "name": "DN"}, conflict=["email"], update=[]),
    )
    await measure(
        "upsert do-nothing (conflict)",
        users.upsert({"email": "dn@example.com", "name": "DN"}, conflict=["email"], update=[]),
    )
    await measure("exists", users.exists(where={"email": "b1@example.com"}))
    await measure("count", users.count(where={"name__ilike": "b"}))
    await measure("update_where", users.update_where({"is_active": False}, where={"name": "B7"}))
    await measure("delete by pk", users.delete(user.id))
    await measure("delete_where", users.delete_where(where={"name__like": "B4"}))

    print("statement counts:", {k: v[0] for k, v in counts.items()})
    assert counts["add"][0] == 1
    assert counts["get (in identity map)"][0] == 0
    assert counts["get (not loaded)"][0] == 1
    assert 1 <= counts["add_many 500"][0] <= 5
    assert counts["list + total"][0] == 2
    assert counts["update by pk"][0] == 1
    assert counts["upsert"][0] == 1
    assert counts["upsert do-nothing (new row)"][0] == 1
    assert counts["upsert do-nothing (conflict)"][0] == 2  # the INSERT, then a read of the row
    for label in ("exists", "count", "update_where", "delete by pk", "delete_where"):
        assert counts[label][0] == 1, label
    kinds = {label: words for label, (_, words) in counts.items()}
    assert kinds["add"] == ["INSERT"]
    # SQLite reads the largest key first (random keys past 2**63-1: tests/core/test_sqlite_rowids)
    assert set(kinds["add_many 500"]) == (
        {"SELECT", "INSERT"} if mosaic_backend == "sqlite" else {"INSERT"}
    )
    assert kinds["get (not loaded)"] == ["SELECT"]
    assert kinds["list + total"] == ["SELECT", "SELECT"]
    assert kinds["update by pk"] == ["UPDATE"]
    assert kinds["upsert"] == ["INSERT"]  # INSERT ... ON CONFLICT ... RETURNING
    assert kinds["delete by pk"] == ["DELETE"]


@pytest.mark.mosaic_backends("postgresql")
async def test_copy_many_conflict_is_translated_without_the_value(
    mosaic_session: AsyncSession, seed: Any
) -> None:
    users = UserRepository(mosaic_session)
    with pytest.raises(ConflictError) as caught:
        await users.copy_many([{"email": "u0@example.com", "name": "Copy"}])
    assert caught.value.kind == "unique"
    assert caught.value.constraint == "ix_user_email"
    assert "u0@example.com" not in str(caught.value)
