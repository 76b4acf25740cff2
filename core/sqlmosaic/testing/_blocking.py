"""``--mosaic-detect-blocking``: a blocking call on the event loop fails the test.

Deterministic where a slow-callback threshold is not: `blockbuster
<https://pypi.org/project/blockbuster/>`_ patches the blocking primitives (``time.sleep``,
blocking ``socket`` methods, file reads and writes, ``os.stat``/``os.listdir``/..., ``sqlite3``,
blocking ``threading.Lock.acquire``, ``input``) so that calling one from a thread that is running
an event loop raises ``BlockingError``. The same call from a worker thread
(``asyncio.to_thread``, aiosqlite's thread) or from sync code is untouched.

The patches are active only around each test's setup, call and teardown. Every blocking call
on the thread that runs the test is recorded where it happened (a private loop in a worker
thread, ``asyncio.to_thread(asyncio.run, ...)`` as sqlmosaic's migrations use, blocks nobody and
is not checked), so the phase FAILS even when the code under test swallowed the
``BlockingError``, with a message naming the call and the line that made it::

    --mosaic-detect-blocking: 1 blocking call(s) on the event loop during call:
      - time.sleep at tests/test_x.py:12 in test_slow: time.sleep(0.1)

Allow-list (known one-off work that may block, e.g. a startup step of a third-party library):

- ini ``mosaic_blocking_allow``, one ``FILE_SUFFIX:FUNCTION[,FUNCTION...]`` per line: a
  blocking call is allowed while that function (of a file whose path ends with FILE_SUFFIX) is
  on the call stack;
- ``@pytest.mark.mosaic_allow_blocking("FILE_SUFFIX:FUNCTION", ...)`` adds entries for one
  test; with no arguments the test is not checked at all.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ._phases import PerPhasePlugin

__all__ = ["DEFAULT_ALLOW", "BlockingPlugin", "parse_allow"]

# Blocking calls of the libraries sqlmosaic itself runs on the loop that a project cannot move
# off it; each is short and bounded (no network wait). Listed in docs/testing.md.
DEFAULT_ALLOW: tuple[str, ...] = (
    # logging is synchronous by design (and pytest's own log-file handler writes to /dev/null)
    "logging/__init__.py:emit",
    # asyncpg resolves ~/.postgresql paths and reads ~/.pgpass (stat + small reads) on connect
    "asyncpg/connect_utils.py:_parse_connect_dsn_and_args",
    # SQLAlchemy makes the SQLite file name absolute (os.getcwd) when an engine is created
    "sqlalchemy/dialects/sqlite/pysqlite.py:create_connect_args",
    # FastAPI reads the endpoint's source file name when an endpoint raises (error context)
    "fastapi/routing.py:_extract_endpoint_context",
    # MosaicSettings.load() reads an optional .env file (a stat, a small read): settings are
    # read once at startup, and tests build them inside async tests all the time
    "pydantic_settings/sources/providers/dotenv.py:_read_env_files",
    "sqlmosaic/_settings.py:_url_variable",
    # Migrations on a connection the caller hands in (inside the caller's transaction): Alembic
    # is synchronous and the connection belongs to the caller's loop, so its script loading
    # runs there. Without a connection, sqlmosaic runs Alembic on a worker thread's loop.
    "sqlmosaic/migrations/_runtime.py:_run_on_connection",
    "sqlmosaic/migrations/_commands.py:call",
)

_MAX_SHOWN = 10
_MAX_VIA = 4  # library frames shown between the blocking call and the project's code
_MAX_PROJECT = 5  # and the project's own frames above them


def parse_allow(entries: Iterable[str], *, where: str) -> list[tuple[str, set[str]]]:
    """``["pkg/mod.py:f,g"]`` -> ``[("pkg/mod.py", {"f", "g"})]``; a bad entry is a UsageError."""
    parsed: list[tuple[str, set[str]]] = []
    for raw in entries:
        entry = str(raw).strip()
        if not entry or entry.startswith("#"):
            continue
        filename, sep, names = entry.rpartition(":")
        functions = {n.strip() for n in names.split(",") if n.strip()}
        if not sep or not filename.strip() or not functions:
            raise pytest.UsageError(
                f"{where}: expected FILE_SUFFIX:FUNCTION[,FUNCTION...] "
                f"(e.g. mypkg/startup.py:load_plugins), got {entry!r}"
            )
        parsed.append((filename.strip().replace("\\", "/"), functions))
    return parsed


class _Recorder:
    """Where each blocking call happened during the current phase."""

    def __init__(self, rootdir: Path) -> None:
        self.rootdir = rootdir
        self.calls: list[str] = []

    def record(self, function: str, stack: list[traceback.FrameSummary]) -> None:
        self.calls.append(f"{function} {self._where(stack)}")

    def _where(self, stack: list[traceback.FrameSummary]) -> str:
        # stack: ... caller, blockbuster's wrapper, our error's __init__
        frames = [f for f in stack if not _is_machinery(f.filename)]
        if not frames:
            return "(location unknown)"
        caller = frames[-1]
        text = f"at {self._show(caller)}"
        if self._is_project(caller.filename):
            return text
        # The way from the nearest project frame (test or code under test) to the library.
        via: list[str] = []
        project: list[str] = []
        for frame in reversed(frames[:-1]):
            if self._is_project(frame.filename):
                project.append(self._show(frame))
            elif project:
                continue
            elif len(via) < _MAX_VIA and f"{os.sep}asyncio{os.sep}" not in frame.filename:
                via.append(self._show(frame, code=False))
        if len(project) > _MAX_PROJECT:  # nearest ones, then the outermost (the test)
            skipped = len(project) - _MAX_PROJECT
            project = [*project[:3], f"... {skipped} frame(s) ...", *project[3 - _MAX_PROJECT :]]
        via += project
        return text + "".join(f"\n      called from {v}" for v in via)

    def _is_project(self, filename: str) -> bool:
        return (
            filename.startswith(str(self.rootdir) + os.sep)
            and "site-packages" not in filename
            and f"{os.sep}.venv{os.sep}" not in filename
        )

    def _show(self, frame: traceback.FrameSummary, *, code: bool = True) -> str:
        filename = frame.filename
        if self._is_project(filename):
            filename = os.path.relpath(filename, self.rootdir)
        elif (cut := filename.find(f"{os.sep}site-packages{os.sep}")) >= 0:
            filename = filename[cut + len("/site-packages/") :]
        line = frame.line.strip() if code and frame.line else ""
        code_text = f": {line}" if line else ""
        return f"{filename}:{frame.lineno} in {frame.name}{code_text}"


_HERE = os.path.dirname(os.path.abspath(__file__))


def _is_machinery(filename: str) -> bool:
    return f"{os.sep}blockbuster{os.sep}" in filename or filename.startswith(
        os.path.join(_HERE, "_blocking.py")
    )


@contextmanager
def _detecting(recorder: _Recorder, allow: list[tuple[str, set[str]]]) -> Iterator[None]:
    import blockbuster.blockbuster as bb

    original = bb.BlockingError

    class RecordedBlockingError(original):  # type: ignore[valid-type,misc]
        """Raised by blockbuster's wrappers (it looks the name up at raise time)."""

        def __init__(self, func: str) -> None:
            super().__init__(func)
            recorder.record(func, traceback.extract_stack()[:-1])

    test_thread = threading.get_ident()
    buster = bb.BlockBuster()
    for function in buster.functions.values():
        for filename, names in allow:
            function.can_block_in(filename, names)
        function.can_block_predicate = _only_on_thread(test_thread, function.can_block_predicate)
    bb.BlockingError = RecordedBlockingError  # type: ignore[misc]
    buster.activate()
    try:
        yield
    finally:
        buster.deactivate()
        bb.BlockingError = original  # type: ignore[misc]


