"""The application factory: ``create_app(mosaic=None)``.

Without an argument it builds a :class:`~sqlmosaic.Mosaic` from the environment
(``DATABASE_URL``, default ``sqlite+aiosqlite:///./mosaic.db``; ``MOSAIC_PLUGINS`` ...). Tests pass
their own (for example one whose session factory is bound to a rolled-back transaction).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from sqlmosaic import Mosaic, __version__
from sqlmosaic.integrations.fastapi import (
    MosaicDep,
    check_database,
    install_exception_handlers,
    mosaic_lifespan,
)

from . import accounts, tasks


def create_app(mosaic: Mosaic | None = None) -> FastAPI:
    """A FastAPI app serving users, teams, projects and tasks from ``mosaic``."""
    host = mosaic if mosaic is not None else Mosaic()
    app = FastAPI(
        title="sqlmosaic example: accounts and tasks",
        version=__version__,
        lifespan=mosaic_lifespan(host),  # start + log plugins and URL; stop + dispose the engine
    )
    install_exception_handlers(app)  # 404 / 409 / 400 / 503 / 500
    app.include_router(accounts.router)
    app.include_router(tasks.router)

    @app.get("/health", tags=["meta"])
    async def health(mosaic: MosaicDep) -> dict[str, Any]:
        await check_database(mosaic)  # database down: 503 with the typed body, not a 500
        return {
            "status": "ok",
            "database": mosaic.settings.masked_url,
            "plugins": {p.name: p.version for p in mosaic.plugins.plugins},
        }

    return app
