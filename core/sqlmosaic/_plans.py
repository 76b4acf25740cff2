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
  ``before_insert``/``after_insert``/``refresh_flush``/``before_flush``/``after_flush``
  listener exists. Otherwise
  the repository adds the object and flushes, as before. On SQLite, a run of objects whose
  integer key SQLite assigns is matched to its rows by key order only after reading the largest
  key in the same transaction: past 2**63-1 SQLite picks keys at random, and then every row gets
  a statement of its own (never a wrong key).
- **add_many of mappings**: the objects ``Model(**mapping)`` would build, with the values put in
  place directly (as the ORM does for a loaded row) instead of one ``__setattr__`` through
  pydantic and SQLAlchemy per field; defaults and default factories applied the same way.
  Taken only for models without an ``__init__`` of their own, field aliases,
  ``model_post_init``, ``extra="allow"`` or ``init`` listeners of their own; otherwise
  ``Model(**mapping)`` builds them.

Loaded rows of a model with a repository or a plan are built without SQLModel's per-row Python
(``_loading``, where that builds the same instance).

Relies on long-standing private parts of SQLAlchemy: ``Session._is_clean``,
``Session._save_impl`` and ``Session._register_persistent`` (what ``add`` and ``flush`` call),
and the mapper's own ``init`` listener (``_event_on_init``, told apart from user listeners);
``tests/core/test_plans.py`` pins their behaviour, and SQLAlchemy is pinned to the 2.1 series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    Column,
    Connection,
    Insert,
    Table,
    Update,
    and_,
    bindparam,
    func,
    insert,
    inspect,
)
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.orm import Mapper, Session
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.mapper import _event_on_init
from sqlalchemy.orm.state import InstanceState
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util import safe_reraise
from sqlmodel import SQLModel, select
from sqlmodel.sql.expression import SelectOfScalar

from ._binds import note_write
from ._exceptions import InvalidQueryError, RepositoryError
from ._gc import paused_collector
from ._loading import install_fast_new_instance

__all__ = ["ModelPlan", "model_plan"]

#: Marks an optional field whose default must come from its FieldInfo on every call.
_CALL = object()

#: Bound-parameter names of the cached primary-key SELECT (``pk_0``, ``pk_1``, ... would collide
#: with nothing a caller can add: the statement is never combined with other criteria).
_PK_PARAM = "mosaic_pk_{}"
_SET_PARAM = "mosaic_set_{}"  # never a column's own key (SQLAlchemy reserves those in SET)
_UPDATE_CACHE_SIZE = 64  # distinct sets of updated names kept per model

_SQLMODEL_INIT = SQLModel.__init__

