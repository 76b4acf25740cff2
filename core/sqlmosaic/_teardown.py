"""A server that stopped answering: the caller's bound is ``command_timeout``, teardown included.

asyncpg's ``command_timeout`` raises a bare ``TimeoutError`` (not a DBAPI error). SQLAlchemy
counts it as an "exit exception", like a cancellation, and invalidates the connection, but its
asyncpg adapter then closes that connection "gracefully": it waits (up to 2 s) for the pending
cancel request and for the server to hang up, from a server that will never answer. The caller
saw the error after ``command_timeout`` + 2 s (issue 12: 4.0 s for 2 s), and a unit of work let
the bare ``TimeoutError`` out untranslated.

Installed on every asyncpg engine (see ``_engine``):

- an invalidated connection (a disconnect, a cancelled statement, a timed-out one) is
  *terminated*: its socket is aborted and nothing is waited for (the server rolls an open
  transaction back when it sees the socket end); a cancelled statement on a hung server also
  gave up 2 s later before;
- with a ``command_timeout``, a ``handle_error`` listener replaces the bare ``TimeoutError`` of a
  statement by :class:`DatabaseUnavailableError` at once, also inside a unit of work's block
  (where only SQLAlchemy errors are translated: a ``TimeoutError`` of the caller's own
  ``asyncio.timeout()`` must stay one). The timed-out unit is not run again: a second attempt
  would double the bound the caller sees. The listener switches on SQLAlchemy's per-statement
  event dispatch, so it is installed only when the timeout is set (which already arms a timer
  per statement).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from ._exceptions import DatabaseUnavailableError

__all__ = ["install_asyncpg_teardown"]


def install_asyncpg_teardown(engine: AsyncEngine, *, command_timeout: float | None) -> None:
    """Terminate invalidated connections at once; with ``command_timeout``, a timed-out
    statement discards its connection and raises :class:`DatabaseUnavailableError`."""
    sync_engine = engine.sync_engine
    # An instance attribute of this engine's own dialect object; the class is untouched.
    sync_engine.dialect.do_terminate = _abort_socket  # type: ignore[method-assign]
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


def _abort_socket(dbapi_connection: Any) -> None:
    """``Dialect.do_terminate``: abort the asyncpg connection's socket, no goodbye."""
    raw = getattr(dbapi_connection, "_connection", None)
    terminate = getattr(raw, "terminate", None)
    if callable(terminate):
        terminate()  # asyncpg: transport.abort(), cancels its pending cancel requests
    else:  # pragma: no cover - not SQLAlchemy's asyncpg adapter
        dbapi_connection.terminate()
