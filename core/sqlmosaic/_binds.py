"""Per-plugin binds (``MOSAIC_BINDS=plugin=url,...``): some plugins' tables in another database.

- One engine per distinct URL. A plugin bound to the primary's own URL stays on the primary.
- Sessions route by table, with SQLAlchemy's own machinery: the session factory gets
  ``binds={table: engine}`` for every table of a bound plugin (``Session.get_bind``), so plugin
  repositories do not change. A statement naming no table (``text("SELECT 1")``) goes to the
  primary.
- Loading refuses a foreign key between tables on different binds
  (:class:`CrossBindForeignKeyError`, naming both plugins and both tables): no database could
  enforce it.
- A bound plugin owns its migration branch (``mosaic_migrations``): ``mosaic db upgrade`` applies
  that branch to its bind and everything else to the primary.
- Atomicity: a unit of work may READ from several binds (each database answers from its own
  snapshot: not one snapshot across them), but a unit that WROTE to two binds is refused before
  COMMIT (:class:`CrossBindWriteError`), so neither database commits any of it. There is no
  two-phase commit. Writes are seen in process: ORM flushes, INSERT/UPDATE/DELETE statements run
  through the session, and the repositories' direct paths (``add_many``, ``copy_many``); SQL
  text and statements on ``session.connection()`` are not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import ORMExecuteState, SessionTransaction, object_mapper
from sqlalchemy.orm import Session as OrmSession
from sqlmodel.orm.session import Session

from ._engine import SQLITE_BEGIN_OPTION, set_begin_mode
from ._exceptions import (
    ConfigurationError,
    CrossBindForeignKeyError,
    CrossBindWriteError,
    RepositoryError,
)
from ._settings import MosaicSettings
from ._url import mask_url

if TYPE_CHECKING:
    from ._plugins import PluginSet

__all__ = [
    "BIND_NAMES_KEY",
    "BindPlan",
    "BindsSession",
    "begin_binds_as",
    "note_write",
    "plan_binds",
    "refuse_bind_writes",
]

#: Session ``info`` key: ``{masked URL: what it is}`` ("primary", "plugin memos"), for messages.
BIND_NAMES_KEY = "mosaic_bind_names"
#: Session ``info`` key: the binds (masked URLs) the current transaction wrote to, in order.
_WRITTEN_KEY = "mosaic_written_binds"
#: Session ``info`` keys: the unit's BEGIN options; set when the unit is read-only.
_BEGIN_KEY = "mosaic_begin_options"
_READ_ONLY_KEY = "mosaic_read_only_binds"


@dataclass(frozen=True)
class BindPlan:
    """Which database each plugin's tables live in (only plugins off the primary are listed)."""

    primary_url: str
    plugin_urls: Mapping[str, str]

    @property
    def urls(self) -> tuple[str, ...]:
        """The distinct URLs of the binds other than the primary, in settings order."""
        return tuple(dict.fromkeys(self.plugin_urls.values()))

    def url_of(self, plugin: str) -> str:
        return self.plugin_urls.get(plugin, self.primary_url)

    def plugins_on(self, url: str) -> tuple[str, ...]:
        return tuple(plugin for plugin, bound in self.plugin_urls.items() if bound == url)

    def tables_on(self, plugins: PluginSet, url: str) -> list[Table]:
        """The mapped tables (the models' own, not the merged copies) of the plugins on ``url``."""
        names = set(self.plugins_on(url))
        return [m.__table__ for info in plugins.plugins if info.name in names for m in info.models]

    def names(self) -> dict[str, str]:
        """``{masked URL: "primary" | "plugin a, b"}`` for messages."""
        named = {mask_url(self.primary_url): "primary"}
        for url in self.urls:
            named[mask_url(url)] = "plugin " + ", ".join(self.plugins_on(url))
        return named


