"""Throwaway PostgreSQL servers on loopback for tests and benchmarks (stdlib only).

``initdb``/``pg_ctl`` refuse to run as root, so as root the cluster belongs to the ``postgres``
OS user (started through ``runuser``, or ``su`` if that is missing). Auth is ``trust``, the
superuser role is always ``postgres``, durability is off (fsync, synchronous_commit)::

    with running_postgres() as pg:
        engine = create_async_engine(pg.url())

Shell scripts: ``python -m sqlmosaic.testing._pgserver start --dir D [--port P]`` prints the
URL and leaves the server running; ``... stop --dir D`` stops it and removes what start made.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "postgres"
_SERVER_SETTINGS = (  # each is passed to postgres as "-c SETTING"
    "listen_addresses=127.0.0.1",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
)
_TIMEOUT = 120  # seconds for any single initdb/pg_ctl call


class PostgresStartError(RuntimeError):
    """The throwaway PostgreSQL server could not be found, initialised, started or stopped."""


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str | None
    datadir: Path
    socket_dir: Path
    os_user: str | None = None  # OS user we switched to (as root); None: the current process user
    tmpdir: Path | None = field(default=None, repr=False)  # removed by stop() (we created it)

    def url(self, dbname: str = "postgres", driver: str = "asyncpg") -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        return f"{scheme}://{auth}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def restart(self) -> None:
        """Fast stop, then start again on the same port (every client connection ends).

        Extra options given at start are not repeated."""
        _stop_cluster(self.datadir, self.os_user)
        opts = ["-p", str(self.port), "-k", str(self.socket_dir)]
        opts += [arg for setting in _SERVER_SETTINGS for arg in ("-c", setting)]
        log = self.datadir.parent / "postgres.log"
        cmd = [find_pg_bin("pg_ctl"), "-w", "-t", "60", "-D", str(self.datadir), "-l", str(log)]
        proc = _run([*cmd, "-o", shlex.join(opts), "start"], self.os_user, self.datadir.parent)
        if proc.returncode != 0:
            raise _error("pg_ctl start (restart) failed", proc, log)

    def stop(self) -> None:
        """Fast shutdown (as the OS user that started it), then remove our temp dir. Idempotent."""
        _stop_cluster(self.datadir, self.os_user)
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def find_pg_bin(name: str) -> str:
    """Path of a PostgreSQL program: PATH first, then the highest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = [
        p for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}") if os.access(p, os.X_OK)
    ]
    if candidates:
        return str(max(candidates, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parts[-3])]))
    raise PostgresStartError(
        f"PostgreSQL program {name!r} not found on PATH nor in /usr/lib/postgresql/*/bin; install "
        "the server (e.g. `apt-get install postgresql-15`) or put its bin directory on PATH"
    )


def _sibling(program: str, name: str) -> str:
    """``name`` from the same installation as ``program`` (so initdb and pg_ctl versions match)."""
    candidate = Path(os.path.realpath(program)).parent / name
    return str(candidate) if os.access(candidate, os.X_OK) else find_pg_bin(name)


def find_runuser() -> str | None:
    """``runuser`` from PATH, or from the sbin folders a minimal PATH leaves out."""
    return shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")


def _as_user(cmd: Sequence[str], os_user: str | None) -> list[str]:
    if os_user is None:
        return list(cmd)
    runuser = find_runuser()
    if runuser:
        return [runuser, "-u", os_user, "--", *cmd]
    return ["su", os_user, "-s", "/bin/sh", "-c", shlex.join(cmd)]


