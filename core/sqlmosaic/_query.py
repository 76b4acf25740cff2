"""Filter, sort and keyset-cursor building for repositories.

Names are checked against a per-repository allow-list and operators against a fixed set BEFORE
any SQL is built; every value is bound. Cursors are opaque (URL-safe base64 JSON) and checked
against the sort they were made for.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import enum
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, ColumnElement, and_, false, literal, or_

from ._exceptions import InvalidQueryError
from ._values import MAX_IN_VALUES, check_value

__all__ = ["OPERATORS", "Filter", "Page", "SortKey", "build_filters", "parse_sort"]

T = TypeVar("T")

_Op = Callable[[Any, Any], ColumnElement[bool]]


def _in(col: Any, value: Any) -> ColumnElement[bool]:
    return col.in_(_as_list(value))  # type: ignore[no-any-return]


def _not_in(col: Any, value: Any) -> ColumnElement[bool]:
    return col.not_in(_as_list(value))  # type: ignore[no-any-return]


def _is_null(col: Any, value: Any) -> ColumnElement[bool]:
    if not isinstance(value, bool):
        raise InvalidQueryError("is_null takes true or false", field=getattr(col, "key", None))
    return col.is_(None) if value else col.is_not(None)  # type: ignore[no-any-return]


def _like(col: Any, value: Any) -> ColumnElement[bool]:
    return col.contains(_as_str(value), autoescape=True)  # type: ignore[no-any-return]


def _ilike(col: Any, value: Any) -> ColumnElement[bool]:
    return col.icontains(_as_str(value), autoescape=True)  # type: ignore[no-any-return]


#: The fixed operator set. ``like``/``ilike`` match a literal substring: ``%`` and ``_`` in the
#: value are escaped, so user input can never become a pattern.
OPERATORS: Mapping[str, _Op] = {
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: c != v,
    "lt": lambda c, v: c < v,
    "le": lambda c, v: c <= v,
    "gt": lambda c, v: c > v,
    "ge": lambda c, v: c >= v,
    "in": _in,
    "not_in": _not_in,
    "like": _like,
    "ilike": _ilike,
    "is_null": _is_null,
}


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidQueryError("in / not_in take a list of values")
    return list(value)


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidQueryError("like / ilike take a string")
    return value


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition: ``field`` ``op`` ``value`` (``op`` from :data:`OPERATORS`)."""

    field: str
    op: str = "eq"
    value: Any = None


@dataclass(frozen=True, slots=True)
class SortKey:
    """A resolved sort key."""

    name: str
    column: Column[Any]
    descending: bool = False

    @property
    def spec(self) -> str:
        return f"-{self.name}" if self.descending else self.name

    @property
    def nullable(self) -> bool:
        return bool(self.column.nullable) and not self.column.primary_key

    def order(self) -> ColumnElement[Any]:
        """The ORDER BY term; NULLs sort after every value on every backend."""
        column = self.column
        if not self.nullable:
            return column.desc() if self.descending else column.asc()
        return column.desc().nulls_first() if self.descending else column.asc().nulls_last()


