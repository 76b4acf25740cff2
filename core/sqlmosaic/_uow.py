"""Units of work: the service layer owns commit and rollback; repositories never commit.

- ``async with transaction(session):`` commits on success and rolls back on any exception
  (cancellation included), then re-raises. Inside another ``transaction`` on the same session it
  becomes a SAVEPOINT, so an inner failure that the outer code catches undoes only the inner work.
- ``@transactional`` does the same around a service method that receives a session (a parameter
  named ``session``, or ``self.session``), and can retry the WHOLE unit on serialization
  failures and deadlocks with capped exponential backoff and full jitter.
- :func:`run_in_transaction` runs a callable in a fresh session per attempt (the retry-safe form).
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

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ._engine import SQLITE_BEGIN_OPTION
from ._exceptions import ConfigurationError, RetriesExhaustedError
from ._translate import is_retryable, translate_error

__all__ = ["IsolationLevel", "Retry", "run_in_transaction", "transaction", "transactional"]

P = ParamSpec("P")
R = TypeVar("R")

IsolationLevel = Literal["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE", "AUTOCOMMIT"]
_DEPTH_KEY = "mosaic_uow_depth"
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
    re-raise. Nested use (inside another ``transaction`` on the same session): a SAVEPOINT.
    ``isolation_level`` and ``read_only`` apply to the outermost transaction only and must be
    set before the session has started a transaction.
    """
    depth = _depth(session)
    session.info[_DEPTH_KEY] = depth + 1
    try:
        if depth == 0:
            query_only = await _begin(session, isolation_level=isolation_level, read_only=read_only)
            try:
                yield session
                if query_only:
                    await _query_only_off(session)
                await session.commit()
            except BaseException as exc:
                if query_only and session.in_transaction():
                    await _query_only_off(session)
                await _rollback(session)
                _raise_translated(exc)
                raise
        else:
            if isolation_level is not None or read_only:
                raise ConfigurationError(
                    "isolation_level/read_only can only be set on the outermost unit of work",
                    setting="isolation_level",
                )
            savepoint = await session.begin_nested()
            try:
                yield session
                if savepoint.is_active:
                    await savepoint.commit()
            except BaseException as exc:
                # Also when a failed flush has already deactivated the savepoint: the session
                # stays unusable ("PendingRollbackError") until it is rolled back explicitly.
                await savepoint.rollback()
                _raise_translated(exc)
                raise
    finally:
        session.info[_DEPTH_KEY] = depth


async def _begin(
    session: AsyncSession, *, isolation_level: IsolationLevel | None, read_only: bool
) -> bool:
    """Begin the outermost transaction; return True when SQLite's query_only must be undone."""
    if session.in_transaction():
        if isolation_level is not None or read_only:
            raise ConfigurationError(
                "isolation_level/read_only must be set before the session begins a transaction",
                setting="isolation_level",
            )
        return False
    dialect = session.bind.dialect.name if session.bind is not None else ""
    options: dict[str, Any] = {}
    if isolation_level is not None:
        options["isolation_level"] = isolation_level
    if dialect == "sqlite":
        options[SQLITE_BEGIN_OPTION] = "DEFERRED" if read_only else "IMMEDIATE"
    elif read_only and dialect == "postgresql":
        options["postgresql_readonly"] = True
    connection = await session.connection(execution_options=options or None)
    if read_only and dialect == "sqlite":
        await connection.exec_driver_sql("PRAGMA query_only=ON")
        return True
    return False


async def _query_only_off(session: AsyncSession) -> None:
    connection = await session.connection()
    await connection.exec_driver_sql("PRAGMA query_only=OFF")


async def _rollback(session: AsyncSession) -> None:
    # A cancelled task may be cancelled again while it rolls back; finish the rollback anyway.
    rollback = asyncio.ensure_future(session.rollback())
    try:
        await asyncio.shield(rollback)
    except asyncio.CancelledError:
        await rollback
        raise


def _raise_translated(exc: BaseException) -> None:
    if isinstance(exc, Exception):
        translated = translate_error(exc)
        if translated is not None and translated is not exc:
            raise translated from exc


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
            policy = retry if retry is not None and _depth(session) == 0 else Retry(attempts=1)

            async def attempt() -> R:
                async with transaction(
                    session, isolation_level=isolation_level, read_only=read_only
                ):
                    return await fn(*args, **kwargs)

            return await _with_retry(attempt, policy, fn.__qualname__)

        return wrapper

    if func is not None:
        return decorate(func)
    return decorate


async def _with_retry(attempt: Callable[[], Awaitable[R]], policy: Retry, name: str) -> R:
    for number in range(1, policy.attempts + 1):
        try:
            return await attempt()
        except Exception as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
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
    raise AssertionError("unreachable")  # pragma: no cover


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