def _run(cmd: Sequence[str], os_user: str | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    full = _as_user(cmd, os_user)
    try:
        return subprocess.run(
            full,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(full, -1, "", f"timed out after {_TIMEOUT}s")


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _error(
    what: str, proc: subprocess.CompletedProcess[str], log: Path | None
) -> PostgresStartError:
    parts = [f"{what} (exit {proc.returncode})", f"command: {shlex.join(proc.args)}"]
    if output := _tail(proc.stdout + proc.stderr):
        parts.append(f"output:\n{output}")
    if log is not None and log.exists():
        parts.append(f"server log {log}, last lines:\n{_tail(log.read_text(errors='replace'))}")
    return PostgresStartError("\n".join(parts))


def _resolve_os_user(os_user: str | None) -> str | None:
    """OS user to run initdb/pg_ctl as, or None to run them directly as ourselves."""
    if os_user is None and os.geteuid() != 0:
        return None
    name = os_user or SUPERUSER
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        if os_user is not None:
            raise PostgresStartError(f"OS user {os_user!r} does not exist") from None
        raise PostgresStartError(
            "running as root, but initdb/pg_ctl refuse to run as root and the OS user 'postgres' "
            "does not exist. Create it (`useradd --system --user-group --create-home postgres`), "
            "pass os_user='<an existing non-root user>', or run as a non-root user."
        ) from None
    if uid == os.geteuid():
        return None
    if os.geteuid() != 0:
        raise PostgresStartError(f"running the server as OS user {name!r} needs root")
    return name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_in(
    root: Path,
    *,
    port: int | None,
    os_user: str | None,
    extra_options: Sequence[str],
    tmpdir: Path | None,
) -> PostgresServer:
    run_as = _resolve_os_user(os_user)
    pg_ctl = find_pg_bin("pg_ctl")
    datadir, sockdir, log = root / "data", root / "sock", root / "postgres.log"
    if len(str(sockdir)) + len("/.s.PGSQL.65535") > 107:
        raise PostgresStartError(
            f"socket path {sockdir}/.s.PGSQL.PORT exceeds the 107-byte Unix socket limit; "
            "use a shorter base_dir (the default is /tmp)"
        )
    sockdir.mkdir(exist_ok=True)
    if run_as is not None:
        pw = pwd.getpwnam(run_as)
        for path in (root, sockdir):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        probe = _run(["test", "-w", str(root)], run_as, Path("/"))
        if probe.returncode != 0:
            raise PostgresStartError(
                f"OS user {run_as!r} cannot write to {root}: every parent directory must be "
                "searchable by it (pytest's tmp_path is mode 0700); use a base_dir such as /tmp"
            )
    if not (datadir / "PG_VERSION").exists():
        initdb = [_sibling(pg_ctl, "initdb"), "-D", str(datadir), "--auth=trust", "-U", SUPERUSER]
        proc = _run([*initdb, "--no-sync", "-E", "UTF8", "--locale=C"], run_as, root)
        if proc.returncode != 0:
            raise _error("initdb failed", proc, None)
    for _attempt in range(3):
        use_port = port if port is not None else _free_port()
        opts = ["-p", str(use_port), "-k", str(sockdir)]
        opts += [arg for setting in _SERVER_SETTINGS for arg in ("-c", setting)]
        cmd = [pg_ctl, "-w", "-t", "60", "-D", str(datadir), "-l", str(log)]
        proc = _run([*cmd, "-o", shlex.join([*opts, *extra_options]), "start"], run_as, root)
        if proc.returncode == 0:
            return PostgresServer(
                "127.0.0.1", use_port, SUPERUSER, None, datadir, sockdir, run_as, tmpdir
            )
        log_text = log.read_text(errors="replace") if log.exists() else ""
        if port is not None or "already in use" not in _tail(log_text, 5):
            break  # retry only when a port we picked was taken in the meantime
    err = _error("pg_ctl start failed", proc, log)
    _stop_cluster(datadir, run_as, mode="immediate", check=False)
    raise err


def _stop_cluster(
    datadir: Path, run_as: str | None, mode: str = "fast", *, check: bool = True
) -> None:
    if not (datadir / "postmaster.pid").exists():
        return
    pg_ctl = find_pg_bin("pg_ctl")
    for use_mode in (mode, "immediate"):
        cmd = [pg_ctl, "-w", "-t", "60", "-D", str(datadir), "-m", use_mode, "stop"]
        proc = _run(cmd, run_as, datadir.parent)
        if proc.returncode == 0:
            return
        if _run([pg_ctl, "-D", str(datadir), "status"], run_as, datadir.parent).returncode == 3:
            return  # not running (stale pid file)
    if check:
        raise _error("pg_ctl stop failed", proc, datadir.parent / "postgres.log")


def start_postgres(
    *,
    port: int | None = None,
    base_dir: Path | None = None,
    os_user: str | None = None,
    extra_options: Sequence[str] = (),
) -> PostgresServer:
    """initdb + start a server in a new temp dir; ``extra_options`` are extra postgres argv items
    (e.g. ``("-c", "log_statement=all")``). Call ``stop()`` (or use :func:`running_postgres`)."""
    root = Path(tempfile.mkdtemp(prefix="sqlmosaic-pg-", dir=base_dir)).absolute()
    try:
        return _start_in(root, port=port, os_user=os_user, extra_options=extra_options, tmpdir=root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


@contextmanager
def running_postgres(
    *,
    port: int | None = None,
    base_dir: Path | None = None,
    os_user: str | None = None,
    extra_options: Sequence[str] = (),
) -> Iterator[PostgresServer]:
    server = start_postgres(
        port=port, base_dir=base_dir, os_user=os_user, extra_options=extra_options
    )
    try:
        yield server
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sqlmosaic.testing._pgserver")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="initdb (if needed) + start in DIR, print the URL")
    start.add_argument("--dir", type=Path, required=True)
    start.add_argument("--port", type=int)
    start.add_argument("--os-user")
    start.add_argument("--driver", default="asyncpg", help='URL driver; "" for plain postgresql')
    stop = sub.add_parser("stop", help="stop the server in DIR and remove what start created")
    stop.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    root: Path = args.dir.absolute()
    try:
        if args.command == "start":
            root.mkdir(parents=True, exist_ok=True)
            server = _start_in(
                root, port=args.port, os_user=args.os_user, extra_options=(), tmpdir=None
            )
            print(server.url(driver=args.driver))
        else:
            datadir = root / "data"
            if datadir.exists():
                uid = datadir.stat().st_uid
                run_as = None if uid == os.geteuid() else pwd.getpwuid(uid).pw_name
                _stop_cluster(datadir, run_as)
                shutil.rmtree(datadir, ignore_errors=True)
            shutil.rmtree(root / "sock", ignore_errors=True)
            (root / "postgres.log").unlink(missing_ok=True)
            if root.exists() and not any(root.iterdir()):
                root.rmdir()
    except (PostgresStartError, OSError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
