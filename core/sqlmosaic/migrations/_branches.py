"""Plugin-owned histories: per-plugin Alembic branches composed at run time.

A plugin implementing ``mosaic_migrations()`` ships its revisions in its own directory; they form
a branch labelled with the plugin's name. The host's ``version_locations`` are built at run time
from its own directory plus every enabled plugin's directory (:func:`version_locations`), both
for sqlmosaic's own ``Config`` and, from ``run_env()``, for the plain ``alembic`` command
(:func:`compose_script`).

Words used here: the *heads* of the scripts are Alembic's versioned heads (``alembic heads``);
the *final heads* (Alembic's ``"heads"`` target) leave out a head that another revision depends
on (``depends_on``; ``alembic heads`` marks it "effective head"): once the dependent revision is
applied, ``alembic_version`` records only that one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError, coerce_resource_to_filename

from .._exceptions import MigrationError
from ._renames import add_renames
from ._replaced import (
    final_replacer,
    forget_loaded,
    install_view,
    loaded_scripts,
    replacements,
    walk_applied,
)

if TYPE_CHECKING:
    from alembic.config import Config

    from .._plugins import PluginSet

__all__ = [
    "applied_revisions",
    "at_final_heads",
    "branch_heads",
    "compose_script",
    "filter_operations",
    "final_heads",
    "guard_steps",
    "history_dirs",
    "host_heads",
    "host_locations",
    "host_target",
    "owned_history",
    "owner_of",
    "plugin_depends_on",
    "revision_hook",
    "revision_target",
    "scope_tables",
    "script_directory",
    "version_locations",
]


def history_dirs(plugins: PluginSet | None) -> dict[str, Path]:
    """``{plugin name: its migrations directory}`` for the enabled plugins that own a history."""
    if plugins is None:
        return {}
    return {info.name: info.migrations for info in plugins.plugins if info.migrations is not None}


def owned_history(plugins: PluginSet | None, plugin: str, otherwise: str) -> dict[str, Path]:
    """:func:`history_dirs`, once ``plugin`` is known to be enabled and to own a history.

    :raises MigrationError: it is not enabled, or has no history of its own (``otherwise``
        finishes that sentence: what the user should do instead).
    """
    if plugins is None or plugin not in plugins.names:
        enabled = ", ".join(plugins.names) if plugins is not None else "none"
        raise MigrationError(f"plugin {plugin!r} is not enabled (enabled: {enabled})")
    dirs = history_dirs(plugins)
    if plugin not in dirs:
        raise MigrationError(
            f"plugin {plugin!r} has no history of its own (no mosaic_migrations()): {otherwise}"
        )
    return dirs


def host_locations(config: Config) -> list[Path]:
    """The host's own version directories: the .ini's ``version_locations``, else
    ``<script_location>/versions``."""
    from alembic.config import Config as AlembicConfig

    listed = AlembicConfig.get_version_locations_list(config)
    if listed:
        return [Path(coerce_resource_to_filename(item)).absolute() for item in listed]
    location = config.get_alembic_option("script_location")
    if location is None:
        raise MigrationError("the Alembic configuration has no script_location")
    return [Path(coerce_resource_to_filename(location), "versions").absolute()]


def version_locations(config: Config, plugins: PluginSet | None) -> list[str]:
    """Host directories first, then each enabled plugin's directory (load order), no repeats."""
    found: dict[Path, None] = dict.fromkeys(host_locations(config))
    for path in history_dirs(plugins).values():
        found.setdefault(path.absolute(), None)
    return [str(path) for path in found]


def compose_script(script: ScriptDirectory, plugins: PluginSet | None) -> bool:
    """Add the enabled plugins' directories to ``script`` (made from a plain ``Config``, as the
    ``alembic`` command makes it). Returns whether anything was added.

    Must run before the revision map is first read (``run_env`` calls it first thing).
    """
    have = [Path(p).absolute() for p in script._version_locations]
    missing = [p for p in history_dirs(plugins).values() if p.absolute() not in have]
    if missing:
        script.version_locations = [str(p) for p in [*have, *missing]]
        for memo in ("_version_locations", "_singular_version_location"):
            script.__dict__.pop(memo, None)
        forget_loaded(script)
    # squashed revisions: references to the revisions they replaced read as the squashed one
    install_view(script)
    return bool(missing)


