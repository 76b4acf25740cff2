"""``mosaic db ...``: the host's Alembic migrations (see docs/migrations.md).

Every command takes ``--database-url`` (else ``DATABASE_URL`` / ``MOSAIC_DATABASE_URL``) and
``--config`` (the ``alembic.ini``; it never holds a URL). Printed URLs are always masked.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from rich.markup import escape

from .._exceptions import MigrationError
from ..migrations import (
    AppliedRevision,
    adopt,
    adopt_foreign,
    alembic_config,
    check,
    current,
    orphans,
    squash,
    standalone_config,
)
from ..migrations._branches import (
    at_final_heads,
    final_heads,
    history_dirs,
    owner_of,
    revision_target,
    script_directory,
)
from ..migrations._config import ON_APPLY_KEY, PROCESS_REVISION_KEY
from ..migrations._setup import resolve_plugins
from ._common import UnwrappedConsole, load_settings, reporting_errors
from ._wait import wait_cmd

__all__ = ["register"]

console = UnwrappedConsole(highlight=False, soft_wrap=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Database URL (default: DATABASE_URL / MOSAIC_DATABASE_URL).",
        show_default=False,
    ),
]
ConfigPath = Annotated[Path, typer.Option("--config", "-c", help="Alembic configuration file.")]


def _config(config_path: Path, database_url: str | None) -> tuple[Config, str]:
    settings = load_settings(database_url)
    if config_path == DEFAULT_INI and not config_path.is_file():
        # No host here (a plugin's own repository): the enabled plugins' shipped histories.
        plugins = resolve_plugins(standalone_config(settings=settings))
        if plugins is not None and history_dirs(plugins):
            return standalone_config(
                settings=settings, plugins=plugins, stdout=sys.stdout
            ), settings.masked_url
    cfg = alembic_config(config_path, settings=settings, stdout=sys.stdout)
    return cfg, settings.masked_url


DEFAULT_INI = Path("alembic.ini")


def _databases(config_path: Path, database_url: str | None, revision: str = "heads") -> list[Any]:
    """The databases to run on (``MOSAIC_BINDS``: the primary, then each bind; see
    ``migrations/_binds.py``). A revision only some of them know goes to those."""
    from ..migrations._binds import bind_configs

    cfg, _masked = _config(config_path, database_url)
    found = bind_configs(cfg)
    if len(found) == 1 or revision in {"heads", "head", "base"} or revision.lstrip("+-").isdigit():
        return found
    return [bind for bind in found if _knows(bind.config, revision)] or found


def _knows(cfg: Config, revision: str) -> bool:
    """Whether ``cfg``'s scripts have ``revision``'s revision or branch (``memos@base``: the
    branch ``memos``; ``ae10+1``: ``ae10``)."""
    named = revision.partition("@")[0] if "@" in revision else re.sub(r"[+-]\d+$", "", revision)
    try:
        script_directory(cfg).get_revisions(named)
    except CommandError:
        return False
    return True


def _config_of_plugin(cfg: Config, plugin: str) -> Config:
    """The config of the database holding ``plugin``'s tables (``cfg`` without binds)."""
    from ..migrations._binds import bind_configs

    for bind in bind_configs(cfg):
        plugins = resolve_plugins(bind.config)
        if plugins is not None and plugin in plugins.names:
            return bind.config
    return cfg


def _named(bind: Any, many: bool) -> str:
    return f"{bind.masked_url} ({bind.name})" if many else str(bind.masked_url)


@contextmanager
def _alembic_errors() -> Iterator[None]:
    """Alembic's own errors (unknown revision, ...) as :class:`MigrationError`."""
    try:
        yield
    except CommandError as exc:
        raise MigrationError(_plain(str(exc))) from None


_RELATIVE = re.compile(r"^Relative revision ([+-]?)(\d+) didn't produce (\d+) migrations?$")


def _plain(message: str) -> str:
    """Alembic's sentences that make users guess, said plainly (issue 13)."""
    relative = _RELATIVE.match(message.strip())
    if relative is None:
        return message
    sign, steps = relative[1], relative[2]
    if sign == "-":
        return (
            f"cannot go {steps} revision(s) down: fewer than {steps} revision(s) are applied "
            "(mosaic db downgrade base reverts them all)"
        )
    return (
        f"cannot go {steps} revision(s) up: there are fewer than {steps} newer revision(s) "
        "(mosaic db upgrade heads applies them all)"
    )


