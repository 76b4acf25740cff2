"""``Mosaic``: the host object that loads plugins and owns the database.

    async with Mosaic() as mosaic:                      # settings from the environment
        async with mosaic.unit_of_work() as uow:
            user = await uow.repository(UserRepository).add(User(email="a@example.com"))

Construction does no I/O and imports no plugin; :meth:`Mosaic.load` (sync) discovers and
validates plugins; :meth:`Mosaic.start` also connects and runs the startup hooks.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar, overload

from sqlalchemy import MetaData
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import configure_mappers
from sqlmodel.ext.asyncio.session import AsyncSession

from ._binds import plan_binds
from ._database import Database
from ._exceptions import ConfigurationError, PluginError
from ._plugins import PluginSet, load_plugins
from ._repository import Repository
from ._settings import MosaicSettings
from ._uow import IsolationLevel, Retry, transaction
from ._warm import warm_up

__all__ = ["Mosaic", "UnitOfWork"]

R = TypeVar("R")
RepoT = TypeVar("RepoT", bound=Repository[Any])
_log = logging.getLogger("sqlmosaic.host")


class UnitOfWork:
    """A session inside one transaction, handing out repositories that share it."""

    def __init__(self, mosaic: Mosaic, session: AsyncSession) -> None:
        self.mosaic = mosaic
        self.session = session

    @overload
    def repository(self, key: type[RepoT]) -> RepoT: ...
    @overload
    def repository(self, key: str) -> Repository[Any]: ...
    def repository(self, key: type[RepoT] | str) -> RepoT | Repository[Any]:
        """The repository ``key`` (class or ``"plugin.name"``) bound to this unit's session."""
        return self.mosaic.repository(key, self.session)


