"""A server that stopped answering: the caller's bound is ``command_timeout``, teardown included.

asyncpg's ``command_timeout`` raises a bare ``TimeoutError`` (not a DBAPI error). SQLAlchemy
counts it as an "exit exception", like a cancellation, and invalidates the connection, but its
asyncpg adapter then closes that connection "gracefully": it waits (up to 2 s) for the pending
cancel request and for the server to hang up, from a server that will never answer. The caller
saw the error after ``command_timeout`` + 2 s (issue 12: 4.0 s for 2 s), and a unit of work let
the bare ``TimeoutError`` out untranslated.

Installed on every asyncpg engine (see ``_engine``):

- an invalidated connection (a disconnect, a cancelled statement, a timed-out one) gets
  :data:`TEARDOWN_GRACE` (0.25 s) instead of 2 s to deliver its pending cancel request and say
  goodbye, then its socket is aborted (the server rolls an open transaction back when it sees
  the socket end). Aborting at once was tried: the cancel request never left, and a cancelled
  statement kept running on the server with its locks (``tests/core/test_uow.py``);
- with a ``command_timeout``, a ``handle_error`` listener replaces the bare ``TimeoutError`` of a
  statement by :class:`DatabaseUnavailableError` at once, also inside a unit of work's block
  (where only SQLAlchemy errors are translated: a ``TimeoutError`` of the caller's own
  ``asyncio.timeout()`` must stay one). The timed-out unit is not run again: a second attempt
  would double the bound the caller sees. The listener switches on SQLAlchemy's per-statement
  event dispatch, so it is installed only when the timeout is set (which already arms a timer
  per statement).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_
from sqlalchemy.util.concurrency import in_greenlet

from ._exceptions import DatabaseUnavailableError

__all__ = ["TEARDOWN_GRACE", "install_asyncpg_teardown"]

#: Seconds a discarded asyncpg connection gets to deliver its pending cancel request and say
#: goodbye (asyncpg's graceful close); then its socket is aborted. SQLAlchemy allows 2 s.
TEARDOWN_GRACE = 0.25


def install_asyncpg_teardown(engine: AsyncEngine, *, command_timeout: float | None) -> None:
    """Terminate invalidated connections at once; with ``command_timeout``, a timed-out
    statement discards its connection and raises :class:`DatabaseUnavailableError`."""
    sync_engine = engine.sync_engine
    # An instance attribute of this engine's own dialect object; the class is untouched.
    sync_engine.dialect.do_terminate = _terminate  # type: ignore[method-assign]
    if command_timeout is None:
        return

    def timed_out(context: ExceptionContext) -> BaseException | None:
        if not isinstance(context.original_exception, TimeoutError):
            return None
        # discard it (its protocol state is unknown); SQLAlchemy already does so for a
        # TimeoutError, and only this connection: a slow statement says nothing about the others
        context.is_disconnect = True
        if context.connection is None:  # while connecting (connect_timeout)
            return DatabaseUnavailableError("timed out connecting to the database")
        return DatabaseUnavailableError(
            f"the database did not answer in time (command_timeout {command_timeout:g} s)"
        )

    event.listen(sync_engine, "handle_error", timed_out)


def _terminate(dbapi_connection: Any) -> None:
    """``Dialect.do_terminate``: asyncpg's own close, but bounded by :data:`TEARDOWN_GRACE`.

    The close first delivers a pending cancel request (a statement that timed out or whose task
    was cancelled is still running on the server, holding its locks, until the server hears of
    it: aborting at once would leave it running) and says goodbye; a healthy server answers
    within milliseconds. A server that does not answer gets the socket aborted after the grace.
    """
    raw = getattr(dbapi_connection, "_connection", None)
    if raw is None or not in_greenlet():  # not SQLAlchemy's asyncpg adapter, or gc cleanup
        dbapi_connection.terminate()
        return
    try:
        await_(asyncio.shield(raw.close(timeout=TEARDOWN_GRACE)))
    except (Exception, asyncio.CancelledError) as exc:
        raw.terminate()  # asyncpg aborted it already; this also ends its pending tasks
        if isinstance(exc, asyncio.CancelledError):
            raise  # our own task was cancelled meanwhile: the connection is gone, go on
