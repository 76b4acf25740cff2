"""Benchmarked stacks: every public module here defines ``STACK = <Stack subclass>``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

from bench.stacks._base import (
    BACKENDS,
    PAGE_SIZE,
    POOL_SIZE,
    SQLITE_PRAGMAS,
    Backend,
    DbTarget,
    Stack,
    StatementCounter,
)

__all__ = [
    "BACKENDS",
    "PAGE_SIZE",
    "POOL_SIZE",
    "SQLITE_PRAGMAS",
    "Backend",
    "DbTarget",
    "Stack",
    "StatementCounter",
    "discover",
]


def discover(only: set[str] | None = None, *, include_optin: bool = False) -> list[type[Stack]]:
    """Import every module of this package not starting with ``_`` and collect ``STACK``.

    Without ``only``: every stack with ``default_enabled``; with it: exactly those names. A module
    that fails to import is reported on stderr and skipped, unless ``only`` names it (module name
    = stack name by convention), then the error is raised.
    """
    found: dict[str, type[Stack]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception:
            if only is not None and info.name in only:
                raise
            print(f"[bench] skipping stack module {info.name!r}:", file=sys.stderr)
            traceback.print_exc(limit=3, file=sys.stderr)
            continue
        stack = getattr(module, "STACK", None)
        if stack is None:
            continue
        if not (isinstance(stack, type) and issubclass(stack, Stack)):
            raise TypeError(f"{module.__name__}.STACK must be a Stack subclass, got {stack!r}")
        if stack.name in found:
            raise ValueError(f"duplicate stack name {stack.name!r} in {module.__name__}")
        found[stack.name] = stack
    if only is None:
        if not include_optin:
            found = {k: v for k, v in found.items() if v.default_enabled}
    else:
        missing = only - found.keys()
        if missing:
            raise SystemExit(
                f"unknown stack(s): {', '.join(sorted(missing))}; have {sorted(found)}"
            )
        found = {k: v for k, v in found.items() if k in only}
    return sorted(found.values(), key=lambda s: (s.order, s.name))
