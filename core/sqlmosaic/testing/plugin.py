"""The sqlmosaic pytest plugin (entry point ``pytest11: sqlmosaic``).

pytest loads this module whenever sqlmosaic is installed, so it imports nothing heavy: the
fixtures (registered at configure time, only if pytest-asyncio is installed) import SQLAlchemy,
Alembic and the drivers when a test first uses them. See docs/testing.md.

Fixtures: ``mosaic_backend``, ``mosaic_url``, ``mosaic_pg_url``, ``mosaic_sqlite_url``,
``mosaic_settings``, ``mosaic_engine``, ``mosaic_connection``, ``mosaic_session_factory``,
``mosaic_session``, ``mosaic_host``, ``mosaic_fresh_url``, ``mosaic_empty_url``,
``mosaic_sql_counter``, ``mosaic_migration_data``, ``mosaic_client`` (over the project's
``mosaic_app``), ``mosaic_seed``. Markers: ``mosaic_plugins``,
``mosaic_backends``, ``mosaic_slow_callback_duration``, ``mosaic_allow_blocking``.
"""

from __future__ import annotations

import importlib
import inspect
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType

import pytest

from ._options import BACKENDS, add_options, get_options

__all__ = [
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_report_header",
    "pytest_runtest_setup",
]

_FIXTURE_MODULES = ("_fixtures", "_fixtures_pg", "_fixtures_sqlite", "_fixtures_app")
_CHECKS_COLLECTED = pytest.StashKey[bool]()
_ASYNC_FIXTURE_ROOT = "mosaic_engine"  # every async mosaic fixture depends on it


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mosaic_plugins(*plugins): enable these in-test plugins (modules, objects with "
        "mosaic_name, or {name: plugin} mappings) in mosaic_host for this test, and create their "
        "tables inside the test's rolled-back transaction",
    )
    config.addinivalue_line(
        "markers",
        "mosaic_backends(*names): run this test's mosaic_backend parametrization only on these "
        f"backends ({', '.join(BACKENDS)}), if configured",
    )
    config.addinivalue_line(
        "markers",
        "mosaic_slow_callback_duration(seconds): --mosaic-asyncio-debug tolerates callbacks "
        "blocking the event loop up to this long in this test",
    )
    config.addinivalue_line(
        "markers",
        "mosaic_allow_blocking(*entries): --mosaic-detect-blocking allows blocking calls made "
        "while one of these FILE_SUFFIX:FUNCTION[,FUNCTION...] functions is on the stack; no "
        "entries: this test is not checked",
    )
    options = get_options(config)
    if options.detect_blocking and not config.pluginmanager.has_plugin("sqlmosaic.blocking"):
        _register_blocking(config, options.blocking_allow)
    if find_spec("pytest_asyncio") is None:
        return  # sqlmosaic[testing] is not installed: options only, no fixtures
    for name in _FIXTURE_MODULES:
        module: ModuleType = importlib.import_module(f"{__package__}.{name}")
        if not config.pluginmanager.is_registered(module):
            config.pluginmanager.register(module, f"sqlmosaic.testing.{name}")
    if options.asyncio_debug:
        from ._asyncio_debug import AsyncioDebugPlugin

        if hasattr(config.option, "asyncio_debug"):
            config.option.asyncio_debug = True
        config.pluginmanager.register(
            AsyncioDebugPlugin(
                options.slow_callback_duration, fail_slow=options.fail_slow_callbacks
            ),
            "sqlmosaic.asyncio_debug",
        )


def _register_blocking(config: pytest.Config, allow: tuple[str, ...]) -> None:
    if find_spec("blockbuster") is None:
        raise pytest.UsageError(
            "--mosaic-detect-blocking / mosaic_detect_blocking needs blockbuster: "
            "pip install 'sqlmosaic[testing]' (or pip install blockbuster)"
        )
    from ._blocking import DEFAULT_ALLOW, BlockingPlugin, parse_allow

    entries = parse_allow(DEFAULT_ALLOW, where="DEFAULT_ALLOW")
    entries += parse_allow(allow, where="mosaic_blocking_allow")
    config.pluginmanager.register(BlockingPlugin(config.rootpath, entries), "sqlmosaic.blocking")


def pytest_report_header(config: pytest.Config) -> list[str]:
    line = get_options(config).describe()
    if find_spec("pytest_asyncio") is None:
        line += " (fixtures unavailable: pip install 'sqlmosaic[testing]')"
    return [line]


def _parametrized_directly(metafunc: pytest.Metafunc, name: str) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return True
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mosaic_backend" not in metafunc.fixturenames:
        return
    if _parametrized_directly(metafunc, "mosaic_backend"):
        return
    backends = list(get_options(metafunc.config).backends)
    marker = metafunc.definition.get_closest_marker("mosaic_backends")
    if marker is not None:
        wanted = [str(arg) for arg in marker.args]
        unknown = [b for b in wanted if b not in BACKENDS]
        if unknown or not wanted:
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid}: @pytest.mark.mosaic_backends takes backend names "
                f"({', '.join(BACKENDS)}), got {wanted!r}"
            )
        backends = [b for b in backends if b in wanted]
    metafunc.parametrize("mosaic_backend", backends, indirect=True, scope="session")


def _test_loop_scope(item: pytest.Item) -> str:
    marker = item.get_closest_marker("asyncio")
    scope = None
    if marker is not None:
        scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
    if scope is None:
        try:
            scope = item.config.getini("asyncio_default_test_loop_scope")
        except ValueError:
            scope = None
    return str(scope or "function")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail early, and clearly, where asyncpg would fail obscurely ("different loop")."""
    if _ASYNC_FIXTURE_ROOT not in getattr(item, "fixturenames", ()):
        return
    function = getattr(item, "obj", None)
    if not (inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)):
        return
    scope = _test_loop_scope(item)
    if scope != "session":
        pytest.fail(
            f"sqlmosaic: {item.nodeid} runs in a {scope!r}-scoped event loop, but the mosaic_* "
            "fixtures live in the session loop. Set asyncio_default_test_loop_scope = "
            '"session" (and asyncio_default_fixture_loop_scope = "session") in the pytest '
            'configuration, or mark the test @pytest.mark.asyncio(loop_scope="session").',
            pytrace=False,
        )


class MigrationChecks(pytest.Module):
    """The migration checks (``sqlmosaic.testing._check_items``) as a synthetic module."""

    def _getobj(self) -> ModuleType:
        return importlib.import_module(f"{__package__}._check_items")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    options = get_options(config)
    if not options.migration_checks or config.stash.get(_CHECKS_COLLECTED, False):
        return None
    if file_path != config.rootpath / options.migration_checks_path:
        return None
    config.stash[_CHECKS_COLLECTED] = True
    relative = file_path.relative_to(config.rootpath).as_posix()
    collector: pytest.Collector = MigrationChecks.from_parent(
        parent, path=file_path, nodeid=f"{relative}::sqlmosaic-migrations"
    )
    return collector
