"""The repository's short paths (``sqlmosaic._plans``) give what the ORM's general path gives.

``add``/``add_many`` insert with one cached Core ``INSERT ... RETURNING`` and register the objects
as a flush would; ``get`` reads the identity map, then one cached SELECT. Each test checks the
observable result against what the ORM does (state, identity map, defaults, rollback, events), and
that every case the short path cannot serve (related objects, other pending changes, listeners,
SQL-expression values, odd keys) still works through the ORM. On PostgreSQL and SQLite, in the
test plugin's rolled-back session; the models are an in-test plugin (``mosaic_plugins`` marker).
"""

import contextlib
from datetime import UTC, datetime
from typing import Any, Optional

import pytest
from sqlalchemy import Column, Computed, Integer, MetaData, event, func, inspect
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import registry
from sqlmodel import Field, Relationship, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

import sqlmosaic
from sqlmosaic import ConflictError, InvalidQueryError, NotFoundError, Repository, transaction
from sqlmosaic.testing import SQLCounterFactory


class _Base(SQLModel, registry=registry(metadata=MetaData())):
    pass


class Shelf(_Base, table=True):
    __tablename__ = "plan_shelf"

    id: int | None = Field(default=None, primary_key=True)
    label: str = Field(max_length=50, unique=True)
    # filled by the database: the object must come back with it (RETURNING), as after a flush
    code: str | None = Field(
        default=None, max_length=10, sa_column_kwargs={"server_default": "S-1"}
    )
    # joined eager loading of a collection: get() must unique the repeated rows
    books: list["Book"] = Relationship(
        back_populates="shelf", sa_relationship_kwargs={"lazy": "joined"}
    )


class Book(_Base, table=True):
    __tablename__ = "plan_book"

    id: int | None = Field(default=None, primary_key=True)
    shelf_id: int | None = Field(default=None, foreign_key="plan_shelf.id")
    title: str = Field(max_length=50)
    pages: int = 0
    double_pages: int | None = Field(
        default=None,
        sa_column=Column(Integer, Computed("pages * 2", persisted=True), nullable=True),
    )
    shelf: Optional["Shelf"] = Relationship(back_populates="books")


class ShelfRepository(Repository[Shelf]):
    pass


class BookRepository(Repository[Book]):
    pass


class _Plugin:
    mosaic_name = "shelves"

    @sqlmosaic.hookimpl
    def mosaic_models(self) -> list[type[SQLModel]]:
        return [Shelf, Book]


pytestmark = pytest.mark.mosaic_plugins(_Plugin())


async def _count(session: AsyncSession, model: type[Any], **where: Any) -> int:
    stmt = select(func.count()).select_from(model)
    for name, value in where.items():
        stmt = stmt.where(getattr(model, name) == value)
    return int((await session.exec(stmt)).one())


# --------------------------------------------------------------------------- add


async def test_add_sends_one_insert_and_registers_the_object_like_a_flush(
    mosaic_session: AsyncSession, mosaic_sql_counter: SQLCounterFactory
) -> None:
    await mosaic_session.connection()
    shelf = Shelf(label="fiction")
    with mosaic_sql_counter() as sql:
        await ShelfRepository(mosaic_session).add(shelf)
    assert sql.count == 1
    assert sql.statements[0].lstrip().upper().startswith("INSERT")
    state = inspect(shelf)
    assert state.persistent
    assert shelf.id is not None
    assert shelf.code == "S-1"  # the server default came back
    assert mosaic_session.identity_map.get(state.key) is shelf
    with mosaic_sql_counter() as sql:  # the identity map answers
        assert await ShelfRepository(mosaic_session).get(shelf.id) is shelf
    assert sql.count == 0
    # changes after add are tracked as on any persistent object: one UPDATE at the next flush
    shelf.label = "fiction & poetry"
    assert shelf in mosaic_session.dirty
    with mosaic_sql_counter() as sql:
        await mosaic_session.flush()
    assert [s.lstrip().split()[0].upper() for s in sql.statements] == ["UPDATE"]
    await mosaic_session.refresh(shelf)
    assert shelf.label == "fiction & poetry"


