"""Bulk loading for :class:`~sqlmosaic.Repository`: ``add_many`` and ``copy_many``.

Kept apart from the repository's per-row reads and writes: these build many objects or records
in one go and hand them to the database in as few statements as the backend allows. The
repository's public methods call in here; nothing here is public.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import insert as sa_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from ._binds import note_write
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


async def copy_many(session: AsyncSession, plan: ModelPlan, rows: Sequence[Any]) -> int:
    """``Repository.copy_many``: the rows ``add_many`` would insert, loaded with ``COPY`` on
    PostgreSQL + asyncpg (else one executemany ``INSERT``), nothing returned or registered.

    Each row's parameters are what ``add_many``'s INSERT would send for it: a mapping becomes
    what ``Model(**mapping)`` holds (field defaults and factories, the model's own
    ``__init__``), keys are attribute names (a renamed column is loaded into its own name), and
    a ``None`` the database or a column default fills in is left out, so server defaults
    apply. Values go through each column type's bind processing, as in any statement.
    Consecutive rows that send the same columns go in one ``COPY``/executemany (usually all).
    """
    if not rows:
        return 0
    model = plan.model
    construct = plan.construct if plan.can_construct() else None
    relationships = plan.relationship_keys
    runs: list[tuple[tuple[str, ...], list[dict[str, Any]]]] = []
    last: tuple[str, ...] | None = None
    with paused_collector():
        for entry in rows:
            if isinstance(entry, model):
                row = plan.insert_row(entry)
            elif isinstance(entry, Mapping):
                plan.check_fields(entry)
                if not relationships.isdisjoint(entry):
                    name = next(k for k in entry if k in relationships)
                    raise InvalidQueryError(
                        f"copy_many loads {model.__name__}'s own columns, not the relationship "
                        f"{name!r}: use add_many",
                        field=name,
                    )
                built = construct(entry) if construct is not None else None
                row = plan.insert_row(built if built is not None else model(**entry))
            else:
                raise InvalidQueryError(
                    f"copy_many takes {model.__name__} objects or mappings, "
                    f"got {type(entry).__name__}",
                    field="rows",
                )
            keys = tuple(row)
            if keys != last:
                runs.append((keys, []))
                last = keys
            runs[-1][1].append(row)
    # the model's own database (MOSAIC_BINDS), and the binds check learns of the write
    connection = await session.connection(bind_arguments={"mapper": plan.mapper})
    note_write(session.sync_session, connection.sync_connection)
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "asyncpg":
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        if connection.in_transaction() and not driver.is_in_transaction():
            # SQLAlchemy's asyncpg adapter sends BEGIN with the transaction's first statement;
            # COPY goes to the driver directly, so without this it would run (and commit) on
            # its own, outside the unit of work. Any statement through SQLAlchemy begins it.
            await connection.exec_driver_sql("SELECT 1")
        dialect = connection.dialect
        table = plan.table
        for keys, run in runs:
            columns = [table.c[key] for key in keys]
            processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
            if any(processors):
                records = [
                    tuple(
                        value if fn is None or value is None else fn(value)
                        for fn, value in zip(processors, row.values(), strict=True)
                    )
                    for row in run
                ]
            else:
                records = [tuple(row.values()) for row in run]
            try:
                await driver.copy_records_to_table(
                    table.name,
                    records=records,
                    columns=[c.name for c in columns],
                    schema_name=table.schema,
                )
            except Exception as exc:
                # asyncpg's own error, not SQLAlchemy's: wrap it so that the boundary
                # translates it like any other (ConflictError naming the constraint, no values).
                state = getattr(exc, "sqlstate", None)
                if not isinstance(state, str):
                    raise
                wrapper = sa_exc.IntegrityError if state.startswith("23") else sa_exc.DBAPIError
                raise wrapper("COPY", None, exc, hide_parameters=True) from exc
    else:
        for _keys, run in runs:
            await session.exec(sa_insert(plan.table), params=run)
    return len(rows)
