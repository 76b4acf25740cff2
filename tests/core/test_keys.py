"""Primary keys are coerced to the key column's type before any SQL, the same on every backend.

``get(str(uuid))`` worked on asyncpg and ended in an untranslated ``StatementError`` on SQLite
(an HTTP 500 in a host). A value SQLAlchemy cannot bind is the caller's input: an
:class:`InvalidQueryError`, never an untranslated error. Both backends.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import MetaData
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import sqlmosaic
from mosaic_accounts import UserRepository
from sqlmosaic import InvalidQueryError, MosaicError, NotFoundError, Repository


class _Base(SQLModel, registry=registry(metadata=MetaData())):
    pass


class Token(_Base, table=True):
    __tablename__ = "key_token"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    label: str = Field(max_length=20)


class TokenRepository(Repository[Token]):
    pass


class _Plugin:
    mosaic_name = "tokens"

    @sqlmosaic.hookimpl
    def mosaic_models(self) -> list[type[SQLModel]]:
        return [Token]


@pytest.mark.mosaic_plugins(_Plugin())
async def test_uuid_key_given_as_a_string(mosaic_session: AsyncSession) -> None:
    tokens = TokenRepository(mosaic_session)
    token = await tokens.add(Token(label="t"))
    key = token.id
    await mosaic_session.commit()
    mosaic_session.expunge_all()  # through the database, not the identity map
    found = await tokens.get(str(key))
    assert (found.id, found.label) == (key, "t")
    assert await tokens.get(str(key)) is found  # and the identity map knows the string too
    assert (await tokens.update(str(key), {"label": "u"})).label == "u"
    with pytest.raises(NotFoundError):
        await tokens.get(str(uuid.uuid4()))
    for bad in ("not-a-uuid", 12.5, ["x"]):
        with pytest.raises(InvalidQueryError) as info:
            await tokens.get(bad)
        assert info.value.field == "pk"
    with pytest.raises(InvalidQueryError):
        await tokens.delete("nope")
    await tokens.delete(str(key))
    assert await tokens.get_or_none(key) is None


async def test_integer_key_given_as_a_string(mosaic_session: AsyncSession, seed: Any) -> None:
    users = UserRepository(mosaic_session)
    user_id = seed.user_ids[0]
    mosaic_session.expunge_all()
    assert (await users.get(str(user_id))).id == user_id
    with pytest.raises(InvalidQueryError) as info:
        await users.get("abc")
    assert info.value.field == "pk"
    assert "abc" not in str(info.value)


async def test_a_value_that_cannot_be_bound_is_translated(
    mosaic_session: AsyncSession, seed: Any, mosaic_backend: str
) -> None:
    users = UserRepository(mosaic_session)
    with pytest.raises(MosaicError) as info:
        await users.update(seed.user_ids[0], {"created_at": "yesterday-ish"})
    if mosaic_backend == "sqlite":  # SQLAlchemy's own DateTime bind processing refuses it
        assert isinstance(info.value, InvalidQueryError)
    assert "yesterday-ish" not in str(info.value)


async def test_a_key_of_the_wrong_length_is_an_invalid_query(
    mosaic_session: AsyncSession, seed: Any
) -> None:
    users = UserRepository(mosaic_session)
    for bad in ((1, 2), (), [1, 2]):
        for call in (users.get(bad), users.get_or_none(bad, for_update=True)):
            with pytest.raises(InvalidQueryError) as info:
                await call
            assert info.value.field == "pk"
