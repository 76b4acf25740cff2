"""Every way a plugin can stop the host: a typed error whose message names the culprit(s).

The failing plugins are real installed distributions (``fixtures/broken``,
``fixtures/globaldup``), enabled one at a time through the allowlist.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from mosaic_accounts import User
from sqlmosaic import (
    DuplicateRepositoryError,
    DuplicateTableError,
    ForeignKeyScopeError,
    Mosaic,
    MosaicSettings,
    PluginCycleError,
    PluginDependencyError,
    PluginError,
    PluginHookError,
    PluginImportError,
    Repository,
    hookimpl,
    load_plugins,
)

Install = Callable[..., list[Path]]


@pytest.fixture
def broken(installed: Install) -> None:
    installed("broken")


def test_import_error_names_the_plugin_and_the_cause(broken: None) -> None:
    with pytest.raises(PluginImportError) as err:
        load_plugins(allow=["brokenimport"])
    assert err.value.plugins == ("brokenimport",)
    message = str(err.value)
    assert message.startswith("plugin 'brokenimport' failed to import from mosaic-test-broken")
    assert "ModuleNotFoundError" in message
    assert "mosaic_test_no_such_module" in message
    assert isinstance(err.value.__cause__, ModuleNotFoundError)


def test_hook_signature_mismatch_names_the_plugin(broken: None) -> None:
    # def mosaic_startup(app): the spec's argument is "mosaic".
    with pytest.raises(PluginHookError) as err:
        load_plugins(allow=["badsig"])
    assert err.value.plugins == ("badsig",)
    assert "plugin 'badsig'" in str(err.value)
    assert "mosaic_startup" in str(err.value)
    assert "app" in str(err.value)


def test_unknown_mosaic_hook_names_the_plugin_not_its_repr(broken: None) -> None:
    with pytest.raises(PluginHookError) as err:
        load_plugins(allow=["typo"])
    assert err.value.plugins == ("typo",)
    assert str(err.value).startswith("plugin 'typo' implements an unknown hook")
    assert "mosaic_startp" in str(err.value)


def test_unmarked_mosaic_function_is_rejected_not_silently_ignored(broken: None) -> None:
    with pytest.raises(PluginHookError) as err:
        load_plugins(allow=["unmarked"])
    assert err.value.plugins == ("unmarked",)
    assert "plugin 'unmarked': function mosaic_models() is not marked with @sqlmosaic.hookimpl" in (
        str(err.value)
    )


def test_unmarked_unknown_mosaic_function_lists_the_real_hooks() -> None:
    class Typo:
        def mosaic_modles(self) -> list[Any]:
            return []

    with pytest.raises(PluginHookError) as err:
        load_plugins(plugins={"typo2": Typo()}, discover=False)
    assert err.value.plugins == ("typo2",)
    assert "mosaic_modles() is not marked" in str(err.value)
    assert "is not a sqlmosaic hook (hooks: mosaic_migrations, mosaic_models, " in str(err.value)


def test_hook_wrappers_are_rejected(broken: None) -> None:
    with pytest.raises(PluginHookError) as err:
        load_plugins(allow=["hookwrapper"])
    assert err.value.plugins == ("hookwrapper",)
    assert "plugin 'hookwrapper': mosaic_models is a hook wrapper" in str(err.value)


def test_mosaic_models_returning_a_non_table_class_names_the_plugin(broken: None) -> None:
    with pytest.raises(PluginHookError) as err:
        load_plugins(allow=["notatable"])
    assert err.value.plugins == ("notatable",)
    assert "plugin 'notatable': mosaic_models() returned" in str(err.value)
    assert "NotATable" in str(err.value)
    assert "table=True" in str(err.value)


def test_mosaic_models_raising_names_the_plugin() -> None:
    class Raises:
        @hookimpl
        def mosaic_models(self) -> list[Any]:
            raise LookupError("no models today")

    with pytest.raises(PluginHookError) as err:
        load_plugins(plugins={"raiser": Raises()}, discover=False)
    assert err.value.plugins == ("raiser",)
    assert str(err.value) == "plugin 'raiser': mosaic_models() raised LookupError: no models today"


def test_mosaic_repositories_returning_a_non_repository_names_the_plugin() -> None:
    class NotARepo:
        pass

    class Bad:
        @hookimpl
        def mosaic_repositories(self) -> list[Any]:
            return [NotARepo]

    with pytest.raises(PluginHookError) as err:
        load_plugins(plugins={"badrepo": Bad()}, discover=False)
    assert err.value.plugins == ("badrepo",)
    assert "plugin 'badrepo': mosaic_repositories() returned" in str(err.value)
    assert "NotARepo" in str(err.value)


def test_mosaic_requires_returning_a_string_names_the_plugin() -> None:
    class Bad:
        @hookimpl
        def mosaic_requires(self) -> str:
            return "accounts"  # should be ["accounts"]

    with pytest.raises(PluginHookError) as err:
        load_plugins(plugins={"stringy": Bad()}, discover=False)
    assert err.value.plugins == ("stringy",)
    assert str(err.value) == "plugin 'stringy': mosaic_requires() must return a list, got str"


def test_missing_required_plugin_names_both(broken: None) -> None:
    with pytest.raises(PluginDependencyError) as err:
        load_plugins(allow=["needsghost"])
    assert err.value.plugins == ("needsghost", "ghost")
    assert str(err.value) == ("plugin 'needsghost' requires plugin 'ghost', which is not installed")


def test_dependency_cycle_prints_the_cycle(broken: None) -> None:
    with pytest.raises(PluginCycleError) as err:
        load_plugins(allow=["cycc", "cyca", "cycb", "accounts"])
    assert err.value.cycle == ("cyca", "cycb", "cycc", "cyca")
    assert str(err.value) == "plugins require each other in a cycle: cyca -> cycb -> cycc -> cyca"
    assert set(err.value.plugins) == {"cyca", "cycb", "cycc"}


def test_a_plugin_requiring_itself_is_a_cycle() -> None:
    class Selfish:
        @hookimpl
        def mosaic_requires(self) -> list[str]:
            return ["selfish"]

    with pytest.raises(PluginCycleError, match=r"cycle: selfish -> selfish$"):
        load_plugins(plugins={"selfish": Selfish()}, discover=False)


def test_same_table_in_separate_metadata_names_both_plugins(broken: None) -> None:
    with pytest.raises(DuplicateTableError) as err:
        load_plugins(allow=["dupb", "dupa"])
    assert err.value.table == "widget"
    assert err.value.plugins == ("dupa", "dupb")
    assert str(err.value).startswith(
        "table 'widget' is defined by plugin 'dupa' and by plugin 'dupb'"
    )


GLOBAL_DUP_SCRIPT = textwrap.dedent(
    """
    import json, sys
    if sys.argv[2] == "preimport":
        import mosaic_accounts  # an application that imported accounts' models itself
    from sqlmosaic import PluginError, load_plugins
    try:
        load_plugins(allow=sys.argv[1].split(","))
    except PluginError as exc:
        out = {"type": type(exc).__name__, "plugins": list(exc.plugins), "message": str(exc),
               "table": getattr(exc, "table", None), "cause": type(exc.__cause__).__name__}
    else:
        out = {"type": None}
    print(json.dumps(out))
    """
)


def run_global_dup(target: Path, allow: str, mode: str = "") -> dict[str, Any]:
    # SQLModel.metadata is process-global: a clashing table defined here would stay for the
    # whole session, so the clash happens in a child interpreter.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env["PYTHONPATH"] = str(target)
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", GLOBAL_DUP_SCRIPT, allow, mode or "-"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_same_table_in_sqlmodel_global_metadata_names_both_plugins(
    plugin_dists: dict[str, Path],
) -> None:
    out = run_global_dup(plugin_dists["globaldup"], "globb,globa")

    assert out["type"] == "DuplicateTableError"
    assert out["table"] == "gadget"
    assert out["plugins"] == ["globa", "globb"]
    assert out["cause"] == "InvalidRequestError"  # SQLAlchemy, at class definition
    assert out["message"].startswith(
        "plugin 'globb' failed to import: table 'gadget' is already defined by plugin 'globa' "
        "(class mosaic_test_globaldup.globa.Gadget, in SQLModel's global metadata)"
    )


@pytest.mark.parametrize("mode", ["", "preimport"])
def test_global_metadata_clash_with_a_first_party_table_names_both(
    plugin_dists: dict[str, Path], mode: str
) -> None:
    # Plugins are imported in name order: "aaclash" before "accounts" (or accounts was already
    # imported by the application): either way both plugins are named.
    out = run_global_dup(plugin_dists["globaldup"], "accounts,aaclash", mode)

    assert out["type"] == "DuplicateTableError"
    assert out["table"] == "user"
    assert sorted(out["plugins"]) == ["aaclash", "accounts"]
    assert "'aaclash'" in out["message"]
    assert "'accounts'" in out["message"]


def test_global_metadata_test_plugins_did_not_leak_into_this_process() -> None:
    assert "gadget" not in SQLModel.metadata.tables


def test_foreign_key_into_a_plugin_that_is_not_required_names_both(broken: None) -> None:
    with pytest.raises(ForeignKeyScopeError) as err:
        load_plugins(allow=["accounts", "sneaky"])
    assert err.value.plugins == ("sneaky", "accounts")
    assert str(err.value) == (
        "plugin 'sneaky': sneaky_comment.user_id references 'user.id' of plugin 'accounts', "
        "which 'sneaky' does not require; return 'accounts' from sneaky's mosaic_requires()"
    )


def test_foreign_key_into_a_plugin_that_is_not_enabled_names_the_plugin(
    installed: Install, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every installed test plugin is off except sneaky: only accounts defines table "user",
    # so only accounts is named; its source is read, no disabled plugin is imported.
    monkeypatch.delenv("MOSAIC_TEST_TRIPWIRE_IMPORTED", raising=False)
    installed("broken", "notes", "audit", "tripwire")
    with pytest.raises(ForeignKeyScopeError) as err:
        load_plugins(allow=["sneaky"])
    assert err.value.plugins == ("sneaky", "accounts")
    assert str(err.value) == (
        "plugin 'sneaky': sneaky_comment.user_id references 'user.id', but no enabled plugin "
        "defines table 'user'; it is defined by plugin 'accounts', which is installed but "
        "disabled (not in allowlist): add it to MOSAIC_PLUGINS and return 'accounts' from "
        "sneaky's mosaic_requires()"
    )
    assert "MOSAIC_TEST_TRIPWIRE_IMPORTED" not in os.environ
    assert not [m for m in sys.modules if m.startswith(("mosaic_test_notes", "mosaic_test_audit"))]


def test_foreign_key_into_a_blocked_plugin_says_it_is_blocked(broken: None) -> None:
    with pytest.raises(ForeignKeyScopeError) as err:
        load_plugins(allow=["sneaky", "accounts"], block=["accounts"])
    assert err.value.plugins == ("sneaky", "accounts")
    assert str(err.value).endswith(
        "defines table 'user'; it is defined by plugin 'accounts', which is installed but "
        "disabled (blocked): remove it from MOSAIC_BLOCKED_PLUGINS and return 'accounts' from "
        "sneaky's mosaic_requires()"
    )


def test_foreign_key_into_a_table_two_disabled_plugins_define_names_both(
    installed: Install,
) -> None:
    installed("broken", "globaldup")
    with pytest.raises(ForeignKeyScopeError) as err:
        load_plugins(allow=["sneaky"])
    assert err.value.plugins == ("sneaky", "aaclash", "accounts")
    message = str(err.value)
    assert "defined by plugin 'aaclash', which is installed but disabled" in message
    assert "; or by plugin 'accounts', which is installed but disabled" in message
    assert "'globa'" not in message
    assert "gadget" not in SQLModel.metadata.tables  # read, not imported


def test_foreign_key_into_no_installed_plugin_names_none(broken: None) -> None:
    class _Base(SQLModel, registry=registry(metadata=MetaData())):
        pass

    class Orphan(_Base, table=True):
        __tablename__ = "orphan_ref"
        id: int | None = Field(default=None, primary_key=True)
        ghost_id: int = Field(foreign_key="ghost.id")

    class _Orphans:
        @hookimpl
        def mosaic_models(self) -> list[type[Any]]:
            return [Orphan]

    with pytest.raises(ForeignKeyScopeError) as err:
        load_plugins(allow=["accounts"], plugins={"orphans": _Orphans()})
    assert err.value.plugins == ("orphans",)
    assert str(err.value) == (
        "plugin 'orphans': orphan_ref.ghost_id references 'ghost.id', but no enabled plugin "
        "defines table 'ghost'"
    )


def test_two_repositories_for_one_model_name_both_plugins(broken: None) -> None:
    with pytest.raises(DuplicateRepositoryError) as err:
        load_plugins(allow=["accounts", "duprepo"])
    assert err.value.plugins == ("accounts", "duprepo")
    message = str(err.value)
    assert "model User has two repositories" in message
    assert "UserRepository (plugin 'accounts')" in message
    assert "ShadowUserRepository (plugin 'duprepo')" in message


def test_two_repositories_under_one_key_name_the_plugin_and_classes() -> None:
    class Base(SQLModel, registry=registry(metadata=MetaData())):
        pass

    class Thing(Base, table=True):
        __tablename__ = "thing"
        id: int | None = Field(default=None, primary_key=True)

    class Other(Base, table=True):
        __tablename__ = "other_thing"
        id: int | None = Field(default=None, primary_key=True)

    class ThingRepository(Repository[Thing]):
        name = "things"

    class OtherRepository(Repository[Other]):
        name = "things"

    class Plugin:
        @hookimpl
        def mosaic_models(self) -> list[type[Any]]:
            return [Thing, Other]

        @hookimpl
        def mosaic_repositories(self) -> list[type[Repository[Any]]]:
            return [ThingRepository, OtherRepository]

    with pytest.raises(DuplicateRepositoryError) as err:
        load_plugins(plugins={"things": Plugin()}, discover=False)
    assert err.value.plugins == ("things",)
    assert "repository key 'things.things' is used by" in str(err.value)
    assert "ThingRepository" in str(err.value)
    assert "OtherRepository" in str(err.value)


def test_repository_for_a_table_of_no_enabled_plugin_names_the_plugin() -> None:
    class Orphan(Repository[User]):
        name = "orphans"

    class Plugin:
        @hookimpl
        def mosaic_repositories(self) -> list[type[Repository[Any]]]:
            return [Orphan]

    with pytest.raises(PluginHookError) as err:
        load_plugins(plugins={"orphanage": Plugin()}, discover=False)
    assert err.value.plugins == ("orphanage",)
    assert "repository" in str(err.value)
    assert "table 'user', which no enabled plugin defines" in str(err.value)


async def test_a_failing_load_leaves_nothing_half_registered(broken: None, tmp_path: Path) -> None:
    settings = MosaicSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.sqlite'}",
        plugins=["accounts", "tasks", "duprepo"],
    )
    mosaic = Mosaic(settings)

    with pytest.raises(DuplicateRepositoryError):
        await mosaic.start()
    assert mosaic.running is False
    assert mosaic.database.connected is False  # never connected: the failure came first
    with pytest.raises(DuplicateRepositoryError):  # not cached as half-loaded
        await asyncio.to_thread(mosaic.load)  # discovery reads from disk: off the loop
    # A sibling host in the same process is unaffected.
    healthy = Mosaic(settings.model_copy(update={"plugins": ["accounts", "tasks"]}))
    assert (await asyncio.to_thread(healthy.load)).names == ("accounts", "tasks")
    assert "shadow_users" not in " ".join(healthy.plugins.repositories)


def test_every_plugin_error_is_a_plugin_error() -> None:
    for cls in (
        PluginImportError,
        PluginHookError,
        PluginDependencyError,
        PluginCycleError,
        DuplicateTableError,
        DuplicateRepositoryError,
        ForeignKeyScopeError,
    ):
        assert issubclass(cls, PluginError)
