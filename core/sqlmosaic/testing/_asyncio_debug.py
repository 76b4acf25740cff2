"""``--mosaic-asyncio-debug``: debug-mode event loops, and asyncio problems fail the test.

When on:

- pytest-asyncio's loops run in debug mode (its ``asyncio_debug`` setting is switched on) and
  get ``slow_callback_duration = --mosaic-slow-callback-duration`` (default 0.25 s);
- during each test's setup, call and teardown every record of the ``asyncio`` logger at WARNING
  or above (``Task was destroyed but it is pending!``, ``Future exception was never
  retrieved``, ``Exception in callback ...``), every ``coroutine ... was never awaited``
  RuntimeWarning and every ResourceWarning (unclosed transports, sockets, loops) is collected,
  and the phase FAILS listing them.
- Slow callbacks (``Executing <Handle ...> took 0.4 seconds``) are wall-clock measurements, so on
  a loaded machine they say as much about the machine as about the code: they are REPORTED
  (the test's report section and a summary at the end of the run), and fail the test only with
  ``--mosaic-fail-slow-callbacks``. Blocking calls are caught deterministically by
  ``--mosaic-detect-blocking`` (:mod:`._blocking`). A record under the threshold (from a loop
  that did not get it) is ignored; ``@pytest.mark.mosaic_slow_callback_duration(s)`` raises
  the threshold for one test.
"""

from __future__ import annotations

import gc
import logging
import re
import warnings
from collections.abc import Generator
from typing import Any

import pytest

from ._phases import PerPhasePlugin

__all__ = ["AsyncioDebugPlugin"]

_SLOW = re.compile(r"^Executing .* took (?P<seconds>\d+(?:\.\d+)?) seconds$", re.DOTALL)
_NEVER_AWAITED = r".*was never awaited"
_MAX_LINES = 8
_MAX_SUMMARY = 20


class _Collector(logging.Handler):
    def __init__(self, threshold: float) -> None:
        super().__init__(logging.WARNING)
        self.threshold = threshold
        self.problems: list[str] = []
        self.slow: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        slow = _SLOW.match(message)
        if slow is not None and float(slow["seconds"]) < self.threshold:
            return
        first, *rest = message.splitlines() or [""]
        if slow is not None:
            self.slow.append(f"asyncio {record.levelname}: {_shorten([first, *rest])}")
            return
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            first += f" [{type(exc).__name__}: {exc}]"
        self.problems.append(f"asyncio {record.levelname}: {_shorten([first, *rest])}")


def _shorten(lines: list[str]) -> str:
    """At most _MAX_LINES lines (the full text is in pytest's captured log / warnings)."""
    if len(lines) > _MAX_LINES:
        lines = [*lines[: _MAX_LINES - 1], f"... ({len(lines) - _MAX_LINES + 1} more lines)"]
    return "\n    ".join(lines)


class _Watch:
    """Collect asyncio log records and the watched warnings during one test phase."""

    def __init__(self, threshold: float) -> None:
        self.collector = _Collector(threshold)
        self._warnings = warnings.catch_warnings(record=True)
        self._caught: list[warnings.WarningMessage] = []

    def start(self) -> None:
        logging.getLogger("asyncio").addHandler(self.collector)
        self._caught = self._warnings.__enter__()
        # Recorded (not raised, not ignored) whatever the project's filters say: raised inside
        # a __del__ they would only become "unraisable" noise.
        warnings.filterwarnings("always", category=ResourceWarning)
        warnings.filterwarnings("always", message=_NEVER_AWAITED, category=RuntimeWarning)

    def stop(self) -> list[str]:
        """The problems found (slow callbacks are in ``self.collector.slow``)."""
        logging.getLogger("asyncio").removeHandler(self.collector)
        self._warnings.__exit__(None, None, None)
        problems = list(self.collector.problems)
        for caught in self._caught:
            if issubclass(caught.category, ResourceWarning) or (
                issubclass(caught.category, RuntimeWarning)
                and re.match(_NEVER_AWAITED, str(caught.message), re.DOTALL)
            ):
                where = f" ({caught.filename}:{caught.lineno})" if caught.filename else ""
                text = f"{caught.category.__name__}: {caught.message}{where}"
                problems.append(_shorten(text.splitlines()))
            else:  # not ours: hand it back to pytest's own warning capture
                warnings.warn_explicit(
                    caught.message,
                    caught.category,
                    caught.filename,
                    caught.lineno,
                    source=caught.source,
                )
        return problems


class AsyncioDebugPlugin(PerPhasePlugin):
    """Registered by the sqlmosaic plugin when ``--mosaic-asyncio-debug`` is on."""

    def __init__(self, slow_callback_duration: float, *, fail_slow: bool = False) -> None:
        self.threshold = slow_callback_duration
        self.fail_slow = fail_slow
        self.slow_reports: list[tuple[str, str, str]] = []  # (nodeid, phase, record)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # A full garbage collection of a large test process can take 0.1-0.4 s and lands inside
        # whichever callback triggers it, failing an innocent test. Move everything that exists
        # after collection (modules, test items) out of the collector's reach.
        gc.collect()
        gc.freeze()

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        result = yield
        # pytest-asyncio's loop runners: _function_scoped_runner ... _session_scoped_runner.
        if fixturedef.argname.endswith("_scoped_runner") and hasattr(result, "get_loop"):
            loop = result.get_loop()
            loop.set_debug(True)
            loop.slow_callback_duration = self.threshold
        return result

    def _threshold(self, item: pytest.Item) -> float:
        marker = item.get_closest_marker("mosaic_slow_callback_duration")
        if marker is None:
            return self.threshold
        value = marker.args[0] if marker.args else marker.kwargs.get("seconds")
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.mosaic_slow_callback_duration takes seconds > 0, "
                f"got {value!r}"
            )
        return float(value)

    def _phase(self, item: pytest.Item, when: str) -> Generator[None, Any, Any]:
        threshold = self._threshold(item)
        watch = _Watch(threshold)
        watch.start()
        try:
            result = yield
        except BaseException:
            problems = watch.stop() + watch.collector.slow
            if problems:
                item.add_report_section(when, "asyncio debug", "\n".join(problems))
            raise
        problems = watch.stop()
        slow = watch.collector.slow
        if self.fail_slow:
            problems += slow
        elif slow:
            item.add_report_section(when, "asyncio slow callbacks", "\n".join(slow))
            self.slow_reports += [(item.nodeid, when, record) for record in slow]
        if problems:
            listing = "\n".join(f"  - {p}" for p in problems)
            pytest.fail(
                f"--mosaic-asyncio-debug: {len(problems)} asyncio problem(s) during {when} "
                f"(slow-callback threshold {threshold}s, "
                f"{'failing' if self.fail_slow else 'reported only'}):\n{listing}",
                pytrace=False,
            )
        return result

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.slow_reports:
            return
        terminalreporter.section("sqlmosaic: slow callbacks (reported, not failed)")
        terminalreporter.write_line(
            f"{len(self.slow_reports)} callback(s) took longer than the "
            f"{self.threshold}s threshold (wall-clock; --mosaic-fail-slow-callbacks fails them):"
        )
        for nodeid, when, record in self.slow_reports[:_MAX_SUMMARY]:
            terminalreporter.write_line(f"  {nodeid} ({when}): {record.splitlines()[0]}")
        if len(self.slow_reports) > _MAX_SUMMARY:
            terminalreporter.write_line(f"  ... and {len(self.slow_reports) - _MAX_SUMMARY} more")
