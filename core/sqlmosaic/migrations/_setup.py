"""What every migration run needs: settings, the merged metadata, comparison options, engine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alembic.config import Config
from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from .._engine import create_engine, has_deferred_begin
from .._exceptions import MigrationError
from .._metadata import table_owner
from .._plugins import PluginSet, load_plugins
from .._settings import MosaicSettings
from .._url import mask_password, mask_url
from ._config import (
    DISCOVER_KEY,
    METADATA_KEY,
    PLUGINS_KEY,
    SETTINGS_KEY,
    URL_KEY,
)

__all__ = [
    "VERSION_TABLE",
    "comparison_options",
    "connect",
    "create_migration_engine",
    "enabled_plugins",
    "has_transactional_sqlite",
    "resolve_metadata",
    "resolve_settings",
]

VERSION_TABLE = "alembic_version"
_RESOLVED_SETTINGS = "mosaic_resolved_settings"
_RESOLVED_PLUGINS = "mosaic_resolved_plugins"


def resolve_settings(config: Config) -> MosaicSettings:
    """Settings from ``config.attributes`` (URL override applied), else the environment."""
    cached = config.attributes.get(_RESOLVED_SETTINGS)
    if isinstance(cached, MosaicSettings):
        return cached
    settings = config.attributes.get(SETTINGS_KEY)
    url = config.attributes.get(URL_KEY)
    if settings is None:
        settings = MosaicSettings.load(database_url=url) if url else MosaicSettings.load()
    elif url:
        values = settings.model_dump()
        values["database_url"] = url
        settings = type(settings).load(**values)
    config.attributes[_RESOLVED_SETTINGS] = settings
    return settings


def resolve_plugins(config: Config) -> PluginSet | None:
    """The enabled plugins (loaded once per config), or ``None`` if metadata was handed in."""
    cached = config.attributes.get(_RESOLVED_PLUGINS)
    if isinstance(cached, PluginSet):
        return cached
    given = config.attributes.get(PLUGINS_KEY)
    if isinstance(given, PluginSet):
        plugins = given
    else:
        settings = resolve_settings(config)
        plugins = load_plugins(
            allow=settings.plugins,
            block=settings.blocked_plugins,
            plugins=given if given is not None else (),
            discover=bool(config.attributes.get(DISCOVER_KEY, True)),
        )
    config.attributes[_RESOLVED_PLUGINS] = plugins
    return plugins


def resolve_metadata(config: Config) -> MetaData:
    """``target_metadata``: the merged metadata of the enabled plugins.

    A ``MetaData`` under ``mosaic_metadata`` wins; then a non-``None`` ``target_metadata``
    (pytest-alembic's key); then the plugins.
    """
    for key in (METADATA_KEY, "target_metadata"):
        given = config.attributes.get(key)
        if isinstance(given, MetaData):
            return given
    plugins = resolve_plugins(config)
    assert plugins is not None
    return plugins.metadata


def comparison_options(metadata: MetaData, enabled: frozenset[str] | None = None) -> dict[str, Any]:
    """``context.configure`` options shared by env.py, ``check`` and ``adopt``.

    Only tables of ``metadata`` owned by an ``enabled`` plugin (any owner when ``None``) are
    compared (``include_object``, model side); a database table that no enabled plugin owns is
    an *orphan*: ``include_name`` never reflects it, so autogenerate never drops it.
    """
    owned = frozenset(
        key
        for key, table in metadata.tables.items()
        if enabled is None or table_owner(table) in enabled
    )

    def include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
        if type_ == "table":
            return name in owned
        if type_ in {"column", "index", "unique_constraint", "foreign_key_constraint"}:
            return parent_names.get("table_name") in owned
        return True

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table":
            return not reflected and isinstance(obj, Table) and obj.key in owned
        return True

    return {
        "target_metadata": metadata,
        "include_name": include_name,
        "include_object": include_object,
        "compare_type": True,
        "compare_server_default": True,
        # Batch ops are plain ALTERs on PostgreSQL and table rebuilds on SQLite: migrations
        # rendered this way run on both backends.
        "render_as_batch": True,
        "version_table": VERSION_TABLE,
    }


def enabled_plugins(config: Config) -> frozenset[str] | None:
    """Names of the enabled plugins, or ``None`` when metadata was handed in directly."""
    for key in (METADATA_KEY, "target_metadata"):
        if isinstance(config.attributes.get(key), MetaData):
            return None
    plugins = resolve_plugins(config)
    return frozenset(plugins.names) if plugins is not None else None


def create_migration_engine(settings: MosaicSettings) -> AsyncEngine:
    """An engine for one migration run: sqlmosaic's engine (SQLite transaction fix included)
    with ``NullPool`` and no client-side command timeout below the migration statement timeout,
    so that the server-side ``statement_timeout`` (SET LOCAL) fires first, with a clear error."""
    if settings.command_timeout is not None:
        settings = settings.model_copy(
            update={"command_timeout": settings.migration_statement_timeout + 30}
        )
    if settings.url.database in (None, "", ":memory:"):
        return create_engine(settings)  # one shared in-memory connection (StaticPool)
    return create_engine(settings, poolclass=NullPool)


async def connect(engine: AsyncEngine) -> AsyncConnection:
    """Open a connection; failures become :class:`MigrationError` (URL masked)."""
    connection = engine.connect()
    try:
        await connection.start()
    except Exception as exc:
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [""])[0]
        raise MigrationError(
            f"cannot connect to {mask_url(engine.url)}: {type(orig).__name__}: "
            f"{mask_password(first)}"
        ) from exc
    return connection


def has_transactional_sqlite(engine: Any) -> bool:
    """Whether ``engine`` (sync) emits its own ``BEGIN`` on SQLite, making DDL transactional."""
    return has_deferred_begin(engine)