def owner_of(script: Script, dirs: Mapping[str, Path]) -> str | None:
    """The plugin whose directory holds ``script``, or ``None`` (the host's history)."""
    folder = Path(script.path).parent.resolve()
    for name, path in dirs.items():
        if folder == path.resolve():
            return name
    return None


def _scripts(script_dir: ScriptDirectory, revisions: Iterable[str]) -> list[Script]:
    found: list[Script] = []
    for rev in revisions:
        item = script_dir.get_revision(rev)
        if item is not None:
            found.append(item)
    return found


def branch_heads(script_dir: ScriptDirectory, dirs: Mapping[str, Path], name: str) -> list[str]:
    """The heads of plugin ``name``'s branch (empty: no revision yet)."""
    heads = _scripts(script_dir, script_dir.get_heads())
    return [s.revision for s in heads if owner_of(s, dirs) == name]


def host_heads(script_dir: ScriptDirectory, dirs: Mapping[str, Path]) -> list[str]:
    """The heads of the host's own (merged) history."""
    heads = _scripts(script_dir, script_dir.get_heads())
    return [s.revision for s in heads if owner_of(s, dirs) is None]


def final_heads(script_dir: ScriptDirectory) -> tuple[str, ...]:
    """Alembic's ``"heads"`` target: heads no other revision depends on."""
    return tuple(s.revision for s in script_dir.get_revisions("heads") if s is not None)


def _known(script_dir: ScriptDirectory, current: Sequence[str]) -> None:
    for rev in current:
        try:
            script_dir.get_revision(rev)
        except CommandError:
            main, replaced = loaded_scripts(script_dir)
            replaced_by = replacements([*main, *replaced])
            if rev in replaced_by:
                squashed = final_replacer(replaced_by, rev)
                kept = rev in {item.revision for item in replaced}
                raise MigrationError(
                    f"the database records revision {rev!r}, which the squashed revision "
                    f"{squashed!r} replaced: "
                    + (
                        "'mosaic db upgrade' applies the rest of the replaced revisions, then "
                        "moves it to the squashed history"
                        if kept
                        else "the replaced revisions are no longer shipped (their replaced/ "
                        "folder was deleted): upgrade with the release that still has them"
                    )
                ) from None
            raise MigrationError(
                f"the database records revision {rev!r}, which none of the loaded histories "
                "(the host's and the enabled plugins') contains: it belongs to a disabled or "
                "uninstalled plugin's branch (enable it again) or to newer code; nothing was "
                "changed"
            ) from None


def at_final_heads(script_dir: ScriptDirectory, current: Sequence[str]) -> bool:
    """Whether a database at ``current`` is fully migrated: the same test as ``alembic check``
    (the revisions recorded are exactly the final heads)."""
    _known(script_dir, current)
    return set(current) == set(final_heads(script_dir))


def applied_revisions(script_dir: ScriptDirectory, current: Iterable[str]) -> set[str]:
    """Every revision a database at ``current`` has applied: ancestors and dependencies."""

    def parents(rev: str) -> list[str]:
        item = script_dir.get_revision(rev)
        if item is None:
            return []
        found = list(_tuple(item.down_revision))
        for dep in _tuple(item.dependencies):
            found.extend(s.revision for s in script_dir.get_revisions(dep) if s is not None)
        return found

    return walk_applied(current, parents)


