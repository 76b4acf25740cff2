"""Units of work: the service layer owns commit and rollback; repositories never commit.

- ``async with transaction(session):`` commits on success and rolls back on any exception
  (cancellation included), then re-raises. Inside another ``transaction`` on the same session it
  becomes a SAVEPOINT, so an inner failure that the outer code catches undoes only the inner work.
- ``@transactional`` does the same around a service method that receives a session (a parameter
  named ``session``, or ``self.session``), and can retry the WHOLE unit on serialization
  failures and deadlocks with capped exponential backoff and full jitter.
- :func:`run_in_transaction` runs a callable in a fresh session per attempt (the retry-safe form).
- Both (outermost only) also run the unit once more, whatever the policy, when its database
  connection broke before COMMIT was sent (the server rolled it all back): optimistic disconnect
  handling, the counterpart of the pool's checkout check (``_liveness``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar, overload

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSessionTransaction, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ._binds import begin_binds_as, refuse_bind_writes
from ._engine import SQLITE_BEGIN_OPTION
from ._exceptions import (
    CommitOutcomeUnknownError,
    ConfigurationError,
    DatabaseUnavailableError,
    RetriesExhaustedError,
)
from ._translate import is_retryable, translate_error

__all__ = [
    "AFTER_WRITE_KEY",
    "IsolationLevel",
    "Retry",
    "run_in_transaction",
    "transaction",
    "transactional",
]

P = ParamSpec("P")
R = TypeVar("R")

IsolationLevel = Literal["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE", "AUTOCOMMIT"]
_DEPTH_KEY = "mosaic_uow_depth"
#: Session ``info`` key: an async callable run after an outermost writing unit has committed
#: (read replicas: remember the commit's WAL position for read-your-writes).
AFTER_WRITE_KEY = "mosaic_after_write"
_log = logging.getLogger("sqlmosaic.uow")


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry policy for a whole unit of work.

    ``attempts`` counts the first try. The delay before attempt ``n`` (``n >= 2``) is a random
    value in ``[0, min(max_delay, base_delay * 2 ** (n - 2))]`` (full jitter).
    """

    attempts: int = 5
    base_delay: float = 0.01
    max_delay: float = 1.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigurationError("Retry.attempts must be at least 1", setting="attempts")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ConfigurationError("Retry delays must not be negative", setting="base_delay")

    def delay(self, attempt: int) -> float:
        """Seconds to sleep before ``attempt`` (2-based)."""
        cap = min(self.max_delay, self.base_delay * (2 ** max(attempt - 2, 0)))
        return random.uniform(0, cap)


def _depth(session: AsyncSession) -> int:
    value = session.info.get(_DEPTH_KEY, 0)
    return value if isinstance(value, int) else 0


