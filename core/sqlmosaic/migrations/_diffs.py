"""Readable differences between the database and the models, and orphan tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Column, Constraint, ForeignKeyConstraint, Index, MetaData, Table, inspect
from sqlalchemy.engine import Connection

from ._setup import VERSION_TABLE

__all__ = ["describe_diffs", "orphan_tables"]


def describe_diffs(diffs: Iterable[Any]) -> list[str]:
    """One line per difference from ``alembic.autogenerate.compare_metadata``."""
    lines: list[str] = []
    for diff in diffs:
        if isinstance(diff, list):  # modify_* entries come grouped per column
            lines.extend(_describe_one(tuple(item)) for item in diff)
        else:
            lines.append(_describe_one(tuple(diff)))
    return lines


def _describe_one(diff: tuple[Any, ...]) -> str:
    kind = diff[0]
    if kind in {"add_table", "remove_table"}:
        table: Table = diff[1]
        where = "in the models, missing from the database"
        if kind == "remove_table":
            where = "in the database, not in the models"
        return f"{kind}: table {table.name!r} ({where})"
    if kind in {"add_column", "remove_column"}:
        _schema, tname, column = diff[1], diff[2], diff[3]
        assert isinstance(column, Column)
        where = "in the models only" if kind == "add_column" else "in the database only"
        return f"{kind}: column {tname}.{column.name} {column.type} ({where})"
    if kind in {"add_index", "remove_index"}:
        index: Index = diff[1]
        cols = ", ".join(str(getattr(c, "name", c)) for c in index.expressions)
        table_name = index.table.name if index.table is not None else "?"
        unique = "unique " if index.unique else ""
        return f"{kind}: {unique}index {index.name!r} on {table_name}({cols})"
    if kind in {"add_constraint", "remove_constraint", "add_fk", "remove_fk"}:
        constraint: Constraint = diff[1]
        return f"{kind}: {_constraint(constraint)}"
    if kind.startswith("modify_"):
        _schema, tname, cname = diff[1], diff[2], diff[3]
        old, new = diff[-2], diff[-1]
        what = kind.removeprefix("modify_")
        change = f"{_show(old)} (database) -> {_show(new)} (models)"
        return f"{kind}: column {tname}.{cname} {what} {change}"
    return f"{kind}: " + ", ".join(_show(part) for part in diff[1:])


def _constraint(constraint: Constraint) -> str:
    table = getattr(constraint, "table", None)
    table_name = table.name if table is not None else "?"
    cols = ", ".join(c.name for c in getattr(constraint, "columns", ()))
    kind = type(constraint).__name__
    text = f"{kind} {constraint.name!r} on {table_name}({cols})"
    if isinstance(constraint, ForeignKeyConstraint):
        text += f" -> {constraint.referred_table.name}"
    return text


def _show(value: Any) -> str:
    if value is None:
        return "None"
    arg = getattr(value, "arg", None)  # server defaults
    if arg is not None:
        return repr(str(getattr(arg, "text", arg)))
    return str(value)


def orphan_tables(connection: Connection, metadata: MetaData) -> list[str]:
    """Database tables that no enabled plugin owns (never compared, never dropped)."""
    names: Sequence[str] = inspect(connection).get_table_names()
    return sorted(n for n in names if n not in metadata.tables and n != VERSION_TABLE)
