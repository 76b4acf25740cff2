"""The console script keeps the cyclic garbage collector off while the plugins load, then
freezes what they built and switches it back on (``mosaic db check`` at 500 tables: ~5.5 s
before, ~3.8 s after, ``bench/run_check.py``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sqlmosaic._gc import defer_collector_until_plugins_loaded, plugins_loaded


@pytest.fixture
def collector_restored() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    plugins_loaded()  # never leave the deferral armed for later tests
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.usefixtures("collector_restored")
def test_off_while_loading_then_frozen_and_back_on() -> None:
    gc.enable()
    frozen = gc.get_freeze_count()
    defer_collector_until_plugins_loaded()
    assert not gc.isenabled()
    plugins_loaded()
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen  # what existed at load time is out of its reach
    frozen = gc.get_freeze_count()
    plugins_loaded()  # only once
    assert gc.get_freeze_count() == frozen


@pytest.mark.usefixtures("collector_restored")
def test_an_application_that_disabled_the_collector_keeps_it_disabled() -> None:
    gc.disable()
    frozen = gc.get_freeze_count()
    defer_collector_until_plugins_loaded()
    plugins_loaded()
    assert not gc.isenabled()
    assert gc.get_freeze_count() == frozen


@pytest.mark.usefixtures("collector_restored")
def test_load_plugins_switches_the_deferred_collector_back_on() -> None:
    """What ``mosaic`` does: the collector is off from the start, and back on (with the loaded
    plugins frozen) as soon as load_plugins has loaded them, whatever the command."""
    from sqlmosaic import load_plugins

    gc.enable()
    frozen = gc.get_freeze_count()
    defer_collector_until_plugins_loaded()
    assert not gc.isenabled()
    loaded = load_plugins(allow=["accounts"])
    assert loaded.names == ("accounts",)
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen
