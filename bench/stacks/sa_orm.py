"""SQLAlchemy ORM, async: plain ``DeclarativeBase`` model, ``async_sessionmaker`` sessions.

This is the reference stack for ``ratio_vs_orm``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Double, Identity, String, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench._schema import ID_TYPE, ItemRow
from bench.stacks._base import PAGE_SIZE
from bench.stacks._sa import SAStack


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"

    id: Mapped[int] = mapped_column(ID_TYPE, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    qty: Mapped[int]
    price: Mapped[float] = mapped_column(Double)
    created_at: Mapped[datetime]


class SAOrm(SAStack):
    name = "sa_orm"
    order = 20
    description = (
        "SQLAlchemy ORM async, DeclarativeBase, async_sessionmaker(expire_on_commit=False)"
    )

    async def on_setup(self) -> None:
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def insert_one(self, row: ItemRow) -> int:
        obj = Item(**row)
        async with self.sessions.begin() as session:
            session.add(obj)
        return obj.id

    async def bulk_insert(self, rows: Sequence[ItemRow]) -> None:
        async with self.sessions.begin() as session:
            session.add_all([Item(**r) for r in rows])

    def prepare_bulk(self, rows: Sequence[ItemRow]) -> list[Item]:
        return [Item(**r) for r in rows]

    async def bulk_insert_prepared(self, prepared: list[Item]) -> None:
        async with self.sessions.begin() as session:
            session.add_all(prepared)

    async def get(self, item_id: int) -> object:
        async with self.sessions() as session:
            obj = await session.get(Item, item_id)
        assert obj is not None
        return obj

    async def page(self, offset: int) -> Sequence[object]:
        stmt = select(Item).order_by(Item.id).limit(PAGE_SIZE).offset(offset)
        async with self.sessions() as session:
            return (await session.scalars(stmt)).all()

    async def update(self, item_id: int, qty: int) -> None:
        async with self.sessions.begin() as session:
            obj = await session.get(Item, item_id)
            assert obj is not None
            obj.qty = qty


STACK = SAOrm
