"""Helpers shared by the CLI commands: settings loading and error reporting."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape

from .._exceptions import MosaicError
from .._settings import MosaicSettings
from .._url import mask_password

__all__ = ["UnwrappedConsole", "err_console", "load_settings", "reporting_errors"]

#: Columns when the output is not a terminal: wide enough that nothing is ever wrapped.
UNWRAPPED_WIDTH = 10_000


class UnwrappedConsole(Console):
    """A rich Console that wraps at the terminal's width, and not at all when the output is not
    a terminal (a log, a pipe to grep) and ``COLUMNS`` is unset: rich would wrap at 80."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal and not os.environ.get("COLUMNS"):
            return ConsoleDimensions(UNWRAPPED_WIDTH, size.height)
        return size

    @size.setter
    def size(self, new_size: Any) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


err_console = UnwrappedConsole(stderr=True)


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