def _at(revisions: tuple[str, ...] | list[str]) -> str:
    return ", ".join(revisions) or "base"


def _progress(verb: str) -> Callable[[AppliedRevision], None]:
    def show(step: AppliedRevision) -> None:
        ms = step.seconds * 1000
        message = f"  {escape(step.message)}" if step.message else ""
        console.print(f"  [green]✓[/] {verb} {step.revision}{message} [dim]({ms:.0f} ms)[/]")

    return show


def _migrate(cfg: Config, masked: str, revision: str, *, up: bool) -> None:
    before = asyncio.run(current(cfg))
    if not up and len(before) > 1 and revision.startswith("-") and revision[1:].isdigit():
        # Alembic would pick one of the recorded heads (and warn): name the branch instead.
        scripts = script_directory(cfg)
        dirs = history_dirs(resolve_plugins(cfg))
        choices = ", ".join(
            f"'{(_label(scripts, dirs, rev).strip(' ()') or rev)}@{revision}'" for rev in before
        )
        raise MigrationError(
            f"downgrade {revision} is ambiguous: the database records {len(before)} heads "
            f"({', '.join(before)}); say which branch to step back, e.g. {choices}"
        )
    verb = "upgrade" if up else "downgrade"
    console.print(f"{verb.capitalize()} [bold]{masked}[/] from {_at(before)} to {revision}")
    applied: list[AppliedRevision] = []
    show = _progress("applied" if up else "reverted")

    def on_apply(step: AppliedRevision) -> None:
        applied.append(step)
        show(step)

    cfg.attributes[ON_APPLY_KEY] = on_apply
    with _alembic_errors():
        if up:
            command.upgrade(cfg, revision)
        else:
            command.downgrade(cfg, revision)
    after = asyncio.run(current(cfg))
    if not applied:
        console.print(f"Nothing to do: the database is at {_at(after)}.")
        return
    total = sum(step.seconds for step in applied) * 1000
    console.print(
        f"[bold green]Done:[/] {len(applied)} revision(s) {'applied' if up else 'reverted'} "
        f"in {total:.0f} ms; the database is at {_at(after)}."
    )


def upgrade_cmd(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "heads",
    database_url: DatabaseUrl = None,
    config: ConfigPath = Path("alembic.ini"),
) -> None:
    """Apply migrations up to REVISION (default: heads), in one transaction (per database)."""
    with reporting_errors():
        binds = _databases(config, database_url, revision)
        for bind in binds:
            _migrate(bind.config, _named(bind, len(binds) > 1), revision, up=True)


def downgrade_cmd(
    revision: Annotated[str, typer.Argument(help='Target revision, e.g. "-1" or "base".')],
    database_url: DatabaseUrl = None,
    config: ConfigPath = Path("alembic.ini"),
) -> None:
    """Revert migrations down to REVISION, in one transaction (per database)."""
    with reporting_errors():
        binds = _databases(config, database_url, revision)
        for bind in reversed(binds):
            _migrate(bind.config, _named(bind, len(binds) > 1), revision, up=False)


