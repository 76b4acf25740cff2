"""The repository's error boundary: every public coroutine of a repository goes through
:func:`_translated`, so no SQLAlchemy or driver error leaves it untranslated.

Also typed: a value SQLAlchemy or the driver could not bind (InvalidQueryError) and any other
SQLAlchemy error (RepositoryError). A failed flush's ``PendingRollbackError`` stays as it is
(the session must be rolled back, as after any failed flush), and so do exceptions that a
subclass's own code raises on purpose (a ``KeyError`` of a custom query)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from sqlalchemy import exc as sa_exc

from ._exceptions import InvalidQueryError, MosaicError, RepositoryError
from ._translate import translate_error

__all__ = ["_TRANSLATED", "_translated"]

P = ParamSpec("P")
R = TypeVar("R")

_TRANSLATED = "__mosaic_translated__"


def _translated(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await method(*args, **kwargs)
        except MosaicError:
            raise
        except Exception as exc:
            translated = translate_error(exc)
            if translated is None:
                if _is_bad_value(exc):
                    raise InvalidQueryError(
                        "a value does not fit its column "
                        f"({type(getattr(exc, 'orig', None) or exc).__name__})",
                        field="values",
                    ) from exc
                if isinstance(exc, sa_exc.SQLAlchemyError) and not isinstance(
                    exc, sa_exc.PendingRollbackError
                ):
                    raise RepositoryError(
                        f"unexpected {type(exc).__name__} in {method.__qualname__}"
                    ) from exc
                raise
            raise translated from exc

    setattr(wrapper, _TRANSLATED, True)
    return wrapper


def _is_bad_value(exc: BaseException) -> bool:
    """A value SQLAlchemy could not turn into a parameter (a type's bind processing raised):
    the caller's input, never a server fault. Its message may hold the value: not repeated.
    sqlite3 refuses an integer beyond 64 bits with a bare ``OverflowError``."""
    if isinstance(exc, OverflowError):
        return True
    return isinstance(exc, sa_exc.StatementError) and isinstance(
        exc.orig, TypeError | ValueError | AttributeError | OverflowError
    )
