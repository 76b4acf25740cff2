"""Differential tests: every repository operation against the plain ORM doing the same.

For each model shape of ``zoo.py`` and each operation, the same Hypothesis-generated data goes
once through the repository and once through plain SQLAlchemy ORM code, each inside a
SAVEPOINT that is rolled back afterwards; compared are the rows in the database, the returned
objects (loaded attribute values, persistent, in the identity map, consistent with their row)
and the events that fired. Keyset pages concatenated must equal the ORM's full ordered
SELECT, with ties and NULLs. Both backends (the ``mosaic_backend`` parametrization).

Generated integer keys differ between the two runs on PostgreSQL (sequences do not roll
back), so tables are compared without them and every returned object is checked against the
row its key names.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, delete, func, inspect, update
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from sqlmosaic import Repository

from .zoo import (
    EVENTS,
    Article,
    ArticleRepository,
    Comment,
    Evented,
    EventedRepository,
    Kind,
    Pair,
    PairRepository,
    Post,
    PostRepository,
    Tag,
    TagLink,
    Thing,
    ThingRepository,
    TokenRepository,
    Watched,
    WatchedRepository,
    ZooPlugin,
)

pytestmark = pytest.mark.mosaic_plugins(ZooPlugin())

zoo_settings = settings.get_profile("differential")

# --------------------------------------------------------------------------- strategies

_names = st.text(alphabet="abcAB %_", min_size=1, max_size=6)
_thing_fields = {
    "score": st.none() | st.integers(-3, 3),
    "rank": st.integers(0, 2),
    "kind": st.sampled_from(Kind),
    "data": st.none() | st.dictionaries(st.sampled_from("kv"), st.integers(0, 3), max_size=2),
    "at": st.none()
    | st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    "price": st.decimals(min_value=-999, max_value=999, places=2, allow_nan=False),
    "note": st.none() | st.text(alphabet="xy", max_size=3),
    "code": st.sampled_from(["own", "Z2"]),
}
# rows with different key sets: each optional field present or not
thing_row = st.fixed_dictionaries({"name": _names}, optional=_thing_fields)
thing_rows = st.lists(thing_row, min_size=0, max_size=7)


# --------------------------------------------------------------------------- harness


async def in_savepoint(session: AsyncSession, body: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``body`` in a SAVEPOINT, roll it back, and forget every object."""
    nested = await session.begin_nested()
    try:
        return await body()
    finally:
        await nested.rollback()
        session.expunge_all()


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


def _attr_names(model: type[SQLModel]) -> dict[str, str]:
    """Column key -> attribute name."""
    return {prop.columns[0].key: prop.key for prop in inspect(model).column_attrs}


async def table_rows(
    session: AsyncSession, model: type[SQLModel], *, without: tuple[str, ...] = ("id",)
) -> list[tuple[tuple[str, Any], ...]]:
    """Every row (by attribute name, minus ``without``), as a sorted multiset."""
    names = _attr_names(model)
    result = await session.exec(sa_select(_table(model)))  # type: ignore[call-overload]
    rows = [
        tuple(sorted((names[k], v) for k, v in row._mapping.items() if names[k] not in without))
        for row in result
    ]
    return sorted(rows, key=repr)


