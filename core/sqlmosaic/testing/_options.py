"""Command-line options, ini keys and environment variables of the pytest plugin.

Every setting can come from three places; the first one set wins:

1. the command line (``--mosaic-pg-host``),
2. the environment (``MOSAIC_TEST_PG_HOST``),
3. the ini file (``mosaic_pg_host`` in ``[tool.pytest.ini_options]`` / ``pytest.ini``).

Nothing here imports SQLAlchemy: pytest loads this plugin whenever sqlmosaic is installed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "BACKENDS",
    "OPTIONS_KEY",
    "MosaicTestOptions",
    "add_options",
    "get_options",
    "running_as_root",
]

BACKENDS = ("postgresql", "sqlite")
_DEFAULT_SLOW_CALLBACK = 0.25  # seconds: generous enough for a 2-core CI box in debug mode
_TRUE = {"1", "true", "yes", "on"}


def running_as_root() -> bool:
    """Whether initdb/pg_ctl would refuse to run (POSIX root)."""
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0


_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class _Setting:
    name: str  # ini key and option dest, e.g. "mosaic_pg_host"
    help: str
    default: str = ""
    flag: bool = False  # a store_true command-line switch (and a bool ini value)
    metavar: str | None = None

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "MOSAIC_TEST_" + self.name.removeprefix("mosaic_").upper()


_SETTINGS = (
    _Setting(
        "mosaic_pg_host",
        "PostgreSQL host of an existing server to test against (pytest-postgresql noproc). "
        "Unset: start a throwaway server (postgresql_proc; as root: a server run by the "
        "'postgres' OS user).",
        metavar="HOST",
    ),
    _Setting("mosaic_pg_port", "PostgreSQL port of that server [5432].", metavar="PORT"),
    _Setting("mosaic_pg_user", "PostgreSQL user [postgres].", metavar="USER"),
    _Setting("mosaic_pg_password", "PostgreSQL password [none].", metavar="PASSWORD"),
    _Setting(
        "mosaic_alembic_ini",
        "Alembic configuration of the host under test, relative to the rootdir [alembic.ini].",
        metavar="PATH",
    ),
    _Setting(
        "mosaic_plugins",
        "Plugin allowlist of the host under test, comma or space separated; 'all' enables "
        "every installed plugin [MOSAIC_PLUGINS, else all].",
        metavar="NAMES",
    ),
    _Setting(
        "mosaic_backends",
        "Backends the parametrized mosaic_* fixtures run on [postgresql sqlite].",
        default="postgresql sqlite",
        metavar="NAMES",
    ),
    _Setting(
        "mosaic_asyncio_debug",
        "Run event loops in debug mode and FAIL a test on any asyncio warning/error log "
        "record (slow callbacks, pending tasks destroyed, ...), never-awaited coroutine or "
        "ResourceWarning.",
        flag=True,
    ),
    _Setting(
        "mosaic_slow_callback_duration",
        f"Seconds a callback may take before --mosaic-asyncio-debug reports it as slow "
        f"[{_DEFAULT_SLOW_CALLBACK}]; a report only, unless --mosaic-fail-slow-callbacks.",
        metavar="SECONDS",
    ),
    _Setting(
        "mosaic_fail_slow_callbacks",
        "With --mosaic-asyncio-debug: FAIL a test whose callbacks took longer than "
        "--mosaic-slow-callback-duration (wall-clock: flaky on a loaded machine; by default "
        "slow callbacks are only reported).",
        flag=True,
    ),
    _Setting(
        "mosaic_detect_blocking",
        "FAIL a test that makes a blocking call (time.sleep, blocking socket or file I/O, "
        "os.stat, ...) on the event loop, naming the call and where it was made (blockbuster; "
        "allow known one-off work with the ini list mosaic_blocking_allow or "
        "@pytest.mark.mosaic_allow_blocking).",
        flag=True,
    ),
    _Setting(
        "mosaic_migration_checks",
        "Add sqlmosaic's migration checks (single head per branch, upgrade from empty, "
        "models match migrations, stairway) as test items.",
        flag=True,
    ),
    _Setting(
        "mosaic_migration_checks_path",
        "File the migration-check items are collected under, relative to the rootdir "
        "[tests/conftest.py].",
        metavar="PATH",
    ),
)

MIGRATION_CHECKS_PATH = "tests/conftest.py"
BLOCKING_ALLOW = "mosaic_blocking_allow"


@dataclass(frozen=True)
class MosaicTestOptions:
    """The resolved settings of one pytest run (``config.stash[OPTIONS_KEY]``)."""

    pg_host: str | None
    pg_port: int | None
    pg_user: str | None
    pg_password: str | None
    alembic_ini: Path
    plugins: tuple[str, ...] | None  # None: not set here (the settings decide)
    all_plugins: bool  # --mosaic-plugins all
    backends: tuple[str, ...]
    asyncio_debug: bool
    slow_callback_duration: float
    fail_slow_callbacks: bool
    detect_blocking: bool
    blocking_allow: tuple[str, ...]  # FILE_SUFFIX:FUNCTION[,FUNCTION] entries
    migration_checks: bool
    migration_checks_path: str
    #: whether --mosaic-alembic-ini (or its env/ini key) named the file; if not and there is
    #: no ./alembic.ini, the enabled plugins' shipped histories build the databases
    alembic_ini_given: bool = False

    @property
    def pg_configured(self) -> bool:
        """An existing server was named (host or port): use pytest-postgresql's noproc path."""
        return self.pg_host is not None or self.pg_port is not None

    def settings_overrides(self) -> dict[str, Any]:
        """Keyword overrides for ``MosaicSettings.load`` (only what these options set)."""
        if self.all_plugins:
            return {"plugins": None}
        if self.plugins is not None:
            return {"plugins": list(self.plugins)}
        return {}

    def describe(self) -> str:
        """One line for the pytest header (the password is never shown)."""
        if self.pg_configured:
            auth = f"{self.pg_user or 'postgres'}{':***' if self.pg_password else ''}"
            pg = f"existing server {auth}@{self.pg_host or '127.0.0.1'}:{self.pg_port or 5432}"
        elif running_as_root():
            pg = "throwaway server run by the 'postgres' OS user (running as root)"
        else:
            pg = "throwaway server (pytest-postgresql postgresql_proc)"
        plugins = (
            "all" if self.all_plugins else ",".join(self.plugins) if self.plugins else "settings"
        )
        return (
            f"sqlmosaic: backends={' '.join(self.backends)}; postgresql: {pg}; "
            f"alembic={self.alembic_ini}; plugins={plugins}; "
            f"asyncio_debug={self.asyncio_debug}; detect_blocking={self.detect_blocking}"
        )


