"""``mosaic_migrations``: a plugin that ships its own history (its Alembic branch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import mosaic_comments.plugin
from sqlmosaic import PluginHookError, hookimpl, load_plugins


class HistoryPlugin:
    def __init__(self, value: Any) -> None:
        self.value = value

    @hookimpl
    def mosaic_migrations(self) -> Any:
        return self.value


def test_mosaic_migrations_gives_the_plugin_its_own_history_directory() -> None:
    plugins = load_plugins(allow=["accounts", "tasks", "comments"])
    expected = Path(mosaic_comments.plugin.__file__).parent / "migrations"
    assert plugins.get("comments").migrations == expected
    assert len(list(expected.glob("*-*_create_comment_table.py"))) == 1
    # Plugins without the hook keep their tables in the host's merged history.
    assert plugins.get("accounts").migrations is None
    assert plugins.get("tasks").migrations is None


def test_mosaic_migrations_accepts_a_string_and_none(tmp_path: Path) -> None:
    plugins = load_plugins(
        plugins={"strpath": HistoryPlugin(str(tmp_path)), "none": HistoryPlugin(None)},
        discover=False,
    )
    assert plugins.get("strpath").migrations == tmp_path.resolve()
    assert plugins.get("none").migrations is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, r"mosaic_migrations\(\) returned 42, not a directory path"),
        ("/no/such/dir", r"returned '/no/such/dir', which is not a directory"),
    ],
)
def test_mosaic_migrations_rejects_what_is_not_a_directory(value: Any, message: str) -> None:
    with pytest.raises(PluginHookError, match=message) as err:
        load_plugins(plugins={"bad": HistoryPlugin(value)}, discover=False)
    assert err.value.plugins == ("bad",)
