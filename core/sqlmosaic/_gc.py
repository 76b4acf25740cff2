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

__all__ = [
    "collector_paused",
    "defer_collector_until_plugins_loaded",
    "paused_collector",
    "plugins_loaded",
]

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


_deferred = False


def defer_collector_until_plugins_loaded() -> None:
    """The ``mosaic`` console script's first step: the collector stays off until
    :func:`~sqlmosaic.load_plugins` has loaded the plugins (it calls :func:`plugins_loaded`).

    Loading builds every plugin's model classes, tables and mappers, which live until the
    short-lived process exits: the collections that would run meanwhile scan them and free
    nothing (``mosaic db check`` at 500 tables: 5.5 s with them, 3.8 s without).
    """
    global _deferred
    if gc.isenabled():
        gc.disable()
        _deferred = True


def plugins_loaded() -> None:
    """Move what exists now (the loaded plugins) out of the collector's reach with
    ``gc.freeze()``, then switch the collector back on. A no-op unless
    :func:`defer_collector_until_plugins_loaded` switched it off: applications, hosts and tests
    keep their own collector settings."""
    global _deferred
    if _deferred:
        _deferred = False
        gc.freeze()
        gc.enable()