def _tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def plugin_depends_on(
    script_dir: ScriptDirectory, plugins: PluginSet, name: str
) -> list[str] | None:
    """``depends_on`` for NAME's next revision: the current head of every history holding the
    tables of a plugin NAME requires (transitively) — that plugin's branch, or the host's history
    for a plugin kept there — minus those NAME's branch already depends on."""
    dirs = history_dirs(plugins)
    requires = {info.name: info.requires for info in plugins.plugins}
    closure: list[str] = []
    stack = list(requires.get(name, ()))
    while stack:
        dep = stack.pop(0)
        if dep not in closure:
            closure.append(dep)
            stack.extend(requires.get(dep, ()))
    wanted: list[str] = []
    for dep in closure:
        heads = branch_heads(script_dir, dirs, dep) if dep in dirs else host_heads(script_dir, dirs)
        wanted.extend(h for h in heads if h not in wanted)
    mine = branch_heads(script_dir, dirs, name)
    already = applied_revisions(script_dir, mine)
    result = [rev for rev in wanted if rev not in already]
    # keep only what no other dependency already implies (comments' head implies the host's)
    implied = {r for rev in result for r in applied_revisions(script_dir, [rev]) if r != rev}
    return [rev for rev in result if rev not in implied] or None


def scope_tables(plugins: PluginSet, scope: str | None) -> frozenset[str]:
    """Tables a new revision may touch: plugin ``scope``'s, or (``None``) the host history's,
    i.e. those of enabled plugins that do not own a history."""
    if scope is not None:
        return frozenset(plugins.get(scope).tables)
    return frozenset(
        table for info in plugins.plugins if info.migrations is None for table in info.tables
    )


def _table_of(op: Any) -> str | None:
    for attr in ("table_name", "source_table"):
        value = getattr(op, attr, None)
        if isinstance(value, str):
            return value
    return None


def filter_operations(directive: Any, tables: frozenset[str]) -> None:
    """Keep only the operations of ``directive`` (a ``MigrationScript``) on ``tables``."""
    for container in [*directive.upgrade_ops_list, *directive.downgrade_ops_list]:
        container.ops = [op for op in container.ops if _table_of(op) in tables]


# ------------------------------------------------------------------ run_env's side


def _fn_name(migration_context: Any) -> str:
    fn = getattr(migration_context, "_migrations_fn", None)
    return str(getattr(fn, "__name__", ""))


def guard_steps(migration_context: Any, script_dir: ScriptDirectory) -> None:
    """Adapt the command about to run to several branches.

    - ``upgrade head`` with several heads means every head (Alembic alone refuses "head" as
      ambiguous): the plain ``alembic upgrade head`` of a host with plugin branches applies all.
    - upgrade, downgrade, check and autogenerate refuse, with a clear message, a database that
      records a revision none of the loaded histories has (``stamp`` stays the way out).
    """
    name = _fn_name(migration_context)
    if name not in {"upgrade", "downgrade", "retrieve_migrations"}:
        return
    inner = migration_context._migrations_fn
    destination = migration_context.opts.get("destination_rev")
    if name == "upgrade" and destination == "head" and len(script_dir.get_heads()) > 1:

        def every_head(rev: Any, ctx: Any) -> Any:
            return script_dir._upgrade_revs("heads", rev)

        inner = every_head

    def checked(rev: Any, ctx: Any) -> Any:
        _known(script_dir, _tuple(rev))
        return inner(rev, ctx)

    migration_context._migrations_fn = checked


def revision_hook(
    config: Config, script_dir: ScriptDirectory, plugins: PluginSet | None, user_hook: Any
) -> Any:
    """``process_revision_directives`` of ``run_env``: a new autogenerated revision holds only
    the tables of its history (the plugin in ``mosaic_revision_plugin``, else the host's), a
    host revision goes on the host's head when plugin branches make "head" ambiguous, and
    autogenerate renames those tables' misnamed constraints and indexes (:mod:`._renames`).
    Then the caller's own hook (``mosaic_process_revision_directives``) runs."""
    from ._config import REVISION_PLUGIN_KEY

    def hook(context: Any, revision: Any, directives: list[Any]) -> None:
        if directives and _writes_revision(config, context):
            tables: Collection[str] | None = None
            if plugins is not None:
                scope = config.attributes.get(REVISION_PLUGIN_KEY) or None
                tables = scope_tables(plugins, scope)
                for directive in directives:
                    filter_operations(directive, tables)
                    if scope is None:
                        _aim_at_host(config, script_dir, plugins, directive)
            if _autogenerating(context):
                for directive in directives:
                    add_renames(directive, context, tables)
        if user_hook is not None:
            user_hook(context, revision, directives)

    return hook


