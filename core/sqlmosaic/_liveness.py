"""Checkout-time liveness check of pooled PostgreSQL connections, without a round trip per checkout.

SQLAlchemy's ``pool_pre_ping`` pings every connection it hands out; on asyncpg that ping is
``BEGIN`` + ``;`` + ``ROLLBACK``, three round trips before every unit of work (a quarter of a
short read). sqlmosaic's pessimistic check instead runs at checkout (the pool's ``checkout``
event; raising :class:`~sqlalchemy.exc.DisconnectionError` there makes the pool replace the
connection and check out again, as SQLAlchemy documents for custom pessimistic checks):

- a connection the driver already knows is closed (the server restarted, the backend was
  terminated, the network reset it: the event loop saw the socket end while it sat in the pool)
  is replaced, at no cost;
- a connection idle in the pool for longer than ``ping_after`` seconds is pinged first (what
  ``pool_pre_ping`` does, but only then): one that went silent (a firewall dropped it) is replaced.

What is left (the connection broke between the last look and the first statement) is handled
optimistically by the unit of work: a disconnect before COMMIT means the server rolled the
transaction back, so :func:`~sqlmosaic.run_in_transaction` and ``@transactional`` run the unit
once more on a fresh connection (see ``_uow``).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["install_liveness_check"]

#: ``ConnectionPoolEntry.info`` key: ``time.monotonic()`` when the connection went back to the pool
_IDLE_SINCE_KEY = "mosaic_idle_since"


def install_liveness_check(engine: AsyncEngine, *, ping_after: float | None) -> None:
    """Install the checkout check on ``engine``'s pool.

    ``ping_after``: seconds a connection may sit idle before it is pinged at checkout (``0``:
    always, like ``pool_pre_ping``; ``None``: never, only the free closed-socket check).
    """
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE_KEY] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if driver_connection_closed(record.driver_connection):
            raise DisconnectionError("the pooled connection was closed while idle")
        if ping_after is None:
            return
        idle_since = record.info.get(_IDLE_SINCE_KEY)
        if idle_since is None or time.monotonic() - idle_since < ping_after:
            return  # new (just connected) or recently used: no round trip
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the adapter raises its own DBAPI error on a dead socket
            raise DisconnectionError("the pooled connection failed its ping") from exc
        if not alive:
            raise DisconnectionError("the pooled connection failed its ping")


def driver_connection_closed(driver: Any) -> bool:
    """Whether the driver connection knows it is closed (asyncpg ``is_closed()``, psycopg
    ``closed``); no I/O. Unknown drivers: ``False`` (the ping and the retry still apply)."""
    is_closed = getattr(driver, "is_closed", None)
    if callable(is_closed):
        return bool(is_closed())
    return bool(getattr(driver, "closed", False))
