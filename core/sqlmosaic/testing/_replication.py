"""A throwaway streaming replica of a throwaway primary (:mod:`._pgserver`), for tests and
benchmarks: ``pg_basebackup -R -X stream -c fast`` (as the ``postgres`` OS user when root),
started on a free loopback port in a private temp dir, with the primary's ``max_connections``::

    with running_postgres() as primary, running_replica(primary) as replica:
        ...
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ._pgserver import (
    SUPERUSER,
    PostgresServer,
    _error,
    _resolve_os_user,
    _run,
    _sibling,
    _start_in,
    _stop_cluster,
    find_pg_bin,
)

__all__ = ["Replica", "running_replica", "start_replica"]


@dataclass
class Replica:
    """A running (or stopped) streaming replica; ``server`` changes on :meth:`start`."""

    server: PostgresServer
    root: Path

    def url(self, dbname: str = "postgres") -> str:
        return self.server.url(dbname)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (default: ``immediate``, as if it died); the data dir stays."""
        _stop_cluster(self.server.datadir, self.server.os_user, mode=mode, check=False)

    def start(self) -> None:
        """Start it again on the same port (after :meth:`stop`)."""
        self.server = _start_in(
            self.root,
            port=self.server.port,
            os_user=self.server.os_user,
            extra_options=(),
            tmpdir=self.root,
        )

    def remove(self) -> None:
        self.server.stop()  # stops and removes the temp dir


def start_replica(primary: PostgresServer, *, base_dir: Path | None = None) -> Replica:
    """``pg_basebackup`` ``primary`` into a new temp dir and start it as a hot standby."""
    run_as = _resolve_os_user(primary.os_user)
    root = Path(tempfile.mkdtemp(prefix="sqlmosaic-replica-", dir=base_dir)).absolute()
    try:
        if run_as is not None:
            pw = pwd.getpwnam(run_as)
            os.chown(root, pw.pw_uid, pw.pw_gid)
        basebackup = _sibling(find_pg_bin("pg_ctl"), "pg_basebackup")
        cmd = [basebackup, "-h", primary.host, "-p", str(primary.port), "-U", SUPERUSER]
        # -c fast: an immediate checkpoint on the primary. The default ("spread") paces it over
        # checkpoint_completion_target of checkpoint_timeout: 100 s measured for the first
        # replica after a migration, against 1.2 s with "fast".
        cmd += ["-D", str(root / "data"), "-R", "-X", "stream", "-c", "fast"]
        proc = _run(cmd, run_as, root)
        if proc.returncode != 0:
            raise _error("pg_basebackup failed", proc, None)
        server = _start_in(root, port=None, os_user=run_as, extra_options=(), tmpdir=root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return Replica(server, root)


@contextmanager
def running_replica(primary: PostgresServer, *, base_dir: Path | None = None) -> Iterator[Replica]:
    replica = start_replica(primary, base_dir=base_dir)
    try:
        yield replica
    finally:
        replica.remove()
