"""Pause Python's cyclic garbage collector around bursts of object creation.

CPython starts a collection after every ~700 net allocations of tracked objects, and older
generations are scanned whole: a burst that builds many objects which all stay alive (the merged
MetaData of hundreds of plugins, 20,000 model objects of a bulk insert) pays for repeated scans
that free nothing, often as much time as the work itself (measured in ``bench/``). The collector
is paused only around synchronous code (no ``await`` inside), and restored as it was: if the
application had disabled it, it stays disabled.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

__all__ = ["collector_paused", "paused_collector"]

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def paused_collector() -> Iterator[None]:
    """Run the block with the cyclic collector paused (never across an ``await``)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def collector_paused(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of :func:`paused_collector` for synchronous functions."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with paused_collector():
            return fn(*args, **kwargs)

    return wrapper
