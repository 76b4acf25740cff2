"""Translate SQLAlchemy and driver exceptions into sqlmosaic errors at the repository boundary.

Messages are built from structured fields (SQLSTATE, constraint, table, column) and never from
the driver's text where that text can carry bound values
(PostgreSQL's ``DETAIL: Key (email)=(...)``).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from sqlalchemy import exc as sa_exc

from ._exceptions import (
    ConflictError,
    DatabaseUnavailableError,
    InvalidQueryError,
    MosaicError,
    PgBouncerSettingError,
    RepositoryError,
)

__all__ = [
    "RETRYABLE_SQLSTATES",
    "describe",
    "is_refused",
    "is_retryable",
    "sqlstate_of",
    "translate_error",
]

#: serialization_failure and deadlock_detected: the whole transaction may simply be run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

_PG_KINDS = {
    "23505": "unique",
    "23503": "foreign_key",
    "23502": "not_null",
    "23514": "check",
    "23P01": "exclusion",
}
#: invalid_sql_statement_name ("prepared statement ... does not exist") and
#: duplicate_prepared_statement: a statement cache behind PgBouncer's transaction pooling.
_PREPARED_STATEMENT_SQLSTATES = frozenset({"26000", "42P05"})
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P")  # connection exceptions, admin shutdown
#: invalid authorization (28000 role may not log in, 28P01 wrong password) and a database that
#: does not exist (3D000): the host's configuration, not the request; 503 like a down server.
_REFUSED_SQLSTATE_PREFIXES = ("28", "3D000")
#: SQLSTATE class 22, data exception: a value the column / type cannot take (out of range, NUL
#: in text, bad datetime): the caller's input, HTTP 400.
_DATA_EXCEPTION = "22"
_SQLITE_INTEGRITY = re.compile(
    r"^(?P<kind>UNIQUE|FOREIGN KEY|NOT NULL|CHECK) constraint failed(?::\s*(?P<what>.*))?$"
)
#: SQLite primary result codes meaning "cannot use the database now": busy/locked past the busy
#: timeout (still retryable, see :func:`is_retryable`), cannot open, I/O error.
_SQLITE_UNAVAILABLE = {
    5: "SQLITE_BUSY",
    6: "SQLITE_LOCKED",
    10: "SQLITE_IOERR",
    14: "SQLITE_CANTOPEN",
}
_SQLITE_KINDS = {
    "UNIQUE": "unique",
    "FOREIGN KEY": "foreign_key",
    "NOT NULL": "not_null",
    "CHECK": "check",
}


def _driver_error(exc: BaseException) -> BaseException | None:
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else None


def sqlstate_of(exc: BaseException) -> str | None:
    """The SQLSTATE of a DBAPI error (asyncpg and psycopg), or ``None``."""
    orig = _driver_error(exc) or exc
    for candidate in (orig, orig.__cause__):
        if candidate is None:
            continue
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_refused(exc: BaseException) -> bool:
    """The server answered and refused the connection (bad credentials, no such database): a
    configuration problem that waiting does not fix, unlike an unreachable server."""
    state = sqlstate_of(exc)
    return state is not None and state.startswith(_REFUSED_SQLSTATE_PREFIXES)


def _sqlite_code(exc: BaseException) -> int | None:
    orig = _driver_error(exc) or exc
    for candidate in (orig, orig.__cause__):
        code = getattr(candidate, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code
    return None


def is_retryable(exc: BaseException) -> bool:
    """True for serialization failures and deadlocks (and SQLite's busy/locked errors)."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if sqlstate_of(exc) in RETRYABLE_SQLSTATES:
        return True
    code = _sqlite_code(exc)
    return code is not None and (code & 0xFF) in {5, 6}


def _pg_details(exc: BaseException) -> tuple[str | None, str | None, str | None]:
    orig = _driver_error(exc)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        if candidate is None:
            continue
        diag = getattr(candidate, "diag", None)  # psycopg
        if diag is not None:
            return diag.constraint_name, diag.table_name, diag.column_name
        if hasattr(candidate, "constraint_name"):  # asyncpg
            return (
                getattr(candidate, "constraint_name", None),
                getattr(candidate, "table_name", None),
                getattr(candidate, "column_name", None),
            )
    return None, None, None


def _integrity_error(exc: sa_exc.DBAPIError) -> ConflictError:
    state = sqlstate_of(exc)
    if state is not None:
        kind = _PG_KINDS.get(state, "integrity")
        pg_constraint, pg_table, column = _pg_details(exc)
        subject = (
            pg_constraint
            or (f"{pg_table}.{column}" if pg_table and column else pg_table)
            or "unknown"
        )
        return ConflictError(
            f"{kind.replace('_', ' ')} constraint {subject!r} violated",
            kind=kind,
            constraint=pg_constraint,
            table=pg_table,
            columns=[column] if column else [],
        )
    text = str(_driver_error(exc) or exc).strip()
    match = _SQLITE_INTEGRITY.match(text)
    if match is None:
        return ConflictError("integrity constraint violated", kind="integrity")
    kind = _SQLITE_KINDS[match.group("kind")]
    what = (match.group("what") or "").strip()
    table: str | None = None
    columns: list[str] = []
    constraint: str | None = None
    if kind in {"unique", "not_null"} and what:
        pairs = [part.strip().rsplit(".", 1) for part in what.split(",")]
        table = pairs[0][0] if len(pairs[0]) == 2 else None
        columns = [pair[-1] for pair in pairs]
    elif kind == "check" and what:
        constraint = what
    sqlite_subject = constraint or (f"{table}({', '.join(columns)})" if table else None)
    label = kind.replace("_", " ")
    return ConflictError(
        f"{label} constraint {sqlite_subject!r} violated"
        if sqlite_subject
        else f"{label} constraint violated",
        kind=kind,
        constraint=constraint,
        table=table,
        columns=columns,
    )


_SQLITE_NO_TABLE = re.compile(r"^no such table: (?:\w+\.)?(?P<name>\w+)$")
_PG_NO_TABLE = re.compile(r'relation "(?P<name>[^"]+)" does not exist')


def _missing_table(exc: sa_exc.DBAPIError, state: str | None) -> str | None:
    """The table named by an undefined-table error (schema not migrated), else ``None``."""
    text = str(_driver_error(exc) or "").strip()
    if state == "42P01":
        match = _PG_NO_TABLE.search(text)
        return match.group("name") if match else "?"
    match = _SQLITE_NO_TABLE.match(text) if state is None else None
    return match.group("name") if match else None


def translate_error(exc: BaseException) -> MosaicError | None:
    """Return the sqlmosaic error for ``exc``, or ``None`` when it is not a database error."""
    if isinstance(exc, MosaicError):
        return exc
    if isinstance(exc, sa_exc.TimeoutError):
        return DatabaseUnavailableError("timed out waiting for a pooled connection")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return DatabaseUnavailableError("the database did not answer in time")
    if isinstance(exc, sa_exc.IntegrityError):
        return _integrity_error(exc)
    if isinstance(exc, sa_exc.DBAPIError):
        state = sqlstate_of(exc)
        if state is not None and state.startswith(_REFUSED_SQLSTATE_PREFIXES):
            return DatabaseUnavailableError(
                f"the database refused the connection (SQLSTATE {state}: check the credentials "
                "and the database name in DATABASE_URL)"
            )
        if (state is not None and state.startswith(_DATA_EXCEPTION)) or _client_data_error(exc):
            return InvalidQueryError(
                "a value does not fit its column"
                + (f" (SQLSTATE {state})" if state else f" ({_driver_name(exc)})"),
                field="values",
            )
        if exc.connection_invalidated or (
            state is not None and state.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)
        ):
            return DatabaseUnavailableError(
                f"lost the database connection ({type(_driver_error(exc) or exc).__name__})"
            )
        if state is None and isinstance(exc, sa_exc.OperationalError):
            code = _sqlite_code(exc)
            if code is None or (code & 0xFF) in _SQLITE_UNAVAILABLE:
                name = _SQLITE_UNAVAILABLE.get(code & 0xFF, "") if code is not None else ""
                return DatabaseUnavailableError(
                    f"database unavailable ({name or type(_driver_error(exc) or exc).__name__})"
                )
        if state == "57014":  # query_canceled: statement_timeout, or a cancel request
            return DatabaseUnavailableError(
                "the database cancelled the statement (statement_timeout or a cancel request)"
            )
        if state in _PREPARED_STATEMENT_SQLSTATES:
            return PgBouncerSettingError(
                f"a prepared statement is missing on the server connection (SQLSTATE {state}): "
                "the database URL reaches PgBouncer in transaction pooling mode; set "
                "MOSAIC_PGBOUNCER=1 (no statement cache, a unique name per statement)"
            )
        missing = _missing_table(exc, state)
        if missing is not None:
            return RepositoryError(
                f"table {missing!r} does not exist: apply the migrations ('mosaic db upgrade')"
            )
        name = type(_driver_error(exc) or exc).__name__
        sqlite_code = _sqlite_code(exc)
        where = (
            f" (SQLSTATE {state})"
            if state
            else f" (SQLite error {sqlite_code})"
            if sqlite_code is not None
            else ""
        )
        return RepositoryError(f"database error {name}{where}")
    if isinstance(exc, ConnectionError | OSError) and not isinstance(exc, FileNotFoundError):
        return DatabaseUnavailableError(f"cannot reach the database ({type(exc).__name__})")
    return None


def _driver_name(exc: BaseException) -> str:
    orig = _driver_error(exc) or exc
    cause = orig.__cause__
    return type(cause if cause is not None else orig).__name__


def _client_data_error(exc: BaseException) -> bool:
    """A value the driver itself refused to send: asyncpg's client-side ``DataError`` ("invalid
    input for query argument $1", a ``ValueError``), sqlite3's "Error binding parameter"."""
    orig = _driver_error(exc)
    if orig is None:
        return False
    for candidate in (orig, orig.__cause__):
        if isinstance(candidate, ValueError) and not isinstance(candidate, UnicodeError):
            return True
    return isinstance(exc, sa_exc.InterfaceError | sa_exc.ProgrammingError) and (
        "binding parameter" in str(orig) or "type is not supported" in str(orig)
    )


def describe(exc: BaseException) -> dict[str, Any]:
    """Structured, value-free facts about a database error (for logs)."""
    return {"type": type(exc).__name__, "sqlstate": sqlstate_of(exc)}
