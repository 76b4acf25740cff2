"""Never a wrong key: SQLite picks rowids at RANDOM once a table holds rowid 2**63-1.

Matching RETURNING rows to VALUES order by key (SQLAlchemy's implicit sentinel, which an earlier
sqlmosaic turned on for SQLite engines) then handed objects other rows' keys: 6 of 6 wrong. Each
object's key must be the key of the row holding that object's values, for ``add_many`` (direct
INSERT, objects and mappings) and for a plain ORM ``add_all`` flush on sqlmosaic's engine.
SQLite only: PostgreSQL's sequences never pick at random (a key of 2**63-1 does not fit its
``integer`` id column either).
"""

from __future__ import annotations

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_accounts import User, UserRepository
from sqlmosaic.testing import SQLCounterFactory

pytestmark = pytest.mark.parametrize("mosaic_backend", ["sqlite"], indirect=True)

TOP = 2**63 - 1


async def _assert_keys_match_rows(session: AsyncSession, users: list[User]) -> None:
    given = {u.id: u.email for u in users}
    assert None not in given
    assert len(given) == len(users)
    session.expire_all()  # compare with the database, not with the identity map
    query = select(User.id, User.email).where(User.id.in_(list(given)))  # type: ignore[union-attr]
    assert dict((await session.exec(query)).all()) == given


async def _top_row(session: AsyncSession, top: int = TOP) -> None:
    await UserRepository(session).add(User(id=top, email="top@example.com", name="Top"))


@pytest.mark.parametrize("as_mappings", [False, True])
async def test_add_many_after_the_largest_rowid_gives_each_object_its_own_key(
    mosaic_session: AsyncSession, as_mappings: bool
) -> None:
    await _top_row(mosaic_session)
    rows = [{"email": f"r{i}@example.com", "name": f"R{i}"} for i in range(6)]
    users = await UserRepository(mosaic_session).add_many(
        rows if as_mappings else [User(**r) for r in rows]  # type: ignore[arg-type]
    )
    assert [u.email for u in users] == [r["email"] for r in rows]
    await _assert_keys_match_rows(mosaic_session, users)


async def test_add_many_when_the_run_does_not_fit_below_the_largest_rowid(
    mosaic_session: AsyncSession,
) -> None:
    await _top_row(mosaic_session, TOP - 3)  # 2 keys left in order, then random ones
    users = await UserRepository(mosaic_session).add_many(
        [User(email=f"f{i}@example.com", name="F") for i in range(6)]
    )
    ids = [u.id for u in users]
    await _assert_keys_match_rows(mosaic_session, users)
    assert {TOP - 2, TOP - 1} <= set(ids)


async def test_orm_add_all_flush_on_sqlmosaic_engine_after_the_largest_rowid(
    mosaic_session: AsyncSession,
) -> None:
    await _top_row(mosaic_session)
    users = [User(email=f"o{i}@example.com", name="O") for i in range(6)]
    mosaic_session.add_all(users)
    await mosaic_session.flush()
    await _assert_keys_match_rows(mosaic_session, users)


async def test_add_many_still_batches_below_the_largest_rowid(
    mosaic_session: AsyncSession, mosaic_sql_counter: SQLCounterFactory
) -> None:
    await mosaic_session.connection()
    with mosaic_sql_counter() as sql:
        users = await UserRepository(mosaic_session).add_many(
            [User(email=f"b{i}@example.com", name="B") for i in range(500)]
        )
    ids = [u.id for u in users]
    await _assert_keys_match_rows(mosaic_session, users)
    assert ids == sorted(ids)  # type: ignore[type-var]
    kinds = [s.lstrip().split()[0].upper() for s in sql.statements]
    assert kinds[0] == "SELECT"  # the largest key, read in the same transaction
    assert 2 <= len(kinds) <= 6
    assert set(kinds[1:]) == {"INSERT"}
