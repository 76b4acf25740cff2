"""The generic async repository.

``Repository[ModelT]`` wraps one SQLModel table class. It is built with a session, awaits the
database in every method, flushes (so errors surface here, translated) but never commits: the
unit of work does. Filter and sort names are allow-listed per repository.

    class StockItemRepository(Repository[StockItem]):
        model = StockItem            # optional: the type parameter alone is enough
        hidden_fields = frozenset({"cost_price"})
"""

from __future__ import annotations

import builtins
import inspect as pyinspect
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, ParamSpec, TypeVar

from sqlalchemy import Column, ColumnElement, Integer, Table, and_, bindparam, func, inspect
from sqlalchemy import delete as sa_delete
from sqlalchemy import exc as sa_exc
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Result
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.sql.base import Executable
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from . import _bulk, _reads, _upsert
from ._boundary import _TRANSLATED, _translated
from ._exceptions import ConfigurationError, InvalidQueryError, NotFoundError
from ._loading import install_fast_new_instance
from ._plans import ModelPlan, model_plan
from ._query import (
    Filter,
    Page,
    SortKey,
    build_filters,
    decode_cursor,
    keyset_condition,
    parse_filters,
    parse_sort,
)
from ._values import check_page, check_value

__all__ = ["ModelT", "Repository"]

ModelT = TypeVar("ModelT", bound=SQLModel)
P = ParamSpec("P")
R = TypeVar("R")


class _Sorted(typing.NamedTuple):
    keys: tuple[SortKey, ...]
    statement: SelectOfScalar[Any]
    specs: tuple[str, ...]


#: At most this many entries in a repository class's cache (sorts are cached per spelling).
_SORT_CACHE_SIZE = 256


