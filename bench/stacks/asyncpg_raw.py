"""Raw asyncpg: a pool of 10, hand-written SQL, prepared statements.

asyncpg prepares every statement it runs and keeps it in the per-connection statement cache
(``statement_cache_size``, default 100), so after the first use on a connection each query is
a bind+execute of a prepared statement. Single-statement writes run in autocommit (one round
trip, as atomic and durable as BEGIN/stmt/COMMIT); the bulk insert uses an explicit transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from bench._schema import ItemRow
from bench.stacks._base import PAGE_SIZE, POOL_SIZE, Backend, DbTarget, Stack

_COLS = "id, name, qty, price, created_at"
INSERT_RETURNING = (
    "INSERT INTO item (name, qty, price, created_at) VALUES ($1, $2, $3, $4) RETURNING id"
)
INSERT = "INSERT INTO item (name, qty, price, created_at) VALUES ($1, $2, $3, $4)"
GET = f"SELECT {_COLS} FROM item WHERE id = $1"
PAGE = f"SELECT {_COLS} FROM item ORDER BY id LIMIT {PAGE_SIZE} OFFSET $1"
UPDATE = "UPDATE item SET qty = $1 WHERE id = $2"


class AsyncpgRaw(Stack):
    name = "asyncpg_raw"
    backends = frozenset[Backend]({"postgres"})
    order = 0
    description = "asyncpg pool, hand-written SQL, prepared statements (statement cache)"

    pool: asyncpg.Pool

    async def setup(self, db: DbTarget) -> None:
        self.pool = await asyncpg.create_pool(db.raw_dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)

    async def teardown(self) -> None:
        await self.pool.close()

    async def insert_one(self, row: ItemRow) -> int:
        if self.counter.enabled:
            self.counter.statements += 1
        async with self.pool.acquire() as conn:
            new_id: int = await conn.fetchval(
                INSERT_RETURNING, row["name"], row["qty"], row["price"], row["created_at"]
            )
        return new_id

    async def bulk_insert(self, rows: Sequence[ItemRow]) -> None:
        await self.bulk_insert_prepared(self.prepare_bulk(rows))

    def prepare_bulk(self, rows: Sequence[ItemRow]) -> list[tuple[object, ...]]:
        return [(r["name"], r["qty"], r["price"], r["created_at"]) for r in rows]

    async def bulk_insert_prepared(self, prepared: list[tuple[object, ...]]) -> None:
        if self.counter.enabled:
            self.counter.statements += 1
            self.counter.tx += 2
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(INSERT, prepared)

    async def get(self, item_id: int) -> object:
        if self.counter.enabled:
            self.counter.statements += 1
        async with self.pool.acquire() as conn:
            return await conn.fetchrow(GET, item_id)

    async def page(self, offset: int) -> Sequence[object]:
        if self.counter.enabled:
            self.counter.statements += 1
        async with self.pool.acquire() as conn:
            rows: list[object] = await conn.fetch(PAGE, offset)
        return rows

    async def update(self, item_id: int, qty: int) -> None:
        if self.counter.enabled:
            self.counter.statements += 1
        async with self.pool.acquire() as conn:
            await conn.execute(UPDATE, qty, item_id)


STACK = AsyncpgRaw
