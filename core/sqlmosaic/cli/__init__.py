"""The ``mosaic`` command line (typer + rich).

Sub-commands live in private modules, each adding itself to :data:`app` through a ``register``
function: ``mosaic plugins`` (:mod:`._plugins`), ``mosaic db ...`` (:mod:`._db`), ``mosaic init``
and ``mosaic plugin new`` (:mod:`._scaffold`).
"""

from __future__ import annotations

import typer

from .._gc import defer_collector_until_plugins_loaded
from . import _db, _plugins, _scaffold

__all__ = ["app", "main"]


def build_app() -> typer.Typer:
    """A fresh Typer application with every sub-command registered."""
    application = typer.Typer(
        name="mosaic",
        help="sqlmosaic: plugins, migrations and database tools.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    _plugins.register(application)
    _db.register(application)
    _scaffold.register(application)
    return application


app = build_app()


def main() -> None:
    """Console-script entry point (the garbage collector waits for the plugins to load: see
    :func:`sqlmosaic._gc.defer_collector_until_plugins_loaded`)."""
    defer_collector_until_plugins_loaded()
    app()
