"""Entry-point discovery, the allowlist / blocklist, and the load order.

Plugins come from REAL installed distributions: the editable first-party ``accounts`` and
``tasks``, and test-only wheels pip-installed into temporary directories (see conftest.py).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import mosaic_accounts.plugin
import mosaic_comments.plugin
import mosaic_tasks.plugin
from sqlmosaic import (
    Mosaic,
    MosaicSettings,
    PluginDependencyError,
    PluginError,
    PluginImportError,
    SkippedPlugin,
    hookimpl,
    load_plugins,
)

Install = Callable[..., list[Path]]
TRIPWIRE_FLAG = "MOSAIC_TEST_TRIPWIRE_IMPORTED"
DUPNAME_FLAG = "MOSAIC_TEST_DUPNAME_IMPORTED"


def installed_names() -> set[str]:
    return {ep.name for ep in importlib.metadata.entry_points(group="sqlmosaic")}


def settings(tmp_path: Path, **kwargs: object) -> MosaicSettings:
    return MosaicSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", **kwargs)


def test_first_party_plugins_are_discovered_from_entry_points() -> None:
    plugins = load_plugins(allow=["accounts", "tasks", "comments"])

    assert plugins.names == ("accounts", "tasks", "comments")
    accounts, tasks, comments = plugins.plugins
    assert accounts.plugin is mosaic_accounts.plugin
    assert tasks.plugin is mosaic_tasks.plugin
    assert comments.plugin is mosaic_comments.plugin
    assert {accounts.source, tasks.source, comments.source} == {"entry_point"}
    assert accounts.version == importlib.metadata.version("sqlmosaic-accounts")
    assert tasks.version == importlib.metadata.version("sqlmosaic-tasks")
    assert comments.version == importlib.metadata.version("sqlmosaic-comments")
    assert tasks.requires == ("accounts",)
    assert comments.requires == ("accounts", "tasks")
    assert plugins.skipped == ()


def test_installed_test_distributions_are_discovered(installed: Install) -> None:
    notes_dir, audit_dir = installed("notes", "audit")

    plugins = load_plugins(allow=["accounts", "notes", "audit"])

    assert plugins.names == ("accounts", "notes", "audit")
    notes, audit = plugins.get("notes"), plugins.get("audit")
    assert (notes.version, audit.version) == ("1.2.3", "0.0.7")
    assert {notes.source, audit.source} == {"entry_point"}
    # The modules really come from the pip-installed copies, not from the source tree.
    assert Path(sys.modules["mosaic_test_notes.plugin"].__file__ or "").is_relative_to(notes_dir)
    assert Path(sys.modules["mosaic_test_audit"].__file__ or "").is_relative_to(audit_dir)
    assert notes.tables == ("note",)


def test_an_uninstalled_distribution_is_not_discovered() -> None:
    # Control for the test above: without the wheel on sys.path, "notes" does not exist.
    assert "notes" not in installed_names()
    with pytest.raises(PluginDependencyError, match=r"'notes' is in the allowlist but not") as err:
        load_plugins(allow=["accounts", "notes"])
    assert err.value.plugins == ("notes",)


def test_plugin_not_in_allowlist_is_never_imported(
    installed: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TRIPWIRE_FLAG, raising=False)
    installed("tripwire")
    assert "tripwire" in installed_names()

    plugins = load_plugins(allow=["accounts"])

    assert plugins.names == ("accounts",)
    assert SkippedPlugin("tripwire", "not in allowlist", "6.6.6") in plugins.skipped
    assert SkippedPlugin("tasks", "not in allowlist", plugins_version("tasks")) in plugins.skipped
    assert TRIPWIRE_FLAG not in os.environ
    assert "mosaic_test_tripwire" not in sys.modules

    # Positive control: once allowed, the import happens (and its failure names the plugin).
    with pytest.raises(PluginImportError, match=r"plugin 'tripwire' failed to import") as err:
        load_plugins(allow=["accounts", "tripwire"])
    assert err.value.plugins == ("tripwire",)
    assert "mosaic_test_tripwire was imported" in str(err.value)
    assert os.environ[TRIPWIRE_FLAG] == "1"


def test_a_name_clash_outside_the_allowlist_does_not_block_the_host(
    installed: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An installed package re-registering an existing plugin name ('tasks') stops only the
    hosts that enable that name: the allowlist is applied before names are compared."""
    monkeypatch.delenv(DUPNAME_FLAG, raising=False)
    installed("dupname")
    tasks = [ep for ep in importlib.metadata.entry_points(group="sqlmosaic") if ep.name == "tasks"]
    assert sorted(ep.value for ep in tasks) == ["mosaic_tasks.plugin", "mosaic_test_dupname"]

    plugins = load_plugins(allow=["accounts"])

    assert plugins.names == ("accounts",)
    assert DUPNAME_FLAG not in os.environ
    # Positive control: a host that enables the name still stops, naming both distributions.
    with pytest.raises(PluginError, match=r"plugin name 'tasks' is registered twice") as err:
        load_plugins(allow=["accounts", "tasks"])
    assert err.value.plugins == ("tasks",)
    assert "mosaic-test-dupname" in str(err.value)
    assert DUPNAME_FLAG not in os.environ