#: SQLite's largest rowid; once a table holds it, new rowids are picked at random.
_SQLITE_MAX_ROWID = 2**63 - 1


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
    pk_params: tuple[str, ...]
    get_statement: SelectOfScalar[Any]
    attrs: tuple[_Attr, ...]
    #: (attribute key, column key, omit when None) of every column an INSERT may send
    sendable: tuple[tuple[str, str, bool], ...]
    relationship_keys: frozenset[str]
    #: the mapper allows the direct INSERT at all (the per-call checks come on top)
    direct_insert: bool
    #: update by primary key may be one UPDATE ... RETURNING (see :meth:`direct_update`)
    has_onupdate: bool
    #: model fields (pydantic) by name; and whether :meth:`construct` may build instances
    fields: frozenset[str]
    fast_construct: bool
    #: (name, default, FieldInfo) of every optional field: default is the value itself when it
    #: is an immutable scalar, else ``_CALL`` (ask the FieldInfo: factory, copied default)
    optional_fields: tuple[tuple[str, Any, Any], ...]
    #: (Python type, pydantic adapter) of each key column; (None, None) when the type has none
    pk_types: tuple[tuple[Any, Any], ...]
    #: column key of an integer primary key that SQLite makes its rowid (None: no such key)
    rowid_key: str | None
    #: the table is ``sqlite_autoincrement``: SQLite never picks its keys at random
    sqlite_autoincrement: bool
    _inserts: dict[tuple[tuple[str, ...], bool], tuple[Insert, tuple[str, ...]]] = field(
        default_factory=dict
    )
    #: update by primary key: the statement per (sorted) set of attribute names
    _updates: dict[tuple[str, ...], Update] = field(default_factory=dict)

    # ------------------------------------------------------------------ get

    def identity_key(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        return self.mapper.identity_key_from_primary_key(values)

    def coerce_pk(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """``values`` as the key columns' Python types (``"5"`` for an integer key, a ``str``
        for a UUID key), so that every backend gets the same key; :class:`InvalidQueryError`
        when a value cannot be one. ``None`` stays ``None``."""
        if len(values) != len(self.pk_types):
            return values
        out = []
        for value, (python_type, adapter) in zip(values, self.pk_types, strict=True):
            if value is None or python_type is None or isinstance(value, python_type):
                out.append(value)
                continue
            try:
                out.append(adapter.validate_python(value))
            except ValidationError:
                raise InvalidQueryError(
                    f"{self.model.__name__}'s key must be {python_type.__name__}, "
                    f"got {type(value).__name__}",
                    field="pk",
                ) from None
        return tuple(out)

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
        if self.mapper.class_manager.dispatch.refresh_flush:
            return False  # a flush tells these listeners which columns came back
        relationship_keys = self.relationship_keys
        seen: set[int] = set()
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
            seen.add(id(obj))
        return len(seen) == len(objs)  # the same object twice: one row, as a flush makes it

    def insert_now(self, session: Session, objs: Sequence[Any]) -> None:
        """INSERT ``objs`` and register them, inside a flush-like subtransaction (synchronous:
        run it with ``AsyncSession.run_sync``).

        As in ``Session.flush``: the statements go to the transaction's connection (no ORM
        execute events, no autoflush), and on any error the subtransaction rolls back, so the
        session needs a rollback (or its SAVEPOINT is rolled back) before it goes on: a failed
        insert never half-commits. Objects go in list order, one executemany per run of
        objects that send the same columns (usually one run).
        """
        transaction = session._autobegin_t()._begin()
        try:
            connection = transaction.connection(self.mapper)
            note_write(session, connection)  # no flush events here: tell the binds check
            sqlite_rowid = connection.dialect.name == "sqlite" and self.rowid_key is not None
            for keys, members, rows in self._runs(objs):
                stmt, returned = self.insert_statement(keys)
                if sqlite_rowid and len(rows) > 1 and self.rowid_key not in keys:
                    got = self._insert_sqlite_rowids(connection, keys, rows)
                else:
                    got = list(connection.execute(stmt, rows if len(rows) > 1 else rows[0]))
                with paused_collector():  # the result is buffered: no I/O in here
                    self.register(session, members, returned, got)
            transaction.commit()
        except BaseException:
            with safe_reraise():
                transaction.rollback(_capture_exception=True)

    def _insert_sqlite_rowids(
        self, connection: Connection, keys: tuple[str, ...], rows: list[Any]
    ) -> list[Any]:
        """Insert ``rows`` whose rowid key SQLite assigns, and return the RETURNING rows in the
        order of ``rows``.

        SQLite gives each new row ``max(rowid) + 1``, so a run of rows gets consecutive keys in
        VALUES order and sorting the RETURNING rows by key restores that order (SQLite returns
        them in no set order). Once ``max(rowid)`` reaches 2**63-1 it picks keys AT RANDOM
        (sqlite.org/autoinc.html): matching by order would hand objects other rows' keys.
        So the current maximum is read first, in the same transaction (a writer that changes it
        in between makes this transaction's INSERT fail, never pass), and when the run does
        not fit below 2**63-1 every row gets a statement of its own. ``AUTOINCREMENT`` tables
        never pick at random (they fail with SQLITE_FULL), so they skip the read. The keys that
        come back are checked to be consecutive before any object gets one.
        """
        if not self.sqlite_autoincrement:
            top = connection.execute(sa_select(func.max(self.pk_columns[0]))).scalar()
            if top is not None and top > _SQLITE_MAX_ROWID - len(rows):
                one_by_one, _ = self.insert_statement(keys)
                return [connection.execute(one_by_one, row).one() for row in rows]
        unordered, _ = self.insert_statement(keys, ordered=False)
        got = sorted(connection.execute(unordered, rows).all(), key=itemgetter(0))
        if got and (len(got) != len(rows) or got[-1][0] - got[0][0] != len(rows) - 1):
            raise RepositoryError(
                f"{self.model.__name__}: SQLite returned non-consecutive keys for one INSERT; "
                "refusing to guess which row got which key (nothing was kept)"
            )
        return got

    def _runs(self, objs: Sequence[Any]) -> list[tuple[tuple[str, ...], list[Any], list[Any]]]:
        """Consecutive objects with the same INSERT columns: (columns, objects, rows)."""
        runs: list[tuple[tuple[str, ...], list[Any], list[Any]]] = []
        last: tuple[str, ...] | None = None
        insert_row = self.insert_row
        with paused_collector():
            for obj in objs:
                row = insert_row(obj)
                keys = tuple(row)
                if keys != last:
                    runs.append((keys, [], []))
                    last = keys
                runs[-1][1].append(obj)
                runs[-1][2].append(row)
        return runs

    @property
    def direct_update(self) -> bool:
        """Whether an update by primary key may be one ``UPDATE ... RETURNING``: no
        ``before_update``/``after_update`` listener, version counter or ``onupdate`` column
        (a flush sets those only when a value really changed)."""
        dispatch = self.mapper.dispatch
        return not (
            dispatch.before_update
            or dispatch.after_update
            or self.mapper.version_id_col is not None
            or self.has_onupdate
        )

    def update_statement(self, names: tuple[str, ...], columns: Mapping[str, Any]) -> Update:
        """``UPDATE ... SET <names> WHERE <key> RETURNING <model>`` with bound parameters
        (:meth:`update_params`), built once per set of ``names`` (sorted attribute names;
        ``columns`` maps them to the table's columns) as ``get_statement`` is: the statement
        and its cache key are not rebuilt per call."""
        stmt = self._updates.get(names)
        if stmt is None:
            stmt = (
                sa_update(self.model)
                .where(self.get_statement.whereclause)  # type: ignore[arg-type]
                .values({columns[n]: bindparam(_SET_PARAM.format(i)) for i, n in enumerate(names)})
                .returning(self.model)
                .execution_options(populate_existing=True, synchronize_session=False)
            )
            if len(self._updates) < _UPDATE_CACHE_SIZE:
                self._updates[names] = stmt
        return stmt

    def update_params(
        self, names: tuple[str, ...], values: Mapping[str, Any], key: tuple[Any, ...]
    ) -> dict[str, Any]:
        params = self.get_params(key)
        for i, name in enumerate(names):
            params[_SET_PARAM.format(i)] = values[name]
        return params

    def can_construct(self) -> bool:
        """Whether :meth:`construct` may build instances now: the model has no ``__init__`` of
        its own (only SQLModel's), no field aliases,
        ``model_post_init``, ``extra="allow"``, ``validate_assignment``, polymorphic identity,
        ``@validates`` methods, and no ``init`` or attribute ``set`` listener of its own (such as
        a ``Mutable`` type's): everything the constructor would run is then a no-op."""
        mapper = self.mapper
        if not self.fast_construct or not mapper.configured or mapper.validators:
            return False
        manager = mapper.class_manager
        if manager.original_init is not _SQLMODEL_INIT:
            return False  # the model's own __init__ (derived fields, checks): only it knows
        if not all(fn is _event_on_init for fn in manager.dispatch.init):
            return False
        # (relationship attributes carry backref listeners: construct() leaves those alone)
        return not any(manager[name].dispatch.set for name in self.fields if name in manager)

    def check_fields(self, values: Mapping[str, Any]) -> None:
        """Every key of ``values`` is a field or relationship of the model, else
        :class:`InvalidQueryError` naming the first that is not (``Model(**values)`` of a
        table model would drop it silently)."""
        fields = self.fields
        if fields.issuperset(values.keys()):
            return
        for name in values:
            if name not in fields and name not in self.relationship_keys:
                raise InvalidQueryError(f"{self.model.__name__} has no field {name!r}", field=name)

    def construct(self, values: Mapping[str, Any]) -> Any | None:
        """A new instance holding ``values``, as ``Model(**values)`` builds it for a table model
        (no validation; defaults and default factories for the fields not given), without
        routing every value through pydantic's and SQLAlchemy's ``__setattr__``. Only when
        :meth:`can_construct` says so.

        ``None`` when only the model's constructor can do it: a relationship among the keys.
        The keys are checked first (:meth:`check_fields`).
        """
        if not self.relationship_keys.isdisjoint(values):
            return None
        obj = self.mapper.class_manager.new_instance()
        data = obj.__dict__
        for name, default, info in self.optional_fields:
            if name not in values:
                data[name] = (
                    info.get_default(call_default_factory=True) if default is _CALL else default
                )
        data.update(values)
        # new_instance (SQLModel's __new__ or _loading's) already set the other two slots
        object.__setattr__(obj, "__pydantic_fields_set__", set(values))
        return obj

    def insert_row(self, obj: Any) -> dict[str, Any]:
        """The INSERT parameters for ``obj``: omitted keys are filled by the database/defaults."""
        values = obj.__dict__
        row: dict[str, Any] = {}
        for key, column_key, omit_none in self.sendable:
            value = values[key] if key in values else getattr(obj, key)
            if value is None and omit_none:
                continue
            row[column_key] = value
        return row

    def insert_statement(
        self, row_keys: tuple[str, ...], *, ordered: bool = True
    ) -> tuple[Insert, tuple[str, ...]]:
        """``INSERT ... RETURNING`` for rows with ``row_keys`` set (cached), and the attribute
        keys of the returned columns: the primary key, then every column not sent. ``ordered``:
        RETURNING rows in parameter order (SQLAlchemy's ``sort_by_parameter_order``)."""
        found = self._inserts.get((row_keys, ordered))
        if found is None:
            sent = set(row_keys)
            pk = {c.key for c in self.pk_columns}
            returned = [a for a in self.attrs if a.column_key in pk]
            returned += [a for a in self.attrs if a.column_key not in sent | pk]
            columns = [self.table.c[a.column_key] for a in returned]
            stmt = insert(self.table).returning(*columns, sort_by_parameter_order=ordered)
            found = self._inserts[row_keys, ordered] = (stmt, tuple(a.key for a in returned))
        return found

    @staticmethod
    def register(session: Session, objs: Sequence[Any], keys: Sequence[str], rows: Any) -> None:
        """Set the returned values on ``objs`` and make them persistent, as a flush does."""
        states: set[InstanceState[Any]] = set()
        add_state = states.add
        # Session.add without its save-update cascade walk: can_insert_directly made sure that
        # no relationship is set, so there is nothing to cascade to.
        save = session._save_impl
        for obj, row in zip(objs, rows, strict=True):
            obj.__dict__.update(zip(keys, row, strict=True))
            state = instance_state(obj)
            save(state)
            add_state(state)
        session._register_persistent(states)


def model_plan(model: type[Any]) -> ModelPlan:
    """Build the plan of ``model`` (a mapped table class); callers cache it.

    Also puts the C-level construction of loaded rows in place for ``model`` where it builds
    what SQLModel's own path builds (see ``_loading``).
    """
    mapper: Mapper[Any] = inspect(model)
    install_fast_new_instance(model)
    table = mapper.local_table
    assert isinstance(table, Table)
    pk_columns = tuple(c for c in mapper.primary_key if isinstance(c, Column))
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
                # as the ORM: None leaves the value to the database or the default, except for
                # types that store None as a value of their own (JSON 'null')
                omit_none=bool(
                    column.primary_key
                    or column.default is not None
                    or column.server_default is not None
                    or column.identity is not None
                )
                and not column.type.should_evaluate_none,
                always_omit=column.computed is not None,
            )
        )
    direct_insert = (
        mapper.inherits is None
        and mapper.polymorphic_on is None
        and mapper.version_id_col is None
        and len(mapper.tables) == 1
    )
    model_fields: dict[str, Any] = dict(getattr(model, "model_fields", {}))
    optional = []
    for name, info in model_fields.items():
        if info.is_required():
            continue
        default = info.default
        immutable = default is None or type(default) in (int, float, str, bool, bytes)
        plain = info.default_factory is None and immutable
        optional.append((name, default if plain else _CALL, info))
    config = getattr(model, "model_config", {})
    fast_construct = bool(
        model_fields
        and not any(info.alias and info.alias != name for name, info in model_fields.items())
        and config.get("extra") != "allow"
        and not config.get("validate_assignment")
        and mapper.polymorphic_on is None
        and mapper.inherits is None
        and not getattr(model, "__pydantic_post_init__", None)
        and not getattr(model, "__pydantic_root_model__", False)
        and set(model_fields) <= {a.key for a in attrs}
    )
    pk_types: list[tuple[Any, Any]] = []
    for column in pk_columns:
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            pk_types.append((None, None))
        else:
            pk_types.append((python_type, TypeAdapter(python_type)))
    rowid_key = None
    if len(pk_columns) == 1 and table.autoincrement_column is pk_columns[0]:
        rowid_key = pk_columns[0].key
    return ModelPlan(
        model=model,
        rowid_key=rowid_key,
        has_onupdate=any(
            c.onupdate is not None or c.server_onupdate is not None for c in table.columns
        ),
        pk_types=tuple(pk_types),
        sqlite_autoincrement=bool(table.dialect_options["sqlite"].get("autoincrement")),
        mapper=mapper,
        table=table,
        pk_columns=pk_columns,
        pk_params=pk_params,
        get_statement=get_statement,
        attrs=tuple(attrs),
        sendable=tuple((a.key, a.column_key, a.omit_none) for a in attrs if not a.always_omit),
        relationship_keys=frozenset(r.key for r in mapper.relationships),
        direct_insert=direct_insert,
        fields=frozenset(model_fields),
        fast_construct=fast_construct,
        optional_fields=tuple(optional),
    )