def _autogenerating(context: Any) -> bool:
    args = getattr(context.opts.get("revision_context"), "command_args", None) or {}
    return bool(args.get("autogenerate"))


def _writes_revision(config: Config, context: Any) -> bool:
    """``revision --autogenerate`` (True) or ``check`` (False, compares everything)?

    sqlmosaic's own calls say so explicitly; for the plain ``alembic`` command, ``check`` is the
    one without a message."""
    from ._config import REVISION_PLUGIN_KEY

    if REVISION_PLUGIN_KEY in config.attributes:
        return True
    revision_context = context.opts.get("revision_context")
    args = getattr(revision_context, "command_args", None) or {}
    return args.get("message") is not None


def _aim_at_host(
    config: Config, script_dir: ScriptDirectory, plugins: PluginSet, directive: Any
) -> None:
    if directive.head != "head" or len(script_dir.get_heads()) <= 1:
        return
    mine = host_heads(script_dir, history_dirs(plugins))
    if len(mine) == 1:
        directive.head = mine[0]
    elif not mine:
        directive.head = "base"
        if directive.version_path is None:
            directive.version_path = str(host_locations(config)[0])


def script_directory(config: Config) -> ScriptDirectory:
    """The scripts of the host and of the enabled plugins' histories, whatever ``Config``."""
    from ._setup import resolve_plugins

    script_dir = ScriptDirectory.from_config(config)
    compose_script(script_dir, resolve_plugins(config))
    return script_dir


def host_target(
    config: Config, script_dir: ScriptDirectory, plugins: PluginSet | None
) -> tuple[str, str | None]:
    """``(head, version_path)`` for a new revision of the host's own history when ``"head"``
    is ambiguous (plugin branches present)."""
    if len(script_dir.get_heads()) <= 1:
        return "head", None
    mine = host_heads(script_dir, history_dirs(plugins))
    if len(mine) == 1:
        return mine[0], None
    if not mine:
        return "base", str(host_locations(config)[0])
    return "head", None  # several host heads: Alembic's own error says to merge


_TARGET_DEFAULTS: dict[str, Any] = {
    "head": "head",
    "branch_label": None,
    "depends_on": None,
    "version_path": None,
}


def revision_target(
    config: Config, script_dir: ScriptDirectory, plugin: str | None, given: dict[str, Any]
) -> dict[str, Any]:
    """``command.revision`` keywords for a new revision of ``plugin``'s branch, or (``None``) of
    the host's history; also tells ``run_env`` whose tables autogenerate may write.

    :param given: the caller's ``head``, ``branch_label``, ``depends_on``, ``version_path``.
    """
    from ._config import REVISION_PLUGIN_KEY
    from ._setup import resolve_plugins

    plugins = resolve_plugins(config)
    config.attributes[REVISION_PLUGIN_KEY] = plugin or ""
    target = {**_TARGET_DEFAULTS, **given}
    if plugin is None:
        if target["head"] == "head" and target["version_path"] is None:
            target["head"], target["version_path"] = host_target(config, script_dir, plugins)
        return target
    if any(target[key] != default for key, default in _TARGET_DEFAULTS.items()):
        raise MigrationError(
            "a plugin's revision gets its head, branch label, dependencies and directory from "
            "the plugin: leave out head, branch_label, depends_on and version_path"
        )
    dirs = owned_history(
        plugins,
        plugin,
        "its tables are in the host's history; write the revision without --plugin",
    )
    assert plugins is not None  # owned_history raised otherwise
    started = bool(branch_heads(script_dir, dirs, plugin))
    return {
        "head": f"{plugin}@head" if started else "base",
        "branch_label": None if started else plugin,
        "depends_on": plugin_depends_on(script_dir, plugins, plugin),
        "version_path": str(dirs[plugin]),
    }
