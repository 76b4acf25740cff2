"""The repository's error boundary: every public coroutine of a repository goes through
:func:`_translated`, so no SQLAlchemy or driver error leaves it untranslated."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from sqlalchemy import exc as sa_exc

from ._exceptions import InvalidQueryError, MosaicError
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
                        f"({type(getattr(exc, 'orig', None)).__name__})",
                        field="values",
                    ) from exc
                raise
            raise translated from exc

    setattr(wrapper, _TRANSLATED, True)
    return wrapper


def _is_bad_value(exc: BaseException) -> bool:
    """A value SQLAlchemy could not turn into a parameter (a type's bind processing raised):
    the caller's input, never a server fault. Its message may hold the value: not repeated."""
    return isinstance(exc, sa_exc.StatementError) and isinstance(
        exc.orig, TypeError | ValueError | AttributeError | OverflowError
    )
