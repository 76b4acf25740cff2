"""The ``sa_orm`` stack with ``pool_pre_ping=True`` (SQLAlchemy's pessimistic disconnect
handling: a ping before every checkout). The ``sa_orm`` reference row has pre-ping off."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from bench.stacks._base import DbTarget
from bench.stacks._sa import create_bench_engine
from bench.stacks.sa_orm import SAOrm


class SAOrmPrePing(SAOrm):
    name = "sa_orm_preping"
    order = 21
    description = "sa_orm with pool_pre_ping=True (a ping before every checkout)"
    backends = frozenset({"postgres"})
    ops = frozenset({"get", "page", "concurrent_get", "update", "insert_one"})

    def create_engine(self, db: DbTarget) -> AsyncEngine:
        return create_bench_engine(db, pool_pre_ping=True)


STACK = SAOrmPrePing