def plan_binds(settings: MosaicSettings, plugins: PluginSet) -> BindPlan | None:
    """The bind plan for ``settings.binds`` (``None`` when every table is on the primary).

    :raises ConfigurationError: a bound plugin is not enabled, or owns no migration branch.
    :raises CrossBindForeignKeyError: a foreign key joins tables on different binds.
    """
    if not settings.binds:
        return None
    enabled = set(plugins.names)
    for plugin in settings.binds:
        if plugin not in enabled:
            raise ConfigurationError(
                f"MOSAIC_BINDS names plugin {plugin!r}, which is not enabled (enabled: "
                f"{', '.join(plugins.names) or 'none'})",
                setting="MOSAIC_BINDS",
            )
    primary = settings.database_url
    bound = {plugin: url for plugin, url in settings.binds.items() if url != primary}
    if not bound:
        return None
    plan = BindPlan(primary, bound)
    for info in plugins.plugins:
        if info.name in bound and info.migrations is None:
            raise ConfigurationError(
                f"plugin {info.name!r} is bound to {mask_url(bound[info.name])} by MOSAIC_BINDS "
                "but owns no migration branch (mosaic_migrations): its tables would have no "
                "history to create them there",
                setting="MOSAIC_BINDS",
            )
    _check_foreign_keys(plan, plugins)
    return plan


def _check_foreign_keys(plan: BindPlan, plugins: PluginSet) -> None:
    """On the models' own tables (the merged copy is built only when migrations need it)."""
    owners = plugins.owners
    for info in plugins.plugins:
        for table in (m.__table__ for m in info.models):
            for fk in sorted(table.foreign_keys, key=lambda f: f.target_fullname):
                target = fk.target_fullname.rsplit(".", 1)[0]
                other = owners.get(target)
                if other is None or plan.url_of(other) == plan.url_of(info.name):
                    continue
                raise CrossBindForeignKeyError(
                    f"plugin {info.name!r}: {table.key}.{fk.parent.name} references "
                    f"{fk.target_fullname!r} of plugin {other!r}, but MOSAIC_BINDS puts "
                    f"{info.name!r} on {mask_url(plan.url_of(info.name))} and {other!r} on "
                    f"{mask_url(plan.url_of(other))}: no database enforces a foreign key into "
                    "another database; bind both plugins to the same database, or drop the key",
                    plugins=(info.name, other),
                    tables=(table.key, target),
                )


# --------------------------------------------------------------------------- write tracking


class BindsSession(Session):
    """The sync session behind a factory with binds: refuses a commit that wrote to two binds.

    Flushed writes are noted by overriding :meth:`flush` rather than with a flush event: a
    flush listener would turn off the repositories' direct INSERT path (``_plans``), which
    tells this class itself (:func:`note_write`).
    """

    def connection(
        self,
        bind_arguments: dict[str, Any] | None = None,
        execution_options: Mapping[str, Any] | None = None,
    ) -> Connection:
        if execution_options and not self.in_transaction():
            # the unit of work's own BEGIN options (read-only, isolation, SQLite's mode): a
            # bind's connection joining later begins the same way (see ``_after_begin``)
            self.info[_BEGIN_KEY] = dict(execution_options)
        return super().connection(bind_arguments, execution_options)

    def flush(self, objects: Sequence[Any] | None = None) -> None:
        if self._is_clean():
            super().flush(objects)
            return
        binds = list(dict.fromkeys(_pending_binds(self, objects)))
        for label in binds:
            _refuse_if_read_only(self, label)
        super().flush(objects)
        for label in binds:
            self.info.setdefault(_WRITTEN_KEY, {})[label] = None


def _label(bind: Engine | Connection | Any) -> str:
    engine = bind.engine if isinstance(bind, Connection) else bind
    return mask_url(engine.url)


def note_write(session: OrmSession, bind: Engine | Connection | Any) -> None:
    """Record that ``session``'s current transaction wrote through ``bind`` (no-op for a
    session without binds). The repositories' direct INSERT paths call this."""
    if isinstance(session, BindsSession):
        label = _label(bind)
        _refuse_if_read_only(session, label)
        session.info.setdefault(_WRITTEN_KEY, {})[label] = None


