"""The one table every stack reads and writes, and the rows the runner feeds them.

The DDL is created from :data:`metadata` only; each stack maps ``item`` its own idiomatic way
(raw SQL, Core ``Table``, declarative class, SQLModel class), always to exactly these columns.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypedDict

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Double,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

TABLE = "item"
COLUMNS = ("id", "name", "qty", "price", "created_at")
INSERT_COLUMNS = ("name", "qty", "price", "created_at")

# BIGINT identity on PostgreSQL; INTEGER PRIMARY KEY (the rowid alias) on SQLite, where a BIGINT
# primary key would not autoincrement.
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

item = Table(
    TABLE,
    metadata,
    Column("id", ID_TYPE, Identity(), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("price", Double, nullable=False),
    Column("created_at", DateTime, nullable=False),  # timestamp without time zone
    Index("ix_item_name", "name"),
)


class ItemRow(TypedDict):
    """One row to insert (the database assigns ``id``)."""

    name: str
    qty: int
    price: float
    created_at: datetime


_EPOCH = datetime(2026, 1, 1, 12, 0, 0)


def make_rows(n: int, prefix: str = "item") -> list[ItemRow]:
    """``n`` deterministic rows; the same list is given to every stack."""
    return [
        ItemRow(
            name=f"{prefix}-{i:07d}",
            qty=i % 1000,
            price=round((i * 37) % 100_000 / 100, 2),
            created_at=_EPOCH + timedelta(seconds=i, microseconds=i % 1000),
        )
        for i in range(n)
    ]
