"""Plugin discovery, selection, ordering and validation.

:func:`load_plugins` is all-or-nothing: it builds a fresh plugin manager (see
:func:`make_plugin_manager`), imports only the selected entry points, calls the contribution
hooks once per plugin, orders plugins (dependencies first, then by name), merges and checks
their metadata, and returns an immutable :class:`PluginSet`. Any failure raises a
:class:`~sqlmosaic.PluginError` naming the plugin, and nothing is left half-registered.
"""

from __future__ import annotations

import heapq
import importlib.metadata
import logging
import os
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pluggy
from sqlalchemy import MetaData, Table

from . import hookspecs
from ._exceptions import (
    DuplicateRepositoryError,
    DuplicateTableError,
    PluginCycleError,
    PluginDependencyError,
    PluginError,
    PluginHookError,
    PluginImportError,
)
from ._gc import collector_paused, plugins_loaded
from ._metadata import check_tables, merge_tables
from ._plugin_source import disabled_definers
from ._repository import Repository

__all__ = ["PluginInfo", "PluginSet", "SkippedPlugin", "load_plugins", "make_plugin_manager"]

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
_log = logging.getLogger("sqlmosaic.plugins")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_ALREADY_DEFINED = re.compile(r"Table '([^']+)' is already defined")
_HOOK_NAMES = frozenset(
    attr
    for attr in dir(hookspecs)
    if hasattr(getattr(hookspecs, attr), f"{hookspecs.PROJECT_NAME}_spec")
)


@dataclass(frozen=True)
class PluginInfo:
    """One enabled plugin, as loaded."""

    name: str
    plugin: object
    version: str | None
    source: Literal["entry_point", "explicit"]
    requires: tuple[str, ...]
    models: tuple[type[Any], ...]
    repositories: tuple[type[Repository[Any]], ...]
    #: the directory of the plugin's own Alembic branch (``mosaic_migrations``), else ``None``
    migrations: Path | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(m.__table__.key for m in self.models)


@dataclass(frozen=True)
class SkippedPlugin:
    """An installed plugin that was not loaded (never imported)."""

    name: str
    reason: Literal["blocked", "not in allowlist"]
    version: str | None


@dataclass(frozen=True)
class PluginSet:
    """The result of :func:`load_plugins`: enabled plugins in load order, and what they add."""

    plugins: tuple[PluginInfo, ...]
    repositories: Mapping[str, type[Repository[Any]]]
    skipped: tuple[SkippedPlugin, ...] = ()
    manager: pluggy.PluginManager = field(default_factory=lambda: make_plugin_manager())
    #: ``{table key: owning plugin}`` for every enabled plugin's table, in load order
    owners: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def metadata(self) -> MetaData:
        """Every enabled plugin's tables, copied into one ``MetaData`` with the naming convention.

        What migrations, ``mosaic db check`` and ``create_all`` use; each table carries its owner
        in ``Table.info["mosaic_plugin"]`` (:func:`~sqlmosaic.table_owner`). Built on first use:
        a running host never needs it (the ORM maps the models' own tables), and at 1,000 tables
        the copies cost more than the rest of :func:`load_plugins` together.
        """
        return merge_tables([(p.name, [m.__table__ for m in p.models]) for p in self.plugins])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.plugins)

    def get(self, name: str) -> PluginInfo:
        for info in self.plugins:
            if info.name == name:
                return info
        raise KeyError(name)

    def repository_key(self, repository: type[Repository[Any]]) -> str:
        for key, cls in self.repositories.items():
            if cls is repository:
                return key
        raise KeyError(repository.__qualname__)


def make_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with sqlmosaic's hook specifications (no plugins registered)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


@dataclass
class _Candidate:
    name: str
    source: Literal["entry_point", "explicit"]
    load: Callable[[], object]
    origin: str
    version: str | None = None
    #: the module the plugin is (or lives in), known before importing it
    module: str | None = None
    #: another installed distribution registers the same name: raised only if it is selected
    clash: str | None = None