@asynccontextmanager
async def transaction(
    session: AsyncSession,
    *,
    isolation_level: IsolationLevel | None = None,
    read_only: bool = False,
) -> AsyncIterator[AsyncSession]:
    """Run the block as one unit of work on ``session``.

    Outermost use: commit on success, rollback on any exception (``CancelledError`` included),
    re-raise (database errors translated to sqlmosaic errors). Nested use (inside another
    ``transaction`` on the same session): a SAVEPOINT. ``isolation_level`` and ``read_only``
    apply to the outermost transaction only and must be set before the session has started a
    transaction.

    A session bound to a connection that is already inside a transaction (the test plugin's
    isolated session, ``join_transaction_mode="create_savepoint"``) cannot change the isolation
    level, so ``isolation_level`` is not applied there (logged); ``read_only`` is still enforced.
    """
    depth = _depth(session)
    session.info[_DEPTH_KEY] = depth + 1
    try:
        if depth == 0:
            if session.in_transaction() and isolation_level is not None:
                raise ConfigurationError(
                    "isolation_level must be set before the session begins a transaction",
                    setting="isolation_level",
                )
            if session.in_transaction() and read_only and not session.sync_session._is_clean():
                raise ConfigurationError(
                    "read_only: the session has pending changes; flush or commit them first",
                    setting="read_only",
                )
            begun = _Begun()
            in_block = committing = False
            try:
                await _begin(session, begun, isolation_level=isolation_level, read_only=read_only)
                in_block = True
                yield session
                in_block = False
                await _end_read_only(begun)
                if not session.sync_session._is_clean():
                    await session.flush()  # a failure here is known: nothing was committed
                committing = True
                await session.commit()
            except BaseException as exc:
                await _shielded(_abort(session, begun))
                if committing:
                    _raise_if_outcome_unknown(exc)
                _raise_translated(exc, own_call=not in_block)
                raise
            after_write = session.info.get(AFTER_WRITE_KEY)
            if after_write is not None and not read_only:
                await after_write()
        else:
            if isolation_level is not None or read_only:
                raise ConfigurationError(
                    "isolation_level/read_only can only be set on the outermost unit of work",
                    setting="isolation_level",
                )
            try:
                savepoint = await session.begin_nested()
            except Exception as exc:
                _raise_translated(exc)
                raise
            in_block = True
            try:
                yield session
                in_block = False
                if savepoint.is_active:
                    await savepoint.commit()
            except BaseException as exc:
                # Also when a failed flush has already deactivated the savepoint: the session
                # stays unusable ("PendingRollbackError") until it is rolled back explicitly.
                await _shielded(savepoint.rollback())
                _raise_translated(exc, own_call=not in_block)
                raise
    finally:
        session.info[_DEPTH_KEY] = depth


@dataclass(slots=True)
class _Begun:
    """What the end of an outermost unit of work must undo."""

    #: SQLite: the driver connection whose ``PRAGMA query_only`` must be switched off again.
    query_only: Any = None
    #: PostgreSQL, joined session: the savepoint made read-only; rolled back at the end.
    read_only_savepoint: AsyncSessionTransaction | None = None


async def _begin(
    session: AsyncSession,
    begun: _Begun,
    *,
    isolation_level: IsolationLevel | None,
    read_only: bool,
) -> None:
    """Begin the outermost transaction; record in ``begun`` what the end must undo."""
    bind = session.bind
    dialect = bind.dialect.name if bind is not None else ""
    joined = isinstance(bind, AsyncConnection) and bind.in_transaction()
    options: dict[str, Any] = {}
    if isolation_level is not None:
        if joined:
            _log.info(
                "isolation_level=%s not applied: the session joins an outer transaction",
                isolation_level,
            )
        else:
            options["isolation_level"] = isolation_level
    if dialect == "sqlite":
        options[SQLITE_BEGIN_OPTION] = "DEFERRED" if read_only else "IMMEDIATE"
    elif read_only and dialect == "postgresql" and not joined:
        options["postgresql_readonly"] = True
    if session.in_transaction():
        # Already begun, e.g. a request's dependency read through this session first (the
        # ordinary endpoint pattern): too late for SET TRANSACTION on the connections it has,
        # but read_only still holds, on the primary and on every bind, and a bind that joins
        # from now on begins as the unit's own would.
        begin_binds_as(session.sync_session, options)
        if read_only:
            await _read_only_from_now_on(session, begun)
            refuse_bind_writes(session.sync_session)
        return
    if not options and not read_only:
        # Nothing to set up front (PostgreSQL, default isolation): the session begins with its
        # first statement, as it would anyway; skips one greenlet switch per unit of work.
        return
    connection = await session.connection(execution_options=options or None)
    if not read_only:
        return
    if dialect == "sqlite":
        raw = await connection.get_raw_connection()
        await connection.exec_driver_sql("PRAGMA query_only=ON")
        begun.query_only = raw.driver_connection
    elif dialect == "postgresql" and joined:
        # The outer transaction cannot become read-only for good: make a savepoint read-only
        # (allowed at any time) and roll it back at the end, which also undoes the setting.
        begun.read_only_savepoint = await session.begin_nested()
        await connection.exec_driver_sql("SET TRANSACTION READ ONLY")


