"""``python -m examples.fastapi_app``: serve the example with uvicorn.

``HOST`` (default 127.0.0.1) and ``PORT`` (default 8000) choose the address; ``DATABASE_URL``
the database. sqlmosaic's own log lines (plugins enabled, engine created / disposed) are shown
next to uvicorn's. Ctrl-C (SIGINT) or SIGTERM stops it cleanly: in-flight requests finish, the
lifespan stops the host and disposes the engine.

``MOSAIC_ASYNCIO_DEBUG=1`` (or ``PYTHONASYNCIODEBUG=1``) runs the server's event loop in asyncio
debug mode (slow callbacks, never-awaited coroutines and unclosed resources are logged):
``uvicorn.run`` would ignore ``PYTHONASYNCIODEBUG``, as its runner passes ``debug=False``, so the
server is run with ``asyncio.run(server.serve(), debug=...)`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import sys
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG


def log_config() -> dict[str, Any]:
    """uvicorn's logging config plus the ``sqlmosaic`` and ``examples`` loggers at INFO."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["named"] = {
        "()": "uvicorn.logging.DefaultFormatter",
        "fmt": "%(levelprefix)s %(name)s: %(message)s",
    }
    config["handlers"]["named"] = {
        "formatter": "named",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    for name in ("sqlmosaic", "examples"):
        config["loggers"][name] = {"handlers": ["named"], "level": "INFO", "propagate": False}
    return config


_TRUE = {"1", "true", "yes", "on"}


def asyncio_debug() -> bool:
    """Whether ``MOSAIC_ASYNCIO_DEBUG`` or ``PYTHONASYNCIODEBUG`` asks for debug mode."""
    for name in ("MOSAIC_ASYNCIO_DEBUG", "PYTHONASYNCIODEBUG"):
        if os.environ.get(name, "").strip().lower() in _TRUE:
            return True
    return False


async def _serve(server: uvicorn.Server) -> None:
    if asyncio.get_running_loop().get_debug():
        logging.getLogger("examples.fastapi_app").info("asyncio debug mode is on")
    await server.serve()


def main() -> int:
    port_text = os.environ.get("PORT", "8000")
    try:
        port = int(port_text)
    except ValueError:
        print(f"PORT must be a number, got {port_text!r}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        "examples.fastapi_app:create_app",
        factory=True,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=port,
        log_config=log_config(),
        lifespan="on",  # a failing startup (bad plugin, unreachable database) stops the server
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the SIGINT it handled once it has stopped: that is the normal exit
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(server), debug=asyncio_debug())
    if not server.started:  # what uvicorn.run does: a failed startup exits with status 3
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
