"""Whole pytest runs of a small project using the plugin (pytester, in subprocesses).

Covers what one session cannot show about itself: the template is built once per session
(per worker), the PostgreSQL server paths (root, noproc, normal user), xdist, and that the
throwaway server and databases are gone afterwards.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from sqlmosaic.testing._pgserver import PostgresServer, find_runuser, running_postgres

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0

INI = f"""
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
filterwarnings = error
# the schemathesis and hypothesis plugins are unused here: ~1.7 s of imports per run
addopts = -p no:cacheprovider -p no:schemathesis -p no:hypothesispytest
pytest_alembic_enabled = false
mosaic_alembic_ini = {ROOT / "alembic.ini"}
"""

CONFTEST = """
import json, os
from pathlib import Path

import pytest
from sqlmosaic.testing import template_builds

FACTS = {"urls": []}


@pytest.fixture
def facts():
    return FACTS


def pytest_sessionfinish(session):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    data = {"builds": template_builds(session.config), "uid": os.geteuid(), **FACTS}
    Path(session.config.rootpath, f"facts-{worker}.json").write_text(json.dumps(data))
"""

TESTS = """
import pytest
from mosaic_accounts import AccountsService
from sqlalchemy import text


@pytest.mark.parametrize("i", range(4))
async def test_commit_leaves_nothing(i, mosaic_backend, mosaic_session, mosaic_url, facts):
    conn = await mosaic_session.connection()
    assert (await conn.execute(text('SELECT count(*) FROM "user"'))).scalar_one() == 0
    await AccountsService(mosaic_session).register("same@example.com", "Same")
    facts["urls"].append(mosaic_url)


async def test_fresh(mosaic_backend, mosaic_fresh_url, facts):
    facts["urls"].append(mosaic_fresh_url)
"""

PASSED_PER_RUN = 10  # 5 tests x 2 backends


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner runs must not think they are xdist workers of an outer xdist run."""
    for name in list(os.environ):
        if name.startswith(("PYTEST_XDIST", "MOSAIC_TEST_")) or name == "PYTEST_ADDOPTS":
            monkeypatch.delenv(name)


@pytest.fixture
def project(pytester: pytest.Pytester, clean_env: None) -> pytest.Pytester:
    pytester.makefile(".ini", pytest=INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner=TESTS)
    return pytester


def _facts(path: Path) -> dict[str, dict[str, Any]]:
    return {
        f.stem.removeprefix("facts-"): json.loads(f.read_text()) for f in path.glob("facts-*.json")
    }


def _pg_urls(urls: list[str]) -> set[str]:
    return {u for u in urls if u.startswith("postgresql")}


