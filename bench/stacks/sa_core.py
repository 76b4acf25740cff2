"""SQLAlchemy Core, async: ``Table`` constructs on an ``AsyncConnection`` (no ORM)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select, update

from bench._schema import ItemRow, item
from bench.stacks._base import PAGE_SIZE
from bench.stacks._sa import SAStack


class SACore(SAStack):
    name = "sa_core"
    order = 10
    description = "SQLAlchemy Core async (engine.begin()/connect(), Table constructs)"

    async def insert_one(self, row: ItemRow) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(insert(item), dict(row))
        pk = result.inserted_primary_key
        assert pk is not None
        new_id: int = pk[0]
        return new_id

    async def bulk_insert(self, rows: Sequence[ItemRow]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(item), [dict(r) for r in rows])

    def prepare_bulk(self, rows: Sequence[ItemRow]) -> list[dict[str, object]]:
        return [dict(r) for r in rows]

    async def bulk_insert_prepared(self, prepared: list[dict[str, object]]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(item), prepared)

    async def get(self, item_id: int) -> object:
        async with self.engine.connect() as conn:
            result = await conn.execute(select(item).where(item.c.id == item_id))
            return result.one()

    async def page(self, offset: int) -> Sequence[object]:
        stmt = select(item).order_by(item.c.id).limit(PAGE_SIZE).offset(offset)
        async with self.engine.connect() as conn:
            result = await conn.execute(stmt)
            return result.all()

    async def update(self, item_id: int, qty: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(item).where(item.c.id == item_id).values(qty=qty))


STACK = SACore