def _only_on_thread(thread: int, predicate: Callable[..., bool]) -> Callable[..., bool]:
    """Check only the loop of the thread that runs the test: a private loop in a worker thread
    (``asyncio.to_thread(asyncio.run, ...)``, as sqlmosaic's migrations do) blocks nobody."""

    def can_block(*args: Any, **kwargs: Any) -> bool:
        return threading.get_ident() != thread or predicate(*args, **kwargs)

    return can_block


def _caused_by_blocking(exc: BaseException) -> bool:
    import blockbuster

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, blockbuster.BlockingError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class BlockingPlugin(PerPhasePlugin):
    """Registered by the sqlmosaic plugin when ``--mosaic-detect-blocking`` is on."""

    def __init__(self, rootdir: Path, allow: list[tuple[str, set[str]]]) -> None:
        self.rootdir = rootdir
        self.allow = allow

    def _allow_for(self, item: pytest.Item) -> list[tuple[str, set[str]]] | None:
        """The allow-list for ``item``; None: the test is not checked."""
        allow = list(self.allow)
        for marker in item.iter_markers("mosaic_allow_blocking"):
            if not marker.args:
                return None
            allow += parse_allow(
                marker.args, where=f"{item.nodeid}: @pytest.mark.mosaic_allow_blocking"
            )
        return allow

    def _phase(self, item: pytest.Item, when: str) -> Generator[None, Any, Any]:
        allow = self._allow_for(item)
        if allow is None:
            return (yield)
        recorder = _Recorder(self.rootdir)
        failure: BaseException | None = None
        try:
            with _detecting(recorder, allow):
                result = yield
        except BaseException as exc:
            if not (recorder.calls and _caused_by_blocking(exc)):
                if recorder.calls:
                    item.add_report_section(when, "blocking calls", "\n".join(recorder.calls))
                raise
            failure = exc  # replaced by the clearer report below (outside this handler)
        if recorder.calls:
            self._fail(recorder, when, failure)
        return result

    def _fail(self, recorder: _Recorder, when: str, from_exc: BaseException | None) -> None:
        calls = list(dict.fromkeys(recorder.calls))
        shown = "\n".join(f"  - {c}" for c in calls[:_MAX_SHOWN])
        if len(calls) > _MAX_SHOWN:
            shown += f"\n  ... and {len(calls) - _MAX_SHOWN} more"
        message = (
            f"--mosaic-detect-blocking: {len(recorder.calls)} blocking call(s) on the event loop "
            f"during {when}:\n{shown}\n"
            "Move the work off the loop (await asyncio.to_thread(...), an async library), or "
            "allow it: ini mosaic_blocking_allow / @pytest.mark.mosaic_allow_blocking "
            "(docs/testing.md, 'Blocking calls')."
        )
        import blockbuster

        if from_exc is not None and not isinstance(from_exc, blockbuster.BlockingError):
            message += f"\nThe test then failed with: {type(from_exc).__name__}: {from_exc}"
        pytest.fail(message, pytrace=False)
