"""Throwaway PostgreSQL server helper (sqlmosaic.testing._pgserver)."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sqlmosaic.testing._pgserver import (
    PostgresServer,
    PostgresStartError,
    find_pg_bin,
    main,
    running_postgres,
    start_postgres,
)

pytestmark = pytest.mark.postgres

IS_ROOT = os.geteuid() == 0


def _query(server: PostgresServer, sql: str) -> object:
    with psycopg.connect(server.url(driver=""), connect_timeout=5) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with running_postgres() as srv:
        yield srv


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """A private base_dir for the code under test, so that what it leaves behind is checked in
    a directory no other run touches (never the machine's shared /tmp). Mode 0755: as root,
    the ``postgres`` OS user must reach it (pytest's tmp_path is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="sqlmosaic-test-base-"))
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_url_formats() -> None:
    srv = PostgresServer("127.0.0.1", 5433, "postgres", None, Path("/d"), Path("/s"))
    assert srv.url() == "postgresql+asyncpg://postgres@127.0.0.1:5433/postgres"
    assert srv.url("app", driver="psycopg") == "postgresql+psycopg://postgres@127.0.0.1:5433/app"
    assert srv.url("app", driver="") == "postgresql://postgres@127.0.0.1:5433/app"
    secret = PostgresServer("127.0.0.1", 1, "u", "p@ss/word", Path("/d"), Path("/s"))
    assert secret.url(driver="") == "postgresql://u:p%40ss%2Fword@127.0.0.1:1/postgres"


def test_find_pg_bin() -> None:
    assert os.access(find_pg_bin("pg_ctl"), os.X_OK)
    with pytest.raises(PostgresStartError, match="not found on PATH"):
        find_pg_bin("no-such-pg-program")


def test_server_answers_with_fast_settings(server: PostgresServer) -> None:
    assert server.host == "127.0.0.1"
    assert server.user == "postgres"
    assert server.password is None
    assert _query(server, "select 1") == 1
    assert _query(server, "show fsync") == "off"
    assert _query(server, "show synchronous_commit") == "off"
    assert _query(server, "show max_connections") == "200"
    assert _query(server, "select current_user") == "postgres"
    assert Path(str(_query(server, "show data_directory"))) == server.datadir
    assert (server.socket_dir / f".s.PGSQL.{server.port}").exists()


@pytest.mark.skipif(not IS_ROOT, reason="root-only path")
def test_root_runs_cluster_as_postgres_os_user(server: PostgresServer) -> None:
    postgres_uid = pwd.getpwnam("postgres").pw_uid
    assert server.os_user == "postgres"
    datadir = str(_query(server, "select current_setting('data_directory')"))
    assert os.stat(datadir).st_uid == postgres_uid
    pid = int((server.datadir / "postmaster.pid").read_text().split()[0])
    assert os.stat(f"/proc/{pid}").st_uid == postgres_uid


@pytest.mark.skipif(IS_ROOT, reason="non-root path")
def test_normal_user_runs_cluster_directly(server: PostgresServer) -> None:
    assert server.os_user is None
    assert server.datadir.stat().st_uid == os.geteuid()


def test_stop_really_stops_and_removes_dir(monkeypatch: pytest.MonkeyPatch, base_dir: Path) -> None:
    # A cwd the postgres OS user cannot read must not matter.
    cwd = Path(tempfile.mkdtemp(prefix="sqlmosaic-cwd-"))
    os.chmod(cwd, 0o700)
    monkeypatch.chdir(cwd)
    try:
        srv = start_postgres(
            extra_options=("-c", "application_name=pgserver-test"), base_dir=base_dir
        )
        assert _query(srv, "show application_name") == "pgserver-test"
        assert _query(srv, "show fsync") == "off"
        srv.stop()
        assert not srv.datadir.exists()
        assert srv.tmpdir is not None
        assert not srv.tmpdir.exists()
        with pytest.raises(psycopg.OperationalError):
            _query(srv, "select 1")
        srv.stop()  # idempotent
        assert list(base_dir.iterdir()) == []
    finally:
        monkeypatch.chdir("/")
        shutil.rmtree(cwd)


def test_fixed_port_and_base_dir(base_dir: Path) -> None:
    with running_postgres(base_dir=base_dir) as first:
        taken = first.port
    with running_postgres(port=taken, base_dir=base_dir) as srv:
        assert srv.port == taken
        assert srv.datadir.is_relative_to(base_dir)
        assert _query(srv, "select 1") == 1
    assert list(base_dir.iterdir()) == []


def test_start_failure_reports_command_and_log(base_dir: Path) -> None:
    with pytest.raises(PostgresStartError) as info:
        start_postgres(extra_options=("-c", "no_such_setting_xyz=1"), base_dir=base_dir)
    message = str(info.value)
    assert "pg_ctl start failed" in message
    assert "pg_ctl" in message
    assert "-D" in message
    assert "no_such_setting_xyz" in message  # from the server log tail
    assert f"-D {base_dir}/sqlmosaic-pg-" in message  # it really worked in base_dir ...
    assert list(base_dir.iterdir()) == []  # ... and removed the directory it made there


def test_port_in_use_is_reported(server: PostgresServer, base_dir: Path) -> None:
    with pytest.raises(PostgresStartError, match=r"(?s)pg_ctl start failed.*server log"):
        start_postgres(port=server.port, base_dir=base_dir)
    assert list(base_dir.iterdir()) == []


@pytest.mark.skipif(not IS_ROOT, reason="root-only path")
def test_root_unreachable_base_dir_is_explained() -> None:
    outer = Path(tempfile.mkdtemp(prefix="sqlmosaic-hidden-"))  # mode 0700, owned by root
    hidden = outer / "in"
    hidden.mkdir(mode=0o755)
    try:
        with pytest.raises(PostgresStartError, match="cannot write to"):
            start_postgres(base_dir=hidden)
        assert list(hidden.iterdir()) == []
    finally:
        shutil.rmtree(outer)


def test_too_long_socket_path_is_explained() -> None:
    base = Path(tempfile.mkdtemp(prefix="sqlmosaic-long-"))
    deep = base / ("d" * 90)
    deep.mkdir()
    try:
        with pytest.raises(PostgresStartError, match="Unix socket"):
            start_postgres(base_dir=deep)
        assert list(deep.iterdir()) == []
    finally:
        shutil.rmtree(base)


@pytest.mark.skipif(not IS_ROOT, reason="root-only path")
def test_su_fallback_without_runuser(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which

    def which(name: str, path: str | None = None) -> str | None:
        return None if name == "runuser" else real_which(name, path=path)

    monkeypatch.setattr(shutil, "which", which)
    with running_postgres() as srv:
        assert srv.os_user == "postgres"
        assert _query(srv, "show fsync") == "off"
        assert srv.datadir.stat().st_uid == pwd.getpwnam("postgres").pw_uid
    assert srv.tmpdir is not None
    assert not srv.tmpdir.exists()


def test_missing_os_user_is_explained() -> None:
    with pytest.raises(PostgresStartError, match="does not exist"):
        start_postgres(os_user="no-such-user-sqlmosaic")


def test_cli_start_and_stop(capsys: pytest.CaptureFixture[str]) -> None:
    base = Path(tempfile.mkdtemp(prefix="sqlmosaic-cli-"))
    os.chmod(base, 0o755)
    root = base / "pg"
    try:
        assert main(["start", "--dir", str(root), "--driver", ""]) == 0
        url = capsys.readouterr().out.strip()
        assert url.startswith("postgresql://postgres@127.0.0.1:")
        with psycopg.connect(url, connect_timeout=5) as conn:
            assert conn.execute("show fsync").fetchone() == ("off",)
        assert main(["stop", "--dir", str(root)]) == 0
        assert not root.exists()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=5).close()
        assert main(["stop", "--dir", str(root)]) == 0  # idempotent
    finally:
        main(["stop", "--dir", str(root)])
        shutil.rmtree(base)
