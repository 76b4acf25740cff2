"""``Repository.upsert``: ``INSERT ... ON CONFLICT`` on PostgreSQL and SQLite.

Kept apart from the repository's other writes (size). Names are attribute names; the statement
goes to the engine the session binds the model to (``binds=`` included), as a flush picks it.
The returned object is the row as stored, loaded into the session; like ``Session.merge``, an
instance passed in is not attached itself (use the returned object).
"""

from __future__ import annotations

import builtins
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select

from ._exceptions import InvalidQueryError

if typing.TYPE_CHECKING:
    from ._repository import Repository

__all__ = ["upsert"]


async def upsert(
    repo: Repository[Any],
    values: Any,
    *,
    conflict: Sequence[str] | None,
    update: Sequence[str] | None,
) -> Any:
    """See :meth:`Repository.upsert`."""

    columns = repo.columns()
    plan = repo._plan()
    if isinstance(values, Mapping):
        repo._check_values(values)
        built = plan.construct(values) if plan.can_construct() else None
        instance = built if built is not None else repo.model(**values)
        given = set(values)
    else:
        instance = values
        given = set(values.model_fields_set)
    # The new row is what an INSERT of ``Model(**values)`` sends (field defaults included; a
    # None the database or a column default fills in is left out, as add() leaves it). On
    # conflict, only what the caller gave is overwritten: an instance's defaults (created_at,
    # a hidden password hash left at None) fill a NEW row but never clobber an existing one.
    attribute = {column.key: name for name, column in columns.items()}
    data = {attribute[k]: v for k, v in plan.insert_row(instance).items() if k in attribute}
    pk_names = {name for name, column in columns.items() if column.primary_key}
    targets = builtins.list(conflict or sorted(pk_names))
    repo._check_values(dict.fromkeys(targets))
    missing = [t for t in targets if data.get(t) is None]  # NULL never conflicts
    if missing:
        raise InvalidQueryError(f"upsert needs a value for {missing[0]!r}", field=missing[0])
    names = (
        builtins.list(update)
        if update is not None
        else [k for k in data if k in given and k not in targets and k not in pk_names]
    )
    repo._check_values(dict.fromkeys(names))
    # the engine this model's statements go to (``binds=`` included), as a flush picks it
    dialect = repo.session.sync_session.get_bind(repo.model).dialect.name
    insert: Any = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    if insert is None:
        raise InvalidQueryError(f"upsert is not supported on {dialect}", field="dialect")
    stmt = insert(repo.model).values(repo._by_column(data))
    excluded = stmt.excluded
    index = [columns[t] for t in targets]
    stmt = (
        stmt.on_conflict_do_update(
            index_elements=index,
            set_={
                **{columns[n]: excluded[columns[n].key] for n in names},
                **_onupdate_values(columns, names),
            },
        )
        if names
        else stmt.on_conflict_do_nothing(index_elements=index)
    )
    stmt = stmt.returning(repo.model).execution_options(populate_existing=True)
    obj = (await repo._exec(stmt)).scalars().one_or_none()
    if obj is None:  # DO NOTHING on conflict: read the existing row
        key = tuple(data[t] for t in targets)
        clause = [columns[t] == v for t, v in zip(targets, key, strict=True)]
        obj = (await repo.session.exec(select(repo.model).where(*clause))).one()
    return typing.cast(Any, obj)


def _onupdate_values(columns: Mapping[str, Column[Any]], names: Sequence[str]) -> dict[Any, Any]:
    """``onupdate`` of every column not set explicitly: an UPDATE statement applies them, but
    ``ON CONFLICT DO UPDATE SET`` only sets what it is given."""
    found: dict[Any, Any] = {}
    for name, column in columns.items():
        default = column.onupdate
        if name in names or default is None:
            continue
        arg = getattr(default, "arg", None)
        if default.is_callable:
            found[column] = arg(None)  # type: ignore[misc]  # SQLAlchemy's context-taking wrapper
        elif default.is_scalar or default.is_clause_element:
            found[column] = arg
    return found
