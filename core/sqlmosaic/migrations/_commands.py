"""Migration commands for running async code (no nested ``asyncio.run``).

Each function opens one connection (the ``AsyncEngine`` or ``AsyncConnection`` in
``config.attributes["connection"]``, else a ``NullPool`` engine from the settings, on a private
event loop in a worker thread so that the caller's loop is never blocked) and hands its sync side
to Alembic through ``config.attributes["connection"]`` inside ``run_sync``. Sync code
can call ``alembic.command.*`` on the same config instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .._exceptions import MigrationError, SchemaDriftError
from .._gc import collector_paused
from .._metadata import table_owner
from ._branches import at_final_heads, final_heads, revision_target, script_directory
from ._config import CONNECTION_KEY
from ._diffs import describe_diffs, orphan_tables
from ._naming import naming_problems
from ._runtime import APPLIED_KEY, AppliedRevision
from ._setup import (
    comparison_options,
    connect,
    create_migration_engine,
    enabled_plugins,
    resolve_metadata,
    resolve_settings,
)

__all__ = [
    "check",
    "current",
    "diffs",
    "downgrade",
    "drift_error",
    "final_heads_of",
    "heads",
    "orphans",
    "revision",
    "stamp",
    "upgrade",
]

T = TypeVar("T")


@asynccontextmanager
async def _connection(config: Config) -> AsyncIterator[AsyncConnection]:
    given = config.attributes.get(CONNECTION_KEY)
    if isinstance(given, AsyncConnection):
        yield given
        return
    if isinstance(given, AsyncEngine):
        conn = await connect(given)
        try:
            yield conn
        finally:
            await conn.close()
        return
    if given is not None:
        raise MigrationError(
            "the async migration functions need an AsyncEngine or AsyncConnection in "
            f"config.attributes['connection'], not {type(given).__name__}; from sync code use "
            "alembic.command.* instead"
        )
    engine = create_migration_engine(resolve_settings(config))
    try:
        conn = await connect(engine)
        try:
            yield conn
        finally:
            await conn.close()
    finally:
        await engine.dispose()


#: Alembic keeps its running context in module globals (``alembic.context``, ``alembic.op``):
#: two commands interleaved in one process corrupt each other, so they take turns.
_ALEMBIC_LOCK = threading.Lock()


@asynccontextmanager
async def _alembic_turn() -> AsyncIterator[None]:
    # Poll rather than block a thread on acquire(): cancellation then never leaks the lock.
    while not _ALEMBIC_LOCK.acquire(blocking=False):  # noqa: ASYNC110 (a threading lock)
        await asyncio.sleep(0.005)
    try:
        yield
    finally:
        _ALEMBIC_LOCK.release()


async def _run(config: Config, fn: Callable[[Connection], T]) -> T:
    """Run ``fn(sync_connection)`` with the connection visible to env.py (one at a time)."""

    def call(sync: Connection) -> T:
        previous = config.attributes.get(CONNECTION_KEY)
        config.attributes[CONNECTION_KEY] = sync
        try:
            return fn(sync)
        except CommandError as exc:
            raise MigrationError(str(exc)) from exc
        finally:
            config.attributes[CONNECTION_KEY] = previous

    async def run_here() -> T:
        async with _alembic_turn(), _connection(config) as conn:
            return await conn.run_sync(call)

    if config.attributes.get(CONNECTION_KEY) is None:
        # Nothing handed in: Alembic's synchronous work (script loading, rendering, comparing)
        # runs on a private loop in a worker thread, so the caller's event loop never blocks.
        return await asyncio.to_thread(asyncio.run, run_here())
    return await run_here()


def _read(sync: Connection, fn: Callable[[], T]) -> T:
    """Run a read-only ``fn``; end the transaction it autobegan (not a caller's)."""
    ours = not sync.in_transaction()
    try:
        return fn()
    finally:
        if ours and sync.in_transaction():
            sync.rollback()


async def _migrate(config: Config, fn: Callable[[], None]) -> list[AppliedRevision]:
    def call(_: Connection) -> list[AppliedRevision]:
        config.attributes[APPLIED_KEY] = []
        fn()
        applied: list[AppliedRevision] = config.attributes.pop(APPLIED_KEY, [])
        return applied

    return await _run(config, call)


async def upgrade(config: Config, revision: str = "heads") -> list[AppliedRevision]:
    """Upgrade to ``revision``; returns the revisions applied, in order (one transaction)."""
    return await _migrate(config, lambda: command.upgrade(config, revision))


async def downgrade(config: Config, revision: str) -> list[AppliedRevision]:
    """Downgrade to ``revision`` (e.g. ``"-1"``, ``"base"``); returns the revisions undone."""
    return await _migrate(config, lambda: command.downgrade(config, revision))


async def stamp(config: Config, revision: str = "heads", *, purge: bool = False) -> None:
    """Record ``revision`` in ``alembic_version`` without running migrations."""
    await _migrate(config, lambda: command.stamp(config, revision, purge=purge))


async def current(config: Config) -> tuple[str, ...]:
    """The revisions ``alembic_version`` holds (empty: not under Alembic / at base)."""

    def call(sync: Connection) -> tuple[str, ...]:
        return _read(sync, lambda: MigrationContext.configure(sync).get_current_heads())

    return await _run(config, call)


async def revision(
    config: Config,
    message: str,
    *,
    autogenerate: bool = False,
    plugin: str | None = None,
    **kwargs: Any,
) -> list[Script]:
    """Write a revision file (``alembic revision``); ``kwargs`` as for ``command.revision``
    (``head``, ``branch_label``, ``depends_on``, ``version_path``, ...).

    :param plugin: write into this plugin's own history (``mosaic_migrations()``): its branch,
        its tables only, ``depends_on`` the heads of the histories its requirements live in.
        ``None``: the host's history, leaving out tables of plugin-owned histories.
    :returns: the scripts written (none when the hook in ``mosaic_process_revision_directives``
        dropped them).
    """

    def call(_: Connection) -> list[Script]:
        target = revision_target(config, script_directory(config), plugin, kwargs)
        written = command.revision(
            config, message=message, autogenerate=autogenerate, **{**kwargs, **target}
        )
        items = written if isinstance(written, list) else [written]
        return [item for item in items if item is not None]

    return await _run(config, call)


def heads(config: Config) -> tuple[str, ...]:
    """The head revisions of the migration scripts, plugin branches included (no database
    access). A head that another head depends on is listed too: see :func:`final_heads`."""
    return tuple(script_directory(config).get_heads())


def final_heads_of(config: Config) -> tuple[str, ...]:
    """What ``upgrade heads`` reaches and ``alembic_version`` then records: the heads no other
    head depends on (no database access)."""
    return final_heads(script_directory(config))


async def diffs(config: Config) -> list[str]:
    """Differences between the database and the models of the enabled plugins, one per line.

    Compares whatever the database holds now (it need not be at head). Constraint and index
    names that do not follow the naming convention count too (``rename_*`` lines): Alembic's
    comparison ignores primary- and foreign-key names.
    """

    def call(sync: Connection) -> list[str]:
        metadata = resolve_metadata(config)
        enabled = enabled_plugins(config)
        options = comparison_options(metadata, enabled)
        ctx = MigrationContext.configure(sync, opts=options)
        # Reflection allocates in bursts over a heap holding every plugin's models: with the
        # collector paused the compare takes about half the time (bench/run_check.py).
        compare = collector_paused(compare_metadata)
        owned = [
            key
            for key, table in metadata.tables.items()
            if enabled is None or table_owner(table) in enabled
        ]

        def everything() -> list[str]:
            found = describe_diffs(compare(ctx, metadata))
            return found + naming_problems(sync, metadata, owned)

        return _read(sync, everything)

    return await _run(config, call)


async def orphans(config: Config) -> list[str]:
    """Database tables owned by no enabled plugin (reported, never dropped)."""

    def call(sync: Connection) -> list[str]:
        return _read(sync, lambda: orphan_tables(sync, resolve_metadata(config)))

    return await _run(config, call)


async def check(config: Config) -> list[str]:
    """Whether the migrations produce the models: the database must be at the heads.

    "At the heads" is ``alembic check``'s test: ``alembic_version`` records exactly the
    final heads (a head another revision depends on is implied, not recorded).

    :returns: the differences (empty when models and migrations agree).
    :raises MigrationError: the database is not at the heads (upgrade first).
    """
    at = await current(config)

    def compare() -> tuple[bool, tuple[str, ...]]:  # reads every script: off the loop
        scripts = script_directory(config)
        return at_final_heads(scripts, at), final_heads(scripts)

    done, final = await asyncio.to_thread(compare)
    if not done:
        raise MigrationError(
            f"the database is at {', '.join(at) or 'base'}, not at the heads "
            f"({', '.join(final) or 'none'}): upgrade it before checking"
        )
    return await diffs(config)


def drift_error(found: list[str]) -> SchemaDriftError:
    """A :class:`~sqlmosaic.SchemaDriftError` listing ``found`` (the result of :func:`check`)."""
    listing = "\n".join(f"  - {line}" for line in found)
    return SchemaDriftError(
        f"models and migrations differ ({len(found)} difference(s)):\n{listing}", diffs=found
    )
