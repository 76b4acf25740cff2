"""A throwaway PgBouncer on loopback in front of a PostgreSQL server, for tests and benchmarks.

PgBouncer refuses to run as root, so as root it runs as the ``postgres`` OS user (like
:mod:`sqlmosaic.testing._pgserver`). It listens on a free loopback port, keeps its config,
log, pid file and Unix socket in a private temp dir, authenticates with ``trust`` and pools in
``transaction`` mode with a small server pool, so that client connections really share server
connections::

    with running_pgbouncer("127.0.0.1", pg_port) as bouncer:
        url = bouncer.url("mydb")
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ._pgserver import SUPERUSER, _free_port, _resolve_os_user, _run, _tail

__all__ = ["PgBouncer", "PgBouncerStartError", "find_pgbouncer", "running_pgbouncer"]

_READY_TIMEOUT = 60.0  # seconds to wait for the listening socket


class PgBouncerStartError(RuntimeError):
    """The throwaway PgBouncer could not be found or started."""


@dataclass(frozen=True)
class PgBouncer:
    host: str
    port: int
    root: Path
    pool_mode: str

    def url(self, dbname: str = "postgres", driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def stop(self) -> None:
        """Stop the daemon (SIGINT: safe shutdown, then SIGTERM) and remove its dir. Idempotent."""
        _kill(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def _kill(root: Path) -> None:
    """Stop the daemon whose pid file is in ``root`` (the pid we started, nothing else)."""
    try:
        pid = int((root / "pgbouncer.pid").read_text().strip())
    except (OSError, ValueError):
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_gone(pid, 10.0):
            return


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def find_pgbouncer() -> str | None:
    """Path of the ``pgbouncer`` program (Debian installs it in /usr/sbin), or None."""
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/sbin")


def _config(root: Path, port: int, pg_host: str, pg_port: int, pool_mode: str) -> str:
    return "\n".join(
        [
            "[databases]",
            f"* = host={pg_host} port={pg_port}",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            f"unix_socket_dir = {root}",
            "auth_type = trust",
            f"auth_file = {root / 'userlist.txt'}",
            f"admin_users = {SUPERUSER}",
            f"pool_mode = {pool_mode}",
            # few server connections for many clients: clients really share them
            "default_pool_size = 2",
            "max_client_conn = 500",
            f"logfile = {root / 'pgbouncer.log'}",
            f"pidfile = {root / 'pgbouncer.pid'}",
            "",
        ]
    )


def start_pgbouncer(
    pg_host: str, pg_port: int, *, pool_mode: str = "transaction", base_dir: Path | None = None
) -> PgBouncer:
    """Start PgBouncer in front of ``pg_host:pg_port``; call ``stop()`` afterwards."""
    program = find_pgbouncer()
    if program is None:
        raise PgBouncerStartError(
            "pgbouncer not found on PATH nor in /usr/sbin (Debian: apt-get install pgbouncer)"
        )
    run_as = _resolve_os_user(None)
    root = Path(tempfile.mkdtemp(prefix="sqlmosaic-pgb-", dir=base_dir)).absolute()
    try:
        (root / "userlist.txt").write_text(f'"{SUPERUSER}" ""\n')
        if run_as is not None:
            pw = pwd.getpwnam(run_as)
            for path in (root, root / "userlist.txt"):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        for _attempt in range(3):
            port = _free_port()
            (root / "pgbouncer.ini").write_text(_config(root, port, pg_host, pg_port, pool_mode))
            if run_as is not None:
                os.chown(root / "pgbouncer.ini", pw.pw_uid, pw.pw_gid)
            proc = _run([program, "-d", "-q", str(root / "pgbouncer.ini")], run_as, root)
            if proc.returncode == 0 and _wait_listening(port):
                return PgBouncer("127.0.0.1", port, root, pool_mode)
            log = root / "pgbouncer.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            _kill(root)
            if "Address already in use" not in text:
                break
        raise PgBouncerStartError(
            f"pgbouncer did not start (exit {proc.returncode}): "
            f"{_tail(proc.stdout + proc.stderr)}\nlog:\n{_tail(text)}"
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _wait_listening(port: int) -> bool:
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@contextmanager
def running_pgbouncer(
    pg_host: str, pg_port: int, *, pool_mode: str = "transaction", base_dir: Path | None = None
) -> Iterator[PgBouncer]:
    bouncer = start_pgbouncer(pg_host, pg_port, pool_mode=pool_mode, base_dir=base_dir)
    try:
        yield bouncer
    finally:
        bouncer.stop()
