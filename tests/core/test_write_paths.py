"""``add_many`` and ``copy_many`` insert what the ORM inserts; ``copy_many`` is atomic with its
unit of work.

copy_many used to pad missing keys with NULL (server defaults lost, NOT NULL violated), send a
model instance's server-default columns as NULL, read values by column key (renamed columns),
and, on PostgreSQL, run its COPY before SQLAlchemy had sent BEGIN (autocommitted: the rows
survived the unit of work's rollback). add_many built mappings without the model's own
``__init__``. Both backends; the models are an in-test plugin (``mosaic_plugins`` marker).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, inspect
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

import sqlmosaic
from mosaic_accounts import User, UserRepository
from sqlmosaic import ConflictError, InvalidQueryError, NotFoundError, Repository, transaction
from sqlmosaic.testing import SQLCounterFactory


class _Base(SQLModel, registry=registry(metadata=MetaData())):
    pass


class Gadget(_Base, table=True):
    __tablename__ = "bulk_gadget"

    id: int | None = Field(default=None, primary_key=True)
    batch: str = Field(max_length=10)
    name: str = Field(max_length=50)
    # NOT NULL, filled by the database when not given
    code: str | None = Field(
        default=None, sa_column=Column(String(10), nullable=False, server_default="G-1")
    )
    # a renamed column: the public name is the attribute ``note``
    note: str | None = Field(default=None, sa_column=Column("note_db", String(20), nullable=True))
    level: int = 3
    slug: str = Field(default="", max_length=60)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        if not self.slug:
            self.slug = self.name.lower().replace(" ", "-")


class GadgetRepository(Repository[Gadget]):
    pass


class _Plugin:
    mosaic_name = "gadgets"

    @sqlmosaic.hookimpl
    def mosaic_models(self) -> list[type[SQLModel]]:
        return [Gadget]


def _rows(batch: str) -> list[Any]:
    """Rows with different key sets, a model instance, an explicit ``id=None``."""
    return [
        {"batch": batch, "name": "Hello World"},
        {"batch": batch, "name": "own code", "code": "OWN", "note": "n1"},
        {"batch": batch, "name": "levelled", "level": 7},
        Gadget(batch=batch, name="Object Row"),
        {"id": None, "batch": batch, "name": "no key", "slug": "given"},
        {"batch": batch, "name": "note only", "note": "n2"},
    ]


async def _stored(session: AsyncSession, batch: str) -> list[tuple[Any, ...]]:
    query = (
        select(Gadget.name, Gadget.code, Gadget.note, Gadget.level, Gadget.slug)
        .where(Gadget.batch == batch)
        .order_by(Gadget.name)
    )
    return list((await session.exec(query)).all())


@pytest.mark.mosaic_plugins(_Plugin())
async def test_copy_many_inserts_what_add_many_and_the_orm_insert(
    mosaic_session: AsyncSession,
) -> None:
    gadgets = GadgetRepository(mosaic_session)
    await gadgets.add_many(_rows("added"))
    assert await gadgets.copy_many(_rows("copied")) == 6
    mosaic_session.add_all([r if isinstance(r, Gadget) else Gadget(**r) for r in _rows("orm")])
    await mosaic_session.flush()
    orm = await _stored(mosaic_session, "orm")
    assert len(orm) == 6
    assert ("Hello World", "G-1", None, 3, "hello-world") in orm  # server default, __init__
    assert ("own code", "OWN", "n1", 3, "own-code") in orm
    assert await _stored(mosaic_session, "added") == orm
    assert await _stored(mosaic_session, "copied") == orm


@pytest.mark.mosaic_plugins(_Plugin())
async def test_add_many_of_a_mapping_runs_the_models_own_init(
    mosaic_session: AsyncSession,
) -> None:
    (built,) = await GadgetRepository(mosaic_session).add_many([{"batch": "i", "name": "Hi There"}])
    assert built.slug == Gadget(batch="i", name="Hi There").slug == "hi-there"


@pytest.mark.mosaic_plugins(_Plugin())
async def test_copy_many_names_a_bad_key_or_row(mosaic_session: AsyncSession) -> None:
    gadgets = GadgetRepository(mosaic_session)
    with pytest.raises(InvalidQueryError) as info:
        await gadgets.copy_many([{"batch": "b", "name": "x", "note_db": "column name"}])
    assert info.value.field == "note_db"
    with pytest.raises(InvalidQueryError):
        await gadgets.copy_many([42])  # type: ignore[list-item]


async def _user_count(factory: async_sessionmaker[AsyncSession]) -> int:
    async with factory() as session:
        return int((await session.exec(select(func.count()).select_from(User))).one())


@pytest.mark.parametrize("mosaic_backend", ["postgresql", "sqlite"], indirect=True)
async def test_copy_many_as_first_statement_rolls_back_with_its_unit_of_work(
    fresh_factory: async_sessionmaker[AsyncSession],
) -> None:
    """On a real engine and database, outside the test plugin's outer transaction."""

    class Boom(Exception):
        pass

    rows = [{"email": f"c{i}@example.com", "name": f"C{i}"} for i in range(100)]

    async def load_then_fail() -> None:
        async with fresh_factory() as session, transaction(session):
            assert await UserRepository(session).copy_many(rows) == 100
            raise Boom

    with pytest.raises(Boom):
        await load_then_fail()
    assert await _user_count(fresh_factory) == 0
    async with fresh_factory() as session, transaction(session):
        await UserRepository(session).copy_many(rows)
    assert await _user_count(fresh_factory) == 100