def loaded(obj: Any, *, without: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    """The object's loaded column values, its unloaded attributes and its session state."""
    state = inspect(obj)
    columns = set(_attr_names(type(obj)).values())
    values = {k: v for k, v in state.dict.items() if k in columns and k not in without}
    return {
        "values": values,
        "unloaded": sorted(state.unloaded & columns),
        "persistent": state.persistent,
    }


async def check_against_rows(session: AsyncSession, objs: list[Any]) -> None:
    """Each object is in the identity map and agrees with the row its key names."""
    for obj in objs:
        state = inspect(obj)
        assert state.persistent
        assert session.identity_map.get(state.key) is obj
    if not objs:
        return
    model = type(objs[0])
    table = _table(model)
    names = _attr_names(model)
    stored = {}
    for row in await session.exec(sa_select(table)):  # type: ignore[call-overload]
        mapping = {names[k]: v for k, v in row._mapping.items()}
        key = tuple(mapping[names[c.key]] for c in table.primary_key.columns)
        stored[key] = mapping
    for obj in objs:
        state = inspect(obj)
        row = stored[tuple(state.identity)]
        for name, value in state.dict.items():
            if name in row and name not in ("at", "price"):  # aware/naive, 1.5 vs 1.50
                assert row[name] == value, (name, row[name], value)


# --------------------------------------------------------------------------- inserts


INSERTS: dict[str, Callable[[Repository[Any], list[dict[str, Any]]], Awaitable[Any]]] = {
    "add": lambda repo, rows: _add_each(repo, rows),
    "add_many(objects)": lambda repo, rows: repo.add_many([repo.model(**r) for r in rows]),
    "add_many(mappings)": lambda repo, rows: repo.add_many(rows),
    "copy_many(mappings)": lambda repo, rows: repo.copy_many(rows),
    "copy_many(objects)": lambda repo, rows: repo.copy_many([repo.model(**r) for r in rows]),
}


async def _add_each(repo: Repository[Any], rows: list[dict[str, Any]]) -> list[Any]:
    return [await repo.add(repo.model(**row)) for row in rows]


async def orm_insert(session: AsyncSession, model: type[Any], rows: list[dict[str, Any]]) -> Any:
    objs = [model(**row) for row in rows]
    session.add_all(objs)
    await session.flush()
    return objs


async def compare_inserts(
    session: AsyncSession,
    repository: type[Repository[Any]],
    rows: list[dict[str, Any]],
    *,
    without: tuple[str, ...] = ("id",),
) -> None:
    model = repository.model

    async def orm() -> Any:
        objs = await orm_insert(session, model, rows)
        return [loaded(o, without=without) for o in objs], await table_rows(
            session, model, without=without
        )

    expected_objects, expected_rows = await in_savepoint(session, orm)
    for label, operation in INSERTS.items():

        async def repo(operation: Any = operation) -> Any:
            result = await operation(repository(session), [dict(r) for r in rows])
            objs = result if isinstance(result, list) else None
            if objs is not None:
                await check_against_rows(session, objs)
            described = [loaded(o, without=without) for o in objs] if objs is not None else None
            return described, await table_rows(session, model, without=without)

        got_objects, got_rows = await in_savepoint(session, repo)
        assert got_rows == expected_rows, label
        if got_objects is not None:
            assert len(got_objects) == len(expected_objects), label
            for got, expected in zip(got_objects, expected_objects, strict=True):
                # the repository may return more loaded (never different) values
                shared = expected["values"].keys() & got["values"].keys()
                assert {k: got["values"][k] for k in shared} == {
                    k: expected["values"][k] for k in shared
                }, label
                assert set(got["unloaded"]) <= set(expected["unloaded"]), label
                assert got["persistent"] == expected["persistent"], label


@zoo_settings
@given(rows=thing_rows)
async def test_inserts_of_things_equal_the_orm(
    mosaic_session: AsyncSession, rows: list[dict[str, Any]]
) -> None:
    await compare_inserts(mosaic_session, ThingRepository, rows)


@zoo_settings
@given(labels=st.lists(_names, max_size=5))
async def test_inserts_with_a_uuid_default_factory_key(
    mosaic_session: AsyncSession, labels: list[str]
) -> None:
    fixed = [{"id": uuid.UUID(int=i + 1), "label": label} for i, label in enumerate(labels)]
    await compare_inserts(mosaic_session, TokenRepository, fixed, without=())
    # keys from the factory: unique, and each object's key is its row's
    tokens = await TokenRepository(mosaic_session).add_many([{"label": x} for x in labels])
    await check_against_rows(mosaic_session, tokens)
    assert len({t.id for t in tokens}) == len(labels)


@zoo_settings
@given(
    keys=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(["a", "b"])), unique=True, max_size=6
    ),
    value=st.integers(-5, 5),
)
async def test_composite_key_operations(
    mosaic_session: AsyncSession, keys: list[tuple[int, str]], value: int
) -> None:
    rows = [{"left": left, "right": right, "value": value} for left, right in keys]
    await compare_inserts(mosaic_session, PairRepository, rows, without=())
    if not keys:
        return
    left, right = keys[0]

    async def repo() -> Any:
        pairs = PairRepository(mosaic_session)
        await pairs.add_many([dict(r) for r in rows])
        mosaic_session.expunge_all()
        got = await pairs.get((left, right))
        updated = await pairs.update((left, right), {"value": value + 1})
        assert updated is got
        await pairs.delete((left, right))
        return got.value, await table_rows(mosaic_session, Pair, without=())

    async def orm() -> Any:
        await orm_insert(mosaic_session, Pair, rows)
        mosaic_session.expunge_all()
        got = await mosaic_session.get(Pair, (left, right))
        assert got is not None
        got.value = value + 1
        await mosaic_session.flush()
        await mosaic_session.delete(got)
        await mosaic_session.flush()
        return got.value, await table_rows(mosaic_session, Pair, without=())

    assert await in_savepoint(mosaic_session, repo) == await in_savepoint(mosaic_session, orm)


