"""``mosaic db diagram``: the merged schema as a Mermaid ``erDiagram``.

Tables are grouped by owning plugin (a ``%% plugin NAME`` comment heads each group; Mermaid's
ER diagrams have no boxes), every foreign key is a relationship labelled with its column, and a
relationship between two plugins' tables says so (``accounts -> tasks``).
"""

from __future__ import annotations

from itertools import groupby

from sqlalchemy import Column, MetaData, Table, UniqueConstraint

from .._metadata import table_owner

__all__ = ["mermaid_diagram"]


def mermaid_diagram(metadata: MetaData, plugin: str | None = None) -> str:
    """The tables of ``metadata`` (of ``plugin`` only, plus the tables its foreign keys reach)
    as Mermaid source."""
    tables = list(metadata.tables.values())
    if plugin is not None:
        own = [t for t in tables if table_owner(t) == plugin]
        reached = {fk.column.table.key for t in own for fk in t.foreign_keys}
        tables = [t for t in tables if t in own or t.key in reached]
    tables.sort(key=lambda t: (table_owner(t) or "", t.name))
    lines = ["erDiagram"]
    for owner, group in groupby(tables, key=table_owner):
        lines.append(f"    %% plugin {owner or '(none)'}")
        for table in group:
            lines.append(f"    {table.name} {{")
            lines.extend(f"        {_column(table, column)}" for column in table.columns)
            lines.append("    }")
    shown = {t.key for t in tables}
    for table in tables:
        if plugin is not None and table_owner(table) != plugin:
            continue  # the tables reached are shown, their own relationships are not
        for fk in sorted(table.foreign_key_constraints, key=lambda f: str(f.name)):
            target = fk.elements[0].column.table
            if target.key not in shown:
                continue
            columns = [e.parent for e in fk.elements]
            optional = any(c.nullable for c in columns)
            label = ", ".join(c.name for c in columns)
            source, dest = table_owner(target), table_owner(table)
            if source != dest:
                label += f" ({source} -> {dest})"
            arrow = "|o--o{" if optional else "||--o{"
            lines.append(f'    {target.name} {arrow} {table.name} : "{label}"')
    return "\n".join(lines) + "\n"


def _column(table: Table, column: Column[object]) -> str:
    kind = type(column.type).__name__.lower()
    keys = []
    if column.primary_key:
        keys.append("PK")
    if column.foreign_keys:
        keys.append("FK")
    unique = any(
        isinstance(c, UniqueConstraint) and list(c.columns) == [column] for c in table.constraints
    )
    if unique or any(i.unique and list(i.columns) == [column] for i in table.indexes):
        keys.append("UK")
    return f"{kind} {column.name}{' ' + ','.join(keys) if keys else ''}"