async def test_add_returns_computed_columns(mosaic_session: AsyncSession) -> None:
    book = await BookRepository(mosaic_session).add(Book(title="Dune", pages=412))
    assert book.double_pages == 824


async def test_rolled_back_add_leaves_the_objects_transient_like_the_orm(
    mosaic_session: AsyncSession,
) -> None:
    shelf = Shelf(label="gone")
    books = [Book(title=f"b{i}") for i in range(3)]

    async def add_then_fail() -> None:
        async with transaction(mosaic_session):
            await ShelfRepository(mosaic_session).add(shelf)
            await BookRepository(mosaic_session).add_many(books)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await add_then_fail()
    for obj in (shelf, *books):
        state = inspect(obj)
        assert state.transient, state
        assert obj not in mosaic_session
    assert await _count(mosaic_session, Shelf, label="gone") == 0
    # transient again, the object can be added anew (the ORM keeps its old key value)
    shelf.id = None
    await ShelfRepository(mosaic_session).add(shelf)
    assert await _count(mosaic_session, Shelf, label="gone") == 1


async def test_a_conflict_leaves_the_object_out_of_the_session(
    mosaic_session: AsyncSession,
) -> None:
    async with transaction(mosaic_session):
        await ShelfRepository(mosaic_session).add(Shelf(label="twin"))
    twin = Shelf(label="twin")
    with pytest.raises(ConflictError):
        async with transaction(mosaic_session):
            await ShelfRepository(mosaic_session).add(twin)
    assert inspect(twin).transient
    assert await _count(mosaic_session, Shelf, label="twin") == 1


async def test_add_with_other_pending_changes_flushes_them_first(
    mosaic_session: AsyncSession, mosaic_sql_counter: SQLCounterFactory
) -> None:
    await mosaic_session.connection()
    shelf = Shelf(id=4242, label="pending")
    mosaic_session.add(shelf)  # not flushed yet; the book's foreign key needs it
    with mosaic_sql_counter() as sql:
        book = await BookRepository(mosaic_session).add(Book(title="ref", shelf_id=4242))
    assert sql.count == 2
    assert inspect(shelf).persistent
    assert inspect(book).persistent
    assert shelf.code == "S-1"


async def test_add_with_a_related_object_cascades_through_the_orm(
    mosaic_session: AsyncSession,
) -> None:
    book = Book(title="child", shelf=Shelf(label="parent"))
    await BookRepository(mosaic_session).add(book)
    assert book.shelf is not None
    assert book.shelf.id is not None
    assert book.shelf_id == book.shelf.id
    assert inspect(book.shelf).persistent
    shelves = await BookRepository(mosaic_session).add_many(
        [Book(title="a", shelf=Shelf(label="p1")), Book(title="b", shelf=Shelf(label="p2"))]
    )
    assert all(b.shelf_id is not None and b.shelf_id == b.shelf.id for b in shelves)  # type: ignore[union-attr]


async def test_insert_listeners_still_fire(mosaic_session: AsyncSession) -> None:
    seen: list[str] = []

    def before_insert(_mapper: Any, _connection: Any, target: Book) -> None:
        seen.append(f"before_insert {target.title}")
        target.pages = 7  # a listener may change what is written

    def before_flush(_session: Any, _context: Any, _instances: Any) -> None:
        seen.append("before_flush")

    event.listen(Book, "before_insert", before_insert)
    try:
        book = await BookRepository(mosaic_session).add(Book(title="evented"))
        assert book.pages == 7
        assert book.double_pages == 14
        await BookRepository(mosaic_session).add_many([Book(title="e1"), Book(title="e2")])
    finally:
        event.remove(Book, "before_insert", before_insert)
    assert seen == ["before_insert evented", "before_insert e1", "before_insert e2"]
    sync = mosaic_session.sync_session
    event.listen(sync, "before_flush", before_flush)
    try:
        await ShelfRepository(mosaic_session).add(Shelf(label="flushed"))
    finally:
        event.remove(sync, "before_flush", before_flush)
    assert seen[-1] == "before_flush"


