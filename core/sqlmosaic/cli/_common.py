"""Helpers shared by the CLI commands: settings loading and error reporting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from .._exceptions import MosaicError
from .._settings import MosaicSettings
from .._url import mask_password

__all__ = ["err_console", "load_settings", "reporting_errors"]

err_console = Console(stderr=True)


def load_settings(database_url: str | None = None) -> MosaicSettings:
    """Settings from the environment, ``--database-url`` overriding ``DATABASE_URL``."""
    if database_url:
        return MosaicSettings.load(database_url=database_url)
    return MosaicSettings.load()


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn a :class:`MosaicError` into a one-line message (password masked) and exit code 1."""
    try:
        yield
    except MosaicError as exc:
        err_console.print(f"[bold red]error:[/] {escape(mask_password(str(exc)))}", highlight=False)
        raise typer.Exit(code=1) from None
