"""Build the Alembic ``Config`` for a sqlmosaic host.

Everything the environment needs travels in ``Config.attributes`` under namespaced keys (never
in the .ini file: a ``%`` in a password breaks configparser interpolation, and pytest-alembic
overwrites the generic keys such as ``target_metadata``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

from alembic.config import Config

from .._exceptions import ConfigurationError
from .._plugins import PluginSet
from .._settings import MosaicSettings

__all__ = [
    "CONFIGURE_LOGGING_KEY",
    "CONNECTION_KEY",
    "DISCOVER_KEY",
    "METADATA_KEY",
    "ON_APPLY_KEY",
    "PLUGINS_KEY",
    "PROCESS_REVISION_KEY",
    "SETTINGS_KEY",
    "URL_KEY",
    "PluginsArg",
    "alembic_config",
]

#: ``Config.attributes`` keys read by :func:`sqlmosaic.migrations.run_env`.
SETTINGS_KEY = "mosaic_settings"
URL_KEY = "mosaic_url"
PLUGINS_KEY = "mosaic_plugins"
DISCOVER_KEY = "mosaic_discover"
METADATA_KEY = "mosaic_metadata"
ON_APPLY_KEY = "mosaic_on_apply"
CONFIGURE_LOGGING_KEY = "mosaic_configure_logging"
#: A ``process_revision_directives`` hook for autogenerate (pytest-alembic owns the plain key).
PROCESS_REVISION_KEY = "mosaic_process_revision_directives"
#: Alembic's own documented key: a sync ``Connection`` or an (Async)Engine to run on.
CONNECTION_KEY = "connection"

PluginsArg: TypeAlias = PluginSet | Mapping[str, object] | Iterable[object] | None


def alembic_config(
    ini_path: str | Path = "alembic.ini",
    *,
    settings: MosaicSettings | None = None,
    url: str | None = None,
    plugins: PluginsArg = None,
    discover: bool = True,
    configure_logging: bool = False,
    stdout: Any = None,
) -> Config:
    """The Alembic ``Config`` for ``ini_path``, carrying sqlmosaic's settings.

    :param settings: defaults to :meth:`MosaicSettings.load` (environment), read lazily by the
        environment when it runs.
    :param url: overrides ``settings.database_url`` (the .ini file never holds a URL).
    :param plugins: a loaded :class:`~sqlmosaic.PluginSet`, or explicit plugins as for
        :func:`~sqlmosaic.load_plugins` (merged with the installed ones unless ``discover`` is
        false); ``None``: the installed plugins the settings enable.
    :param configure_logging: apply the .ini ``[loggers]`` sections (the ``alembic`` CLI does).
    """
    path = Path(ini_path)
    if not path.is_file():
        raise ConfigurationError(
            f"Alembic configuration {str(path)!r} not found (run from the project root or pass "
            "--config)",
            setting="alembic.ini",
        )
    kwargs: dict[str, Any] = {}
    if stdout is not None:
        kwargs["stdout"] = stdout
    config = Config(str(path), **kwargs)
    if settings is not None:
        config.attributes[SETTINGS_KEY] = settings
    if url is not None:
        config.attributes[URL_KEY] = url
    if plugins is not None:
        config.attributes[PLUGINS_KEY] = plugins
    config.attributes[DISCOVER_KEY] = discover
    config.attributes[CONFIGURE_LOGGING_KEY] = configure_logging
    return config
