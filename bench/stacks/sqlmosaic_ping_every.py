"""sqlmosaic with a ping on every checkout (``pool_ping_after=0``): the cost of the safety
SQLAlchemy's ``pool_pre_ping`` gives, which the shipped check gets without a round trip per
checkout. PostgreSQL only (SQLite has nothing to ping)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from bench.stacks._base import DbTarget
from bench.stacks.sqlmosaic import Sqlmosaic, create_mosaic_engine


class SqlmosaicPingEvery(Sqlmosaic):
    name = "sqlmosaic_ping_every"
    order = 51
    description = "sqlmosaic, tuned for paranoia: pool_ping_after=0 (a ping on every checkout)"
    backends = frozenset({"postgres"})
    ops = frozenset({"get", "page", "concurrent_get", "update", "insert_one"})

    def create_engine(self, db: DbTarget) -> AsyncEngine:
        return create_mosaic_engine(db, pool_ping_after=0)


STACK = SqlmosaicPingEvery