async def test_a_sql_expression_value_is_written_through_the_orm(
    mosaic_session: AsyncSession,
) -> None:
    book = Book(title="x")
    book.title = func.upper("shouted")  # type: ignore[assignment]
    await BookRepository(mosaic_session).add(book)
    await mosaic_session.refresh(book)
    assert book.title == "SHOUTED"


async def test_add_many_sends_one_statement_per_shape(
    mosaic_session: AsyncSession, mosaic_sql_counter: SQLCounterFactory, mosaic_backend: str
) -> None:
    await mosaic_session.connection()
    books = [Book(title=f"t{i}", pages=i) for i in range(50)]
    books.append(Book(id=990001, title="explicit key"))  # another shape: the key is sent
    with mosaic_sql_counter() as sql:
        await BookRepository(mosaic_session).add_many(books)
    # SQLite: plus one read of the largest key before the run whose keys SQLite assigns
    assert sql.count == (3 if mosaic_backend == "sqlite" else 2)
    assert [b.double_pages for b in books[:3]] == [0, 2, 4]
    assert books[-1].id == 990001
    assert len({b.id for b in books}) == 51
    assert all(inspect(b).persistent for b in books)
    with pytest.raises(InvalidQueryError) as info:
        await BookRepository(mosaic_session).add_many([Shelf(label="wrong")])  # type: ignore[list-item]
    assert info.value.field == "objs"


# --------------------------------------------------------------------------- get


async def test_get_reads_the_identity_map_then_one_select(
    mosaic_session: AsyncSession, mosaic_sql_counter: SQLCounterFactory
) -> None:
    shelf = await ShelfRepository(mosaic_session).add(Shelf(label="cached"))
    assert shelf.id is not None
    key = shelf.id
    mosaic_session.expunge(shelf)
    with mosaic_sql_counter() as sql:
        loaded = await ShelfRepository(mosaic_session).get(key)
    assert sql.count == 1
    assert loaded is not shelf
    assert loaded.label == "cached"
    with mosaic_sql_counter() as sql:
        assert await ShelfRepository(mosaic_session).get(key) is loaded
    assert sql.count == 0


async def test_get_of_an_expired_object_reloads_it(
    mosaic_session: AsyncSession, mosaic_sql_counter: SQLCounterFactory
) -> None:
    shelf = await ShelfRepository(mosaic_session).add(Shelf(label="stale"))
    key = shelf.id
    assert key is not None
    conn = await mosaic_session.connection()
    await conn.execute(Shelf.__table__.update().values(label="fresh"))  # type: ignore[attr-defined]
    mosaic_session.expire(shelf)
    with mosaic_sql_counter() as sql:
        again = await ShelfRepository(mosaic_session).get(key)
    assert sql.count == 1
    assert again is shelf
    assert again.label == "fresh"


async def test_get_takes_any_key_form_session_get_takes(
    mosaic_session: AsyncSession, mosaic_sql_counter: SQLCounterFactory
) -> None:
    shelf = await ShelfRepository(mosaic_session).add(Shelf(label="forms"))
    shelves = ShelfRepository(mosaic_session)
    assert await shelves.get((shelf.id,)) is shelf
    assert await shelves.get([shelf.id]) is shelf  # unhashable: SQLAlchemy's own path
    assert await shelves.get({"id": shelf.id}) is shelf
    with mosaic_sql_counter() as sql:
        assert await shelves.get_or_none(None) is None  # no key, no row, no SQL
        with pytest.raises(NotFoundError):
            await shelves.get((None,))
    assert sql.count == 0
    with pytest.raises(NotFoundError):
        await shelves.get(shelf.id + 1000)  # type: ignore[operator]


