"""NotFoundError: messages show the key's str (a UUID as ``c6f9...``, never ``UUID('c6f9...')``),
and the documented constructor ``NotFoundError(Model, key)`` works. Both backends, through a
repository of an in-test plugin with a UUID key.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import MetaData
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import sqlmosaic
from sqlmosaic import NotFoundError, Repository


class _Base(SQLModel, registry=registry(metadata=MetaData())):
    pass


class Ticket(_Base, table=True):
    __tablename__ = "nf_ticket"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    title: str = Field(max_length=20)


class TicketRepository(Repository[Ticket]):
    pass


class _Plugin:
    mosaic_name = "tickets"

    @sqlmosaic.hookimpl
    def mosaic_models(self) -> list[type[SQLModel]]:
        return [Ticket]


KEY = uuid.UUID("c6f9a2d4-5b1e-4c3a-9f7d-2e8b6a1c0d3f")


def test_the_documented_constructor() -> None:
    error = NotFoundError(Ticket, KEY)
    assert str(error) == f"Ticket {KEY} not found"
    assert error.model == "Ticket"
    assert error.key == KEY
    assert str(NotFoundError(Ticket, (1, "a"))) == "Ticket (1, a) not found"
    own = NotFoundError("no such ticket", model="Ticket", key=KEY)
    assert (str(own), own.model, own.key) == ("no such ticket", "Ticket", KEY)


@pytest.mark.mosaic_plugins(_Plugin())
async def test_repository_messages_use_the_keys_str(mosaic_session: AsyncSession) -> None:
    tickets = TicketRepository(mosaic_session)
    for attempt in (
        lambda: tickets.get(KEY),
        lambda: tickets.update(KEY, {"title": "x"}),
        lambda: tickets.delete(KEY),
    ):
        with pytest.raises(NotFoundError) as info:
            await attempt()
        assert str(info.value) == f"Ticket {KEY} not found"
        assert "UUID(" not in str(info.value)
        assert info.value.key == KEY