class Repository(Generic[ModelT]):
    """Async data access for one table. Never commits; see :func:`sqlmosaic.transaction`.

    Class attributes a subclass may set:

    - ``model``: the SQLModel table class (inferred from ``Repository[Model]`` when omitted);
    - ``hidden_fields``: columns that can never be filtered or sorted by (also any column whose
      ``info`` has ``hidden=True``);
    - ``filter_fields`` / ``sort_fields``: explicit allow-lists (default: all public columns);
    - ``max_limit`` / ``default_limit``: the page size cap and default.
    """

    model: ClassVar[type[Any]]
    _mosaic_cache: ClassVar[dict[Any, Any]]
    name: ClassVar[str | None] = None
    hidden_fields: ClassVar[frozenset[str]] = frozenset()
    filter_fields: ClassVar[frozenset[str] | None] = None
    sort_fields: ClassVar[frozenset[str] | None] = None
    load_fields: ClassVar[frozenset[str] | None] = None
    max_limit: ClassVar[int] = 1000
    default_limit: ClassVar[int] = 50

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass's own public coroutine methods (custom queries such as
        # ``UserRepository.get_by_email``) get the same error translation as the generic ones.
        for attr, value in builtins.list(cls.__dict__.items()):
            if (
                not attr.startswith("_")
                and pyinspect.iscoroutinefunction(value)
                and not getattr(value, _TRANSLATED, False)
            ):
                setattr(cls, attr, _translated(value))
        if "model" not in cls.__dict__:
            for base in getattr(cls, "__orig_bases__", ()):
                if typing.get_origin(base) is not None and issubclass(
                    typing.get_origin(base), Repository
                ):
                    (arg,) = typing.get_args(base)
                    if isinstance(arg, type):
                        cls.model = arg
                        break
        model = cls.__dict__.get("model") or getattr(cls, "model", None)
        if model is not None and not isinstance(getattr(model, "__table__", None), Table):
            raise ConfigurationError(
                f"{cls.__qualname__}.model must be a SQLModel table class (table=True), "
                f"got {model!r}",
                setting="model",
            )
        if model is not None:
            # loaded rows built without SQLModel's per-row Python (a model assigned later gets
            # it with the repository's plan)
            install_fast_new_instance(model)

    def __init__(self, session: AsyncSession) -> None:
        if not hasattr(type(self), "model"):
            raise ConfigurationError(
                f"{type(self).__qualname__} has no model: subclass Repository[Model] or set model",
                setting="model",
            )
        self.session = session

    # ----------------------------------------------------------------- introspection

    @classmethod
    def table(cls) -> Table:
        """The model's table."""
        table = cls.model.__table__
        assert isinstance(table, Table)
        return table

    @classmethod
    def _introspection_cache(cls) -> dict[Any, Any]:
        """Per-class cache of what the model's table says (columns, public names, primary key);
        keyed by the model (and ``hidden_fields``), so reassigning either recomputes."""
        cache: dict[Any, Any] | None = cls.__dict__.get("_mosaic_cache")
        if cache is None:
            cache = {}
            cls._mosaic_cache = cache
        return cache

    @classmethod
    def columns(cls) -> dict[str, Column[Any]]:
        """The model's columns by attribute name (a new dict each call): the public names of
        filters, sorts, values and cursors, also for a renamed column
        (``sa_column=Column("note_db")`` on the field ``note`` is ``"note"``)."""
        cache = cls._introspection_cache()
        key = ("columns", cls.model)
        columns = cache.get(key)
        if columns is None:
            table = cls.table()
            columns = cache[key] = {
                prop.key: prop.columns[0]
                for prop in inspect(cls.model).column_attrs
                if isinstance(prop.columns[0], Column) and prop.columns[0].table is table
            }
        return dict(columns)

    @classmethod
    def public_fields(cls) -> frozenset[str]:
        """Columns that are not hidden (by ``hidden_fields`` or ``Column.info['hidden']``)."""
        cache = cls._introspection_cache()
        key = ("public", cls.model, cls.hidden_fields)
        public: frozenset[str] | None = cache.get(key)
        if public is None:
            public = cache[key] = frozenset(
                name
                for name, col in cls.columns().items()
                if name not in cls.hidden_fields
                and not col.info.get("hidden")
                and not name.startswith("_")
            )
        return public

    @classmethod
    def allowed_filters(cls) -> frozenset[str]:
        """``filter_fields`` (default: every public column), never a hidden column."""
        public = cls.public_fields()
        return public if cls.filter_fields is None else cls.filter_fields & public

    @classmethod
    def allowed_sorts(cls) -> frozenset[str]:
        """``sort_fields`` (default: every public column), never a hidden column."""
        public = cls.public_fields()
        return public if cls.sort_fields is None else cls.sort_fields & public

    @classmethod
    def primary_key(cls) -> tuple[Column[Any], ...]:
        cache = cls._introspection_cache()
        key = ("primary_key", cls.model)
        pk: tuple[Column[Any], ...] | None = cache.get(key)
        if pk is None:
            pk = cache[key] = tuple(inspect(cls.model).primary_key)
        return pk

    @classmethod
    def _plan(cls) -> ModelPlan:
        cache = cls._introspection_cache()
        key = ("plan", cls.model)
        plan: ModelPlan | None = cache.get(key)
        if plan is None:
            plan = cache[key] = model_plan(cls.model)
        return plan

    @classmethod
    def _sorted_select(cls, order_by: Sequence[str] | str | None) -> _Sorted:
        """The resolved sort keys, ``SELECT model ORDER BY ... LIMIT :l OFFSET :o`` and the
        sort's spelling (``("-created_at", "id")``).

        Cached per sort (up to ``_SORT_CACHE_SIZE`` sorts per repository class): a page is then
        the cached statement plus its filters, with limit and offset as bound parameters.
        """
        spec = (order_by,) if isinstance(order_by, str) else tuple(order_by or ())
        cache = cls._introspection_cache()
        key: tuple[Any, ...] | None = (
            "sorted",
            cls.model,
            cls.hidden_fields,
            cls.sort_fields,
            spec,
        )
        try:
            found: _Sorted | None = cache.get(key)
        except TypeError:  # a plain set as sort_fields/hidden_fields: not cached
            key = found = None
        if found is None:
            keys = tuple(
                parse_sort(
                    spec, cls.columns(), cls.allowed_sorts(), cls.model.__name__, cls.primary_key()
                )
            )
            stmt: SelectOfScalar[Any] = (
                select(cls.model)
                .order_by(*(k.order() for k in keys))
                .limit(bindparam("mosaic_limit", type_=Integer))
                .offset(bindparam("mosaic_offset", type_=Integer))
            )
            found = _Sorted(keys, stmt, tuple(k.spec for k in keys))
            if key is not None and len(cache) < _SORT_CACHE_SIZE:
                cache[key] = found
        return found

    def _pk_clause(self, pk: Any) -> ColumnElement[bool]:
        values = self._pk_values(pk)
        return and_(*(col == v for col, v in zip(self.primary_key(), values, strict=True)))

    def _pk_values(self, pk: Any) -> tuple[Any, ...]:
        values = pk if isinstance(pk, tuple) else (pk,)
        if len(values) != len(self.primary_key()):
            raise InvalidQueryError(
                f"{self.model.__name__} has a primary key of {len(self.primary_key())} column(s)",
                field="pk",
            )
        return self._check_key(self._plan().coerce_pk(values))

    def _where(
        self, where: Mapping[str, Any] | None, filters: Sequence[Filter]
    ) -> list[ColumnElement[bool]]:
        if not where and not filters:
            return []
        return build_filters(
            parse_filters(where, filters),
            self.columns(),
            self.allowed_filters(),
            self.model.__name__,
        )

    async def _exec(self, statement: Executable) -> Result[Any]:
        """Execute a Core/ORM statement that SQLModel's ``exec`` overloads do not type."""
        return typing.cast(Result[Any], await self.session.exec(typing.cast(Any, statement)))

    def _by_column(self, values: Mapping[str, Any]) -> dict[Column[Any], Any]:
        """``values`` by attribute name -> by column (checked names only)."""
        columns = self.columns()
        return {columns[name]: value for name, value in values.items()}

    def _check_values(self, values: Mapping[str, Any]) -> None:
        columns = self.columns()
        for name, value in values.items():
            if name not in columns:
                raise InvalidQueryError(f"{self.model.__name__} has no field {name!r}", field=name)
            check_value(columns[name].type, value, name)  # range, NUL, ... before SQL

    def _check_key(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """Key values the key columns can hold (an integer key out of its range: no SELECT)."""
        return _reads.check_key(self._plan(), values)

    # ----------------------------------------------------------------- reads

    @classmethod
    def allowed_loads(cls) -> frozenset[str]:
        """Relationships ``load=`` may name: ``load_fields`` (default: every relationship),
        never one in ``hidden_fields``."""
        names = frozenset(r.key for r in inspect(cls.model).relationships) - cls.hidden_fields
        return names if cls.load_fields is None else cls.load_fields & names

    @_translated
    async def get(
        self,
        pk: Any,
        *,
        load: Sequence[str] = (),
        options: Sequence[Any] = (),
        for_update: bool = False,
    ) -> ModelT:
        """The row with primary key ``pk``; :class:`NotFoundError` when there is none.

        ``load=["items"]`` loads allow-listed relationships with ``selectinload`` (a lazy load
        in async code raises ``MissingGreenlet``); ``options=`` takes raw SQLAlchemy loader
        options; ``for_update=True`` locks the row until the unit of work ends (PostgreSQL
        ``SELECT ... FOR UPDATE``; SQLite has no row locks: its units of work take the write
        lock at ``BEGIN IMMEDIATE``). Any of these always reads the row (one SELECT).
        """
        # _reads' functions return Any: no ``typing.cast`` call on the hot path
        obj: ModelT | None
        if load or options or for_update:
            obj = await _reads.get_with(self, pk, load, options, for_update)
        else:
            obj = await _reads.lookup(self, pk)
        if obj is None:
            raise NotFoundError(self.model, pk)
        return obj

    @_translated
    async def get_or_none(
        self,
        pk: Any,
        *,
        load: Sequence[str] = (),
        options: Sequence[Any] = (),
        for_update: bool = False,
    ) -> ModelT | None:
        """The row with primary key ``pk``, or ``None`` (options as for :meth:`get`)."""
        obj: ModelT | None
        if load or options or for_update:
            obj = await _reads.get_with(self, pk, load, options, for_update)
        else:
            obj = await _reads.lookup(self, pk)
        return obj

    @_translated
    async def refresh(self, obj: ModelT) -> ModelT:
        """Read ``obj``'s row again (one SELECT). After a failed unit of work every object of
        the session is expired; this is how to use one again. :class:`NotFoundError` if the
        row is gone."""
        try:
            await self.session.refresh(obj)
        except sa_exc.InvalidRequestError as exc:
            key = instance_state(obj).identity
            raise NotFoundError(
                f"{self.model.__name__} {key!r} is gone", model=self.model.__name__, key=key
            ) from exc
        return obj

    @_translated
    async def list(
        self,
        *filters: Filter,
        where: Mapping[str, Any] | None = None,
        order_by: Sequence[str] | str | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: str | None = None,
        with_total: bool = False,
        load: Sequence[str] = (),
        options: Sequence[Any] = (),
        for_update: bool = False,
    ) -> Page[ModelT]:
        """A page of rows: filters, allow-listed sort, limit/offset or keyset (``after=``).

        One SELECT (it fetches ``limit + 1`` rows to know whether a next page exists), plus one
        COUNT when ``with_total`` is true.
        """
        limit = self.default_limit if limit is None else limit
        check_page(limit, offset, self.max_limit)
        if after is not None and offset:
            raise InvalidQueryError("use either offset or after, not both", field="after")
        conditions = self._where(where, filters)
        keys, stmt, sort = self._sorted_select(order_by)
        page_conditions = list(conditions)
        if after is not None:
            page_conditions.append(keyset_condition(keys, decode_cursor(after, keys)))
        if page_conditions:
            stmt = stmt.where(*page_conditions)
        if load or options:
            stmt = stmt.options(*_reads.load_options(self, load, options))
        if for_update:  # rows locked until the unit of work ends (a no-op on SQLite)
            stmt = stmt.with_for_update()
        params = {"mosaic_limit": limit + 1, "mosaic_offset": offset}
        # ScalarResult.all() is a list (typed Sequence); no ``typing.cast`` call per page
        rows: builtins.list[ModelT] = (await self.session.exec(stmt, params=params)).all()  # type: ignore[assignment]
        total = await self._count(conditions) if with_total else None
        if len(rows) > limit:  # a next page exists: the extra row only tells that
            items = rows[:limit]
            last = items[-1]
            return Page._with_cursor_values(
                items,
                [getattr(last, k.name) for k in keys],
                limit=limit,
                offset=offset,
                total=total,
                sort=sort,
            )
        return Page(rows, limit, offset, total, None, sort)

    async def _count(self, conditions: Sequence[ColumnElement[bool]]) -> int:
        stmt = select(func.count()).select_from(self.table()).where(*conditions)
        return int((await self.session.exec(stmt)).one())

    @_translated
    async def count(self, *filters: Filter, where: Mapping[str, Any] | None = None) -> int:
        """How many rows match."""
        return await self._count(self._where(where, filters))

    @_translated
    async def exists(self, *filters: Filter, where: Mapping[str, Any] | None = None) -> bool:
        """Whether any row matches (one ``SELECT EXISTS``)."""
        inner = sa_select(self.table()).where(*self._where(where, filters))
        return bool((await self._exec(sa_select(inner.exists()))).scalar())

    # ----------------------------------------------------------------- writes

    @_translated
    async def add(self, obj: ModelT) -> ModelT:
        """Insert ``obj`` now (one ``INSERT ... RETURNING``); constraint errors raise here.

        ``obj`` comes back persistent, with its primary key and every database- or
        default-filled column set. A plain new row takes one cached Core INSERT; anything a
        flush would do more (related objects, other pending changes, flush listeners) takes
        the session's flush (see ``_plans``).
        """
        session = self.session.sync_session
        plan = self._plan()
        if not isinstance(obj, self.model) or not plan.can_insert_directly(session, (obj,)):
            self.session.add(obj)
            await self.session.flush()
            return obj
        await self.session.run_sync(plan.insert_now, (obj,))
        return obj

    @_translated
    async def add_many(self, objs: Sequence[ModelT | Mapping[str, Any]]) -> builtins.list[ModelT]:
        """Insert ``objs`` (model objects, or mappings of field values) in batched multi-row
        ``INSERT ... RETURNING`` statements; returns the objects, persistent, keys set.

        The rows go through one Core executemany ("insertmanyvalues": about 1,000 rows per
        statement on PostgreSQL and SQLite alike), the generated keys and defaults come back in
        parameter order, and the objects are registered with the session as a flush would
        (persistent; transient again if the transaction rolls back). The ORM's own path sends
        one INSERT per row on SQLite; it is taken only when a flush would do more than insert
        these rows (see :meth:`add`). A mapping becomes the object ``Model(**mapping)`` would
        be, built without per-attribute ``__setattr__`` calls (an unknown key raises
        :class:`InvalidQueryError` naming it).
        """
        return await _bulk.add_many(self.session, self._plan(), objs)

    @_translated
    async def update(self, target: ModelT | Any, values: Mapping[str, Any] | None = None) -> ModelT:
        """Update an instance (after applying ``values``), or the row with primary key ``target``.

        By primary key it is one ``UPDATE ... RETURNING``; :class:`NotFoundError` when no row.
        A model with ``before_update``/``after_update`` listeners, a version counter or
        ``onupdate`` columns is loaded, changed and flushed instead (as with the ORM: listeners
        run, and an update that changes nothing writes nothing).
        """
        values = dict(values or {})
        self._check_values(values)
        if isinstance(target, self.model):
            for name, value in values.items():
                setattr(target, name, value)
            self.session.add(target)
            await self.session.flush()
            return typing.cast("ModelT", target)
        if not values:
            raise InvalidQueryError("update by primary key needs values", field="values")
        if not self._plan().direct_update:
            # a flush runs listeners, bumps a version, and sets onupdate columns only when a
            # value really changed: load, set, flush as the ORM would
            found: ModelT | None = await _reads.lookup(self, target)
            if found is None:
                raise NotFoundError(self.model, target)
            for name, value in values.items():
                setattr(found, name, value)
            await self.session.flush()
            return found
        plan, names = self._plan(), tuple(sorted(values))
        stmt = plan.update_statement(names, self.columns())
        params = plan.update_params(names, values, self._pk_values(target))
        obj = (await self.session.exec(stmt, params=params)).scalars().one_or_none()
        if obj is None:
            raise NotFoundError(self.model, target)
        return typing.cast("ModelT", obj)

    @_translated
    async def update_where(
        self,
        values: Mapping[str, Any],
        *filters: Filter,
        where: Mapping[str, Any] | None = None,
        allow_all: bool = False,
    ) -> int:
        """Set ``values`` on every matching row; returns the row count. One UPDATE."""
        self._check_values(values)
        conditions = self._where(where, filters)
        if not conditions and not allow_all:
            raise InvalidQueryError(
                "update_where without filters needs allow_all=True", field="where"
            )
        stmt = (
            sa_update(self.model)
            .where(*conditions)
            .values(self._by_column(values))
            .execution_options(synchronize_session="fetch")
        )
        result = await self.session.exec(stmt)
        return int(result.rowcount)

    @_translated
    async def upsert(
        self,
        values: ModelT | Mapping[str, Any],
        *,
        conflict: Sequence[str] | None = None,
        update: Sequence[str] | None = None,
    ) -> ModelT:
        """Insert, or update on conflict (``ON CONFLICT ... DO UPDATE``, PostgreSQL and SQLite).

        ``conflict`` names the unique columns (default: the primary key); ``update`` the columns
        to overwrite (default: every given column outside ``conflict``). One statement.
        Returns the row as stored, loaded into the session (persistent); as with
        ``Session.merge``, an instance passed in is not attached itself: use the returned one.
        """
        return typing.cast(
            "ModelT", await _upsert.upsert(self, values, conflict=conflict, update=update)
        )

    @_translated
    async def delete(self, target: ModelT | Any) -> None:
        """Delete an instance, or the row with primary key ``target`` (NotFoundError if none)."""
        if isinstance(target, self.model):
            await self.session.delete(target)
            await self.session.flush()
            return
        stmt = sa_delete(self.model).where(self._pk_clause(target))
        result = await self.session.exec(stmt)
        if result.rowcount == 0:
            raise NotFoundError(self.model, target)

    @_translated
    async def delete_where(
        self, *filters: Filter, where: Mapping[str, Any] | None = None, allow_all: bool = False
    ) -> int:
        """Delete every matching row; returns the row count. One DELETE."""
        conditions = self._where(where, filters)
        if not conditions and not allow_all:
            raise InvalidQueryError(
                "delete_where without filters needs allow_all=True", field="where"
            )
        stmt = (
            sa_delete(self.model).where(*conditions).execution_options(synchronize_session="fetch")
        )
        result = await self.session.exec(stmt)
        return int(result.rowcount)

    @_translated
    async def copy_many(self, rows: Sequence[ModelT | Mapping[str, Any]]) -> int:
        """Bulk-load ``rows`` as fast as the backend allows; returns the number of rows.

        Inserts exactly the rows :meth:`add_many` would (a mapping is what ``Model(**mapping)``
        holds; keys are attribute names; a ``None`` the database fills in is left out, so server
        defaults apply). PostgreSQL + asyncpg: binary ``COPY`` on the unit of work's own
        connection, inside its transaction (BEGIN is sent first), so it commits or rolls back
        with it. Elsewhere: one executemany ``INSERT``. Unlike :meth:`add_many`, nothing is
        returned or attached to the session (no primary keys come back).
        """
        return await _bulk.copy_many(self.session, self._plan(), rows)
