"""``run_env()``: the whole of ``alembic/env.py``.

Online, it runs on (in order of preference) a sync ``Connection`` handed in through
``config.attributes["connection"]`` (what :mod:`sqlmosaic.migrations`' async functions do, via
``AsyncConnection.run_sync``), an ``AsyncEngine``/``Engine`` handed in the same way
(pytest-alembic), or a fresh ``NullPool`` async engine built from the settings (the CLI).

PostgreSQL: the run is ONE transaction with ``SET LOCAL lock_timeout`` / ``statement_timeout``.
SQLite: with sqlmosaic's engine (explicit ``BEGIN``) DDL is transactional too, so the run is also
one transaction; foreign-key enforcement is switched off for the run (batch table rebuilds would
otherwise fire ``ON DELETE CASCADE``) and ``PRAGMA foreign_key_check`` runs before the commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo, RevisionStep
from alembic.util import CommandError
from sqlalchemy import column, table
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .._engine import SQLITE_BEGIN_OPTION
from .._exceptions import MigrationError
from .._settings import MosaicSettings
from .._url import mask_password
from ._branches import compose_script, guard_steps, revision_hook
from ._config import CONFIGURE_LOGGING_KEY, CONNECTION_KEY, ON_APPLY_KEY, PROCESS_REVISION_KEY
from ._replaced import implied_heads, settle
from ._setup import (
    VERSION_TABLE,
    comparison_options,
    connect,
    create_migration_engine,
    enabled_plugins,
    has_transactional_sqlite,
    resolve_metadata,
    resolve_plugins,
    resolve_settings,
)

__all__ = ["ADVISORY_LOCK_KEY", "APPLIED_KEY", "AppliedRevision", "run_env"]

#: ``config.attributes`` key: a list the environment appends each applied step to.
APPLIED_KEY = "mosaic_applied"

_log = logging.getLogger("sqlmosaic.migrations")
_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"


@dataclass(frozen=True)
class AppliedRevision:
    """One revision step that ran: ``revision`` is the one applied (upgrade) or undone."""

    revision: str
    down_revisions: tuple[str, ...]
    message: str
    is_upgrade: bool
    seconds: float


@dataclass
class _Tracker:
    """Records which step is running (to name it on failure) and how long each took."""

    on_apply: Callable[[AppliedRevision], None] | None = None
    current: RevisionStep | None = None
    started: float = 0.0
    applied: list[AppliedRevision] = field(default_factory=list)

    def wrap(
        self, fn: Callable[..., Iterable[RevisionStep]]
    ) -> Callable[..., Iterator[RevisionStep]]:
        def steps(*args: Any, **kwargs: Any) -> Iterator[RevisionStep]:
            for step in fn(*args, **kwargs):
                self.current = step
                self.started = time.perf_counter()
                yield step
            self.current = None

        return steps

    def done(
        self,
        ctx: MigrationContext,
        step: MigrationInfo,
        heads: Collection[Any],
        run_args: Mapping[str, Any],
    ) -> None:
        # For a revision step, up_revision_ids is the script and down_revision_ids its
        # parents, whichever the direction.
        revs = step.up_revision_ids
        script = step.revision_map.get_revision(revs[0]) if len(revs) == 1 else None
        applied = AppliedRevision(
            revision=", ".join(revs),
            down_revisions=tuple(step.down_revision_ids),
            message=str(getattr(script, "doc", "") or ""),
            is_upgrade=step.is_upgrade,
            seconds=time.perf_counter() - self.started,
        )
        self.applied.append(applied)
        self.current = None
        if self.on_apply is not None:
            self.on_apply(applied)


def run_env() -> None:
    """Run the migration environment for the current ``alembic.context`` (env.py calls this)."""
    config = context.config
    if config.attributes.get(CONFIGURE_LOGGING_KEY, True) and config.config_file_name:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    # The plain ``alembic`` command built its scripts from alembic.ini alone: add the enabled
    # plugins' own histories before the revision map is first read.
    compose_script(context.script, resolve_plugins(config))
    if context.is_offline_mode():
        _run_offline(config)
        return
    given = config.attributes.get(CONNECTION_KEY)
    if isinstance(given, Connection):
        _run_on_connection(given, config)
    elif isinstance(given, AsyncEngine):
        _run_async(config, given, dispose=False)
    elif isinstance(given, Engine):
        with given.connect() as connection:
            _run_on_connection(connection, config)
    elif isinstance(given, AsyncConnection):
        raise MigrationError(
            "config.attributes['connection'] is an AsyncConnection: hand in its sync side with "
            "'await conn.run_sync(...)', or use sqlmosaic.migrations.upgrade(cfg) from async code"
        )
    elif given is not None:
        raise MigrationError(
            f"config.attributes['connection'] must be a Connection, Engine or AsyncEngine, "
            f"not {type(given).__name__}"
        )
    else:
        settings = resolve_settings(config)
        _run_async(config, create_migration_engine(settings), dispose=True)


def _run_async(config: Config, engine: AsyncEngine, *, dispose: bool) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise MigrationError(
            "alembic was called from a running event loop without a connection: use "
            "'await sqlmosaic.migrations.upgrade(cfg)' (or hand a sync Connection in "
            "config.attributes['connection'])"
        )

    async def run() -> None:
        try:
            connection = await connect(engine)
            try:
                await connection.run_sync(_run_on_connection, config)
            finally:
                await connection.close()
        finally:
            if dispose:
                await engine.dispose()

    asyncio.run(run())


def _run_offline(config: Config) -> None:
    settings = resolve_settings(config)
    metadata = resolve_metadata(config)
    context.configure(
        url=settings.url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=False,
        **comparison_options(metadata, enabled_plugins(config)),
    )
    guard_steps(context.get_context(), context.script)
    with context.begin_transaction():
        if settings.backend == "postgresql":
            for statement in _postgres_preamble(settings):
                context.execute(statement)
        context.run_migrations()


def _run_on_connection(connection: Connection, config: Config) -> None:
    settings = resolve_settings(config)
    metadata = resolve_metadata(config)
    dialect = connection.dialect.name
    sqlite = dialect == "sqlite"
    external = connection.in_transaction()
    transactional = not sqlite or has_transactional_sqlite(connection.engine)
    # Batch mode rebuilds a table with DROP TABLE, which with enforcement on deletes (ON DELETE
    # CASCADE) or nulls the rows referencing it; PRAGMA foreign_key_check runs before commit.
    restore_foreign_keys = sqlite and not external and _sqlite_foreign_keys(connection, on=False)
    if sqlite and transactional and not external:
        # Take the write lock up front: a concurrent migrator waits (busy timeout), then sees
        # the result, instead of both creating alembic_version.
        connection.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    tracker = _Tracker(on_apply=config.attributes.get(ON_APPLY_KEY))
    start_heads: tuple[str, ...] = ()
    try:
        context.configure(
            connection=connection,
            transaction_per_migration=False,
            transactional_ddl=transactional,
            on_version_apply=tracker.done,
            process_revision_directives=revision_hook(
                config,
                context.script,
                resolve_plugins(config),
                config.attributes.get(PROCESS_REVISION_KEY),
            ),
            **comparison_options(metadata, enabled_plugins(config)),
        )
        migration_context = context.get_context()
        guard_steps(migration_context, context.script)
        _wrap_steps(migration_context, tracker)
        with context.begin_transaction():
            start_heads = migration_context.get_current_heads()
            # a database still on revisions a squashed one replaced: read the old chain
            caught_up = settle(context.script, start_heads)
            if dialect == "postgresql":
                for statement in _postgres_preamble(settings):
                    connection.exec_driver_sql(statement)
            context.run_migrations()
            if caught_up:
                _tidy_versions(connection, migration_context, context.script)
            if sqlite and transactional and not external and tracker.applied:
                _check_sqlite_foreign_keys(connection, tracker.applied, start_heads)
    except (MigrationError, CommandError):
        raise  # already clear (CommandError: e.g. an unknown revision argument)
    except Exception as exc:
        if tracker.current is None and not isinstance(exc, SQLAlchemyError):
            raise  # not from a revision nor the database: e.g. a revision-directives hook
        raise _failure(exc, tracker, settings, transactional, start_heads) from exc
    finally:
        if restore_foreign_keys:
            _sqlite_foreign_keys(connection, on=True)
    applied = config.attributes.get(APPLIED_KEY)
    if isinstance(applied, list):
        applied.extend(tracker.applied)


def _tidy_versions(connection: Connection, ctx: MigrationContext, script: Any) -> None:
    """After a catch-up run (a squashed branch): drop recorded revisions another one implies."""
    version = table(VERSION_TABLE, column("version_num"))
    for rev in implied_heads(script, ctx.get_current_heads()):
        connection.execute(version.delete().where(version.c.version_num == rev))


def _wrap_steps(migration_context: MigrationContext, tracker: _Tracker) -> None:
    fn = getattr(migration_context, "_migrations_fn", None)
    if fn is not None:
        migration_context._migrations_fn = tracker.wrap(fn)


#: ``pg_advisory_xact_lock`` key serialising concurrent migration runs on one database.
ADVISORY_LOCK_KEY = 0x6D6F73616963  # "mosaic"


def _postgres_preamble(settings: MosaicSettings) -> list[str]:
    """Statement timeout, then wait for any other migration run (bounded by the statement
    timeout, not the lock timeout), then the lock timeout for the DDL itself."""
    lock_ms = int(settings.migration_lock_timeout * 1000)
    statement_ms = int(settings.migration_statement_timeout * 1000)
    return [
        f"SET LOCAL statement_timeout = '{statement_ms}ms'",
        f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})",
        f"SET LOCAL lock_timeout = '{lock_ms}ms'",
    ]


def _sqlite_foreign_keys(connection: Connection, *, on: bool) -> bool:
    """Set ``PRAGMA foreign_keys`` outside any transaction (raw DBAPI cursor: no autobegin).

    :returns: whether enforcement was on before.
    """
    dbapi = connection.connection.dbapi_connection
    assert dbapi is not None
    cursor = dbapi.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys")
        row = cursor.fetchone()
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()
    return bool(row and row[0])


def _check_sqlite_foreign_keys(
    connection: Connection, applied: list[AppliedRevision], start: tuple[str, ...]
) -> None:
    rows = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if rows:
        shown = ", ".join(f"{row[0]} row {row[1]} -> {row[2]}" for row in rows[:10])
        revisions = ", ".join(a.revision for a in applied)
        raise MigrationError(
            f"revision(s) {revisions} leave {len(rows)} row(s) violating foreign keys "
            f"({shown}); the whole run was rolled back; the database is still at "
            f"{', '.join(start) or 'base (no revision)'}",
            revision=applied[-1].revision,
        )


def _describe(step: RevisionStep | None) -> tuple[str | None, str]:
    script = getattr(step, "revision", None)
    if step is None or script is None:
        return None, "the migration run"
    rev = str(script.revision)
    doc = (script.doc or "").strip().splitlines()
    direction = "upgrade" if step.is_upgrade else "downgrade"
    return rev, f"{direction} of revision {rev}{f' ({doc[0]!r})' if doc else ''}"


def _failure(
    exc: Exception,
    tracker: _Tracker,
    settings: MosaicSettings,
    transactional: bool,
    start_heads: tuple[str, ...],
) -> MigrationError:
    rev, what = _describe(tracker.current)
    cause = _cause(exc, settings)
    start = ", ".join(start_heads) or "base (no revision)"
    if transactional:
        state = f"the whole run was rolled back; the database is still at {start}"
    else:
        if tracker.applied:
            last = tracker.applied[-1]
            version = last.revision if last.is_upgrade else ", ".join(last.down_revisions)
        else:
            version = start
        state = (
            f"DDL is not transactional here: alembic_version says {version or 'base'}, but the "
            f"schema may be partially changed by revision {rev}; inspect it before retrying"
        )
    return MigrationError(f"{what} failed: {cause}; {state}", revision=rev)


def _names_a_value(error: BaseException, code: object) -> bool:
    if isinstance(code, str) and code.startswith("22"):
        return True
    return any(isinstance(e, ValueError) for e in (error, error.__cause__))


def _cause(exc: Exception, settings: MosaicSettings) -> str:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    text = mask_password(lines[0] if lines else "(no message)")
    if _names_a_value(orig if orig is not None else exc, code):
        # a data error's text quotes the value ("invalid input syntax for type integer: ...",
        # asyncpg's "invalid input for query argument $1: ..."): never repeat it
        text = f"a value was refused (SQLSTATE {code})" if code else "a bound value was refused"
    if code == _LOCK_NOT_AVAILABLE:
        return (
            f"lock_timeout ({settings.migration_lock_timeout:g}s, MOSAIC_MIGRATION_LOCK_TIMEOUT) "
            f"expired: another session holds a conflicting lock ({text})"
        )
    if code == _QUERY_CANCELED:
        return (
            f"statement_timeout ({settings.migration_statement_timeout:g}s, "
            f"MOSAIC_MIGRATION_STATEMENT_TIMEOUT) expired ({text})"
        )
    return f"{type(orig if orig is not None else exc).__name__}: {text}"
