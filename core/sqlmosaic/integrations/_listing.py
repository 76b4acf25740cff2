"""List query parameters (``?sort=-priority&status=open&limit=20&after=CURSOR``) for any host.

Framework-free: it reads ``(name, value)`` pairs (Starlette's ``query_params.multi_items()``),
checks every name against the repository's allow-lists BEFORE anything else, converts each value
to its column's Python type and returns a :class:`ListParams` that runs ``Repository.list``.
Every problem is an :class:`~sqlmosaic.InvalidQueryError` whose ``field`` names the culprit.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column
from sqlalchemy.types import DateTime

from .._exceptions import InvalidQueryError
from .._query import OPERATORS, Page
from .._repository import ModelT, Repository

__all__ = ["RESERVED", "ListParams", "parse_list_params"]

#: Query parameter names that are not filters. To filter by a column with one of these names,
#: spell the operator out: ``limit__eq=3``.
RESERVED = frozenset({"sort", "limit", "after", "total"})

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_MAX_ECHO = 40  # characters of a rejected value echoed back in an error message


@dataclass(frozen=True, slots=True)
class ListParams:
    """Validated list parameters; :meth:`fetch` runs them through a repository."""

    where: dict[str, Any] = field(default_factory=dict)
    order_by: tuple[str, ...] = ()
    limit: int | None = None
    after: str | None = None
    with_total: bool = False

    async def fetch(self, repository: Repository[ModelT]) -> Page[ModelT]:
        """``repository.list(...)`` with these parameters (one SELECT, plus COUNT if asked)."""
        return await repository.list(
            where=self.where,
            order_by=list(self.order_by),
            limit=self.limit,
            after=self.after,
            with_total=self.with_total,
        )


def _echo(raw: str) -> str:
    return repr(raw if len(raw) <= _MAX_ECHO else raw[:_MAX_ECHO] + "...")


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidQueryError(f"{name}: expected true or false, got {_echo(raw)}", field=name)


def _parse_int(name: str, raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise InvalidQueryError(
            f"{name}: expected an integer, got {_echo(raw)}", field=name
        ) from None


def _python_type(column: Column[Any]) -> type[Any] | None:
    try:
        python_type: type[Any] = column.type.python_type
    except NotImplementedError:
        return None
    return python_type


def _scalar(name: str, column: Column[Any], raw: str) -> Any:
    """``raw`` converted to the Python type of ``column``."""
    python_type = _python_type(column)
    if python_type is None or python_type is str:
        return raw
    if python_type is bool:
        return _parse_bool(name, raw)
    if python_type is int:
        return _parse_int(name, raw)
    converters: dict[type[Any], Callable[[str], Any]] = {
        float: float,
        decimal.Decimal: decimal.Decimal,
        dt.datetime: dt.datetime.fromisoformat,
        dt.date: dt.date.fromisoformat,
        dt.time: dt.time.fromisoformat,
        uuid.UUID: uuid.UUID,
    }
    convert = converters.get(python_type)
    if convert is None and issubclass(python_type, enum.Enum):
        convert = python_type
    if convert is None:
        return raw
    try:
        value = convert(raw.strip())
    except (ValueError, ArithmeticError):
        raise InvalidQueryError(
            f"{name}: expected a {python_type.__name__} value, got {_echo(raw)}", field=name
        ) from None
    if (
        isinstance(value, dt.datetime)
        and value.tzinfo is None
        and isinstance(column.type, DateTime)
        and column.type.timezone
    ):
        value = value.replace(tzinfo=dt.UTC)
    return value


def _filter_value(name: str, op: str, column: Column[Any], raw: str) -> Any:
    if op in {"in", "not_in"}:
        return [_scalar(name, column, part) for part in raw.split(",") if part != ""]
    if op == "is_null":
        return _parse_bool(name, raw)
    if op in {"like", "ilike"}:
        return raw
    return _scalar(name, column, raw)


def _sort_specs(values: Iterable[str]) -> tuple[str, ...]:
    specs: list[str] = []
    for value in values:
        specs.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(specs)


def parse_list_params(
    items: Iterable[tuple[str, str]], repository: type[Repository[Any]]
) -> ListParams:
    """Validate query parameters against ``repository``'s allow-lists and column types.

    - ``sort``: comma-separated names, ``-`` for descending (repeatable);
    - ``limit``: page size; ``after``: the ``next_cursor`` of the previous page;
      ``total``: ``true`` to also count the matching rows;
    - anything else is a filter, ``field=value`` or ``field__op=value`` (``op`` from
      :data:`sqlmosaic.OPERATORS`; ``in`` / ``not_in`` take comma-separated values,
      ``is_null`` takes true/false).

    Unknown or hidden fields, unknown operators, bad values and repeated parameters raise
    :class:`~sqlmosaic.InvalidQueryError` naming the field. Sort names are checked by the
    repository when the list runs (same error).
    """
    model = repository.model.__name__
    columns = repository.columns()
    allowed = repository.allowed_filters()
    sorts: list[str] = []
    singles: dict[str, str] = {}
    where: dict[str, Any] = {}
    for key, raw in items:
        if key == "sort":
            sorts.append(raw)
            continue
        if key in singles or key in where:
            name = key if key in RESERVED else key.partition("__")[0]
            hint = "" if key in RESERVED else f"; use {name}__in=a,b to match several values"
            raise InvalidQueryError(
                f"query parameter {key!r} is given more than once{hint}", field=name
            )
        if key in RESERVED:
            singles[key] = raw
            continue
        name, sep, op = key.partition("__")
        op = op if sep else "eq"
        if name not in allowed or name not in columns:
            raise InvalidQueryError(
                f"cannot filter {model} by {name!r}; allowed: {', '.join(sorted(allowed))}",
                field=name,
            )
        if op not in OPERATORS:
            raise InvalidQueryError(
                f"unknown operator {op!r} for field {name!r} of {model}; "
                f"use one of: {', '.join(OPERATORS)}",
                field=name,
            )
        where[key] = _filter_value(name, op, columns[name], raw)
    limit = _parse_int("limit", singles["limit"]) if "limit" in singles else None
    after = singles.get("after") or None
    with_total = _parse_bool("total", singles["total"]) if "total" in singles else False
    return ListParams(
        where=where, order_by=_sort_specs(sorts), limit=limit, after=after, with_total=with_total
    )
