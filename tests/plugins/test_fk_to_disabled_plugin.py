"""A foreign key into a table of an installed but disabled plugin says that plugin is off."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import MetaData
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from sqlmosaic import ForeignKeyScopeError, hookimpl, load_plugins


class _Base(SQLModel, registry=registry(metadata=MetaData())):
    pass


class Review(_Base, table=True):
    __tablename__ = "fk_review"

    id: int | None = Field(default=None, primary_key=True)
    author_id: int = Field(foreign_key="user.id")  # the accounts plugin's table


class _Reviews:
    @hookimpl
    def mosaic_models(self) -> list[type[Any]]:
        return [Review]


def test_the_message_names_the_installed_plugins_that_are_off() -> None:
    with pytest.raises(ForeignKeyScopeError) as err:
        load_plugins(allow=["reviews"], plugins={"reviews": _Reviews()})
    message = str(err.value)
    assert "fk_review.author_id references 'user.id', but no enabled plugin defines" in message
    assert "installed but not enabled: accounts (not in allowlist), tasks (not in allowlist)" in (
        message
    )
    assert "MOSAIC_PLUGINS" in message
    assert err.value.plugins == ("reviews",)


def test_without_disabled_plugins_the_message_is_unchanged() -> None:
    with pytest.raises(ForeignKeyScopeError) as err:
        load_plugins(plugins={"reviews": _Reviews()}, discover=False)
    assert "installed but not enabled" not in str(err.value)
