"""SQLModel with its own ``AsyncSession`` (``sqlmodel.ext.asyncio.session``), ``session.exec``.

The model lives in a private registry/MetaData (not the global ``SQLModel.metadata``) so it
cannot collide with other ``item`` models, e.g. a later sqlmosaic stack.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import NaiveDatetime
from sqlalchemy import Column, Double, Identity, String
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bench._schema import ID_TYPE, ItemRow
from bench.stacks._base import PAGE_SIZE
from bench.stacks._sa import SAStack


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
    # SQLModel 0.0.50 maps a plain ``datetime`` to its UTCDateTime (timestamptz, rejects naive
    # values); the table has ``timestamp without time zone``, so say so.
    created_at: NaiveDatetime


class SQLModelAsync(SAStack):
    name = "sqlmodel_async"
    order = 30
    description = "SQLModel table model, sqlmodel AsyncSession(expire_on_commit=False), exec()"

    def _session(self) -> AsyncSession:
        return AsyncSession(self.engine, expire_on_commit=False)

    async def insert_one(self, row: ItemRow) -> int:
        obj = Item(**row)
        async with self._session() as session:
            session.add(obj)
            await session.commit()
        assert obj.id is not None
        return obj.id

    async def bulk_insert(self, rows: Sequence[ItemRow]) -> None:
        async with self._session() as session:
            session.add_all([Item(**r) for r in rows])
            await session.commit()

    def prepare_bulk(self, rows: Sequence[ItemRow]) -> list[Item]:
        return [Item(**r) for r in rows]

    async def bulk_insert_prepared(self, prepared: list[Item]) -> None:
        async with self._session() as session:
            session.add_all(prepared)
            await session.commit()

    async def get(self, item_id: int) -> object:
        async with self._session() as session:
            obj = await session.get(Item, item_id)
        assert obj is not None
        return obj

    async def page(self, offset: int) -> Sequence[object]:
        stmt = select(Item).order_by(Item.id).limit(PAGE_SIZE).offset(offset)  # type: ignore[arg-type]
        async with self._session() as session:
            return (await session.exec(stmt)).all()

    async def update(self, item_id: int, qty: int) -> None:
        async with self._session() as session:
            obj = await session.get(Item, item_id)
            assert obj is not None
            obj.qty = qty
            session.add(obj)
            await session.commit()


STACK = SQLModelAsync