class Page(Generic[T]):
    """A page of results.

    ``total`` is set when asked for (one extra COUNT statement). ``next_cursor`` is set when more
    rows follow; pass it back as ``after=`` to get the next page (keyset pagination). The cursor
    string is encoded on first access (a page read by offset never pays for it).
    """

    __slots__ = ("_cursor", "_cursor_payload", "items", "limit", "offset", "sort", "total")

    def __init__(
        self,
        items: list[T],
        limit: int,
        offset: int = 0,
        total: int | None = None,
        next_cursor: str | None = None,
        sort: tuple[str, ...] = (),
    ) -> None:
        self.items = items
        self.limit = limit
        self.offset = offset
        self.total = total
        self.sort = sort
        self._cursor = next_cursor
        self._cursor_payload: dict[str, Any] | None = None

    @classmethod
    def _with_cursor_values(
        cls,
        items: list[T],
        values: Sequence[Any],
        *,
        limit: int,
        offset: int,
        total: int | None,
        sort: tuple[str, ...],
    ) -> Page[T]:
        """A page whose ``next_cursor`` is made from ``values`` (of the ``sort`` keys) when
        first read; the values are checked now, so an unsupported type fails at the repository."""
        page = cls(items, limit, offset, total, None, sort)
        page._cursor_payload = _cursor_payload(sort, values)
        return page

    @property
    def next_cursor(self) -> str | None:
        if self._cursor is None and self._cursor_payload is not None:
            self._cursor = _dump_cursor(self._cursor_payload)
            self._cursor_payload = None
        return self._cursor

    def __len__(self) -> int:
        return len(self.items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Page):
            return NotImplemented
        return (
            self.items == other.items
            and self.limit == other.limit
            and self.offset == other.offset
            and self.total == other.total
            and self.next_cursor == other.next_cursor
            and self.sort == other.sort
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return (
            f"Page(items={self.items!r}, limit={self.limit!r}, offset={self.offset!r}, "
            f"total={self.total!r}, next_cursor={self.next_cursor!r}, sort={self.sort!r})"
        )


def parse_filters(where: Mapping[str, Any] | None, filters: Sequence[Filter] = ()) -> list[Filter]:
    """Turn ``{"name__ilike": "x", "id": 3}`` plus explicit filters into :class:`Filter` objects."""
    result = list(filters)
    for key, value in (where or {}).items():
        name, sep, op = key.partition("__")
        result.append(Filter(name, op if sep else "eq", value))
    return result


def build_filters(
    conditions: Sequence[Filter],
    columns: Mapping[str, Column[Any]],
    allowed: frozenset[str],
    model: str,
) -> list[ColumnElement[bool]]:
    """Check names and operators, then build bound SQL conditions."""
    clauses: list[ColumnElement[bool]] = []
    for cond in conditions:
        column = _allowed_column(cond.field, columns, allowed, model, "filter")
        operator = OPERATORS.get(cond.op)
        if operator is None:
            raise InvalidQueryError(
                f"unknown operator {cond.op!r} for field {cond.field!r} of {model}; "
                f"use one of: {', '.join(OPERATORS)}",
                field=cond.field,
            )
        try:
            value = _checked(column, cond.op, cond.value, cond.field)
            clauses.append(operator(column, value))
        except InvalidQueryError as exc:
            message = str(exc)
            if not message.startswith(f"{cond.field}: "):
                message = f"{cond.field}: {message}"
            raise InvalidQueryError(message, field=cond.field) from None
    return clauses


def _checked(column: Column[Any], op: str, value: Any, field: str) -> Any:
    """``value`` checked against ``column``'s type before any SQL (see ``_values``)."""
    if op in {"in", "not_in"}:
        values = _as_list(value)
        if len(values) > MAX_IN_VALUES:
            raise InvalidQueryError(f"at most {MAX_IN_VALUES} values", field=field)
        return [check_value(column.type, v, field) for v in values]
    if op in {"like", "ilike"}:
        return check_value(column.type, _as_str(value), field) if value is not None else value
    if op == "is_null":
        return value
    value = check_value(column.type, value, field)
    # ``column < True`` is refused by SQLAlchemy (True/False/None only take = and !=): bind it
    return literal(value, column.type) if isinstance(value, bool) else value


def _allowed_column(
    name: str, columns: Mapping[str, Column[Any]], allowed: frozenset[str], model: str, what: str
) -> Column[Any]:
    if name not in allowed or name not in columns:
        raise InvalidQueryError(
            f"cannot {what} {model} by {name!r}; allowed: {', '.join(sorted(allowed)) or 'none'}",
            field=name,
        )
    return columns[name]


def parse_sort(
    order_by: Sequence[str] | str | None,
    columns: Mapping[str, Column[Any]],
    allowed: frozenset[str],
    model: str,
    primary_key: Sequence[Column[Any]],
) -> list[SortKey]:
    """Resolve ``["-created_at", "name"]``; the primary key is appended as a tie-breaker."""
    specs = [order_by] if isinstance(order_by, str) else list(order_by or ())
    keys: list[SortKey] = []
    for raw in specs:
        if not isinstance(raw, str):
            raise InvalidQueryError(
                f"sort keys are field names, got a {type(raw).__name__}", field="order_by"
            )
        spec = raw.strip()
        descending = spec.startswith("-")
        name = spec.lstrip("+-")
        column = _allowed_column(name, columns, allowed, model, "sort")
        if any(k.name == name for k in keys):
            raise InvalidQueryError(f"{name!r} appears twice in the sort of {model}", field=name)
        keys.append(SortKey(name, column, descending))
    for pk in primary_key:
        if not any(k.column is pk for k in keys):
            # its attribute name (the column key differs for a renamed column)
            name = next((n for n, c in columns.items() if c is pk), pk.key)
            keys.append(SortKey(name, pk, False))
    return keys


# --------------------------------------------------------------------------- keyset cursors


def _encode_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):  # by name: what SQLAlchemy's Enum stores and accepts
        return {"enum": value.name}
    if isinstance(value, dt.datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"dec": str(value)}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise InvalidQueryError(f"cannot paginate by a value of type {type(value).__name__}")


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        decoders: dict[str, Callable[[str], Any]] = {
            "dt": dt.datetime.fromisoformat,
            "d": dt.date.fromisoformat,
            "dec": decimal.Decimal,
            "uuid": uuid.UUID,
            "enum": str,
        }
        if tag in decoders and isinstance(text, str):
            return decoders[tag](text)
        raise ValueError("unknown cursor value")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError("unknown cursor value")


