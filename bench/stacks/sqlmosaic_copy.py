"""sqlmosaic's COPY path: ``repo.copy_many(rows)`` in one unit of work; bulk ops only.

On PostgreSQL + asyncpg ``copy_many`` sends a binary ``COPY item (...) FROM STDIN`` on the unit
of work's connection (asyncpg ``copy_records_to_table``); elsewhere one executemany ``INSERT``.
The rows are passed as the mappings they are (no model objects are built; nothing is returned
or attached to the session). Same engine and session factory as the ``sqlmosaic`` stack.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench._schema import ItemRow
from bench.stacks.sqlmosaic import ItemRepository, Sqlmosaic
from sqlmosaic import transaction


class SqlmosaicCopy(Sqlmosaic):
    name = "sqlmosaic_copy"
    order = 51
    description = "sqlmosaic Repository.copy_many (COPY on PostgreSQL); bulk ops only"
    ops = frozenset({"bulk_insert", "bulk_insert_prebuilt"})

    async def bulk_insert(self, rows: Sequence[ItemRow]) -> None:
        if self.counter.enabled and self.engine.dialect.name == "postgresql":
            self.counter.statements += 1  # the COPY goes through asyncpg, unseen by SQLAlchemy
        async with self.sessions() as session, transaction(session):
            await ItemRepository(session).copy_many(rows)

    def prepare_bulk(self, rows: Sequence[ItemRow]) -> Sequence[ItemRow]:
        return rows  # copy_many takes the mappings as they are

    async def bulk_insert_prepared(self, prepared: Sequence[ItemRow]) -> None:
        await self.bulk_insert(prepared)


STACK = SqlmosaicCopy
