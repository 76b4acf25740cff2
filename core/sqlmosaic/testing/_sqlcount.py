"""Count the SQL statements an engine sends (``mosaic_sql_counter``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["SQLCounter", "SQLCounterFactory", "is_transaction_control"]

# Statements that only exist because of transactions (the test's savepoints, SQLite's explicit
# BEGIN, a read-only unit's PRAGMA): the same code sends a different number of them per backend.
_CONTROL = re.compile(
    r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|END)\b|^\s*PRAGMA\s+query_only\b",
    re.IGNORECASE,
)


def is_transaction_control(statement: str) -> bool:
    """Whether ``statement`` is BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE (or SQLite's query_only)."""
    return _CONTROL.match(statement) is not None


@dataclass
class SQLCounter:
    """What one ``with mosaic_sql_counter() as sql:`` block saw.

    ``count``/``statements``: the statements sent to the database, one per cursor execution,
    transaction control excluded (BEGIN, SAVEPOINT, RELEASE, ROLLBACK TO ...: they depend on
    the backend and on the test's isolation, not on the code under test).
    ``all_statements``: everything, transaction control included.
    """

    all_statements: list[str] = field(default_factory=list)

    @property
    def statements(self) -> list[str]:
        return [s for s in self.all_statements if not is_transaction_control(s)]

    @property
    def count(self) -> int:
        return len(self.statements)

    def __repr__(self) -> str:
        shown = "\n".join(f"  {s.strip()}" for s in self.statements)
        return f"<SQLCounter count={self.count}{':' if shown else ''}\n{shown}>"


class SQLCounterFactory:
    """``mosaic_sql_counter``: ``with mosaic_sql_counter() as sql: ...; assert sql.count == 1``.

    Listens to ``before_cursor_execute`` on the engine's sync engine (``mosaic_engine`` unless
    another is passed) for the duration of the block only.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @contextmanager
    def __call__(self, engine: AsyncEngine | None = None) -> Iterator[SQLCounter]:
        from sqlalchemy import event

        target = (engine or self.engine).sync_engine
        counter = SQLCounter()

        def record(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
        ) -> None:
            counter.all_statements.append(statement)

        event.listen(target, "before_cursor_execute", record)
        try:
            yield counter
        finally:
            event.remove(target, "before_cursor_execute", record)
