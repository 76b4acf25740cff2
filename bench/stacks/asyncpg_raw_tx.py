"""Diagnostic variant (opt-in: ``--stacks asyncpg_raw_tx,...``): raw asyncpg, but every
operation inside an explicit transaction, i.e. the same BEGIN / statement / COMMIT round trips
that SQLAlchemy's asyncpg dialect sends (it sends BEGIN and COMMIT/ROLLBACK even for a single
SELECT). Comparing it with ``asyncpg_raw`` separates the cost of those round trips from the
cost of the Python layers above the driver.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench._schema import ItemRow
from bench.stacks.asyncpg_raw import GET, INSERT_RETURNING, PAGE, UPDATE, AsyncpgRaw


class AsyncpgRawTx(AsyncpgRaw):
    name = "asyncpg_raw_tx"
    order = 1
    description = "asyncpg_raw with an explicit transaction around every op (diagnostic)"
    default_enabled = False

    def _count(self) -> None:
        if self.counter.enabled:
            self.counter.statements += 1
            self.counter.tx += 2

    async def insert_one(self, row: ItemRow) -> int:
        self._count()
        async with self.pool.acquire() as conn, conn.transaction():
            new_id: int = await conn.fetchval(
                INSERT_RETURNING, row["name"], row["qty"], row["price"], row["created_at"]
            )
        return new_id

    async def get(self, item_id: int) -> object:
        self._count()
        async with self.pool.acquire() as conn, conn.transaction():
            return await conn.fetchrow(GET, item_id)

    async def page(self, offset: int) -> Sequence[object]:
        self._count()
        async with self.pool.acquire() as conn, conn.transaction():
            rows: list[object] = await conn.fetch(PAGE, offset)
        return rows

    async def update(self, item_id: int, qty: int) -> None:
        self._count()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(UPDATE, qty, item_id)


STACK = AsyncpgRawTx
