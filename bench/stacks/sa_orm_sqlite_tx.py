"""The ``sa_orm`` stack on SQLite with real transactions, as SQLAlchemy's aiosqlite dialect
documents them ("Serializable isolation / Savepoints / Transactional DDL"): pysqlite's own
BEGIN handling switched off at connect, ``BEGIN`` emitted in the engine's ``begin`` event.

This is the ORM with the transactional guarantee sqlmosaic's SQLite engines give by default
(every read of a session in one snapshot, working SAVEPOINTs, transactional DDL). The ``sa_orm``
reference row keeps pysqlite's legacy mode, where a SELECT runs outside any transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.stacks._base import DbTarget
from bench.stacks._sa import create_bench_engine
from bench.stacks.sa_orm import SAOrm


def _no_driver_begin(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # pysqlite (under aiosqlite) emits no BEGIN


def _emit_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


class SAOrmSqliteTx(SAOrm):
    name = "sa_orm_sqlite_tx"
    order = 22
    description = "sa_orm on SQLite with SQLAlchemy's documented BEGIN recipe (real transactions)"
    backends = frozenset({"sqlite"})
    ops = frozenset({"get", "page", "concurrent_get", "update", "insert_one"})

    def create_engine(self, db: DbTarget) -> AsyncEngine:
        engine = create_bench_engine(db)
        event.listen(engine.sync_engine, "connect", _no_driver_begin)
        event.listen(engine.sync_engine, "begin", _emit_begin)
        return engine

    def _on_statement(self, *args: Any) -> None:
        # the recipe's BEGIN is counted as transaction control (the "begin" event), not twice
        statement = args[2] if len(args) > 2 else ""
        if isinstance(statement, str) and statement.startswith("BEGIN"):
            return
        self.counter.statements += 1


STACK = SAOrmSqliteTx
