"""advanced-alchemy's ``SQLAlchemyAsyncRepository`` over a plain ``DeclarativeBase`` model.

A plain model rather than advanced-alchemy's ``BigIntBase``, which would add its own columns
(``sa_orm_sentinel``) and change the table. One repository per session, as in its docs.
``auto_refresh=False``: like ``expire_on_commit=False`` for the other ORM stacks, the object is
not re-SELECTed after commit (the library default ``auto_refresh=True`` would add one SELECT to
insert and update).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import Double, Identity, String
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
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


class ItemRepository(SQLAlchemyAsyncRepository[Item]):
    model_type = Item


class AARepo(SAStack):
    name = "aa_repo"
    order = 40
    description = "advanced-alchemy SQLAlchemyAsyncRepository (auto_commit, auto_refresh=False)"

    async def on_setup(self) -> None:
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def _repo(self, session: AsyncSession) -> ItemRepository:
        return ItemRepository(session=session, auto_commit=True, auto_refresh=False)

    async def insert_one(self, row: ItemRow) -> int:
        async with self.sessions() as session:
            obj = await self._repo(session).add(Item(**row))
        return obj.id

    async def bulk_insert(self, rows: Sequence[ItemRow]) -> None:
        async with self.sessions() as session:
            await self._repo(session).add_many([Item(**r) for r in rows])

    def prepare_bulk(self, rows: Sequence[ItemRow]) -> list[Item]:
        return [Item(**r) for r in rows]

    async def bulk_insert_prepared(self, prepared: list[Item]) -> None:
        async with self.sessions() as session:
            await self._repo(session).add_many(prepared)

    async def get(self, item_id: int) -> object:
        async with self.sessions() as session:
            return await self._repo(session).get(item_id)

    async def page(self, offset: int) -> Sequence[object]:
        async with self.sessions() as session:
            return await self._repo(session).get_many(
                LimitOffset(limit=PAGE_SIZE, offset=offset),
                OrderBy(field_name="id", sort_order="asc"),
            )

    async def update(self, item_id: int, qty: int) -> None:
        async with self.sessions() as session:
            await self._repo(session).update(Item(id=item_id, qty=qty))


STACK = AARepo