def _entry_point_candidates() -> dict[str, _Candidate]:
    found: dict[str, _Candidate] = {}
    # name and version of each distribution, read once: every lookup parses its METADATA file
    dists: dict[int, tuple[str, str | None]] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is None:
            dist, version = "?", None
        else:
            known = dists.get(id(ep.dist))
            if known is None:
                known = dists[id(ep.dist)] = (ep.dist.name, ep.dist.version)
            dist, version = known
        if ep.name in found:
            # not raised here: a host whose allowlist excludes the name must still start
            first = found[ep.name]
            first.clash = first.clash or (
                f"plugin name {ep.name!r} is registered twice: by {first.origin} and "
                f"by {dist} ({ep.value})"
            )
            continue
        found[ep.name] = _Candidate(
            ep.name,
            "entry_point",
            ep.load,
            f"{dist} ({ep.value})",
            version,
            ep.module,
        )
    return found


def _explicit_candidates(plugins: Mapping[str, object] | Iterable[object]) -> dict[str, _Candidate]:
    items: Iterable[tuple[str, object]]
    if isinstance(plugins, Mapping):
        items = plugins.items()
    else:
        items = ((_explicit_name(obj), obj) for obj in plugins)
    found: dict[str, _Candidate] = {}
    for name, obj in items:
        if name in found:
            raise PluginError(f"plugin {name!r} is passed twice", plugins=(name,))
        version = getattr(obj, "__version__", None)
        found[name] = _Candidate(
            name,
            "explicit",
            _constant(obj),
            repr(obj),
            version if isinstance(version, str) else None,
            obj.__name__ if isinstance(obj, types.ModuleType) else type(obj).__module__,
        )
    return found


def _constant(obj: object) -> Callable[[], object]:
    return lambda: obj


def _explicit_name(obj: object) -> str:
    name = getattr(obj, "mosaic_name", None)
    if isinstance(name, str):
        return name
    if isinstance(obj, types.ModuleType):
        return obj.__name__.rsplit(".", 1)[-1]
    raise PluginError(
        f"cannot name plugin {obj!r}: pass plugins as a mapping {{name: plugin}} or give it a "
        "'mosaic_name' attribute"
    )