def _cursor_payload(specs: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    return {"s": list(specs), "v": [_encode_value(v) for v in values]}


def _dump_cursor(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode_cursor(keys: Sequence[SortKey], values: Sequence[Any]) -> str:
    return _dump_cursor(_cursor_payload([k.spec for k in keys], values))


#: Longest cursor accepted (a cursor holds one value per sort key; long text keys included).
MAX_CURSOR_LENGTH = 16384


def decode_cursor(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    """The sort-key values in ``cursor``, each checked against its column (a value the column
    cannot hold, or ``None`` for a NOT NULL key, is an invalid cursor, decided before SQL)."""
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidQueryError("invalid pagination cursor", field="after")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
        specs, values = payload["s"], payload["v"]
        decoded = [_decode_value(v) for v in values]
    except (
        binascii.Error,
        ValueError,
        KeyError,
        TypeError,
        UnicodeDecodeError,
        RecursionError,  # deeply nested JSON
        ArithmeticError,  # decimal.InvalidOperation and friends
    ):
        raise InvalidQueryError("invalid pagination cursor", field="after") from None
    if specs != [k.spec for k in keys] or len(decoded) != len(keys):
        raise InvalidQueryError(
            "the cursor was made for another sort order; start again without 'after'",
            field="after",
        )
    checked: list[Any] = []
    for key, value in zip(keys, decoded, strict=True):
        if value is None and not key.column.nullable:
            raise InvalidQueryError("invalid pagination cursor", field="after")
        try:
            value = check_value(key.column.type, value, "after")
        except InvalidQueryError:
            raise InvalidQueryError("invalid pagination cursor", field="after") from None
        # ``column > True`` is refused by SQLAlchemy (True/False only take = and !=): bind it
        checked.append(literal(value, key.column.type) if isinstance(value, bool) else value)
    return checked


def keyset_condition(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys`` (expanded row comparison).

    A nullable key sorts NULL after every value (ascending ``NULLS LAST``, descending
    ``NULLS FIRST``: PostgreSQL's default, and what :meth:`SortKey.order` asks SQLite for), so a
    cursor value of ``None`` is compared with ``IS NULL`` / ``IS NOT NULL``, never ``= NULL``.
    """
    branches: list[ColumnElement[bool]] = []
    for i, key in enumerate(keys):
        step = _after(key, values[i])
        if step is not None:
            equal = [_same(keys[j].column, values[j]) for j in range(i)]
            branches.append(and_(*equal, step))
    return or_(*branches) if branches else false()


def _same(column: Column[Any], value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _after(key: SortKey, value: Any) -> ColumnElement[bool] | None:
    """Rows after ``value`` in ``key`` alone (``None``: no row sorts after it)."""
    column = key.column
    if value is None:  # NULL is the largest value: only non-NULLs come after it, descending
        return column.is_not(None) if key.descending else None
    step: ColumnElement[bool] = column < value if key.descending else column > value
    return or_(step, column.is_(None)) if key.nullable and not key.descending else step