@zoo_settings
@given(titles=st.lists(st.text(alphabet="ab C", min_size=1, max_size=8), max_size=5))
async def test_custom_init_and_validators(mosaic_session: AsyncSession, titles: list[str]) -> None:
    await compare_inserts(mosaic_session, ArticleRepository, [{"title": t} for t in titles])


# --------------------------------------------------------------------------- reads


SORTABLE = ["name", "score", "rank", "price", "note", "at", "kind"]


def _orm_order(spec: list[str]) -> list[Any]:
    terms = []
    for item in spec:
        name = item.lstrip("-")
        column = getattr(Thing, name)
        nullable = bool(column.property.columns[0].nullable)
        if item.startswith("-"):
            terms.append(column.desc().nulls_first() if nullable else column.desc())
        else:
            terms.append(column.asc().nulls_last() if nullable else column.asc())
    return [*terms, Thing.id]  # type: ignore[list-item]


@zoo_settings
@given(
    rows=thing_rows,
    spec=st.lists(st.sampled_from(SORTABLE), unique=True, max_size=3).flatmap(
        lambda names: st.tuples(*(st.sampled_from([n, f"-{n}"]) for n in names))
    ),
    limit=st.integers(1, 3),
    rank=st.none() | st.integers(0, 2),
)
async def test_keyset_and_offset_pages_equal_the_orms_ordered_select(
    mosaic_session: AsyncSession,
    rows: list[dict[str, Any]],
    spec: tuple[str, ...],
    limit: int,
    rank: int | None,
) -> None:
    async def body() -> None:
        await orm_insert(mosaic_session, Thing, rows)
        things = ThingRepository(mosaic_session)
        where = {} if rank is None else {"rank": rank}
        query = select(Thing.id).order_by(*_orm_order(list(spec)))
        if rank is not None:
            query = query.where(Thing.rank == rank)
        expected = list((await mosaic_session.exec(query)).all())
        keyset: list[Any] = []
        page = await things.list(where=where, order_by=list(spec), limit=limit)
        while True:
            keyset.extend(t.id for t in page.items)
            if page.next_cursor is None:
                break
            page = await things.list(
                where=where, order_by=list(spec), limit=limit, after=page.next_cursor
            )
        assert keyset == expected
        offset_ids: list[Any] = []
        for offset in range(0, len(expected) + 1, limit):
            chunk = await things.list(where=where, order_by=list(spec), limit=limit, offset=offset)
            offset_ids.extend(t.id for t in chunk.items)
        assert offset_ids == expected
        assert await things.count(where=where) == len(expected)
        assert await things.exists(where=where) == bool(expected)

    await in_savepoint(mosaic_session, body)


FILTERS: list[tuple[str, Any, Callable[[Any], Any]]] = [
    ("score", 1, lambda v: Thing.score == v),
    ("score__ne", 1, lambda v: Thing.score != v),
    ("score__lt", 0, lambda v: Thing.score < v),  # type: ignore[operator]
    ("rank__ge", 1, lambda v: Thing.rank >= v),
    ("rank__in", [0, 2], lambda v: Thing.rank.in_(v)),  # type: ignore[attr-defined]
    ("note__is_null", True, lambda v: Thing.note.is_(None)),  # type: ignore[union-attr]
    ("note", "x", lambda v: Thing.note == v),
    ("name__like", "%", lambda v: Thing.name.contains(v, autoescape=True)),  # type: ignore[attr-defined]
    ("kind", Kind.BLUE, lambda v: Thing.kind == v),
    ("price__gt", Decimal("0"), lambda v: Thing.price > v),
]


@zoo_settings
@given(rows=thing_rows, chosen=st.sampled_from(FILTERS))
async def test_filters_get_and_count_equal_the_orm(
    mosaic_session: AsyncSession, rows: list[dict[str, Any]], chosen: Any
) -> None:
    key, value, expression = chosen

    async def body() -> None:
        objs = await orm_insert(mosaic_session, Thing, rows)
        things = ThingRepository(mosaic_session)
        query = select(Thing.id).where(expression(value)).order_by(Thing.id)
        expected = list((await mosaic_session.exec(query)).all())
        page = await things.list(where={key: value}, order_by="id", limit=100)
        assert [t.id for t in page.items] == expected
        assert await things.count(where={key: value}) == len(expected)
        mosaic_session.expunge_all()
        for obj_id in [o.id for o in objs[:2]]:
            got = await things.get(obj_id)
            orm = await mosaic_session.get(Thing, obj_id)
            assert got is orm
            assert loaded(got) == loaded(orm)
            assert await things.get_or_none(str(obj_id)) is orm

    await in_savepoint(mosaic_session, body)