# Importing 1,000 SQLModel tables leaves ~500,000 tracked objects; a full collection in the middle
# of loading cost about as much as the load itself (bench/run_startup.py).
@collector_paused
def load_plugins(
    *,
    allow: Sequence[str] | None = None,
    block: Sequence[str] = (),
    plugins: Mapping[str, object] | Iterable[object] = (),
    discover: bool = True,
) -> PluginSet:
    """Discover, select, import, validate and merge plugins. See the module docstring.

    :param allow: the allowlist (``None``: every installed plugin); explicit plugins are always
        enabled unless blocked.
    :param block: names never loaded.
    :param plugins: plugins passed in code, as ``{name: module_or_object}`` or a list of modules.
    :param discover: look up the ``sqlmosaic`` entry-point group.
    """
    installed = _entry_point_candidates() if discover else {}
    explicit = _explicit_candidates(plugins)
    candidates = {**installed, **explicit}
    blocked = set(block)
    allowed = set(allow) if allow is not None else None
    for name in sorted((allowed or set()) - set(candidates)):
        raise PluginDependencyError(
            f"plugin {name!r} is in the allowlist but not installed; installed: "
            f"{', '.join(sorted(candidates)) or 'none'}",
            plugins=(name,),
        )
    selected: dict[str, _Candidate] = {}
    skipped: list[SkippedPlugin] = []
    for name, cand in sorted(candidates.items()):
        if name in blocked:
            skipped.append(SkippedPlugin(name, "blocked", cand.version))
        elif allowed is not None and name not in allowed and cand.source == "entry_point":
            skipped.append(SkippedPlugin(name, "not in allowlist", cand.version))
        else:
            selected[name] = cand
    for name, cand in selected.items():
        if cand.clash is not None:
            raise PluginError(cand.clash, plugins=(name,))

    pm = make_plugin_manager()
    objects: dict[str, object] = {}
    for name, cand in selected.items():
        objects[name] = obj = _import(cand, selected)
        try:
            pm.register(obj, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginHookError(f"plugin {name!r}: {exc}", plugins=(name,)) from None
        except ValueError as exc:
            raise PluginError(
                f"plugin {name!r} cannot be registered: {exc}", plugins=(name,)
            ) from None
        _check_hook_functions(pm, name, obj)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        # exc.plugin is the plugin OBJECT; name the plugin by its registered name.
        culprit = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginHookError(
            f"plugin {culprit!r} implements an unknown hook: {exc}", plugins=(culprit,)
        ) from None

    requires = {name: _names(_call(pm, "mosaic_requires", name), name) for name in selected}
    _check_requirements(requires, selected, candidates, blocked)
    order = _order(requires)
    models = {name: _models(_call(pm, "mosaic_models", name), name) for name in order}
    repos = {name: _repositories(_call(pm, "mosaic_repositories", name), name) for name in order}
    histories = {name: _migrations(_call(pm, "mosaic_migrations", name), name) for name in order}
    closure = _closure(requires)
    off = disabled_definers([(s.name, s.reason, candidates[s.name]) for s in skipped])
    owners = check_tables(
        [(name, [m.__table__ for m in models[name]]) for name in order], closure, disabled=off
    )
    registry = _repository_registry(order, repos, owners)
    infos = tuple(
        PluginInfo(
            name,
            objects[name],
            selected[name].version,
            selected[name].source,
            requires[name],
            models[name],
            repos[name],
            histories[name],
        )
        for name in order
    )
    plugins_loaded()  # the console script's collector resumes (a no-op anywhere else)
    return PluginSet(infos, registry, tuple(skipped), pm, owners)


def _import(cand: _Candidate, selected: Mapping[str, _Candidate]) -> object:
    try:
        return cand.load()
    except Exception as exc:
        match = _ALREADY_DEFINED.search(str(exc))
        if match:
            table = match.group(1)
            other, where = _table_definer(table, cand, selected)
            raise DuplicateTableError(
                f"plugin {cand.name!r} failed to import: table {table!r} is already defined "
                f"{where}; each table must belong to exactly one plugin",
                table=table,
                plugins=(other, cand.name) if other else (cand.name,),
            ) from exc
        raise PluginImportError(
            f"plugin {cand.name!r} failed to import from {cand.origin}: "
            f"{type(exc).__name__}: {exc}",
            plugins=(cand.name,),
        ) from exc


def _table_definer(
    table: str, failing: _Candidate, selected: Mapping[str, _Candidate]
) -> tuple[str | None, str]:
    """Which plugin (if any) defined ``table`` in SQLModel's metadata, and a phrase saying so.

    Plugins are imported in name order, not load order, so the definer may not be imported
    by this call: match the defining class's module against every selected plugin's module
    (the same module first, then the same top-level package), never the failing plugin.
    """
    cls = _defining_class(table)
    if cls is None:
        return None, "by another model in the same MetaData"
    best: tuple[int, str] | None = None
    for name, cand in sorted(selected.items()):
        if name == failing.name or not cand.module:
            continue
        package = cand.module.split(".", 1)[0]
        if cls.__module__ == cand.module or cls.__module__.startswith(f"{cand.module}."):
            score = 2
        elif cls.__module__ == package or cls.__module__.startswith(f"{package}."):
            score = 1
        else:
            continue
        if best is None or score > best[0]:
            best = (score, name)
    where = f"class {cls.__module__}.{cls.__qualname__}, in SQLModel's global metadata"
    if best is not None:
        return best[1], f"by plugin {best[1]!r} ({where})"
    return None, f"by {where}"


def _defining_class(table: str) -> type[Any] | None:
    """The SQLModel class whose table ``table`` is in ``SQLModel.metadata``.

    Walks ``__subclasses__`` rather than ``SQLModel._sa_registry.mappers``: the class whose
    definition just failed stays half-registered (instrumented, never mapped) in that
    registry, and ``registry.mappers`` then raises ``UnmappedClassError``.
    """
    from sqlmodel import SQLModel

    existing = SQLModel.metadata.tables.get(table)
    if existing is None:
        return None
    stack: list[type[Any]] = [SQLModel]
    seen: set[type[Any]] = set()
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub in seen:
                continue
            seen.add(sub)
            stack.append(sub)
            if sub.__dict__.get("__table__") is existing:
                return sub
    return None


def _check_hook_functions(pm: pluggy.PluginManager, name: str, obj: object) -> None:
    """Reject what pluggy would silently accept but the core cannot honour.

    - a ``mosaic_*`` function without ``@hookimpl`` (a typo'd or unmarked hook is otherwise
      ignored without a word, and the plugin silently contributes nothing);
    - hook wrappers (the core calls each plugin's implementation on its own, in load order).
    """
    for attr in sorted(dir(obj)):
        if not attr.startswith("mosaic_"):
            continue
        value = getattr(obj, attr, None)
        if callable(value) and getattr(value, f"{hookspecs.PROJECT_NAME}_impl", None) is None:
            unknown = (
                ""
                if attr in _HOOK_NAMES
                else f" and is not a sqlmosaic hook (hooks: {', '.join(sorted(_HOOK_NAMES))})"
            )
            raise PluginHookError(
                f"plugin {name!r}: function {attr}() is not marked with @sqlmosaic.hookimpl"
                f"{unknown}",
                plugins=(name,),
            )
    for caller in pm.get_hookcallers(pm.get_plugin(name)) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin_name == name and (impl.wrapper or impl.hookwrapper):
                raise PluginHookError(
                    f"plugin {name!r}: {caller.name} is a hook wrapper; sqlmosaic calls each "
                    "plugin's hooks on their own, so wrappers are not supported",
                    plugins=(name,),
                )


def _call(pm: pluggy.PluginManager, hook: str, plugin: str) -> Any:
    caller = getattr(pm.hook, hook)
    for impl in caller.get_hookimpls():
        if impl.plugin_name == plugin:
            try:
                return impl.function()
            except Exception as exc:
                raise PluginHookError(
                    f"plugin {plugin!r}: {hook}() raised {type(exc).__name__}: {exc}",
                    plugins=(plugin,),
                ) from exc
    return []


def _sequence(value: Any, hook: str, plugin: str) -> list[Any]:
    if value is None or isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise PluginHookError(
            f"plugin {plugin!r}: {hook}() must return a list, got {type(value).__name__}",
            plugins=(plugin,),
        )
    return list(value)


def _names(value: Any, plugin: str) -> tuple[str, ...]:
    names = _sequence(value, "mosaic_requires", plugin)
    for item in names:
        if not isinstance(item, str) or not _NAME.match(item):
            raise PluginHookError(
                f"plugin {plugin!r}: mosaic_requires() returned {item!r}, not a plugin name",
                plugins=(plugin,),
            )
    return tuple(dict.fromkeys(names))


def _models(value: Any, plugin: str) -> tuple[type[Any], ...]:
    models = _sequence(value, "mosaic_models", plugin)
    for model in models:
        if not isinstance(model, type) or not isinstance(getattr(model, "__table__", None), Table):
            raise PluginHookError(
                f"plugin {plugin!r}: mosaic_models() returned {model!r}, not a SQLModel table "
                "class (did you forget table=True?)",
                plugins=(plugin,),
            )
    return tuple(dict.fromkeys(models))


def _migrations(value: Any, plugin: str) -> Path | None:
    if value is None or (isinstance(value, list) and not value):  # [] : not implemented
        return None
    if not isinstance(value, str | os.PathLike):
        raise PluginHookError(
            f"plugin {plugin!r}: mosaic_migrations() returned {value!r}, not a directory path",
            plugins=(plugin,),
        )
    path = Path(value).resolve()
    if not path.is_dir():
        raise PluginHookError(
            f"plugin {plugin!r}: mosaic_migrations() returned {str(path)!r}, which is not a "
            "directory (ship it inside the package)",
            plugins=(plugin,),
        )
    return path


def _repositories(value: Any, plugin: str) -> tuple[type[Repository[Any]], ...]:
    repos = _sequence(value, "mosaic_repositories", plugin)
    for repo in repos:
        if not (isinstance(repo, type) and issubclass(repo, Repository) and hasattr(repo, "model")):
            raise PluginHookError(
                f"plugin {plugin!r}: mosaic_repositories() returned {repo!r}, not a "
                "Repository[Model] subclass",
                plugins=(plugin,),
            )
    return tuple(dict.fromkeys(repos))


def _check_requirements(
    requires: Mapping[str, tuple[str, ...]],
    selected: Mapping[str, _Candidate],
    candidates: Mapping[str, _Candidate],
    blocked: set[str],
) -> None:
    for name in sorted(requires):
        for dep in requires[name]:
            if dep in selected:
                continue
            if dep in blocked:
                why = "which is blocked (MOSAIC_BLOCKED_PLUGINS)"
            elif dep in candidates:
                why = "which is installed but not enabled: add it to MOSAIC_PLUGINS"
            else:
                why = "which is not installed"
            raise PluginDependencyError(
                f"plugin {name!r} requires plugin {dep!r}, {why}", plugins=(name, dep)
            )


def _order(requires: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Dependencies first, ties broken by name (Kahn's algorithm with a heap)."""
    waiting = {name: set(deps) for name, deps in requires.items()}
    dependents: dict[str, list[str]] = {name: [] for name in requires}
    for name, deps in requires.items():
        for dep in deps:
            dependents[dep].append(name)
    ready = [name for name, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for child in dependents[name]:
            waiting[child].discard(name)
            if not waiting[child]:
                heapq.heappush(ready, child)
    if len(order) != len(requires):
        cycle = _find_cycle({n: requires[n] for n in requires if n not in order})
        raise PluginCycleError(
            f"plugins require each other in a cycle: {' -> '.join(cycle)}", cycle=cycle
        )
    return order


def _find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str]:
    start = min(graph)
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(dep for dep in graph[node] if dep in graph)
    return [*path[seen[node] :], node]


def _closure(requires: Mapping[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    result: dict[str, frozenset[str]] = {}

    def visit(name: str) -> frozenset[str]:
        if name not in result:
            deps: set[str] = set()
            for dep in requires.get(name, ()):
                deps |= {dep, *visit(dep)}
            result[name] = frozenset(deps)
        return result[name]

    for name in requires:
        visit(name)
    return result


def _repository_registry(
    order: Sequence[str],
    repos: Mapping[str, Sequence[type[Repository[Any]]]],
    owners: Mapping[str, str],
) -> dict[str, type[Repository[Any]]]:
    registry: dict[str, type[Repository[Any]]] = {}
    by_model: dict[type[Any], tuple[str, type[Repository[Any]]]] = {}
    for plugin in order:
        for repo in repos[plugin]:
            table = repo.model.__table__.key
            if table not in owners:
                raise PluginHookError(
                    f"plugin {plugin!r}: repository {repo.__qualname__} is for table {table!r}, "
                    "which no enabled plugin defines",
                    plugins=(plugin,),
                )
            if repo.model in by_model:
                other_plugin, other = by_model[repo.model]
                raise DuplicateRepositoryError(
                    f"model {repo.model.__name__} has two repositories: {other.__qualname__} "
                    f"(plugin {other_plugin!r}) and {repo.__qualname__} (plugin {plugin!r})",
                    plugins=(other_plugin, plugin),
                )
            key = f"{plugin}.{getattr(repo, 'name', None) or table}"
            if key in registry:
                raise DuplicateRepositoryError(
                    f"repository key {key!r} is used by {registry[key].__qualname__} and "
                    f"{repo.__qualname__}",
                    plugins=(plugin,),
                )
            registry[key] = repo
            by_model[repo.model] = (plugin, repo)
    return registry