async def _read_only_from_now_on(session: AsyncSession, begun: _Begun) -> None:
    """Make an already begun transaction refuse writes until :func:`_end_read_only`."""
    connection = await session.connection()
    dialect = connection.dialect.name
    if dialect == "sqlite":
        raw = await connection.get_raw_connection()
        await connection.exec_driver_sql("PRAGMA query_only=ON")
        begun.query_only = raw.driver_connection
    elif dialect == "postgresql":
        # A savepoint can be made read-only at any time; rolling it back at the end also
        # undoes the setting (the reads before it stay in the caller's transaction).
        begun.read_only_savepoint = await session.begin_nested()
        await connection.exec_driver_sql("SET TRANSACTION READ ONLY")


async def _end_read_only(begun: _Begun) -> None:
    """Undo what :func:`_begin` did for ``read_only`` (idempotent; never raises for SQLite).

    SQLite's ``query_only`` belongs to the connection, not the transaction: left on, the pooled
    connection would refuse every later write. It is reset through the driver connection, which
    works whatever state a failed flush left the session in.
    """
    driver, begun.query_only = begun.query_only, None
    if driver is not None:
        # shielded: a cancellation arriving now must not leave the pooled connection read-only
        await _shielded(_reset_query_only(driver))
    savepoint, begun.read_only_savepoint = begun.read_only_savepoint, None
    if savepoint is not None and savepoint.is_active:
        await savepoint.rollback()


async def _reset_query_only(driver: Any) -> None:
    try:
        cursor = await driver.execute("PRAGMA query_only=OFF")
        await cursor.close()
    except ValueError:
        # aiosqlite's "no active connection": SQLAlchemy closed the connection when a statement
        # was cancelled; a closed connection leaves the pool, there is nothing to reset
        _log.debug("PRAGMA query_only not reset: the SQLite connection is already closed")
    except Exception:  # pragma: no cover - a broken connection is discarded by the pool
        _log.warning("could not reset PRAGMA query_only on a SQLite connection")


async def _shielded(awaitable: Awaitable[Any]) -> None:
    """Finish ``awaitable`` even when the task is cancelled again meanwhile, then re-raise."""
    future = asyncio.ensure_future(awaitable)
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            # anyio (Starlette, FastAPI) re-delivers cancellation on every loop iteration:
            # keep waiting until the rollback has finished, then re-raise once.
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    future.result()


async def _abort(session: AsyncSession, begun: _Begun) -> None:
    """Undo the outermost unit: one shielded step, so a cancellation cannot stop half-way."""
    try:
        await _end_read_only(begun)
    finally:
        await session.rollback()


def _raise_translated(exc: BaseException, *, own_call: bool = True) -> None:
    """Raise the sqlmosaic error for ``exc``.

    ``own_call``: raised by the unit of work's own BEGIN/COMMIT/SAVEPOINT, where a bare
    ``TimeoutError`` or ``OSError`` can only come from the database. From the user's block only
    SQLAlchemy errors are translated: an ``asyncio.timeout()`` around an HTTP call inside a unit
    of work must stay a ``TimeoutError``.
    """
    if isinstance(exc, Exception) and (own_call or isinstance(exc, sa_exc.SQLAlchemyError)):
        translated = translate_error(exc)
        if translated is not None and translated is not exc:
            raise translated from exc


def _raise_if_outcome_unknown(exc: BaseException) -> None:
    """COMMIT was sent (or being sent) and the connection broke or timed out: the server may
    have committed. Say so, instead of "unavailable" (which means: not applied, retry)."""
    if not isinstance(exc, Exception) or is_retryable(exc):
        return  # a serialization failure / SQLite busy at COMMIT: known not committed
    translated = translate_error(exc)
    if isinstance(translated, DatabaseUnavailableError):
        raise CommitOutcomeUnknownError(
            "the database connection was lost while committing: the unit of work may or may "
            "not have been applied (retry only an idempotent write)"
        ) from exc


