"""A pytest plugin base that wraps each phase of a test (setup, call, teardown) the same way."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

__all__ = ["PerPhasePlugin"]


class PerPhasePlugin:
    """Subclasses implement :meth:`_phase`, a hook wrapper run around every test phase."""

    def _phase(self, item: pytest.Item, when: str) -> Generator[None, Any, Any]:
        raise NotImplementedError

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._phase(item, "setup"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield from self._phase(item, "call"))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, Any, Any]:
        return (yield from self._phase(item, "teardown"))