def revision_cmd(
    message: Annotated[
        str,
        typer.Option(
            "--message", "-m", help='Imperative, short, lowercase: "add due date to task".'
        ),
    ],
    autogenerate: Annotated[
        bool, typer.Option("--autogenerate", help="Compare the models with the database.")
    ] = False,
    head: Annotated[str, typer.Option(help='Parent head (e.g. "blog@head", "base").')] = "head",
    branch_label: Annotated[
        str | None, typer.Option(help="Start a labelled branch (per-plugin history).")
    ] = None,
    depends_on: Annotated[str | None, typer.Option(help="Revision or label required.")] = None,
    version_path: Annotated[str | None, typer.Option(help="Directory for the new file.")] = None,
    plugin: Annotated[
        str | None,
        typer.Option(
            "--plugin",
            help="Write into this plugin's own history (its mosaic_migrations() directory).",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    config: ConfigPath = Path("alembic.ini"),
) -> None:
    """Create a revision file (YYYY_MM_DD_HHMM-<rev>_<slug>.py).

    With --plugin NAME the revision joins NAME's branch (the first one starts it at base,
    labelled NAME), autogenerate diffs only NAME's tables, and depends_on names the current
    head of every history holding tables of a plugin NAME requires. Without it, the revision
    joins the host's history and autogenerate leaves out tables of plugin-owned histories."""
    with reporting_errors():
        if not message.strip():
            raise MigrationError("the revision message is empty; say what it does")
        cfg, _masked = _config(config, database_url)
        if plugin is not None:
            cfg = _config_of_plugin(cfg, plugin)  # MOSAIC_BINDS: compare with its database
        empty: list[bool] = []

        def skip_empty(_context: Any, _revision: Any, directives: list[Any]) -> None:
            if autogenerate and directives and directives[0].upgrade_ops.is_empty():
                directives[:] = []
                empty.append(True)

        cfg.attributes[PROCESS_REVISION_KEY] = skip_empty
        scripts = script_directory(cfg)
        if autogenerate:
            at = asyncio.run(current(cfg))
            if not at_final_heads(scripts, at):
                raise MigrationError(
                    f"autogenerate compares the models with a database at the heads, but it is "
                    f"at {_at(at)} (heads: {_at(final_heads(scripts))}): run "
                    "'mosaic db upgrade' first"
                )
        target = revision_target(
            cfg,
            scripts,
            plugin,
            {
                "head": head,
                "branch_label": branch_label,
                "depends_on": depends_on,
                "version_path": version_path,
            },
        )
        with _alembic_errors():
            script = command.revision(
                cfg, message=message.strip(), autogenerate=autogenerate, **target
            )
        if empty:
            console.print("No differences between the models and the database: nothing written.")
            return
        written = script if isinstance(script, list) else [script]
        for item in written:
            if item is not None:
                console.print(f"Created [bold]{escape(item.path)}[/]")
        if autogenerate:
            console.print("Review it: autogenerate misses renames and data changes.")


def check_cmd(
    strict: Annotated[
        bool, typer.Option("--strict", help="Also fail when there are orphan tables.")
    ] = False,
    database_url: DatabaseUrl = None,
    config: ConfigPath = Path("alembic.ini"),
) -> None:
    """Fail (exit 1) if the models differ from the migrated database; report orphan tables.
    With MOSAIC_BINDS, every database is checked against the models that live there."""
    with reporting_errors():
        binds = _databases(config, database_url)
        failed = False
        for bind in binds:
            failed |= _check_one(bind.config, _named(bind, len(binds) > 1), strict=strict)
        if failed:
            raise typer.Exit(code=1)


def _check_one(cfg: Config, masked: str, *, strict: bool) -> bool:
    """Check one database; print what was found; whether it failed."""
    with _alembic_errors():
        found = asyncio.run(check(cfg))
    plugins = resolve_plugins(cfg)
    orphaned = _report_orphans(cfg, plugins.skipped if plugins is not None else ())
    if found:
        console.print(
            f"[bold red]Drift:[/] {masked} (at heads) differs from the models in "
            f"{len(found)} way(s):"
        )
        for line in found:
            console.print(f"  - {escape(line)}")
        console.print("Write a migration: mosaic db revision --autogenerate -m '...'")
        if any(line.startswith("rename_") for line in found):
            console.print(
                "  mosaic db revision --autogenerate writes the renames too (ALTER ... RENAME "
                "on PostgreSQL, a table rebuild on SQLite), for this backend only."
            )
        return True
    console.print(f"[bold green]OK:[/] the models match the migrations ({masked}).")
    if strict and orphaned:
        console.print("[bold red]--strict:[/] orphan tables present.")
        return True
    return False


def _report_orphans(cfg: Config, skipped: Any) -> list[str]:
    found = asyncio.run(orphans(cfg))
    if not found:
        return found
    console.print(
        f"[yellow]Orphan tables[/] (owned by no enabled plugin; not compared, never dropped): "
        f"{', '.join(found)}"
    )
    if skipped:
        names = ", ".join(f"{s.name} ({s.reason})" for s in skipped)
        console.print(f"  installed but not enabled: {names}")
    console.print(
        "  If a plugin removed one of these models, drop the table in a migration yourself "
        "(op.drop_table): autogenerate never does."
    )
    return found


def current_cmd(
    database_url: DatabaseUrl = None,
    config: ConfigPath = Path("alembic.ini"),
) -> None:
    """Show the revision(s) the database is at (with MOSAIC_BINDS: each database)."""
    with reporting_errors():
        binds = _databases(config, database_url)
        for bind in binds:
            _current_one(bind.config, _named(bind, len(binds) > 1))


def _current_one(cfg: Config, masked: str) -> None:
    at = asyncio.run(current(cfg))
    scripts = script_directory(cfg)
    tips = set(scripts.get_heads())
    dirs = history_dirs(resolve_plugins(cfg))
    console.print(f"Database: {masked}")
    if not at:
        console.print("  base (no revision applied, or not under Alembic)")
    for rev in at:
        console.print(f"  {rev}{_label(scripts, dirs, rev)}{' (head)' if rev in tips else ''}")
    if at and set(at) == set(final_heads(scripts)) and len(tips) > len(at):
        implied = ", ".join(sorted(tips - set(at)))
        console.print(f"  at every head ({implied} applied as a dependency)")


def _label(scripts: Any, dirs: Any, rev: str) -> str:
    try:
        item = scripts.get_revision(rev)
    except CommandError:
        return " (unknown: a disabled or uninstalled plugin's branch?)"
    owner = owner_of(item, dirs) if item is not None else None
    return f" ({owner})" if owner else ""


def history_cmd(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    database_url: DatabaseUrl = None,
    config: ConfigPath = Path("alembic.ini"),
) -> None:
    """List the revisions, newest first (no database access)."""
    with reporting_errors():
        cfg, _masked = _config(config, database_url)
        with _alembic_errors():
            # the composed scripts (as alembic history prints them): squashed branches read
            # the way the runtime reads them
            for item in script_directory(cfg).walk_revisions():
                cfg.print_stdout(
                    item.cmd_format(
                        verbose=verbose,
                        include_branches=True,
                        include_doc=True,
                        include_parents=True,
                    )
                )


def heads_cmd(
    database_url: DatabaseUrl = None,
    config: ConfigPath = Path("alembic.ini"),
) -> None:
    """Show the head revision(s) of the scripts (no database access)."""
    with reporting_errors():
        cfg, _masked = _config(config, database_url)
        with _alembic_errors():
            scripts = script_directory(cfg)
            for item in scripts.get_revisions(scripts.get_heads()):
                assert item is not None
                cfg.print_stdout(
                    item.cmd_format(False, include_branches=True, tree_indicators=False)
                )
            final = final_heads(scripts)
        if set(final) != set(scripts.get_heads()):
            console.print(
                f"'upgrade heads' records {', '.join(final)}; an \"effective head\" is reached "
                "as a dependency of another revision."
            )


def stamp_cmd(
    revision: Annotated[str, typer.Argument(help='Revision to record, e.g. "heads".')],
    purge: Annotated[bool, typer.Option(help="Empty alembic_version first.")] = False,
    database_url: DatabaseUrl = None,
    config: ConfigPath = Path("alembic.ini"),
) -> None:
    """Record REVISION in alembic_version without running any migration."""
    with reporting_errors():
        cfg, masked = _config(config, database_url)
        with _alembic_errors():
            command.stamp(cfg, revision, purge=purge)
        console.print(f"Stamped {masked} at {_at(asyncio.run(current(cfg)))}.")


def sql_cmd(
    revisions: Annotated[
        str | None,
        typer.Argument(help='Range "FROM:TO" (default: base to heads) or a target revision.'),
    ] = None,
    downgrade: Annotated[bool, typer.Option("--downgrade", help="Emit downgrade SQL.")] = False,
    database_url: DatabaseUrl = None,
    config: ConfigPath = Path("alembic.ini"),
) -> None:
    """Print the SQL of a migration range without connecting (offline mode)."""
    with reporting_errors():
        cfg, _masked = _config(config, database_url)
        with _alembic_errors():
            if downgrade:
                if not revisions or ":" not in revisions:
                    raise MigrationError('--downgrade needs a range "FROM:TO", e.g. "head:base"')
                command.downgrade(cfg, revisions, sql=True)
            else:
                command.upgrade(cfg, revisions or "heads", sql=True)


def adopt_cmd(
    from_foreign_history: Annotated[
        bool,
        typer.Option(
            "--from-foreign-history",
            help="The database is under another Alembic history (an application's own "
            "revisions): replace them by sqlmosaic's heads.",
        ),
    ] = False,
    database_url: DatabaseUrl = None,
    config: ConfigPath = Path("alembic.ini"),
) -> None:
    """Stamp a database made outside sqlmosaic's migrations at the heads, if it matches the
    models (names included); nothing is written otherwise."""
    with reporting_errors():
        cfg, masked = _config(config, database_url)
        with _alembic_errors():
            if from_foreign_history:
                done = asyncio.run(adopt_foreign(cfg))
                replaced, stamped = done.replaced, done.stamped
            else:
                replaced, stamped = (), asyncio.run(adopt(cfg))
        was = f" (was {', '.join(replaced)}, of the other history)" if replaced else ""
        console.print(
            f"[bold green]Adopted:[/] {masked} matches the models; stamped at {_at(stamped)}{was}."
        )
        _report_orphans(cfg, ())


def squash_cmd(
    plugin: Annotated[str, typer.Option("--plugin", help="The plugin whose branch to squash.")],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Message of the squashed revision.")
    ] = None,
    database_url: DatabaseUrl = None,
    config: ConfigPath = Path("alembic.ini"),
) -> None:
    """Replace a plugin's branch by one revision; databases on the old chain still upgrade.

    The old revision files move to replaced/ beside the new one: ship them until every
    database is at the squashed revision or later (docs/migrations.md). Verified on scratch
    SQLite databases before anything is kept; the database at --database-url is not touched."""
    with reporting_errors():
        cfg, _masked = _config(config, database_url)
        with _alembic_errors():
            written = asyncio.run(squash(cfg, plugin, message))
        replaced = getattr(written.module, "replaces", ())
        console.print(
            f"Squashed {len(replaced)} revision(s) of {escape(plugin)} into "
            f"[bold]{written.revision}[/]: {escape(written.path)}"
        )
        console.print(
            f"  The replaced files are in {escape(str(Path(written.path).parent / 'replaced'))}: "
            "keep shipping them until every database is at the squashed revision or later."
        )


def diagram_cmd(
    plugin: Annotated[
        str | None,
        typer.Option("--plugin", help="Only this plugin's tables (and those its keys reach)."),
    ] = None,
) -> None:
    """Print the merged schema as a Mermaid erDiagram, grouped by plugin (no database access)."""
    from .._plugins import load_plugins
    from ..migrations._diagram import mermaid_diagram

    with reporting_errors():
        settings = load_settings()
        plugins = load_plugins(allow=settings.plugins, block=settings.blocked_plugins)
        if plugin is not None and plugin not in plugins.names:
            raise MigrationError(
                f"plugin {plugin!r} is not enabled (enabled: {', '.join(plugins.names)})"
            )
        typer.echo(mermaid_diagram(plugins.metadata, plugin), nl=False)


def register(app: typer.Typer) -> None:
    """Add the ``db`` command group to ``app``."""
    db = typer.Typer(
        name="db", help="Database migrations (Alembic, merged plugins).", no_args_is_help=True
    )
    # Relative revisions such as "-1" are arguments, not options.
    relative = {"ignore_unknown_options": True}
    db.command("upgrade", context_settings=relative)(upgrade_cmd)
    db.command("downgrade", context_settings=relative)(downgrade_cmd)
    db.command("revision")(revision_cmd)
    db.command("check")(check_cmd)
    db.command("current")(current_cmd)
    db.command("history")(history_cmd)
    db.command("heads")(heads_cmd)
    db.command("stamp", context_settings=relative)(stamp_cmd)
    db.command("sql", context_settings=relative)(sql_cmd)
    db.command("adopt")(adopt_cmd)
    db.command("squash")(squash_cmd)
    db.command("diagram")(diagram_cmd)
    db.command("wait")(wait_cmd)  # issue 13: cli/_wait.py
    app.add_typer(db, name="db")