# --------------------------------------------------------------------------- writes


@zoo_settings
@given(
    rows=st.lists(thing_row, min_size=3, max_size=6),
    values=st.fixed_dictionaries({}, optional=_thing_fields),
)
async def test_updates_and_deletes_equal_the_orm(
    mosaic_session: AsyncSession, rows: list[dict[str, Any]], values: dict[str, Any]
) -> None:
    values.pop("code", None)  # NOT NULL with a server default: None is not a value for it
    values = values or {"rank": 2}

    async def run(use_repo: bool) -> Any:
        objs = await orm_insert(mosaic_session, Thing, rows)
        ids = [o.id for o in objs]
        mosaic_session.expunge_all()
        things = ThingRepository(mosaic_session)
        if use_repo:
            updated = await things.update(ids[0], values)
            count = await things.update_where({"rank": 9}, where={"id__in": ids[1:3]})
            await things.delete(ids[-1])
            deleted = await things.delete_where(where={"rank": 9, "id__in": ids[2:3]})
        else:
            updated = await mosaic_session.get(Thing, ids[0])
            for name, value in values.items():
                setattr(updated, name, value)
            await mosaic_session.flush()
            count = (
                await mosaic_session.exec(  # type: ignore[call-overload]
                    update(Thing).where(Thing.id.in_(ids[1:3])).values(rank=9)  # type: ignore[union-attr]
                )
            ).rowcount
            await mosaic_session.delete(await mosaic_session.get(Thing, ids[-1]))
            await mosaic_session.flush()
            deleted = (
                await mosaic_session.exec(  # type: ignore[call-overload]
                    delete(Thing).where(Thing.rank == 9, Thing.id.in_(ids[2:3]))  # type: ignore[union-attr]
                )
            ).rowcount
        await mosaic_session.refresh(updated)
        return (
            loaded(updated),
            count,
            deleted,
            await table_rows(mosaic_session, Thing),
        )

    got = await in_savepoint(mosaic_session, lambda: run(True))
    expected = await in_savepoint(mosaic_session, lambda: run(False))
    assert got == expected


_article_fields = {"title": st.text(alphabet="ab C", min_size=1, max_size=8), "slug": _names}


@zoo_settings
@given(
    titles=st.lists(st.text(alphabet="ab", min_size=1, max_size=5), min_size=3, max_size=3),
    updates=st.lists(
        st.tuples(st.integers(0, 2), st.fixed_dictionaries({}, optional=_article_fields)).filter(
            lambda u: bool(u[1])
        ),
        min_size=2,
        max_size=6,
    ),
)
async def test_a_run_of_updates_equals_the_orm(
    mosaic_session: AsyncSession, titles: list[str], updates: list[tuple[int, dict[str, Any]]]
) -> None:
    """``update(pk, values)`` on a model without update listeners is one ``UPDATE ...
    RETURNING`` whose statement is cached per set of names and reused across rows, values,
    calls and key orders: each returned object and the table equal the ORM's."""

    async def run(use_repo: bool) -> Any:
        objs = await orm_insert(mosaic_session, Article, [{"title": t} for t in titles])
        ids = [o.id for o in objs]
        mosaic_session.expunge_all()
        articles = ArticleRepository(mosaic_session)
        seen = []
        for index, values in updates:
            if use_repo:
                obj = await articles.update(ids[index], dict(reversed(list(values.items()))))
            else:
                obj = await mosaic_session.get(Article, ids[index])
                for name, value in values.items():
                    setattr(obj, name, value)
                await mosaic_session.flush()
            seen.append(loaded(obj))
        return seen, await table_rows(mosaic_session, Article)

    got = await in_savepoint(mosaic_session, lambda: run(True))
    expected = await in_savepoint(mosaic_session, lambda: run(False))
    assert got == expected


