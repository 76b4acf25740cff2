"""Raw aiosqlite: the "raw driver" baseline on SQLite.

A minimal pool of 10 aiosqlite connections (each is a thread with its own sqlite3
connection) so it matches the SQLAlchemy stacks' pool. The sqlite3 module's default
transaction handling is kept: it issues BEGIN before INSERT/UPDATE, and we commit.
Timestamps are stored in SQLAlchemy's SQLite DATETIME text format so every stack can read
every other stack's rows; they come back as text (the raw driver does not parse them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import aiosqlite

from bench._schema import ItemRow
from bench.stacks._base import PAGE_SIZE, POOL_SIZE, SQLITE_PRAGMAS, Backend, DbTarget, Stack

_COLS = "id, name, qty, price, created_at"
INSERT = "INSERT INTO item (name, qty, price, created_at) VALUES (?, ?, ?, ?)"
GET = f"SELECT {_COLS} FROM item WHERE id = ?"
PAGE = f"SELECT {_COLS} FROM item ORDER BY id LIMIT {PAGE_SIZE} OFFSET ?"
UPDATE = "UPDATE item SET qty = ? WHERE id = ?"


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DATETIME format


def _params(row: ItemRow) -> tuple[str, int, float, str]:
    return (row["name"], row["qty"], row["price"], _ts(row["created_at"]))


class AiosqliteRaw(Stack):
    name = "aiosqlite_raw"
    backends = frozenset[Backend]({"sqlite"})
    order = 1
    description = "aiosqlite, pool of 10 connections, hand-written SQL"

    async def setup(self, db: DbTarget) -> None:
        self._all: list[aiosqlite.Connection] = []
        self._idle: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for _ in range(POOL_SIZE):
            conn = await aiosqlite.connect(db.raw_dsn)
            for pragma in SQLITE_PRAGMAS:
                await conn.execute(pragma)
            self._all.append(conn)
            self._idle.put_nowait(conn)

    async def teardown(self) -> None:
        for conn in self._all:
            await conn.close()

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[aiosqlite.Connection]:
        conn = await self._idle.get()
        try:
            yield conn
        finally:
            self._idle.put_nowait(conn)

    async def insert_one(self, row: ItemRow) -> int:
        if self.counter.enabled:
            self.counter.statements += 1
            self.counter.tx += 2  # implicit BEGIN + COMMIT
        async with self._acquire() as conn:
            cursor = await conn.execute(INSERT, _params(row))
            new_id = cursor.lastrowid
            await conn.commit()
        assert new_id is not None
        return new_id

    async def bulk_insert(self, rows: Sequence[ItemRow]) -> None:
        await self.bulk_insert_prepared(self.prepare_bulk(rows))

    def prepare_bulk(self, rows: Sequence[ItemRow]) -> list[tuple[str, int, float, str]]:
        return [_params(r) for r in rows]

    async def bulk_insert_prepared(self, prepared: list[tuple[str, int, float, str]]) -> None:
        if self.counter.enabled:
            self.counter.statements += 1
            self.counter.tx += 2
        async with self._acquire() as conn:
            await conn.executemany(INSERT, prepared)
            await conn.commit()

    # execute_fetchall: one hop to the connection thread, and the statement is run to completion
    # (a cursor left after fetchone() would keep a read transaction open).
    async def get(self, item_id: int) -> object:
        if self.counter.enabled:
            self.counter.statements += 1
        async with self._acquire() as conn:
            rows = await conn.execute_fetchall(GET, (item_id,))
        return next(iter(rows))

    async def page(self, offset: int) -> Sequence[object]:
        if self.counter.enabled:
            self.counter.statements += 1
        async with self._acquire() as conn:
            return list(await conn.execute_fetchall(PAGE, (offset,)))

    async def update(self, item_id: int, qty: int) -> None:
        if self.counter.enabled:
            self.counter.statements += 1
            self.counter.tx += 2
        async with self._acquire() as conn:
            await conn.execute(UPDATE, (qty, item_id))
            await conn.commit()


STACK = AiosqliteRaw
