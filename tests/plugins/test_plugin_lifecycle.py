"""Lifecycle hooks: sync and async ``mosaic_startup`` / ``mosaic_shutdown``, ordering, rollback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import ForeignKey, event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from sqlmosaic import ConfigurationError, Mosaic, MosaicSettings, PluginError, hookimpl

Install = Callable[..., list[Path]]


def settings(tmp_path: Path, plugins: list[str] | None = None) -> MosaicSettings:
    return MosaicSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'life.sqlite'}", plugins=plugins
    )


class Recorder:
    """An explicit plugin recording its lifecycle into a shared list."""

    def __init__(self, events: list[str], *, requires: tuple[str, ...] = ()) -> None:
        self.events = events
        self.requires = list(requires)

    @hookimpl
    def mosaic_requires(self) -> list[str]:
        return self.requires


class SyncPlugin(Recorder):
    name = "sync"

    @hookimpl
    def mosaic_startup(self, mosaic: Mosaic) -> None:
        assert mosaic.database.connected
        self.events.append(f"{self.name}.startup")

    @hookimpl
    def mosaic_shutdown(self, mosaic: Mosaic) -> None:
        self.events.append(f"{self.name}.shutdown")


class AsyncPlugin(Recorder):
    name = "async"

    @hookimpl
    async def mosaic_startup(self, mosaic: Mosaic) -> None:
        await asyncio.sleep(0)
        self.events.append(f"{self.name}.startup")

    @hookimpl
    async def mosaic_shutdown(self, mosaic: Mosaic) -> None:
        await asyncio.sleep(0)
        self.events.append(f"{self.name}.shutdown")


class ReturnsAwaitable(Recorder):
    """Plain functions that RETURN an awaitable: the core awaits it."""

    def _later(self, what: str) -> Awaitable[None]:
        async def run() -> None:
            await asyncio.sleep(0)
            self.events.append(what)

        return run()

    @hookimpl
    def mosaic_startup(self, mosaic: Mosaic) -> Awaitable[None]:
        return self._later("awaitable.startup")

    @hookimpl
    def mosaic_shutdown(self, mosaic: Mosaic) -> Awaitable[None]:
        return self._later("awaitable.shutdown")


async def test_mosaic_startup_and_mosaic_shutdown_sync_async_and_returned_awaitables(
    tmp_path: Path,
) -> None:
    events: list[str] = []
    plugins = {
        "c_sync": SyncPlugin(events),
        "a_async": AsyncPlugin(events),
        "b_awaitable": ReturnsAwaitable(events),
    }
    mosaic = Mosaic(settings(tmp_path), plugins=plugins, discover=False)

    async with mosaic:
        assert mosaic.running
        assert events == ["async.startup", "awaitable.startup", "sync.startup"]
    assert not mosaic.running
    assert events[3:] == ["sync.shutdown", "awaitable.shutdown", "async.shutdown"]


async def test_mosaic_shutdown_runs_in_reverse_load_order_for_installed_plugins(
    installed: Install, tmp_path: Path
) -> None:
    installed("notes", "audit")
    import mosaic_test_audit
    import mosaic_test_notes.plugin

    mosaic = Mosaic(settings(tmp_path, ["accounts", "notes", "audit"]))
    await mosaic.start()
    # notes' hooks are async, audit's are sync (and its shutdown takes no argument).
    assert mosaic_test_notes.plugin.EVENTS == ["notes.startup running=False"]
    assert mosaic_test_audit.EVENTS == ["audit.startup plugins=accounts,notes,audit"]
    await mosaic.stop()
    await mosaic.stop()  # idempotent: hooks run once
    assert mosaic_test_notes.plugin.EVENTS[1:] == ["notes.shutdown"]
    assert mosaic_test_audit.EVENTS[1:] == ["audit.shutdown"]


async def test_hooks_may_take_none_of_the_spec_arguments(tmp_path: Path) -> None:
    events: list[str] = []

    class NoArgs:
        @hookimpl
        def mosaic_startup(self) -> None:
            events.append("startup")

        @hookimpl
        async def mosaic_shutdown(self) -> None:
            events.append("shutdown")

    async with Mosaic(settings(tmp_path), plugins={"noargs": NoArgs()}, discover=False):
        pass
    assert events == ["startup", "shutdown"]


async def test_a_failing_mosaic_startup_stops_everything_already_started(tmp_path: Path) -> None:
    events: list[str] = []
    disposed: list[str] = []

    class First(SyncPlugin):
        name = "first"

        @hookimpl
        def mosaic_startup(self, mosaic: Mosaic) -> None:
            super().mosaic_startup(mosaic)
            event.listen(
                mosaic.engine.sync_engine, "engine_disposed", lambda e: disposed.append("x")
            )

    class Second(AsyncPlugin):
        name = "second"

        @hookimpl
        async def mosaic_startup(self, mosaic: Mosaic) -> None:
            raise OSError("cache server unreachable")

    class Third(SyncPlugin):
        name = "third"

    mosaic = Mosaic(
        settings(tmp_path),
        plugins={
            "first": First(events),
            "second": Second(events, requires=("first",)),
            "third": Third(events, requires=("second",)),
        },
        discover=False,
    )

    with pytest.raises(PluginError) as err:
        await mosaic.start()

    assert err.value.plugins == ("second",)
    assert str(err.value) == (
        "plugin 'second': mosaic_startup failed: OSError: cache server unreachable"
    )
    assert isinstance(err.value.__cause__, OSError)
    # first was started, then shut down; second never finished starting; third never started.
    assert events == ["first.startup", "first.shutdown"]
    assert disposed == ["x"]
    assert not mosaic.running
    assert not mosaic.database.connected
    with pytest.raises(ConfigurationError, match="not connected"):
        _ = mosaic.engine
    await mosaic.stop()  # nothing to stop: no hook runs twice
    assert events == ["first.startup", "first.shutdown"]


async def test_a_failing_mosaic_shutdown_is_logged_and_the_others_still_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []

    class Broken(SyncPlugin):
        name = "broken"

        @hookimpl
        def mosaic_shutdown(self, mosaic: Mosaic) -> None:
            raise RuntimeError("flush failed")

    plugins: dict[str, Any] = {"a_sync": SyncPlugin(events), "b_broken": Broken(events)}
    mosaic = Mosaic(settings(tmp_path), plugins=plugins, discover=False)
    await mosaic.start()
    with caplog.at_level(logging.ERROR, logger="sqlmosaic.host"):
        await mosaic.stop()

    assert events == ["sync.startup", "broken.startup", "sync.shutdown"]
    # only our logger: a loaded machine adds asyncio's slow-callback warnings to caplog
    [record] = [r for r in caplog.records if r.name == "sqlmosaic.host"]
    assert record.getMessage() == "shutdown hook of plugin 'b_broken' failed"
    assert record.exc_info is not None
    assert "flush failed" in str(record.exc_info[1])
    assert not mosaic.database.connected


async def test_mosaic_startup_can_use_the_database(tmp_path: Path) -> None:
    seen: list[int] = []

    class Warmup:
        @hookimpl
        async def mosaic_startup(self, mosaic: Mosaic) -> None:
            async with mosaic.transaction() as session:
                connection = await session.connection()
                seen.append((await connection.exec_driver_sql("SELECT 41 + 1")).scalar_one())

    async with Mosaic(settings(tmp_path), plugins={"warmup": Warmup()}, discover=False):
        assert seen == [42]


def _fresh_models(child_target: str) -> tuple[type[Any], type[Any], Any]:
    """Two new mapped classes in their own registry (not configured yet); and the registry."""

    class Base(DeclarativeBase):
        pass

    class Parent(Base):
        __tablename__ = "parent"
        id: Mapped[int] = mapped_column(primary_key=True)
        children: Mapped[list[Any]] = relationship(child_target)

    class Child(Base):
        __tablename__ = "child"
        id: Mapped[int] = mapped_column(primary_key=True)
        parent_id: Mapped[int] = mapped_column(ForeignKey("parent.id"))

    return Parent, Child, Base.registry


async def test_start_configures_the_mappers(tmp_path: Path) -> None:
    """Configured during start (in a worker thread), not by the first request."""
    parent, child, models = _fresh_models("Child")
    try:
        assert not sa_inspect(parent).configured
        async with Mosaic(settings(tmp_path), plugins={"empty": object()}, discover=False):
            assert sa_inspect(parent).configured
            assert sa_inspect(child).configured
    finally:
        models.dispose()


async def test_a_mapper_that_cannot_be_configured_fails_start(tmp_path: Path) -> None:
    _parent, _child, models = _fresh_models("NoSuchModel")
    try:
        mosaic = Mosaic(settings(tmp_path), plugins={"empty": object()}, discover=False)
        with pytest.raises(PluginError, match="mappers could not be configured") as info:
            await mosaic.start()
        assert info.value.plugins == ("empty",)
        assert not mosaic.database.connected
    finally:
        models.dispose()  # the broken mapper must not break every later configure