async def test_the_short_insert_is_taken_only_when_a_flush_would_do_nothing_more(
    mosaic_session: AsyncSession,
) -> None:
    plan = BookRepository._plan()
    sync = mosaic_session.sync_session
    assert plan.can_insert_directly(sync, [Book(title="plain"), Book(title="plain too")])
    assert not plan.can_insert_directly(sync, [Book(title="a", shelf=Shelf(label="b"))])
    expression = Book(title="x")
    expression.pages = func.abs(-3)  # type: ignore[assignment]
    assert not plan.can_insert_directly(sync, [expression])
    persistent = await BookRepository(mosaic_session).add(Book(title="already"))
    assert not plan.can_insert_directly(sync, [persistent])
    mosaic_session.add(Book(title="pending"))
    assert not plan.can_insert_directly(sync, [Book(title="plain")])  # the session is not clean
    await mosaic_session.flush()
    assert plan.can_insert_directly(sync, [Book(title="plain")])
    with_listener = Book(title="plain")

    def noop(*_args: Any) -> None:
        return None

    event.listen(Book, "after_insert", noop)
    try:
        assert not plan.can_insert_directly(sync, [with_listener])
    finally:
        event.remove(Book, "after_insert", noop)
    assert plan.can_insert_directly(sync, [with_listener])


# --------------------------------------------------------------------------- add_many(mappings)


async def test_add_many_of_mappings_builds_what_the_constructor_builds(
    mosaic_session: AsyncSession, mosaic_sql_counter: SQLCounterFactory, mosaic_backend: str
) -> None:
    await mosaic_session.connection()
    rows = [{"title": "m1", "pages": 10}, {"title": "m2"}]
    with mosaic_sql_counter() as sql:
        books = await BookRepository(mosaic_session).add_many(rows)
    assert sql.count == (2 if mosaic_backend == "sqlite" else 1)  # SQLite: the largest key first
    for row, book in zip(rows, books, strict=True):
        assert isinstance(book, Book)
        assert inspect(book).persistent
        assert book.id is not None
        expected = Book(**row)  # what the model's own constructor makes of the mapping
        assert book.model_fields_set == expected.model_fields_set == set(row)
        assert book.model_dump(exclude={"id", "double_pages"}) == expected.model_dump(
            exclude={"id", "double_pages"}
        )
    assert [b.pages for b in books] == [10, 0]  # the field default
    assert [b.double_pages for b in books] == [20, 0]  # computed by the database


async def test_add_many_of_mappings_applies_default_factories(
    mosaic_session: AsyncSession,
) -> None:
    from mosaic_accounts import User, UserRepository

    users = await UserRepository(mosaic_session).add_many(
        [{"email": "f1@example.com", "name": "F1"}, {"email": "f2@example.com", "name": "F2"}]
    )
    assert all(isinstance(u, User) and u.is_active for u in users)
    now = datetime.now(UTC)
    for user in users:  # the model's default_factory ran for each object
        assert isinstance(user.created_at, datetime)
        assert abs((now - user.created_at.replace(tzinfo=UTC)).total_seconds()) < 60
        assert user.password_hash is None


async def test_add_many_of_mappings_names_an_unknown_key_before_any_sql(
    mosaic_session: AsyncSession, mosaic_sql_counter: SQLCounterFactory
) -> None:
    await mosaic_session.connection()
    with mosaic_sql_counter() as sql, pytest.raises(InvalidQueryError) as info:
        await BookRepository(mosaic_session).add_many([{"title": "ok"}, {"titel": "typo"}])
    assert sql.count == 0
    assert info.value.field == "titel"
    assert "Book" in str(info.value)


