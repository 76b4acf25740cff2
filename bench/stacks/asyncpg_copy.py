"""Raw asyncpg ``copy_records_to_table`` (binary COPY) in a transaction; bulk ops only.

The ceiling for any COPY-based bulk path (such as ``sqlmosaic_copy``): the same pool as
``asyncpg_raw``; ``bulk_insert`` builds the tuples inside the timed section
(``asyncpg_raw.prepare_bulk``), ``bulk_insert_prebuilt`` before it. PostgreSQL only.
"""

from __future__ import annotations

from bench._schema import INSERT_COLUMNS
from bench.stacks._base import Backend
from bench.stacks.asyncpg_raw import AsyncpgRaw


class AsyncpgCopy(AsyncpgRaw):
    name = "asyncpg_copy"
    backends = frozenset[Backend]({"postgres"})
    order = 2
    description = "asyncpg copy_records_to_table (binary COPY) in a transaction; bulk_insert only"
    ops = frozenset({"bulk_insert", "bulk_insert_prebuilt"})

    async def bulk_insert_prepared(self, prepared: list[tuple[object, ...]]) -> None:
        if self.counter.enabled:
            self.counter.statements += 1
            self.counter.tx += 2
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.copy_records_to_table("item", records=prepared, columns=INSERT_COLUMNS)


STACK = AsyncpgCopy
