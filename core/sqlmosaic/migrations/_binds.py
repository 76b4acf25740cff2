"""Migrations per bind (``MOSAIC_BINDS``): one Alembic run per database.

The primary runs the host's history and the branches of the plugins left on it; each other
database runs the branches of the plugins bound to it (a bound plugin must own its branch), with
an ``alembic_version`` table of its own. Each run sees only its own plugins' tables, so
``check`` compares each database with the models that live there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from alembic.config import Config

from .._binds import plan_binds
from .._plugins import PluginSet
from .._url import mask_url
from ._config import DISCOVER_KEY, PLUGINS_KEY, standalone_config
from ._setup import resolve_plugins, resolve_settings

__all__ = ["BindConfig", "bind_configs", "restrict_plugins"]

#: ``config.attributes`` key: the result of :func:`bind_configs` (the config is narrowed once).
_SPLIT_KEY = "mosaic_bind_configs"


@dataclass(frozen=True)
class BindConfig:
    """One database to migrate: ``name`` is ``"primary"`` or ``"plugin a, b"``."""

    name: str
    masked_url: str
    config: Config


def restrict_plugins(plugins: PluginSet, names: set[str]) -> PluginSet:
    """``plugins`` with only ``names`` (its merged MetaData then holds only their tables)."""
    return replace(
        plugins,
        plugins=tuple(info for info in plugins.plugins if info.name in names),
        repositories={
            key: repo for key, repo in plugins.repositories.items() if key.split(".")[0] in names
        },
        owners={table: owner for table, owner in plugins.owners.items() if owner in names},
    )


def bind_configs(config: Config) -> list[BindConfig]:
    """The databases ``config`` migrates: just its own without ``MOSAIC_BINDS``; else the
    primary (``config`` itself, narrowed to the plugins left on it) then one config per bind.

    :raises CrossBindForeignKeyError: a foreign key joins two binds.
    """
    done = config.attributes.get(_SPLIT_KEY)
    if isinstance(done, list):
        return done
    settings = resolve_settings(config)
    plugins = resolve_plugins(config)
    plan = plan_binds(settings, plugins) if plugins is not None else None
    found = [BindConfig("primary", settings.masked_url, config)]
    config.attributes[_SPLIT_KEY] = found
    if plan is None or plugins is None:
        return found
    bound = set(plan.plugin_urls)
    config.attributes[PLUGINS_KEY] = restrict_plugins(
        plugins, {name for name in plugins.names if name not in bound}
    )
    config.attributes.pop("mosaic_resolved_plugins", None)  # resolved again, narrowed
    stdout: Any = getattr(config, "stdout", None)
    for url in plan.urls:
        names = plan.plugins_on(url)
        bind = standalone_config(
            settings=settings,
            url=url,
            plugins=restrict_plugins(plugins, set(names)),
            discover=False,
            stdout=stdout,
        )
        bind.attributes[DISCOVER_KEY] = False
        found.append(BindConfig(f"plugin {', '.join(names)}", mask_url(url), bind))
    return found
