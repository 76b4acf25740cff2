"""sqlmosaic: a ``Repository[Item]`` inside its unit of work (``sqlmosaic.transaction``).

The engine comes from ``sqlmosaic.create_engine`` AS SHIPPED (what users get: the checkout
liveness check with its default ``pool_ping_after`` on PostgreSQL, ``hide_parameters``,
``application_name``, no statement timeout unless configured; on SQLite explicit ``BEGIN``
statements, ``BEGIN IMMEDIATE`` for units of work, foreign keys on, WAL), no setting overridden
but the harness's pool rules: pool of 10, no overflow and, on SQLite, the harness's 5 s busy
timeout. The ``sqlmosaic_ping_every`` variant pings on every checkout (``pool_ping_after=0``,
the cost of SQLAlchemy's ``pool_pre_ping``). Sessions come from
``sqlmosaic.create_session_factory`` (SQLModel ``AsyncSession``, ``expire_on_commit=False``).

* ``insert_one``: ``async with transaction(session): await repo.add(obj)``
* ``bulk_insert``: ``repo.add_many(rows)`` in one unit of work: add_many builds the ``Item``
  objects from the row mappings, sends batched Core ``INSERT ... RETURNING`` and registers the
  objects as persistent (the ``sqlmosaic_objects`` stack builds ``Item(**row)`` first instead)
* ``get``: ``repo.get(pk)`` in its own session (no unit of work: a read)
* ``page``: ``repo.list(order_by="id", limit=50, offset=x)`` (one SELECT of ``limit + 1`` rows)
* ``update``: ``repo.update(pk, {"qty": q})`` in a unit of work (one ``UPDATE ... RETURNING``)

``bulk_insert_prebuilt`` times ``add_many`` alone, on objects built before the clock starts.
The ``sqlmosaic_copy`` variant (module ``sqlmosaic_copy``) runs only the bulk ops, through
``repo.copy_many(dicts)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import Column, Double, Identity, String
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from bench._schema import ID_TYPE, ItemRow
from bench.stacks._base import PAGE_SIZE, POOL_SIZE, DbTarget
from bench.stacks._sa import SAStack
from sqlmosaic import MosaicSettings, Repository, create_engine, create_session_factory, transaction

# The harness's SQLite busy timeout (bench.stacks._base.SQLITE_PRAGMAS: busy_timeout=5000).
SQLITE_BUSY_TIMEOUT = 5.0


class _Base(SQLModel, registry=registry()):
    pass


class Item(_Base, table=True):
    __tablename__ = "item"

    id: int | None = Field(
        default=None, sa_column=Column("id", ID_TYPE, Identity(), primary_key=True)
    )
    name: str = Field(sa_type=String(100))
    qty: int
    price: float = Field(sa_type=Double)
    created_at: NaiveDatetime  # ``timestamp without time zone`` (see sqlmodel_async.py)


class ItemRepository(Repository[Item]):
    pass


def create_mosaic_engine(db: DbTarget, **settings_overrides: Any) -> AsyncEngine:
    """``sqlmosaic.create_engine`` as shipped, with the harness's pool rules (10, no overflow)."""
    settings = MosaicSettings.load(
        database_url=db.sa_url,
        pool_size=POOL_SIZE,
        max_overflow=0,
        sqlite_busy_timeout=SQLITE_BUSY_TIMEOUT,
        **settings_overrides,
    )
    return create_engine(settings)


class Sqlmosaic(SAStack):
    name = "sqlmosaic"
    order = 50
    description = (
        "sqlmosaic Repository[Item] in transaction(session); sqlmosaic.create_engine "
        "as shipped (pool 10, no overflow), create_session_factory"
    )

    def create_engine(self, db: DbTarget) -> AsyncEngine:
        return create_mosaic_engine(db)

    async def on_setup(self) -> None:
        self.sessions = create_session_factory(self.engine)

    def _on_statement(self, *args: Any) -> None:
        # On SQLite sqlmosaic's engine sends BEGIN itself (in the engine's "begin" event, which
        # is already counted as transaction control): do not count it as a statement too.
        statement = args[2] if len(args) > 2 else ""
        if isinstance(statement, str) and statement.startswith("BEGIN"):
            return
        self.counter.statements += 1

    async def insert_one(self, row: ItemRow) -> int:
        obj = Item(**row)
        async with self.sessions() as session, transaction(session):
            await ItemRepository(session).add(obj)
        assert obj.id is not None
        return obj.id

    async def bulk_insert(self, rows: Sequence[ItemRow]) -> None:
        # add_many takes the row mappings and builds the Item objects itself
        async with self.sessions() as session, transaction(session):
            await ItemRepository(session).add_many(rows)

    def prepare_bulk(self, rows: Sequence[ItemRow]) -> list[Item]:
        return [Item(**r) for r in rows]

    async def bulk_insert_prepared(self, prepared: list[Item]) -> None:
        async with self.sessions() as session, transaction(session):
            await ItemRepository(session).add_many(prepared)

    async def get(self, item_id: int) -> object:
        async with self.sessions() as session:
            return await ItemRepository(session).get(item_id)

    async def page(self, offset: int) -> Sequence[object]:
        async with self.sessions() as session:
            page = await ItemRepository(session).list(order_by="id", limit=PAGE_SIZE, offset=offset)
        return page.items

    async def update(self, item_id: int, qty: int) -> None:
        async with self.sessions() as session, transaction(session):
            await ItemRepository(session).update(item_id, {"qty": qty})


STACK = Sqlmosaic