def _find_session(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    bound = inspect.signature(func).bind_partial(*args, **kwargs)
    session = bound.arguments.get("session")
    if session is None and "self" in bound.arguments:
        session = getattr(bound.arguments["self"], "session", None)
    if not isinstance(session, AsyncSession):
        raise ConfigurationError(
            f"@transactional {func.__qualname__} needs an AsyncSession: pass a 'session' "
            "argument or give the instance a 'session' attribute",
            setting="session",
        )
    return session


@overload
def transactional(func: Callable[P, Awaitable[R]], /) -> Callable[P, Awaitable[R]]: ...


@overload
def transactional(
    *,
    retry: Retry | None = None,
    isolation_level: IsolationLevel | None = None,
    read_only: bool = False,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]: ...


def transactional(
    func: Callable[P, Awaitable[R]] | None = None,
    /,
    *,
    retry: Retry | None = None,
    isolation_level: IsolationLevel | None = None,
    read_only: bool = False,
) -> Any:
    """Decorate a service coroutine so that it runs as one unit of work.

    Use bare (``@transactional``) or configured (``@transactional(retry=Retry())``). Retries apply
    only at the outermost level: a retryable failure inside a nested unit propagates to the
    outermost one, which rolls back and runs the whole method again.
    """

    def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            session: AsyncSession = _find_session(fn, args, kwargs)
            outermost = _depth(session) == 0
            policy = retry if retry is not None and outermost else Retry(attempts=1)

            async def attempt() -> R:
                async with transaction(
                    session, isolation_level=isolation_level, read_only=read_only
                ):
                    return await fn(*args, **kwargs)

            return await _with_retry(attempt, policy, fn.__qualname__, reconnect=outermost)

        return wrapper

    if func is not None:
        return decorate(func)
    return decorate


async def _with_retry(
    attempt: Callable[[], Awaitable[R]], policy: Retry, name: str, *, reconnect: bool = True
) -> R:
    reconnected = not reconnect
    number = 1
    while number <= policy.attempts:
        try:
            return await attempt()
        except Exception as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            if not reconnected and _lost_before_commit(exc, cause):
                # optimistic disconnect handling: the server rolled the transaction back when
                # the connection broke, so nothing of this attempt is in the database; the pool
                # has dropped the connection (and every older one): run the unit once more
                reconnected = True
                _log.info("retrying %s once: its database connection was lost", name)
                continue
            if not is_retryable(cause):
                raise
            if number == policy.attempts:
                if policy.attempts == 1:
                    raise
                raise RetriesExhaustedError(
                    f"{name} failed with a retryable error on all {policy.attempts} attempts",
                    attempts=policy.attempts,
                ) from exc
            delay = policy.delay(number + 1)
            _log.info(
                "retrying %s (attempt %d of %d) in %.3fs", name, number + 1, policy.attempts, delay
            )
            await asyncio.sleep(delay)
            number += 1
    raise AssertionError("unreachable")  # pragma: no cover


def _lost_before_commit(exc: BaseException, cause: BaseException) -> bool:
    """The unit failed because its connection broke, and COMMIT had not been sent."""
    if isinstance(exc, CommitOutcomeUnknownError):
        return False
    return isinstance(cause, sa_exc.DBAPIError) and bool(cause.connection_invalidated)


async def run_in_transaction(
    session_factory: async_sessionmaker[AsyncSession],
    func: Callable[[AsyncSession], Awaitable[R]],
    *,
    retry: Retry | None = None,
    isolation_level: IsolationLevel | None = None,
    read_only: bool = False,
) -> R:
    """Run ``func(session)`` as a unit of work in a fresh session, once per attempt."""

    async def attempt() -> R:
        async with (
            session_factory() as session,
            transaction(session, isolation_level=isolation_level, read_only=read_only),
        ):
            return await func(session)

    name = getattr(func, "__qualname__", repr(func))
    return await _with_retry(attempt, retry or Retry(attempts=1), name)
