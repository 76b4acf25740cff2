"""``mosaic plugins``: which plugins this host loads, in which order, and what they add.

Honours ``MOSAIC_PLUGINS`` (allowlist) and ``MOSAIC_BLOCKED_PLUGINS`` exactly as a host does: it
runs the same discovery and validation (no database connection), so a plugin that would stop
the host at startup makes this command fail with the same message, naming the plugin.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .._exceptions import MosaicError
from .._host import Mosaic
from .._plugins import PluginSet
from .._settings import MosaicSettings
from .._url import mask_password
from ._common import UnwrappedConsole, load_settings, reporting_errors

__all__ = ["describe_plugins", "register"]

#: How a skipped plugin's reason is shown (the status column / ``"status"`` key).
_SKIPPED_STATUS = {"blocked": "blocked", "not in allowlist": "disabled"}
_SKIPPED_WHY = {
    "blocked": "listed in MOSAIC_BLOCKED_PLUGINS",
    "not in allowlist": "not listed in MOSAIC_PLUGINS",
}


def describe_plugins(plugins: PluginSet, settings: MosaicSettings) -> dict[str, Any]:
    """A JSON-ready description: enabled plugins in load order, then skipped ones by name."""
    entries: list[dict[str, Any]] = []
    for order, info in enumerate(plugins.plugins, start=1):
        entries.append(
            {
                "name": info.name,
                "status": "enabled",
                "order": order,
                "version": info.version,
                "source": info.source,
                "requires": list(info.requires),
                "tables": sorted(info.tables),
                "repositories": sorted(
                    key for key, cls in plugins.repositories.items() if cls in info.repositories
                ),
            }
        )
    for skipped in plugins.skipped:
        entries.append(
            {
                "name": skipped.name,
                "status": _SKIPPED_STATUS[skipped.reason],
                "reason": _SKIPPED_WHY[skipped.reason],
                "version": skipped.version,
            }
        )
    return {
        "allowlist": settings.plugins,
        "blocklist": list(settings.blocked_plugins),
        "plugins": entries,
    }


def _render(data: dict[str, Any], console: Console) -> None:
    table = Table(title="sqlmosaic plugins", title_justify="left")
    table.add_column("#", justify="right")
    for header in ("plugin", "version", "status", "requires", "tables", "repositories"):
        table.add_column(header, overflow="fold")
    for entry in data["plugins"]:
        if entry["status"] == "enabled":
            table.add_row(
                str(entry["order"]),
                entry["name"],
                entry["version"] or "-",
                "[green]enabled[/]",
                ", ".join(entry["requires"]) or "-",
                "\n".join(entry["tables"]) or "-",
                "\n".join(entry["repositories"]) or "-",
            )
        else:
            table.add_row(
                "-",
                entry["name"],
                entry["version"] or "-",
                f"[yellow]{entry['status']}[/]",
                "",
                "",
                "",
            )
    console.print(table)
    allow = data["allowlist"]
    console.print(
        "allowlist (MOSAIC_PLUGINS): "
        + (", ".join(allow) if allow is not None else "not set, every installed plugin loads"),
        highlight=False,
    )
    console.print(
        f"blocklist (MOSAIC_BLOCKED_PLUGINS): {', '.join(data['blocklist']) or 'empty'}",
        highlight=False,
    )


def plugins_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON document instead of a table.")
    ] = False,
) -> None:
    """List plugins: enabled ones in load order (version, dependencies, tables,
    repositories), then disabled and blocked ones."""
    try:
        settings = load_settings()
        plugins = Mosaic(settings).load()
    except MosaicError as exc:
        if as_json:  # a script reading --json gets a JSON document on failure too
            error = {"error": type(exc).__name__, "detail": mask_password(str(exc))}
            typer.echo(json.dumps(error, indent=2))
        with reporting_errors():  # the one-line message on stderr, exit code 1
            raise
    data = describe_plugins(plugins, settings)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        _render(data, UnwrappedConsole())


def register(app: typer.Typer) -> None:
    """Add ``mosaic plugins`` to ``app``."""
    app.command("plugins")(plugins_command)
