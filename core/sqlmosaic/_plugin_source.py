"""Which tables a plugin that was NOT loaded defines, read from its source without importing it.

A disabled plugin is never imported (its import may fail, be slow, or be the reason it is
disabled), yet an error about a foreign key into one of its tables should name it. This module
finds the plugin's module file with the import system's finders (``PathFinder``: nothing is
executed, not even a parent package's ``__init__``), parses it and its parent packages'
``__init__`` files with :mod:`ast`, follows their imports inside the same top-level package,
and collects the table names of the model classes it sees: a literal ``__tablename__`` in the
class body, else SQLModel's default (the class name in lower case) for a class declared with
``table=True``.

It is a hint for error messages only: a table whose name is computed at run time is not found,
and then the message simply does not name a plugin.
"""

from __future__ import annotations

import ast
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

__all__ = ["disabled_definers", "tables_in_source"]

_MAX_MODULES = 200


class _Installed(Protocol):
    @property
    def source(self) -> str: ...
    @property
    def module(self) -> str | None: ...


def disabled_definers(
    disabled: Sequence[tuple[str, str, _Installed]],
) -> Callable[[str], list[tuple[str, str]]]:
    """``find(table)``: the ``(plugin, reason)`` of each disabled plugin whose source defines it.

    ``disabled`` lists ``(plugin, reason, candidate)`` of the plugins that were not loaded;
    only installed ones (entry points) are read, each at most once and only when ``find`` is
    called (on the way to an error).
    """
    cache: dict[str, frozenset[str]] = {}

    def find(table: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for plugin, reason, candidate in disabled:
            if candidate.source != "entry_point" or not candidate.module:
                continue
            if plugin not in cache:
                cache[plugin] = tables_in_source(candidate.module)
            if table in cache[plugin]:
                out.append((plugin, reason))
        return out

    return find


def tables_in_source(module: str) -> frozenset[str]:
    """Table names defined by ``module`` and the modules of its package that it imports."""
    parts = module.split(".")
    top = parts[0]
    found: set[str] = set()
    seen: set[str] = set()
    # importing ``a.b`` runs ``a/__init__.py`` first: its imports count too
    todo = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    while todo and len(seen) < _MAX_MODULES:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        located = _locate(name)
        if located is None:
            continue
        path, is_package = located
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (OSError, SyntaxError, ValueError):
            continue
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                table = _table_name(node)
                if table is not None:
                    found.add(table)
            else:
                todo.extend(m for m in _imported(node, package) if m.split(".", 1)[0] == top)
    return frozenset(found)


def _locate(module: str) -> tuple[Path, bool] | None:
    """The source file of ``module`` and whether it is a package, found without importing."""
    loaded = sys.modules.get(module)
    if loaded is not None and isinstance(getattr(loaded, "__file__", None), str):
        file = Path(loaded.__file__)  # type: ignore[arg-type]
        return (file, file.name == "__init__.py") if file.suffix == ".py" else None
    search: list[str] | None = None
    spec = None
    parts = module.split(".")
    for i in range(len(parts)):
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), search)
        if spec is None:
            return None
        if i < len(parts) - 1:
            if spec.submodule_search_locations is None:
                return None
            search = list(spec.submodule_search_locations)
    if spec is None or not isinstance(spec.origin, str) or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin), spec.submodule_search_locations is not None


def _imported(node: ast.AST, package: str) -> list[str]:
    """Absolute names of the modules an import statement may load (submodules included)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        parts = package.split(".") if package else []
        if node.level - 1 > len(parts):
            return []
        base = ".".join(parts[: len(parts) - (node.level - 1)])
        if node.module:
            base = f"{base}.{node.module}" if base else node.module
    else:
        base = node.module or ""
    if not base:
        return []
    # ``from pkg import name``: name may be a submodule; a missing one is simply not found
    return [base, *(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")]


def _table_name(cls: ast.ClassDef) -> str | None:
    for stmt in cls.body:
        target: ast.expr | None = None
        value: ast.expr | None = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            target, value = stmt.target, stmt.value
        if (
            isinstance(target, ast.Name)
            and target.id == "__tablename__"
            and isinstance(value, ast.Constant)
            and isinstance(value.value, str)
        ):
            return value.value
    for keyword in cls.keywords:
        if (
            keyword.arg == "table"
            and isinstance(keyword.value, ast.Constant)
            and keyword.value.value is True
        ):
            return cls.name.lower()
    return None