def plugins_version(name: str) -> str:
    dist = {"accounts": "sqlmosaic-accounts", "tasks": "sqlmosaic-tasks"}[name]
    return importlib.metadata.version(dist)


def test_blocked_plugin_is_never_imported_even_if_allowed(
    installed: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TRIPWIRE_FLAG, raising=False)
    installed("tripwire")

    everything = load_plugins(block=["tripwire"])  # no allowlist: all installed, minus blocked
    allowed = load_plugins(allow=["accounts", "tripwire"], block=["tripwire"])

    assert "tripwire" not in everything.names
    assert {"accounts", "tasks"} <= set(everything.names)
    assert SkippedPlugin("tripwire", "blocked", "6.6.6") in everything.skipped
    assert allowed.names == ("accounts",)
    assert SkippedPlugin("tripwire", "blocked", "6.6.6") in allowed.skipped
    assert TRIPWIRE_FLAG not in os.environ
    assert "mosaic_test_tripwire" not in sys.modules


def test_blocking_a_required_plugin_stops_startup_naming_both() -> None:
    with pytest.raises(PluginDependencyError) as err:
        load_plugins(allow=["accounts", "tasks"], block=["accounts"])
    assert err.value.plugins == ("tasks", "accounts")
    assert "plugin 'tasks' requires plugin 'accounts', which is blocked" in str(err.value)


def test_a_required_plugin_missing_from_the_allowlist_stops_startup_naming_both() -> None:
    with pytest.raises(PluginDependencyError) as err:
        load_plugins(allow=["tasks"])
    assert err.value.plugins == ("tasks", "accounts")
    assert "'tasks' requires plugin 'accounts', which is installed but not enabled" in str(
        err.value
    )


def test_no_allowlist_loads_every_installed_plugin_and_logs_them(
    installed: Install, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    installed("notes", "audit")
    caplog.set_level(logging.INFO, logger="sqlmosaic.host")

    mosaic = Mosaic(settings(tmp_path))
    names = mosaic.load().names

    assert set(names) == installed_names()
    assert {"accounts", "tasks", "notes", "audit"} <= set(names)
    [record] = [r for r in caplog.records if r.name == "sqlmosaic.host"]
    assert "no allowlist: every installed plugin" in record.getMessage()
    assert record.getMessage().endswith(", ".join(names))


def test_allowlist_is_logged_with_the_skipped_plugins(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sqlmosaic.host")

    Mosaic(settings(tmp_path, plugins=["accounts"])).load()

    [record] = [r for r in caplog.records if r.name == "sqlmosaic.host"]
    assert record.getMessage() == (
        "plugins enabled (allowlist MOSAIC_PLUGINS): accounts; skipped: comments (not in "
        "allowlist), tasks (not in allowlist)"
    )


def test_environment_allowlist_and_blocklist_are_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'env.sqlite'}")
    monkeypatch.setenv("MOSAIC_PLUGINS", "accounts, tasks")

    monkeypatch.setenv("MOSAIC_BLOCKED_PLUGINS", "tasks")
    plugins = Mosaic().load()
    assert plugins.names == ("accounts",)
    assert [(s.name, s.reason) for s in plugins.skipped] == [
        ("comments", "not in allowlist"),
        ("tasks", "blocked"),
    ]

    monkeypatch.setenv("MOSAIC_BLOCKED_PLUGINS", "accounts")
    with pytest.raises(PluginDependencyError, match="'tasks' requires plugin 'accounts'") as err:
        Mosaic().load()
    assert err.value.plugins == ("tasks", "accounts")


def test_mosaic_requires_orders_dependencies_first_then_by_name(installed: Install) -> None:
    installed("notes", "audit")

    # audit requires notes requires accounts; tasks requires accounts. By name alone "audit"
    # would come first; the dependency graph puts it right after notes.
    forward = load_plugins(allow=["accounts", "audit", "notes", "tasks"])
    backward = load_plugins(allow=["tasks", "notes", "audit", "accounts"])

    assert forward.names == ("accounts", "notes", "audit", "tasks")
    assert backward.names == forward.names
    assert forward.get("audit").requires == ("notes",)


def test_order_ties_are_broken_by_name_for_explicit_plugins() -> None:
    class Requires:
        def __init__(self, *deps: str) -> None:
            self.deps = list(deps)

        @hookimpl
        def mosaic_requires(self) -> list[str]:
            return self.deps

    plugins = load_plugins(
        plugins={
            "zeta": Requires(),
            "alpha": Requires("zeta"),
            "mid": Requires(),
            "beta": Requires("mid", "zeta"),
            "omega": Requires(),
        },
        discover=False,
    )

    assert plugins.names == ("mid", "omega", "zeta", "alpha", "beta")
    assert {p.source for p in plugins.plugins} == {"explicit"}


def test_explicit_plugins_are_enabled_next_to_an_allowlist() -> None:
    class Extra:
        mosaic_name = "extra"

        @hookimpl
        def mosaic_requires(self) -> list[str]:
            return ["accounts"]

    plugins = load_plugins(allow=["accounts"], plugins=[Extra()])

    assert plugins.names == ("accounts", "extra")
    assert plugins.get("extra").source == "explicit"
