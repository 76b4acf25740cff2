"""Value checks before any SQL: a value its column cannot take is an :class:`InvalidQueryError`
naming the field, never a driver error (HTTP 500) or a wrong answer.

The checks follow the column's declared SQLAlchemy type, the same on every backend: INTEGER is
32-bit (PostgreSQL's ``integer``; SQLite would take more, but the schema says 32), BIGINT 64,
SMALLINT 16; text never holds NUL (PostgreSQL refuses it: SQLSTATE 22021); a timestamp with a
time zone must exist in UTC (``0001-01-01T00:00:00+14:00`` does not); floats are finite. The
messages never repeat the value.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from typing import Any

from sqlalchemy import types as sa_types
from sqlalchemy.sql.elements import ClauseElement

from ._exceptions import InvalidQueryError

__all__ = ["MAX_IN_VALUES", "MAX_OFFSET", "check_page", "check_value"]

#: Largest ``offset``: the page query binds it as a 32-bit INTEGER.
MAX_OFFSET = 2**31 - 1
#: Most values an ``in`` / ``not_in`` filter takes (drivers cap bound parameters at ~32k).
MAX_IN_VALUES = 1000

_INT_RANGES: tuple[tuple[type[sa_types.TypeEngine[Any]], int], ...] = (
    (sa_types.SmallInteger, 16),
    (sa_types.BigInteger, 64),
    (sa_types.Integer, 32),
)


def _bits(type_: sa_types.TypeEngine[Any]) -> int | None:
    for cls, bits in _INT_RANGES:
        if isinstance(type_, cls):
            return bits
    return None


def _wrong(field: str, expected: str) -> InvalidQueryError:
    return InvalidQueryError(f"{field}: expected {expected}", field=field)


def check_value(type_: sa_types.TypeEngine[Any], value: Any, field: str) -> Any:
    """``value`` if a column of type ``type_`` can take it (``None`` always can), else
    :class:`InvalidQueryError` naming ``field``. A string for a UUID column becomes a UUID."""
    if value is None or isinstance(value, ClauseElement):
        return value
    while isinstance(type_, sa_types.TypeDecorator):  # SQLModel's AutoString, say: its impl
        type_ = type_.impl_instance
    try:
        python_type = type_.python_type
    except NotImplementedError:
        return value
    if python_type is bool:
        if not isinstance(value, bool):
            raise _wrong(field, "true or false")
        return value
    if python_type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(field, "an integer")
        bits = _bits(type_)
        if bits is not None and not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise InvalidQueryError(
                f"{field}: out of range (a {bits}-bit integer: "
                f"{-(2 ** (bits - 1))} to {2 ** (bits - 1) - 1})",
                field=field,
            )
        return value
    if python_type is str:
        if not isinstance(value, str):
            raise _wrong(field, "a string")
        if "\x00" in value:
            raise InvalidQueryError(f"{field}: text must not contain NUL characters", field=field)
        return value
    if python_type in (float, decimal.Decimal):
        return _number(value, field)
    if python_type is dt.datetime:
        return _datetime(value, field)
    if python_type is dt.date:
        if not isinstance(value, dt.date):
            raise _wrong(field, "a date")
        return value
    if python_type in (dt.time, dt.timedelta) and not isinstance(value, python_type):
        raise _wrong(field, f"a {python_type.__name__}")
    if python_type is uuid.UUID and not isinstance(value, uuid.UUID):
        try:
            return uuid.UUID(value) if isinstance(value, str) else _raise(_wrong(field, "a UUID"))
        except ValueError:
            raise _wrong(field, "a UUID") from None
    return value


def _raise(exc: Exception) -> Any:
    raise exc


def _number(value: Any, field: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise _wrong(field, "a number")
    try:
        finite = (
            math.isfinite(value) if not isinstance(value, int) else abs(float(value)) < math.inf
        )
    except (OverflowError, ValueError):
        finite = False
    if not finite:
        raise InvalidQueryError(f"{field}: out of range (a finite number)", field=field)
    return value


def _datetime(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise _wrong(field, "a date and time")
    if value.utcoffset() is not None:
        try:
            value.astimezone(dt.UTC)
        except OverflowError:
            raise InvalidQueryError(
                f"{field}: out of range (the time does not exist in UTC)", field=field
            ) from None
    return value


def check_page(limit: Any, offset: Any, max_limit: int) -> None:
    """``limit`` an integer in 1..``max_limit``, ``offset`` one in 0..:data:`MAX_OFFSET`."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidQueryError("limit must be an integer", field="limit")
    if not 1 <= limit <= max_limit:
        raise InvalidQueryError(f"limit must be between 1 and {max_limit}", field="limit")
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise InvalidQueryError("offset must be an integer", field="offset")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidQueryError(f"offset must be between 0 and {MAX_OFFSET}", field="offset")
