"""``mosaic db wait``: wait until the database answers (containers starting before it)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from .._wait import wait_for_database
from ._common import UnwrappedConsole, load_settings, reporting_errors

__all__ = ["wait_cmd"]

console = UnwrappedConsole(highlight=False, soft_wrap=True)


def wait_cmd(
    timeout: Annotated[
        float, typer.Option(help="Give up after this many seconds (exit code 1).", min=0)
    ] = 60.0,
    interval: Annotated[float, typer.Option(help="Seconds between attempts.", min=0.01)] = 1.0,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Overrides DATABASE_URL / MOSAIC_DATABASE_URL.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Wait until the database answers SELECT 1 (retrying only while it is unreachable)."""
    with reporting_errors():
        settings = load_settings(database_url)
        waited = asyncio.run(wait_for_database(settings, max_wait=timeout, interval=interval))
        console.print(f"Database {settings.masked_url} is up (waited {waited:.1f} s).")