@zoo_settings
@given(rows=thing_rows.filter(bool), name=_names, given_rank=st.none() | st.integers(0, 2))
async def test_upsert_equals_the_orm_merge(
    mosaic_session: AsyncSession, rows: list[dict[str, Any]], name: str, given_rank: int | None
) -> None:
    # an upsert always writes (onupdate columns are set); the ORM writes only a real change
    assume(rows[0]["name"] != name)
    change: dict[str, Any] = {"name": name}
    if given_rank is not None:
        change["rank"] = given_rank

    async def run(use_repo: bool) -> Any:
        objs = await orm_insert(mosaic_session, Thing, rows)
        first = objs[0].id
        mosaic_session.expunge_all()
        if use_repo:
            result = await ThingRepository(mosaic_session).upsert({"id": first, **change})
        else:
            result = await mosaic_session.get(Thing, first)
            for key, value in change.items():
                setattr(result, key, value)
            await mosaic_session.flush()
        await mosaic_session.refresh(result)
        assert inspect(result).persistent
        return loaded(result), await table_rows(mosaic_session, Thing)

    got = await in_savepoint(mosaic_session, lambda: run(True))
    assert got == await in_savepoint(mosaic_session, lambda: run(False))


# --------------------------------------------------------------------------- relationships, events


@zoo_settings
@given(bodies=st.lists(_names, max_size=3), tags=st.lists(_names, max_size=2))
async def test_add_with_relationships_equals_the_orm(
    mosaic_session: AsyncSession, bodies: list[str], tags: list[str]
) -> None:
    async def run(use_repo: bool) -> Any:
        post = Post(title="p", comments=[Comment(body=b) for b in bodies])
        post.tags = [Tag(name=t) for t in tags]
        if use_repo:
            await PostRepository(mosaic_session).add(post)
        else:
            mosaic_session.add(post)
            await mosaic_session.flush()
        assert inspect(post).persistent
        return [
            await table_rows(mosaic_session, model, without=("id", "post_id", "tag_id"))
            for model in (Post, Comment, Tag)
        ] + [len(await table_rows(mosaic_session, TagLink, without=()))]

    assert await in_savepoint(mosaic_session, lambda: run(True)) == await in_savepoint(
        mosaic_session, lambda: run(False)
    )


@zoo_settings
@given(names=st.lists(_names, min_size=1, max_size=4))
async def test_events_fire_as_with_the_orm(mosaic_session: AsyncSession, names: list[str]) -> None:
    async def run(use_repo: bool) -> Any:
        EVENTS.clear()
        repo = EventedRepository(mosaic_session)
        if use_repo:
            first = await repo.add(Evented(name=names[0]))
            await repo.add_many([{"name": n} for n in names[1:]])
            await repo.update(first.id, {"name": "renamed"})
        else:
            first = Evented(name=names[0])
            mosaic_session.add(first)
            await mosaic_session.flush()
            mosaic_session.add_all([Evented(name=n) for n in names[1:]])
            await mosaic_session.flush()
            first.name = "renamed"
            await mosaic_session.flush()
        return list(EVENTS), await table_rows(mosaic_session, Evented)

    got = await in_savepoint(mosaic_session, lambda: run(True))
    assert got == await in_savepoint(mosaic_session, lambda: run(False))


@zoo_settings
@given(names=st.lists(_names, min_size=1, max_size=4))
async def test_refresh_flush_listeners_fire_as_with_the_orm(
    mosaic_session: AsyncSession, names: list[str]
) -> None:
    async def run(use_repo: bool) -> Any:
        EVENTS.clear()
        if use_repo:
            await WatchedRepository(mosaic_session).add(Watched(name=names[0]))
            await WatchedRepository(mosaic_session).add_many([{"name": n} for n in names[1:]])
        else:
            mosaic_session.add(Watched(name=names[0]))
            await mosaic_session.flush()
            mosaic_session.add_all([Watched(name=n) for n in names[1:]])
            await mosaic_session.flush()
        return list(EVENTS), await table_rows(mosaic_session, Watched)

    got = await in_savepoint(mosaic_session, lambda: run(True))
    assert got == await in_savepoint(mosaic_session, lambda: run(False))
    assert got[0]  # the listener did fire


async def test_zoo_counts_rows_it_compares(mosaic_session: AsyncSession) -> None:
    """The harness is not vacuous: a difference in the rows is seen."""
    await ThingRepository(mosaic_session).add(Thing(name="one"))
    before = await table_rows(mosaic_session, Thing)
    await ThingRepository(mosaic_session).add(Thing(name="two"))
    assert await table_rows(mosaic_session, Thing) != before
    assert (await mosaic_session.exec(select(func.count()).select_from(Thing))).one() == 2
