"""Options, markers and the plugin's guard rails."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

from sqlmosaic.testing import get_options

ROOT = Path(__file__).resolve().parents[2]

INI = f"""
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
filterwarnings = error
addopts = -p no:cacheprovider -rfE -p no:pytest_alembic
mosaic_alembic_ini = {ROOT / "alembic.ini"}
"""


@pytest.fixture
def clean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in list(os.environ):
        if name.startswith(("PYTEST_XDIST", "MOSAIC_")):
            monkeypatch.delenv(name)
    return pytester


@pytest.fixture(scope="module", autouse=True)
def plugins_imported() -> None:
    """Import the installed plugins before any pytester exists.

    The runs here are in process: pytester forgets every module imported after it was created,
    and a plugin's models imported a second time re-register their classes (an SAWarning, fatal
    under -W error). Imported first, the plugins stay imported.
    """
    for entry_point in importlib.metadata.entry_points(group="sqlmosaic"):
        entry_point.load()


# In-process runs: pytest-alembic's plugin, loaded fresh into the inner run, uses a marker the
# inner run does not declare (it passed only when an earlier test had imported it).
ASYNCIO = "[pytest]\nasyncio_default_fixture_loop_scope = session\naddopts = -p no:pytest_alembic\n"


def test_help_documents_every_option(clean: pytest.Pytester) -> None:
    clean.makefile(".ini", pytest=ASYNCIO)
    result = clean.runpytest("--help")
    assert result.ret == 0
    text = result.stdout.str()
    for option in (
        "--mosaic-pg-host=HOST",
        "--mosaic-pg-port=PORT",
        "--mosaic-pg-user=USER",
        "--mosaic-pg-password=PASSWORD",
        "--mosaic-alembic-ini=PATH",
        "--mosaic-plugins=NAMES",
        "--mosaic-backends=NAMES",
        "--mosaic-asyncio-debug",
        "--mosaic-slow-callback-duration=SECONDS",
        "--mosaic-fail-slow-callbacks",
        "--mosaic-detect-blocking",
        "mosaic_blocking_allow",
        "--mosaic-migration-checks",
        "MOSAIC_TEST_PG_HOST",
        "mosaic_backends",
    ):
        assert option in text, option


def test_precedence_cli_then_env_then_ini(
    clean: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean.makefile(
        ".ini",
        pytest=ASYNCIO + "mosaic_pg_host = ini-host\nmosaic_pg_port = 1111\n"
        "mosaic_backends = sqlite\nmosaic_plugins = accounts, tasks\n",
    )
    options = get_options(clean.parseconfigure())
    assert (options.pg_host, options.pg_port, options.backends) == ("ini-host", 1111, ("sqlite",))
    assert options.plugins == ("accounts", "tasks")
    assert options.settings_overrides() == {"plugins": ["accounts", "tasks"]}
    assert options.alembic_ini == clean.path / "alembic.ini"

    monkeypatch.setenv("MOSAIC_TEST_PG_HOST", "env-host")
    monkeypatch.setenv("MOSAIC_TEST_BACKENDS", "postgresql,sqlite")
    options = get_options(clean.parseconfigure())
    assert (options.pg_host, options.backends) == ("env-host", ("postgresql", "sqlite"))

    options = get_options(
        clean.parseconfigure("--mosaic-pg-host", "cli-host", "--mosaic-plugins", "all")
    )
    assert options.pg_host == "cli-host"
    assert options.pg_port == 1111
    assert options.all_plugins
    assert options.settings_overrides() == {"plugins": None}


def test_nothing_configured(clean: pytest.Pytester) -> None:
    clean.makefile(".ini", pytest=ASYNCIO)
    options = get_options(clean.parseconfigure())
    assert not options.pg_configured
    assert options.backends == ("postgresql", "sqlite")
    assert options.plugins is None
    assert options.settings_overrides() == {}  # MOSAIC_PLUGINS (the settings) decides
    assert not options.asyncio_debug
    assert options.slow_callback_duration == 0.25
    assert not options.fail_slow_callbacks
    assert not options.detect_blocking
    assert options.blocking_allow == ()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mosaic-backends", "mysql"], "*unknown backend(s) mysql*"),
        (["--mosaic-pg-port", "x"], "*not a port number*"),
        (["--mosaic-slow-callback-duration", "0"], "*expected seconds > 0*"),
    ],
)
def test_bad_values_are_usage_errors(clean: pytest.Pytester, args: list[str], message: str) -> None:
    clean.makefile(".ini", pytest=ASYNCIO)
    result = clean.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_header_never_shows_the_password(clean: pytest.Pytester) -> None:
    clean.makefile(".ini", pytest=ASYNCIO)
    clean.makepyfile("def test_nothing(): pass")
    result = clean.runpytest("--mosaic-pg-host", "db.internal", "--mosaic-pg-password", "s3cr3t-pw")
    result.stdout.fnmatch_lines(["*existing server postgres:***@db.internal:5432*"])
    assert "s3cr3t-pw" not in result.stdout.str() + result.stderr.str()


TESTS = """
import pytest


