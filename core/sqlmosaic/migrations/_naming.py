"""Constraint and index names that do not follow the naming convention.

A database migrated by an older history (or made by ``create_all`` without the convention) has
``user_pkey`` or ``task_project_id_fkey`` (PostgreSQL's own names) or unnamed constraints
(SQLite). Alembic's comparison ignores primary-key and foreign-key names, so ``check`` would say
OK and a later ``drop_constraint("fk_task_project_id_project")`` would fail: these are reported
as differences (:func:`naming_problems`), and autogenerate writes the renames
(:mod:`._renames`, from :func:`name_fixes`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Index, MetaData, Table, UniqueConstraint, inspect
from sqlalchemy.engine import Connection

__all__ = ["NameFix", "name_fixes", "naming_problems"]


@dataclass(frozen=True)
class NameFix:
    """One constraint or index whose name in the database is not the convention's."""

    kind: str  # "constraint" or "index"
    type: str  # "primary", "foreignkey", "unique" (constraints) or "index"
    table: str
    what: str
    actual: str | None
    expected: str
    columns: tuple[str, ...] = ()
    unique: bool = False

    def line(self) -> str:
        shown = repr(str(self.actual)) if self.actual else "unnamed"
        return (
            f"rename_{self.kind}: {self.what} on {self.table} is {shown}, the naming convention "
            f"says {self.expected!r}"
        )


def naming_problems(
    connection: Connection, metadata: MetaData, owned: Collection[str]
) -> list[str]:
    """One line per constraint or index of the ``owned`` tables whose name in the database is
    not the one the models' naming convention gives."""
    return [fix.line() for fix in name_fixes(connection, metadata, owned)]


def name_fixes(connection: Connection, metadata: MetaData, owned: Collection[str]) -> list[NameFix]:
    """The misnamed constraints and indexes of the ``owned`` tables (those in the database)."""
    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    tables = [metadata.tables[key] for key in sorted(owned)]
    tables = [table for table in tables if table.name in present]
    if not tables:
        return []
    # One reflection query per kind for all the tables (PostgreSQL), not four per table:
    # 2,000 round trips at 500 tables otherwise.
    names = [table.name for table in tables]
    pks = inspector.get_multi_pk_constraint(filter_names=names)
    fks = inspector.get_multi_foreign_keys(filter_names=names)
    uniques = inspector.get_multi_unique_constraints(filter_names=names)
    indexes = inspector.get_multi_indexes(filter_names=names)
    found: list[NameFix] = []
    for table in tables:
        key = (None, table.name)
        found.extend(
            _table_fixes(
                table,
                pks.get(key, {}),
                fks.get(key, []),
                uniques.get(key, []),
                indexes.get(key, []),
            )
        )
    return found


def _table_fixes(
    table: Table,
    pk: Mapping[str, Any],
    reflected_fks: Iterable[Mapping[str, Any]],
    reflected_uniques: Iterable[Mapping[str, Any]],
    reflected_indexes: Iterable[Mapping[str, Any]],
) -> list[NameFix]:
    name = table.name
    found: list[NameFix] = []
    expected_pk = table.primary_key.name
    if pk.get("constrained_columns") and expected_pk and pk.get("name") != expected_pk:
        cols = tuple(pk["constrained_columns"])
        found.append(
            NameFix(
                "constraint",
                "primary",
                name,
                f"primary key ({', '.join(cols)})",
                pk.get("name"),
                str(expected_pk),
                cols,
            )
        )
    fks = {
        (tuple(e.parent.name for e in fk.elements), fk.elements[0].column.table.name): fk.name
        for fk in table.foreign_key_constraints
    }
    for fk in reflected_fks:
        key = (tuple(fk["constrained_columns"]), fk["referred_table"])
        expected = fks.get(key)
        if expected and fk.get("name") != expected:
            what = f"foreign key ({', '.join(key[0])}) -> {key[1]}"
            found.append(
                NameFix(
                    "constraint", "foreignkey", name, what, fk.get("name"), str(expected), key[0]
                )
            )
    uniques = _by_columns(
        (c for c in table.constraints if isinstance(c, UniqueConstraint)), lambda c: c.columns
    )
    for uq in reflected_uniques:
        cols = tuple(uq["column_names"])
        expected = uniques.get(tuple(sorted(cols)))
        if expected and uq.get("name") != expected and not _index_named(table, uq.get("name")):
            what = f"unique constraint ({', '.join(cols)})"
            found.append(
                NameFix("constraint", "unique", name, what, uq.get("name"), expected, cols, True)
            )
    indexes = _by_columns(table.indexes, lambda i: i.columns)
    for ix in reflected_indexes:
        cols = tuple(c for c in ix["column_names"] if c is not None)
        expected = indexes.get(tuple(sorted(cols)))
        if expected and ix.get("name") != expected and not _constraint_named(table, ix.get("name")):
            what = f"index ({', '.join(ix['column_names'])})"
            found.append(
                NameFix(
                    "index", "index", name, what, ix.get("name"), expected, cols, bool(ix["unique"])
                )
            )
    return found


def _by_columns(items: Iterable[Any], columns: Any) -> dict[tuple[str, ...], str]:
    return {
        tuple(sorted(c.name for c in columns(item))): str(item.name) for item in items if item.name
    }


def _index_named(table: Table, name: str | None) -> bool:
    return any(isinstance(i, Index) and i.name == name for i in table.indexes)


def _constraint_named(table: Table, name: str | None) -> bool:
    return any(c.name == name for c in table.constraints)