def _reachable(url: str) -> bool:
    parsed = make_url(url)
    try:
        psycopg.connect(
            host=parsed.host,
            port=parsed.port,
            user=parsed.username,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError:
        return False
    return True


def _databases(server: PostgresServer) -> set[str]:
    with psycopg.connect(server.url(driver=""), connect_timeout=5) as conn:
        rows = conn.execute("SELECT datname FROM pg_database").fetchall()
    return {row[0] for row in rows}


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with running_postgres() as srv:
        yield srv


def test_default_run_builds_each_template_once(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-v", timeout=300)
    result.assert_outcomes(passed=PASSED_PER_RUN)
    expected = "run by the 'postgres' OS user" if IS_ROOT else "postgresql_proc"
    result.stdout.fnmatch_lines([f"sqlmosaic: backends=postgresql sqlite; *{expected}*"])
    facts = _facts(project.path)["main"]
    assert facts["builds"] == {"postgresql": 1, "sqlite": 1}
    session_urls = {u for u in _pg_urls(facts["urls"]) if "_fresh_" not in u}
    assert len(session_urls) == 1  # one session database, re-used by every test
    # The throwaway server (root) / pytest-postgresql's server (normal user) is stopped.
    assert not _reachable(next(iter(session_urls)))


def test_noproc_against_a_server_started_here(
    project: pytest.Pytester, server: PostgresServer
) -> None:
    before = _databases(server)
    result = project.runpytest_subprocess(
        "--mosaic-pg-host", server.host, "--mosaic-pg-port", str(server.port), timeout=300
    )
    result.assert_outcomes(passed=PASSED_PER_RUN)
    result.stdout.fnmatch_lines([f"*existing server postgres@{server.host}:{server.port}*"])
    facts = _facts(project.path)["main"]
    assert facts["builds"] == {"postgresql": 1, "sqlite": 1}
    used = {make_url(u) for u in _pg_urls(facts["urls"])}
    assert {(u.host, u.port) for u in used} == {(server.host, server.port)}
    assert len(used) == 2  # the session database and one fresh clone
    assert _databases(server) == before  # template, session and fresh databases all dropped


def test_xdist_two_workers_each_get_their_own_database(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "xdist", "-n", "2", timeout=300)
    result.assert_outcomes(passed=PASSED_PER_RUN)
    facts = _facts(project.path)
    workers = {name: data for name, data in facts.items() if name.startswith("gw")}
    assert set(workers) == {"gw0", "gw1"}
    per_worker = []
    for data in workers.values():
        assert set(data["builds"].values()) <= {1}  # at most once per backend per worker
        per_worker.append(_pg_urls(data["urls"]) | {u for u in data["urls"] if "sqlite" in u})
    assert not per_worker[0] & per_worker[1], "two workers shared a database"


def test_noproc_settings_from_the_environment_with_xdist(
    project: pytest.Pytester, server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOSAIC_TEST_PG_HOST", server.host)
    monkeypatch.setenv("MOSAIC_TEST_PG_PORT", str(server.port))
    before = _databases(server)
    result = project.runpytest_subprocess("-p", "xdist", "-n", "2", timeout=300)
    result.assert_outcomes(passed=PASSED_PER_RUN)
    workers = {k: v for k, v in _facts(project.path).items() if k.startswith("gw")}
    names = [{make_url(u).database for u in _pg_urls(d["urls"])} for d in workers.values()]
    assert len(names) == 2
    assert names[0]
    assert names[1]
    assert not names[0] & names[1]  # per-worker databases on one shared server
    assert _databases(server) == before


def _system_python() -> str | None:
    """A python of this minor version that the 'postgres' OS user can run (not under /root)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def test_normal_user_uses_pytest_postgresql_proc(project: pytest.Pytester) -> None:
    if not IS_ROOT:  # we ARE the normal user: the plain run takes the postgresql_proc path
        result = project.runpytest_subprocess(timeout=300)
        result.assert_outcomes(passed=PASSED_PER_RUN)
        result.stdout.fnmatch_lines(["*postgresql_proc*"])
        return
    python = _system_python()
    if python is None:
        pytest.skip("root, and no system python the 'postgres' OS user can run as normal user")
    site_packages = sysconfig.get_paths()["purelib"]
    home = Path(tempfile.mkdtemp(prefix="sqlmosaic-nonroot-"))
    try:
        for name in ("pytest.ini", "conftest.py", "test_inner.py"):
            shutil.copy(project.path / name, home / name)
        pw = pwd.getpwnam("postgres")
        for path in (home, *home.iterdir()):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        code = (
            f"import site, sys; site.addsitedir({site_packages!r}); import pytest; "
            "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider']))"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "MOSAIC_"))}
        env["HOME"] = str(home)
        proc = subprocess.run(
            [find_runuser() or "runuser", "-u", "postgres", "--", python, "-c", code],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output
        assert f"{PASSED_PER_RUN} passed" in output, output
        facts = _facts(home)["main"]
        assert facts["uid"] == pw.pw_uid
        assert facts["builds"] == {"postgresql": 1, "sqlite": 1}
        assert not _reachable(next(iter(_pg_urls(facts["urls"]))))
    finally:
        shutil.rmtree(home, ignore_errors=True)
