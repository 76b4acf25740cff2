"""Per-model plans: the repository's short paths for primary-key reads and inserts.

The ORM's general machinery is built for every case; a repository call is usually the simplest
one. A :class:`ModelPlan` is computed once per model and lets the repository skip work the ORM
would redo on every call, without changing what the caller gets:

- **get by primary key**: the identity map first (as ``Session.get`` does), then ONE cached,
  parameterized ``SELECT`` instead of ``Session.get`` building and annotating a new statement per
  call. The row is loaded by the ORM as usual (identity map, autoflush, loader options of the
  mapper).
- **insert**: ONE cached Core ``INSERT ... RETURNING`` (the primary key and every column the
  database or a column default fills in), then the object is registered with the session exactly
  as a flush registers a new object: persistent, in the identity map, and back to transient if
  the transaction rolls back. Taken only when a flush would do nothing more: the object is new,
  the session has no other pending change, the mapper is a single table without inheritance or a
  version counter, no relationship attribute is set, no value is a SQL expression, and no
  ``before_insert``/``after_insert``/``before_flush``/``after_flush`` listener exists. Otherwise
  the repository adds the object and flushes, as before.

Relies on two long-standing private parts of SQLAlchemy's ``Session`` (``_is_clean`` and
``_register_persistent``, what ``flush`` itself calls); ``tests/core/test_plans.py`` pins their
behaviour, and SQLAlchemy is pinned to the 2.1 series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Insert, Table, and_, bindparam, insert, inspect
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql.elements import ClauseElement
from sqlmodel import select
from sqlmodel.sql.expression import SelectOfScalar

__all__ = ["ModelPlan", "model_plan"]

#: Bound-parameter names of the cached primary-key SELECT (``pk_0``, ``pk_1``, ... would collide
#: with nothing a caller can add: the statement is never combined with other criteria).
_PK_PARAM = "mosaic_pk_{}"


@dataclass(slots=True)
class _Attr:
    key: str  # attribute key on the object
    column_key: str  # key of the table column (the INSERT parameter name)
    omit_none: bool  # None means "let the database / the column default fill it in"
    always_omit: bool  # computed column: never sent


@dataclass(slots=True)
class ModelPlan:
    """What a repository needs to know about one model, computed once (see module docs)."""

    model: type[Any]
    mapper: Mapper[Any]
    table: Table
    pk_columns: tuple[Column[Any], ...]
    pk_keys: tuple[str, ...]
    pk_params: tuple[str, ...]
    get_statement: SelectOfScalar[Any]
    attrs: tuple[_Attr, ...]
    relationship_keys: frozenset[str]
    #: the mapper allows the direct INSERT at all (the per-call checks come on top)
    direct_insert: bool
    _inserts: dict[tuple[str, ...], tuple[Insert, tuple[str, ...]]] = field(default_factory=dict)

    # ------------------------------------------------------------------ get

    def identity_key(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        return self.mapper.identity_key_from_primary_key(values)

    def get_params(self, values: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(self.pk_params, values, strict=True))

    # ------------------------------------------------------------------ insert

    def can_insert_directly(self, session: Session, objs: Sequence[Any]) -> bool:
        """True when a flush of ``objs`` would be exactly one INSERT each and nothing else."""
        if not self.direct_insert or not session._is_clean():
            return False
        dispatch = session.dispatch
        if dispatch.before_flush or dispatch.after_flush or dispatch.after_flush_postexec:
            return False
        mapper_dispatch = self.mapper.dispatch
        if mapper_dispatch.before_insert or mapper_dispatch.after_insert:
            return False
        relationship_keys = self.relationship_keys
        for obj in objs:
            state = instance_state(obj)
            if state.key is not None or state.session_id is not None:
                return False  # not new: persistent, detached, or pending in some session
            values = state.dict
            if relationship_keys and not relationship_keys.isdisjoint(values):
                return False
            for value in values.values():
                if isinstance(value, ClauseElement):
                    return False
        return True

    def insert_row(self, obj: Any) -> dict[str, Any]:
        """The INSERT parameters for ``obj``: omitted keys are filled by the database/defaults."""
        values = obj.__dict__
        row: dict[str, Any] = {}
        for attr in self.attrs:
            if attr.always_omit:
                continue
            key = attr.key
            value = values[key] if key in values else getattr(obj, key)
            if value is None and attr.omit_none:
                continue
            row[attr.column_key] = value
        return row

    def insert_statement(self, row_keys: tuple[str, ...]) -> tuple[Insert, tuple[str, ...]]:
        """``INSERT ... RETURNING`` for rows with ``row_keys`` set (cached), and the attribute
        keys of the returned columns: the primary key, then every column not sent."""
        found = self._inserts.get(row_keys)
        if found is None:
            sent = set(row_keys)
            pk = {c.key for c in self.pk_columns}
            returned = [a for a in self.attrs if a.column_key in pk]
            returned += [a for a in self.attrs if a.column_key not in sent | pk]
            columns = [self.table.c[a.column_key] for a in returned]
            stmt = insert(self.table).returning(*columns, sort_by_parameter_order=True)
            found = self._inserts[row_keys] = (stmt, tuple(a.key for a in returned))
        return found

    @staticmethod
    def register(session: Session, objs: Sequence[Any], keys: Sequence[str], rows: Any) -> None:
        """Set the returned values on ``objs`` and make them persistent, as a flush does."""
        states = set()
        for obj, row in zip(objs, rows, strict=True):
            values = obj.__dict__
            for key, value in zip(keys, row, strict=True):
                values[key] = value
            session.add(obj)
            states.add(instance_state(obj))
        session._register_persistent(states)


def model_plan(model: type[Any]) -> ModelPlan:
    """Build the plan of ``model`` (a mapped table class); callers cache it."""
    mapper: Mapper[Any] = inspect(model)
    table = mapper.local_table
    assert isinstance(table, Table)
    pk_columns = tuple(c for c in mapper.primary_key if isinstance(c, Column))
    pk_keys = tuple(mapper.get_property_by_column(c).key for c in pk_columns)
    pk_params = tuple(_PK_PARAM.format(i) for i in range(len(pk_columns)))
    condition = and_(
        *(col == bindparam(name) for col, name in zip(pk_columns, pk_params, strict=True))
    )
    get_statement: SelectOfScalar[Any] = select(model).where(condition)
    attrs = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if not isinstance(column, Column) or column.table is not table:
            continue  # a column_property over an expression or another table
        attrs.append(
            _Attr(
                key=prop.key,
                column_key=column.key,
                omit_none=bool(
                    column.primary_key
                    or column.default is not None
                    or column.server_default is not None
                    or column.identity is not None
                ),
                always_omit=column.computed is not None,
            )
        )
    direct_insert = (
        mapper.inherits is None
        and mapper.polymorphic_on is None
        and mapper.version_id_col is None
        and len(mapper.tables) == 1
    )
    return ModelPlan(
        model=model,
        mapper=mapper,
        table=table,
        pk_columns=pk_columns,
        pk_keys=pk_keys,
        pk_params=pk_params,
        get_statement=get_statement,
        attrs=tuple(attrs),
        relationship_keys=frozenset(r.key for r in mapper.relationships),
        direct_insert=direct_insert,
    )
