"""``python -m examples.fastapi_app``: serve the example with uvicorn.

``HOST`` (default 127.0.0.1) and ``PORT`` (default 8000) choose the address; ``DATABASE_URL``
the database. sqlmosaic's own log lines (plugins enabled, engine created / disposed) are shown
next to uvicorn's. Ctrl-C (SIGINT) or SIGTERM stops it cleanly: in-flight requests finish, the
lifespan stops the host and disposes the engine.
"""

from __future__ import annotations

import copy
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


def main() -> int:
    port_text = os.environ.get("PORT", "8000")
    try:
        port = int(port_text)
    except ValueError:
        print(f"PORT must be a number, got {port_text!r}", file=sys.stderr)
        return 2
    uvicorn.run(
        "examples.fastapi_app:create_app",
        factory=True,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=port,
        log_config=log_config(),
        lifespan="on",  # a failing startup (bad plugin, unreachable database) stops the server
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
