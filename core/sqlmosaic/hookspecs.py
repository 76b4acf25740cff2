"""Hook specifications: the whole contract between sqlmosaic and a plugin.

A plugin is a module (or object) registered under the entry-point group ``sqlmosaic``; the
entry-point name is the plugin's name. It implements any of these hooks with
``@sqlmosaic.hookimpl``; every hook is optional. Contribution hooks return lists, which the
core collects per plugin, validates and merges (a duplicate raises a startup error naming both
plugins).

An implementation may take fewer parameters than its specification, never other ones. The core
rejects at startup, with :class:`~sqlmosaic.PluginHookError` naming the plugin: a parameter the
specification does not have, an unknown hook name, a ``mosaic_*`` function without
``@hookimpl`` and hook wrappers (each plugin's implementation is called on its own).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._host import Mosaic
    from ._repository import Repository

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

#: pluggy project name; also the entry-point group plugins register under.
PROJECT_NAME = "sqlmosaic"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -------------------------------------------------------------------------------------------
# Contribution hooks: called once per plugin while the host loads plugins (synchronously, no
# database access). Each returns a list; return an empty list to contribute nothing.
# -------------------------------------------------------------------------------------------


@hookspec
def mosaic_models() -> Sequence[type[Any]]:
    """Return the SQLModel table classes (``table=True``) this plugin owns.

    Their tables are copied into the host's merged ``MetaData`` (the target of Alembic
    autogenerate) and tagged with the plugin's name. A table may hold foreign keys only to its
    own plugin's tables or to tables of plugins it lists in :func:`mosaic_requires`.

    :return: a list of SQLModel table classes.
    """
    raise NotImplementedError


@hookspec
def mosaic_repositories() -> Sequence[type[Repository[Any]]]:
    """Return this plugin's repository classes (subclasses of ``sqlmosaic.Repository``).

    Each is registered under the key ``"<plugin>.<name>"`` where ``name`` is the class's
    ``name`` attribute or, by default, its model's table name; the host hands them out with
    ``mosaic.repository(key_or_class, session)``. At most one repository per model.

    :return: a list of repository classes.
    """
    raise NotImplementedError


@hookspec
def mosaic_requires() -> Sequence[str]:
    """Return the names of the plugins this plugin depends on (for example for a foreign key).

    Required plugins load first; a missing, blocked or disabled one stops the host at startup.

    :return: a list of plugin names.
    """
    raise NotImplementedError


@hookspec
def mosaic_migrations() -> str | os.PathLike[str] | None:
    """Return the directory of this plugin's own Alembic revisions, or ``None``.

    Typically ``Path(__file__).parent / "migrations"``, shipped inside the plugin's wheel. A
    plugin that implements this hook OWNS its tables' history: its revisions form an Alembic
    branch labelled with the plugin's name (the first one starts at ``base``), the host adds
    the directory to ``version_locations`` at run time, and ``mosaic db revision --plugin
    NAME`` writes there. A plugin that does not implement it (or returns ``None``) keeps its
    tables in the host's merged history.

    :return: an existing directory (``str`` or path-like), or ``None``.
    """
    raise NotImplementedError


# -------------------------------------------------------------------------------------------
# Lifecycle hooks: called on the started host, in load order for startup and in reverse order
# for shutdown. A hook may be a plain function or return an awaitable, which the core awaits.
# -------------------------------------------------------------------------------------------


@hookspec
def mosaic_startup(mosaic: Mosaic) -> Awaitable[None] | None:
    """Run when the host has started (engine ready, every plugin loaded and validated).

    :param mosaic: the host being started; use ``mosaic.transaction()`` for database work
        (``mosaic.running`` is still ``False`` until every startup hook has run).
    :return: ``None`` or an awaitable. If it raises, the host stops the plugins already started
        and fails with ``PluginError`` naming this plugin.
    """
    raise NotImplementedError


@hookspec
def mosaic_shutdown(mosaic: Mosaic) -> Awaitable[None] | None:
    """Run when the host stops, before the engine is disposed.

    :param mosaic: the host being stopped.
    :return: ``None`` or an awaitable. Errors are logged; every other plugin still shuts down.
    """
    raise NotImplementedError