class Mosaic:
    """A sqlmosaic host: plugins (merged and validated) plus one :class:`Database`.

    :param settings: defaults to :meth:`MosaicSettings.load` (environment).
    :param plugins: plugins passed in code, ``{name: module}`` or a list of modules.
    :param discover: also load installed plugins from the ``sqlmosaic`` entry-point group.
    :param engine: / :param session_factory: injected database objects (tests).
    """

    def __init__(
        self,
        settings: MosaicSettings | None = None,
        *,
        plugins: Mapping[str, object] | Iterable[object] = (),
        discover: bool = True,
        engine: AsyncEngine | None = None,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.settings = settings if settings is not None else MosaicSettings.load()
        self.database = Database(self.settings, engine=engine, session_factory=session_factory)
        self._explicit = plugins if isinstance(plugins, Mapping) else tuple(plugins)
        self._discover = discover
        self._plugins: PluginSet | None = None
        self._started: list[str] = []
        self._running = False
        self._load_lock = threading.Lock()

    # ----------------------------------------------------------------- plugins

    def load(self) -> PluginSet:
        """Discover, validate and merge the plugins (once; no database access)."""
        if self._plugins is not None:
            return self._plugins
        with self._load_lock:  # start() loads in a worker thread; others may call load()
            return self._load()

    def _load(self) -> PluginSet:
        if self._plugins is None:
            self._plugins = load_plugins(
                allow=self.settings.plugins,
                block=self.settings.blocked_plugins,
                plugins=self._explicit,
                discover=self._discover,
            )
            plan = plan_binds(self.settings, self._plugins)  # refuses cross-bind foreign keys
            self.database.size_statement_cache(len(self._plugins.repositories))
            self.database.use_binds(
                plan,
                {url: plan.tables_on(self._plugins, url) for url in plan.urls} if plan else {},
            )
            skipped = ", ".join(f"{s.name} ({s.reason})" for s in self._plugins.skipped)
            _log.info(
                "plugins enabled (%s): %s%s",
                "allowlist MOSAIC_PLUGINS"
                if self.settings.plugins is not None
                else "no allowlist: every installed plugin",
                ", ".join(self._plugins.names) or "none",
                f"; skipped: {skipped}" if skipped else "",
            )
        return self._plugins

    @property
    def plugins(self) -> PluginSet:
        return self.load()

    @property
    def metadata(self) -> MetaData:
        """The merged metadata of the enabled plugins (Alembic's ``target_metadata``)."""
        return self.load().metadata

    @overload
    def repository(self, key: type[RepoT], session: AsyncSession) -> RepoT: ...
    @overload
    def repository(self, key: str, session: AsyncSession) -> Repository[Any]: ...
    def repository(self, key: type[RepoT] | str, session: AsyncSession) -> RepoT | Repository[Any]:
        """A registered repository, by class or ``"plugin.name"`` key, bound to ``session``."""
        registry = self.load().repositories
        if isinstance(key, str):
            if key not in registry:
                raise ConfigurationError(
                    f"no repository {key!r}; registered: {', '.join(sorted(registry)) or 'none'}",
                    setting="repository",
                )
            return registry[key](session)
        if key not in registry.values():
            raise ConfigurationError(
                f"repository {key.__qualname__} is not registered by an enabled plugin",
                setting="repository",
            )
        return key(session)

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> Self:
        """Load plugins, connect, run every ``mosaic_startup`` hook in load order, then, with
        ``MOSAIC_WARM_UP=true``, warm the repositories' statements (see ``_warm``).

        If a startup hook fails, the plugins already started are shut down, the engine is
        disposed, and :class:`PluginError` names the plugin.
        """
        if self._running:
            return self
        # Discovery reads package metadata from disk and imports the plugins' modules (~0.3 s
        # of I/O and CPU), and SQLAlchemy configures every mapper (~2 s at 1,000 models, else
        # paid by the first request): done in a worker thread, the event loop keeps serving.
        plugins = await asyncio.to_thread(self._load_and_configure)
        await self.database.connect()
        try:
            for info in plugins.plugins:
                await self._call_lifecycle("mosaic_startup", info.name)
                self._started.append(info.name)
            if self.settings.warm_up:  # after the startup hooks: what they set up is there
                await warm_up(
                    self.database.session_factory,
                    plugins.repositories,
                    replicas=self.database.replica_engines,
                )
        except BaseException:
            await self._shutdown_started()
            await self.database.dispose()
            raise
        self._running = True
        return self

    def _load_and_configure(self) -> PluginSet:
        plugins = self.load()
        try:
            configure_mappers()
        except sa_exc.SQLAlchemyError as exc:
            raise PluginError(
                f"the models' mappers could not be configured: {type(exc).__name__}: {exc}",
                plugins=plugins.names,
            ) from exc
        return plugins

    async def stop(self) -> None:
        """Run ``mosaic_shutdown`` hooks in reverse order, then dispose the engine."""
        if not self._running:
            return
        self._running = False
        await self._shutdown_started()
        await self.database.dispose()

    async def _shutdown_started(self) -> None:
        while self._started:
            name = self._started.pop()
            try:
                await self._call_lifecycle("mosaic_shutdown", name)
            except PluginError:
                _log.exception("shutdown hook of plugin %r failed", name)

    async def _call_lifecycle(self, hook: str, plugin: str) -> None:
        caller = getattr(self.load().manager.hook, hook)
        for impl in caller.get_hookimpls():
            if impl.plugin_name != plugin:
                continue
            # pluggy lets an implementation accept a subset of the spec's arguments
            # (``def mosaic_startup():``): pass only the ones it declares.
            kwargs = {arg: self for arg in impl.argnames if arg == "mosaic"}
            try:
                result = impl.function(**kwargs)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                raise PluginError(
                    f"plugin {plugin!r}: {hook} failed: {type(exc).__name__}: {exc}",
                    plugins=(plugin,),
                ) from exc

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._running

    # ----------------------------------------------------------------- database

    @property
    def engine(self) -> AsyncEngine:
        return self.database.engine

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        return self.database.session_factory

    async def get_db_session(self) -> AsyncGenerator[AsyncSession, None]:
        """Yield a session (FastAPI: ``Depends(mosaic.get_db_session)``); never commits."""
        async for session in self.database.get_db_session():
            yield session

    def transaction(
        self, *, isolation_level: IsolationLevel | None = None, read_only: bool = False
    ) -> Any:
        """``async with mosaic.transaction() as session``: a new session in one unit of work."""
        return self.database.transaction(isolation_level=isolation_level, read_only=read_only)

    @asynccontextmanager
    async def unit_of_work(
        self,
        session: AsyncSession | None = None,
        *,
        isolation_level: IsolationLevel | None = None,
        read_only: bool = False,
    ) -> AsyncIterator[UnitOfWork]:
        """A unit of work (on ``session``, or a new one) that hands out repositories."""
        if session is not None:
            async with transaction(session, isolation_level=isolation_level, read_only=read_only):
                yield UnitOfWork(self, session)
            return
        async with self.database.transaction(
            isolation_level=isolation_level, read_only=read_only
        ) as new:
            yield UnitOfWork(self, new)

    async def run(
        self,
        func: Callable[[UnitOfWork], Awaitable[R]],
        *,
        retry: Retry | None = None,
        isolation_level: IsolationLevel | None = None,
        read_only: bool = False,
    ) -> R:
        """Run ``func(uow)`` as a unit of work in a fresh session per attempt (retry-safe)."""

        async def body(session: AsyncSession) -> R:
            return await func(UnitOfWork(self, session))

        body.__qualname__ = getattr(func, "__qualname__", "unit of work")
        return await self.database.run(
            body, retry=retry, isolation_level=isolation_level, read_only=read_only
        )

    def __repr__(self) -> str:
        names = ", ".join(self._plugins.names) if self._plugins is not None else "not loaded"
        return f"<Mosaic {self.settings.masked_url} plugins=[{names}]>"