async def test_add_many_of_mappings_with_relationships_or_init_listeners(
    mosaic_session: AsyncSession,
) -> None:
    books = await BookRepository(mosaic_session).add_many(
        [{"title": "with parent", "shelf": Shelf(label="parent of a mapping")}]
    )
    assert books[0].shelf is not None
    assert books[0].shelf_id == books[0].shelf.id
    seen: list[str] = []

    def on_init(target: Book, _args: Any, kwargs: dict[str, Any]) -> None:
        seen.append(kwargs["title"])

    event.listen(Book, "init", on_init)
    try:
        assert not BookRepository._plan().can_construct()
        await BookRepository(mosaic_session).add_many([{"title": "i1"}, {"title": "i2"}])
    finally:
        event.remove(Book, "init", on_init)
    assert seen == ["i1", "i2"]
    assert BookRepository._plan().can_construct()


# --------------------------------------------------------------------------- review findings


async def test_get_with_a_joined_eager_collection(mosaic_session: AsyncSession) -> None:
    shelf = await ShelfRepository(mosaic_session).add(Shelf(label="eager"))
    await BookRepository(mosaic_session).add_many(
        [{"title": "e1", "shelf_id": shelf.id}, {"title": "e2", "shelf_id": shelf.id}]
    )
    key = shelf.id
    mosaic_session.expunge_all()
    loaded = await ShelfRepository(mosaic_session).get(key)  # two joined rows, one object
    assert sorted(b.title for b in loaded.books) == ["e1", "e2"]


async def test_a_failed_insert_needs_a_rollback_like_a_failed_flush(
    mosaic_session: AsyncSession,
) -> None:
    async with transaction(mosaic_session):
        await ShelfRepository(mosaic_session).add(Shelf(label="taken"))

    async def insert_twice() -> None:
        async with transaction(mosaic_session):
            await BookRepository(mosaic_session).add_many([{"title": "kept?"}])
            # swallowed: the unit must still not commit half of its work
            with contextlib.suppress(ConflictError):
                await ShelfRepository(mosaic_session).add(Shelf(label="taken"))
            await ShelfRepository(mosaic_session).count()

    with pytest.raises(sa_exc.PendingRollbackError):
        await insert_twice()
    assert await _count(mosaic_session, Book, title="kept?") == 0


async def test_a_failed_insert_in_a_savepoint_leaves_the_outer_unit_going(
    mosaic_session: AsyncSession,
) -> None:
    kept = Shelf(label="outer")
    dropped = Shelf(label="inner")
    async with transaction(mosaic_session):
        await ShelfRepository(mosaic_session).add(kept)

        async def inner() -> None:
            async with transaction(mosaic_session):
                await ShelfRepository(mosaic_session).add(dropped)
                await ShelfRepository(mosaic_session).add(Shelf(label="outer"))  # conflict

        with pytest.raises(ConflictError):
            await inner()
        assert inspect(dropped).transient
        assert inspect(kept).persistent
        await BookRepository(mosaic_session).add(Book(title="after the savepoint"))
    assert await _count(mosaic_session, Shelf, label="outer") == 1
    assert await _count(mosaic_session, Shelf, label="inner") == 0
    assert await _count(mosaic_session, Book, title="after the savepoint") == 1


async def test_the_same_object_twice_is_one_row(mosaic_session: AsyncSession) -> None:
    book = Book(title="twice")
    result = await BookRepository(mosaic_session).add_many([book, book])
    assert result == [book, book]
    assert await _count(mosaic_session, Book, title="twice") == 1


async def test_attribute_set_listeners_see_mapping_values(mosaic_session: AsyncSession) -> None:
    seen: list[str] = []

    def record(_target: Book, value: str, _old: Any, _initiator: Any) -> None:
        seen.append(value)

    event.listen(Book.title, "set", record)
    try:
        assert not BookRepository._plan().can_construct()  # the constructor must run
        await BookRepository(mosaic_session).add_many([{"title": "quiet"}, {"title": "loud"}])
    finally:
        event.remove(Book.title, "set", record)
    assert seen == ["quiet", "loud"]
    assert BookRepository._plan().can_construct()
