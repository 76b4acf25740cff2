"""The public API is exactly ``__all__``: complete, importable, and backed by private modules."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import sqlmosaic
from sqlmosaic import _exceptions


def test_all_names_exist() -> None:
    for name in sqlmosaic.__all__:
        assert hasattr(sqlmosaic, name), name


def test_all_is_complete() -> None:
    """Every public object defined in a private module and re-exported is listed in __all__."""
    public = {
        name
        for name, value in vars(sqlmosaic).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", "").startswith("sqlmosaic")
    }
    assert public - set(sqlmosaic.__all__) == set()


def test_every_private_module_declares_all() -> None:
    for info in pkgutil.iter_modules(sqlmosaic.__path__):
        if info.name.startswith("_") and not info.ispkg:
            module = importlib.import_module(f"sqlmosaic.{info.name}")
            assert isinstance(getattr(module, "__all__", None), list), info.name


def test_exception_hierarchy_is_drawn_in_the_docstring() -> None:
    doc = _exceptions.__doc__ or ""
    for name in _exceptions.__all__:
        cls = getattr(_exceptions, name)
        assert issubclass(cls, sqlmosaic.MosaicError)
        assert name in doc, f"{name} missing from the hierarchy drawing"


def test_importing_sqlmosaic_creates_no_engine_and_imports_no_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, sqlmosaic, sqlmosaic.cli;"
        "bad = [m for m in ('fastapi', 'starlette', 'uvicorn', 'asyncpg', 'mosaic_accounts')"
        " if m in sys.modules];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_core_module_is_over_600_lines() -> None:
    """The project's brief: small private modules (``_repository.py`` split by concern)."""
    from pathlib import Path

    root = Path(sqlmosaic.__file__).parent
    sizes = {
        str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines())
        for path in root.rglob("*.py")
    }
    assert sizes, root
    assert {name: n for name, n in sizes.items() if n > 600} == {}


def test_every_public_repository_coroutine_translates_errors() -> None:
    """Each public ``Repository`` coroutine method goes through the error-translation boundary."""
    methods = {
        name: value
        for name, value in vars(sqlmosaic.Repository).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(value)
    }
    assert "update" in methods
    untranslated = [n for n, f in methods.items() if not getattr(f, "__mosaic_translated__", False)]
    assert untranslated == []
