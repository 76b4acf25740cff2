"""Bulk loading for :class:`~sqlmosaic.Repository`: ``add_many`` and ``copy_many``.

Kept apart from the repository's per-row reads and writes: these build many objects or records
in one go and hand them to the database in as few statements as the backend allows. The
repository's public methods call in here; nothing here is public.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert as sa_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from ._exceptions import InvalidQueryError
from ._gc import paused_collector
from ._plans import ModelPlan

__all__ = ["add_many", "copy_many"]


async def add_many(session: AsyncSession, plan: ModelPlan, objs: Sequence[Any]) -> list[Any]:
    """``Repository.add_many``: build the objects, then one direct INSERT run or a flush."""
    items: list[Any] = []
    model = plan.model
    construct = plan.construct if plan.can_construct() else None
    with paused_collector():  # a burst of objects that all live on (see _gc)
        for entry in objs:
            if isinstance(entry, model):
                items.append(entry)
            elif isinstance(entry, Mapping):
                plan.check_fields(entry)
                built = construct(entry) if construct is not None else None
                items.append(built if built is not None else model(**entry))
            else:
                raise InvalidQueryError(
                    f"add_many takes {model.__name__} objects or mappings, "
                    f"got {type(entry).__name__}",
                    field="objs",
                )
    if not items:
        return items
    if not plan.can_insert_directly(session.sync_session, items):
        session.add_all(items)
        await session.flush()
        return items
    await session.run_sync(plan.insert_now, items)
    return items


async def copy_many(
    session: AsyncSession,
    table: Table,
    columns: Mapping[str, Column[Any]],
    pk_names: set[str],
    check_values: Callable[[Mapping[str, Any]], None],
    rows: Sequence[Any],
) -> int:
    """``Repository.copy_many``: COPY on PostgreSQL + asyncpg, else one executemany INSERT."""
    if not rows:
        return 0
    # Rows with the same keys (usually all of them) share one name check and one list of
    # defaults to fill in: shape -> (keys + filled keys, defaults). Per row, only a tuple
    # of its values is built (rows are the bulk of the work here: keep the loop lean).
    shapes: dict[tuple[str, ...], tuple[tuple[str, ...], _Fill]] = {}
    holds_pk: dict[tuple[str, ...], bool] = {}
    records: list[tuple[Any, ...]] = []
    fulls: list[tuple[str, ...]] = []  # each record's keys (incl. filled ones)
    last_keys: tuple[str, ...] | None = None
    plan: tuple[tuple[str, ...], _Fill] = ((), [])
    for row in rows:
        values: Mapping[str, Any] = (
            row if type(row) is dict or isinstance(row, Mapping) else _row_values(row, columns)
        )
        keys = tuple(values)
        if keys != last_keys:  # not the same keys as the previous row: look the shape up
            last_keys = keys
            pk_here = holds_pk.get(keys)
            if pk_here is None:
                pk_here = holds_pk[keys] = not pk_names.isdisjoint(keys)
            if pk_here:  # a primary key left as None is filled by the database: drop it
                values = {k: v for k, v in values.items() if v is not None or k not in pk_names}
                keys = tuple(values)
                last_keys = None  # the next row may leave out other keys
            found = shapes.get(keys)
            if found is None:
                check_values(values)
                fill = _defaults_to_fill(values, columns, pk_names)
                found = shapes[keys] = ((*keys, *(f[0] for f in fill)), fill)
            plan = found
        record = tuple(values.values())
        if plan[1]:
            # COPY bypasses SQLAlchemy, and a multi-row executemany sends NULL for a key
            # another row set: apply the model's Python-side column defaults here.
            record += tuple(arg if is_scalar else arg(None) for _, is_scalar, arg in plan[1])
        records.append(record)
        fulls.append(plan[0])
    names = list(dict.fromkeys(k for full, _ in shapes.values() for k in full))
    if len(shapes) > 1:  # align every record on ``names`` (one shape: already aligned)
        position = {name: i for i, name in enumerate(names)}
        for n, (full, record) in enumerate(zip(fulls, records, strict=True)):
            aligned: list[Any] = [None] * len(names)
            for key, value in zip(full, record, strict=True):
                aligned[position[key]] = value
            records[n] = tuple(aligned)
    connection = await session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "asyncpg":
        raw = await connection.get_raw_connection()
        try:
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                table.name,
                records=records,
                columns=[columns[n].name for n in names],
                schema_name=table.schema,
            )
        except Exception as exc:
            # asyncpg's own error, not SQLAlchemy's: wrap it so that the boundary translates
            # it like any other (ConflictError naming the constraint, no bound values).
            state = getattr(exc, "sqlstate", None)
            if not isinstance(state, str):
                raise
            wrapper = sa_exc.IntegrityError if state.startswith("23") else sa_exc.DBAPIError
            raise wrapper("COPY", None, exc, hide_parameters=True) from exc
    else:
        params = [dict(zip(names, record, strict=True)) for record in records]
        await session.exec(sa_insert(table), params=params)
    return len(records)


_Fill = list[tuple[str, bool, Any]]


def _defaults_to_fill(
    values: Mapping[str, Any], columns: Mapping[str, Column[Any]], pk_names: set[str]
) -> _Fill:
    """Absent columns with a Python-side scalar or callable default: ``(key, is_scalar, arg)``;
    a callable ``arg`` is called with ``None`` for each row."""
    fill: _Fill = []
    for key, column in columns.items():
        default = column.default
        if key in values or key in pk_names or default is None:
            continue
        if default.is_scalar or default.is_callable:
            fill.append((key, bool(default.is_scalar), default.arg))  # type: ignore[attr-defined]
    return fill


def _row_values(row: Any, columns: Mapping[str, Column[Any]]) -> dict[str, Any]:
    if isinstance(row, Mapping):
        return dict(row)
    return {key: getattr(row, key) for key in columns}