def begin_binds_as(session: OrmSession, options: Mapping[str, Any]) -> None:
    """Bind connections that join ``session``'s transaction from now on begin with a unit of
    work's BEGIN ``options`` (see ``_after_begin``): for a unit opened after the transaction
    had begun. A connection already in the transaction keeps how it began. No-op for a
    session without binds, or without options.
    """
    if isinstance(session, BindsSession) and options:
        session.info[_BEGIN_KEY] = dict(options)


def refuse_bind_writes(session: OrmSession) -> None:
    """Refuse writes through every bind but the primary until the session's transaction ends.

    For a read-only unit of work opened on a session whose transaction had already begun (a
    request's dependency read first): its bind connections did not begin as the unit's would
    (``_after_begin``), so the refusal is made here, before anything is sent, as for a SQLite
    bind. No-op for a session without binds.
    """
    names: Mapping[str, str] = session.info.get(BIND_NAMES_KEY, {})
    refused = {label for label, name in names.items() if name != "primary"}
    if refused:
        session.info.setdefault(_READ_ONLY_KEY, set()).update(refused)


def _refuse_if_read_only(session: OrmSession, label: str) -> None:
    if label in session.info.get(_READ_ONLY_KEY, ()):
        raise RepositoryError(
            f"a read-only unit of work cannot write to {label}: the write was refused"
        )


def _pending_binds(session: OrmSession, only: Sequence[Any] | None = None) -> Iterable[str]:
    """The binds a flush (of ``only``, else of everything pending) would write to: one
    ``get_bind`` per mapper, not per object."""
    dirty = (obj for obj in session.dirty if session.is_modified(obj))
    mappers = {
        object_mapper(obj)
        for obj in chain(session.new, dirty, session.deleted)
        if only is None or any(obj is given for given in only)
    }
    for mapper in mappers:
        yield _label(session.get_bind(mapper=mapper))


@event.listens_for(BindsSession, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        note_write(state.session, state.session.get_bind(**state.bind_arguments))


@event.listens_for(BindsSession, "before_commit")
def _before_commit(session: Session) -> None:
    written = dict(session.info.get(_WRITTEN_KEY, {}))
    written.update(dict.fromkeys(_pending_binds(session)))  # the commit's own final flush
    if len(written) < 2:
        return
    names: Mapping[str, str] = session.info.get(BIND_NAMES_KEY, {})
    shown = [f"{label} ({names[label]})" if label in names else label for label in written]
    raise CrossBindWriteError(
        f"one unit of work wrote to {len(shown)} databases: {'; '.join(shown)}; there is no "
        "atomic commit across databases, so nothing was committed: write to each bind in a "
        "unit of work of its own",
        binds=shown,
    )


@event.listens_for(BindsSession, "after_begin")
def _after_begin(session: Session, _transaction: Any, connection: Connection) -> None:
    """A bind's connection joining a unit of work begins as the unit's own did: SQLite's
    ``BEGIN IMMEDIATE`` for a writing unit, PostgreSQL's isolation level and ``READ ONLY``;
    writes to a read-only unit's SQLite bind are refused by :func:`note_write`."""
    options = session.info.get(_BEGIN_KEY)
    primary = session.bind
    primary_engine = primary.engine if isinstance(primary, Connection) else primary
    if not options or connection.engine is primary_engine:
        return
    read_only = bool(options.get("postgresql_readonly")) or (
        options.get(SQLITE_BEGIN_OPTION) == "DEFERRED"
    )
    if connection.dialect.name == "sqlite":
        set_begin_mode(connection, "DEFERRED" if read_only else "IMMEDIATE")
        if read_only:
            session.info.setdefault(_READ_ONLY_KEY, set()).add(_label(connection))
    elif connection.dialect.name == "postgresql":
        level = options.get("isolation_level")
        if level in ("READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"):
            connection.exec_driver_sql(f"SET TRANSACTION ISOLATION LEVEL {level}")
        if read_only:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")


@event.listens_for(BindsSession, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        for key in (_WRITTEN_KEY, _BEGIN_KEY, _READ_ONLY_KEY):
            session.info.pop(key, None)