@pytest.mark.mosaic_backends("sqlite")
def test_only_sqlite(mosaic_backend):
    assert mosaic_backend == "sqlite"


@pytest.mark.parametrize("mosaic_backend", ["sqlite"], indirect=True)
def test_direct_parametrize_wins(mosaic_backend):
    assert mosaic_backend == "sqlite"


async def test_plugins_option(mosaic_backend, mosaic_host):
    assert mosaic_host.plugins.names == ("accounts",)
    assert [s.name for s in mosaic_host.plugins.skipped] == ["comments", "tasks"]


@pytest.mark.mosaic_plugins(unknown=1)
async def test_marker_keywords_are_rejected(mosaic_backend, mosaic_host):
    pass


@pytest.mark.asyncio(loop_scope="function")
async def test_function_loop_is_explained(mosaic_backend, mosaic_session):
    pass
"""


def test_markers_plugins_option_and_loop_scope_guard(clean: pytest.Pytester) -> None:
    clean.makefile(".ini", pytest=INI)
    clean.makepyfile(test_inner=TESTS)
    result = clean.runpytest("--mosaic-backends", "sqlite", "--mosaic-plugins", "accounts", "-v")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "test_inner.py::test_only_sqlite[[]sqlite[]] PASSED*",
            "test_inner.py::test_direct_parametrize_wins[[]sqlite[]] PASSED*",
            "test_inner.py::test_plugins_option[[]sqlite[]] PASSED*",
            "*mosaic_plugins takes plugins, not keywords (unknown)*",
            "*test_function_loop_is_explained*runs in a 'function'-scoped event loop*",
        ]
    )


def test_only_sqlite_never_starts_postgresql(clean: pytest.Pytester) -> None:
    clean.makefile(".ini", pytest=INI)
    clean.makepyfile(
        """
        from sqlmosaic.testing import template_builds

        async def test_it(mosaic_backend, mosaic_session, request):
            assert mosaic_backend == "sqlite"
            assert template_builds(request.config) == {"sqlite": 1}
            assert "_mosaic_pg_endpoint" not in request.fixturenames
        """
    )
    result = clean.runpytest("--mosaic-backends", "sqlite")
    result.assert_outcomes(passed=1)


def test_missing_alembic_ini_is_explained(clean: pytest.Pytester) -> None:
    clean.makefile(".ini", pytest=INI.replace(str(ROOT / "alembic.ini"), "nowhere/alembic.ini"))
    clean.makepyfile("async def test_it(mosaic_backend, mosaic_session): pass")
    result = clean.runpytest("--mosaic-backends", "sqlite")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*nowhere/alembic.ini* not found*--mosaic-alembic-ini*"])