@pytest.mark.parametrize("mosaic_backend", ["postgresql", "sqlite"], indirect=True)
async def test_autocommit_unit_of_work_really_autocommits(
    fresh_factory: async_sessionmaker[AsyncSession],
) -> None:
    """``isolation_level="AUTOCOMMIT"`` was silently a transaction on SQLite (rows rolled back)."""

    class Boom(Exception):
        pass

    async def add_then_fail() -> None:
        async with fresh_factory() as session, transaction(session, isolation_level="AUTOCOMMIT"):
            await UserRepository(session).add(User(email="auto@example.com", name="A"))
            raise Boom

    with pytest.raises(Boom):
        await add_then_fail()
    assert await _user_count(fresh_factory) == 1  # each statement committed on its own
    async with fresh_factory() as session, transaction(session):  # the pool's next user
        await UserRepository(session).add(User(email="tx@example.com", name="T"))
        await session.rollback()
    assert await _user_count(fresh_factory) == 1  # a normal unit is a transaction again


# --------------------------------------------------------------------------- public names


@pytest.mark.mosaic_plugins(_Plugin())
async def test_public_names_are_attribute_names_everywhere(mosaic_session: AsyncSession) -> None:
    """A renamed column (``sa_column=Column("note_db")``) is ``note`` to every caller."""
    gadgets = GadgetRepository(mosaic_session)
    assert "note" in gadgets.columns()
    assert "note_db" not in gadgets.columns()
    (one, two) = await gadgets.add_many(
        [{"batch": "n", "name": "one", "note": "a"}, {"batch": "n", "name": "two", "note": "b"}]
    )
    assert [g.name for g in (await gadgets.list(where={"note": "a"})).items] == ["one"]
    assert [g.name for g in (await gadgets.list(order_by="-note")).items] == ["two", "one"]
    assert await gadgets.count(where={"note__in": ["a", "b"]}) == 2
    assert (await gadgets.update(one.id, {"note": "c"})).note == "c"
    assert await gadgets.update_where({"note": "d"}, where={"note": "b"}) == 1
    upserted = await gadgets.upsert({"id": two.id, "batch": "n", "name": "two", "note": "e"})
    assert upserted.note == "e"
    for bad in (
        gadgets.list(order_by="note_db"),
        gadgets.list(where={"note_db": "a"}),
        gadgets.update(one.id, {"note_db": "x"}),
        gadgets.update_where({"note_db": "x"}, where={"note": "c"}),
    ):
        with pytest.raises(InvalidQueryError) as info:
            await bad
        assert info.value.field == "note_db"


@pytest.mark.mosaic_plugins(_Plugin())
async def test_upsert_uses_the_bind_of_the_model(mosaic_connection: AsyncConnection) -> None:
    """A session with ``binds=`` has no ``session.bind``: upsert said "not supported on "."""
    session = AsyncSession(binds={Gadget: mosaic_connection}, expire_on_commit=False)
    try:
        gadgets = GadgetRepository(session)
        made = await gadgets.upsert({"id": 4242, "batch": "b", "name": "bound"})
        assert made.id == 4242
        again = await gadgets.upsert({"id": made.id, "batch": "b", "name": "bound again"})
        assert (again.id, again.name) == (made.id, "bound again")
    finally:
        await session.close()


async def test_refresh_after_a_failed_unit_of_work(
    fresh_factory: async_sessionmaker[AsyncSession],
) -> None:
    """After a rollback every object of the session is expired; ``refresh`` reads it again."""
    async with fresh_factory() as session:
        users = UserRepository(session)
        async with transaction(session):
            user = await users.add(User(email="keep@example.com", name="Keep"))

        async def clash() -> None:
            async with transaction(session):
                user.name = "changed"
                await users.add(User(email="keep@example.com", name="Twin"))

        with pytest.raises(ConflictError):
            await clash()
        assert "name" in inspect(user).expired_attributes
        assert (await users.refresh(user)).name == "Keep"
        async with transaction(session):
            await users.delete(user.id)
        with pytest.raises(NotFoundError):
            await users.refresh(user)


async def test_list_and_get_for_update_lock_on_postgresql(
    mosaic_session: AsyncSession, mosaic_backend: str, mosaic_sql_counter: SQLCounterFactory
) -> None:
    users = UserRepository(mosaic_session)
    user = await users.add(User(email="lock@example.com", name="L"))
    with mosaic_sql_counter() as sql:
        page = await users.list(where={"email": "lock@example.com"}, for_update=True)
        again = await users.get(user.id, for_update=True)
    assert [u.id for u in page.items] == [user.id]
    assert again is user
    locking = ["FOR UPDATE" in s.upper() for s in sql.statements]
    # SQLite has no row locks (its unit of work holds the write lock from BEGIN IMMEDIATE)
    assert locking == ([True, True] if mosaic_backend == "postgresql" else [False, False])