OPTIONS_KEY = pytest.StashKey[MosaicTestOptions]()


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("sqlmosaic", "sqlmosaic database fixtures")
    for setting in _SETTINGS:
        if setting.flag:
            group.addoption(
                setting.option,
                action="store_true",
                default=None,
                dest=setting.name,
                help=f"{setting.help} (env {setting.env}; ini {setting.name})",
            )
            parser.addini(setting.name, setting.help, type="bool", default=False)
        else:
            group.addoption(
                setting.option,
                action="store",
                default=None,
                dest=setting.name,
                metavar=setting.metavar,
                help=f"{setting.help} (env {setting.env}; ini {setting.name})",
            )
            parser.addini(setting.name, setting.help, default=setting.default)
    parser.addini(
        BLOCKING_ALLOW,
        "Blocking calls --mosaic-detect-blocking allows: one FILE_SUFFIX:FUNCTION[,FUNCTION...] "
        "per line; a call is allowed while such a function is on the stack (env "
        "MOSAIC_TEST_BLOCKING_ALLOW, space separated).",
        type="linelist",
        default=[],
    )


def _raw(config: pytest.Config, setting: _Setting) -> Any:
    value = config.getoption(setting.name, default=None)
    if value is not None:
        return value
    env = os.environ.get(setting.env)
    if env is not None and env.strip() != "":
        return env.strip()
    return config.getini(setting.name)


def _text(config: pytest.Config, setting: _Setting) -> str | None:
    value = _raw(config, setting)
    text = str(value).strip() if value is not None else ""
    return text or None


def _flag(config: pytest.Config, setting: _Setting) -> bool:
    value = _raw(config, setting)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise pytest.UsageError(f"{setting.env} / {setting.name}: expected true or false, got {text!r}")


def _names(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    return tuple(part for part in text.replace(",", " ").split() if part)


def _blocking_allow(config: pytest.Config) -> tuple[str, ...]:
    env = os.environ.get("MOSAIC_TEST_BLOCKING_ALLOW", "").split()
    return (*env, *(str(line) for line in config.getini(BLOCKING_ALLOW)))


def get_options(config: pytest.Config) -> MosaicTestOptions:
    """Resolve (once) and return the plugin's settings for ``config``."""
    if OPTIONS_KEY in config.stash:
        return config.stash[OPTIONS_KEY]
    settings = {s.name: s for s in _SETTINGS}

    def text(name: str) -> str | None:
        return _text(config, settings[name])

    port_text = text("mosaic_pg_port")
    try:
        port = int(port_text) if port_text is not None else None
    except ValueError:
        raise pytest.UsageError(f"--mosaic-pg-port: not a port number: {port_text!r}") from None

    backends = _names(text("mosaic_backends")) or BACKENDS
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise pytest.UsageError(
            f"--mosaic-backends: unknown backend(s) {', '.join(unknown)}; "
            f"choose from {', '.join(BACKENDS)}"
        )

    plugin_text = text("mosaic_plugins")
    plugin_names = _names(plugin_text)
    all_plugins = plugin_names in (("all",), ("*",))

    slow_text = text("mosaic_slow_callback_duration")
    try:
        slow = float(slow_text) if slow_text is not None else _DEFAULT_SLOW_CALLBACK
    except ValueError:
        slow = -1.0
    if slow <= 0:
        raise pytest.UsageError(
            f"--mosaic-slow-callback-duration: expected seconds > 0, got {slow_text!r}"
        )

    ini = Path(text("mosaic_alembic_ini") or "alembic.ini")
    options = MosaicTestOptions(
        pg_host=text("mosaic_pg_host"),
        pg_port=port,
        pg_user=text("mosaic_pg_user"),
        pg_password=text("mosaic_pg_password"),
        alembic_ini=ini if ini.is_absolute() else config.rootpath / ini,
        plugins=None if plugin_text is None or all_plugins else plugin_names,
        all_plugins=all_plugins,
        backends=tuple(dict.fromkeys(backends)),
        asyncio_debug=_flag(config, settings["mosaic_asyncio_debug"]),
        slow_callback_duration=slow,
        fail_slow_callbacks=_flag(config, settings["mosaic_fail_slow_callbacks"]),
        detect_blocking=_flag(config, settings["mosaic_detect_blocking"]),
        blocking_allow=_blocking_allow(config),
        migration_checks=_flag(config, settings["mosaic_migration_checks"]),
        migration_checks_path=text("mosaic_migration_checks_path") or MIGRATION_CHECKS_PATH,
        alembic_ini_given=text("mosaic_alembic_ini") is not None,
    )
    config.stash[OPTIONS_KEY] = options
    return options
